"""helpers.chapter.claims: claims declared once, one verdict, bad input in one sentence."""

import json

from helpers.chapter import claims
from helpers.chapter.claims import Check, Part, verdict

import numpy as np
import pandas as pd
import pytest

CLAIM = """
[[claim]]
id = "C1"
page = "341"
book = "fewer steps"
chapter = "07_x"
section = "Speed (C1)"

[[claim.part]]
name = "ratio"
figure = "steps ratio r"
op = ">"
threshold = 1
noise = "seeds"
digits = 2

[[claim.part]]
name = "paper"
figure = "ratio against the paper's 14"
op = ">="
threshold = 14
noise = "seeds"
kind = "context"
reads = "ratio"

[[claim.part]]
name = "error"
figure = "max |Keras − rule|"
op = "<"
threshold = 1e-5
noise = "given"
noise_unit = "1 ulp"

[[claim.part]]
name = "ops"
figure = "MUL and ADD left"
op = "=="
threshold = 0
over = "model"

[[claim.part]]
name = "updates"
figure = "layers have `updates`"
op = "=="
threshold = true
kind = "api"
"""


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "claims.toml"
    path.write_text(CLAIM)
    return claims.load(path)


def bound(table, **changes):
    figures = {"ratio": {42: 2.0, 43: 3.0}, "error": 1e-7, "ops": {"a": 0, "b": 0}}
    figures["updates"] = True
    figures.update(changes)
    return claims.bind("C1", figures, noise={"error": 1e-9}, claims=table)


def test_the_claims_file_declares_every_claim_with_its_parts():
    table = claims.load()
    assert list(table) == [f"C{i}" for i in range(1, len(table) + 1)]
    book, beyond = list(table.values())[:22], list(table.values())[22:]
    assert all(c["page"] and c["book"] and c["section"] for c in book)
    # Claims beyond the book (chapter 09) have no page, and say so in their text.
    assert all(not c["page"] and c["book"].startswith("(Beyond the book") for c in beyond)
    assert all(c["parts"] and all(isinstance(p, Part) for p in c["parts"]) for c in book)
    # What decides a claim is generated from its parts, so the words follow the check.
    assert table["C15"]["decided_by"] == (
        "max |training=True − training=False| on one batch > 0.1; "
        "call()s during fit() with training other than True == 0"
    )


def test_declared_parts_bind_to_checks(table):
    ratio, paper, error, op_a, op_b, updates = bound(table)
    assert ratio.values == {"42": 2.0, "43": 3.0} and ratio.name == "ratio"
    assert paper.values == ratio.values and paper.kind == "context"  # reads the same figure
    assert error.noise == 1e-9 and error.noise_unit == "1 ulp"
    assert (op_a.figure, op_b.figure) == ("MUL and ADD left, a", "MUL and ADD left, b")
    assert claims.threshold("C1", "paper", claims=table) == 14
    assert table["C1"]["decided_by"].startswith(
        "steps ratio r > 1, in every seed; ratio against the paper's 14 >= 14, in every seed "
        "[context: does not vote]; max |Keras − rule| < 1e-05; MUL and ADD left == 0, for "
        "each model; layers have `updates` == True [TensorFlow/Keras behaviour]"
    )


def test_a_report_binds_exactly_what_is_declared(table):
    with pytest.raises(ValueError, match=r"^report\('C1'\) lacks the declared figure\(s\) ops"):
        claims.bind("C1", {"ratio": 2, "error": 0, "updates": True}, {"error": 1}, table)
    with pytest.raises(ValueError, match="binds speed, which claims.toml does not declare"):
        bound(table, speed=3)
    with pytest.raises(ValueError, match=r"must give noise=\{\.\.\.\} for exactly the parts"):
        claims.bind("C1", {"ratio": 2, "error": 0, "ops": {"a": 0}, "updates": True}, {}, table)
    with pytest.raises(ValueError, match="ops is declared per model, so bind it as"):
        bound(table, ops=0)
    with pytest.raises(ValueError, match=r"^report\('C1'\), ratio: values of 'steps ratio r'"):
        bound(table, ratio={})
    with pytest.raises(ValueError, match="^claim_id must be one of the ids"):
        claims.report("C99", claims=table)
    with pytest.raises(ValueError, match="declares no part 'x'; its parts: ratio, paper"):
        claims.threshold("C1", "x", claims=table)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "declares no \\[\\[claim.part\\]\\]"),
        ('[[claim.part]]\nname = "1x"\nfigure = "f"\nop = "=="\nthreshold = 1\n', "Python id"),
        ('[[claim.part]]\nname = "x"\nfigure = "f"\nop = "<"\nthreshold = 1\n', "needs a noise"),
        (
            '[[claim.part]]\nname = "x"\nfigure = "f"\nop = "<"\nthreshold = 1\nnoise = "given"',
            "noise 'given' needs a noise_unit",
        ),
        ('[[claim.part]]\nname = "x"\nfigure = "f"\nop = "=="\nthreshold = 1\ncolour = 1', "unk"),
        ('[[claim.part]]\nname = "x"\nfigure = "f"\n', "name, figure, op and threshold are"),
        (
            '[[claim.part]]\nname = "x"\nfigure = "f"\nop = "=="\nthreshold = 1\nreads = "y"',
            "read a figure that no part of the claim binds",
        ),
        (
            '[[claim.part]]\nname = "x"\nfigure = "f"\nop = "=="\nthreshold = 1\nkind = "context"',
            "has no part that votes",
        ),
        ('[[claim.part]]\nname = "x"\nfigure = "f"\nop = "in"\nthreshold = 1\n', "must be a list"),
    ],
)
def test_the_claims_file_is_checked(tmp_path, text, message):
    head = '[[claim]]\nid = "C1"\npage = ""\nbook = "b"\nchapter = "01_x"\nsection = "s"\n'
    path = tmp_path / "claims.toml"
    path.write_text(head + text)
    with pytest.raises(ValueError, match=message):
        claims.load(path)
    path.write_text('[[claim]]\nid = "C1"\npage = "341"\n')
    with pytest.raises(ValueError, match=r"^claim 1 of .* lacks the text field\(s\)"):
        claims.load(path)


def test_a_part_holds_per_seed_from_its_figure_and_threshold():
    check = Check("ratio r", {42: 2.0, 43: 0.5, 44: 3.0}, ">", 1)
    assert check.held() == {"42": True, "43": False, "44": True}
    assert check.status() == "partly"
    assert Check("x", 0.5, "<", 1).status() == "held"
    assert Check("m", 0.99, "in", [0.9, 0.99, 0.999]).status() == "held"
    assert Check("flags", [True, False], "==", [True, False]).status() == "held"
    assert Check("nan", float("nan"), "<", 1).status() == "not held"


def test_one_verdict_and_its_precedence():
    held = Check("a", {1: 3.0, 2: 3.5}, ">", 1, noise="seeds")  # margin 2 = 5.7 spreads
    failed = Check("b", 0, ">", 1, noise="exact")
    split = Check("c", {1: 2, 2: 0}, ">", 1, noise="seeds")
    close = Check("d", {1: 1.5, 2: 2.5, 3: 2.0}, ">", 1, noise="seeds")  # margin = 1 spread
    api_failed = Check("e", False, "==", True, kind="api")
    assert Check("e", False, "==", True, api=True) == api_failed  # the older spelling
    assert verdict([held]) == "held"
    assert verdict([held, api_failed]) == "held, API not as described"
    assert verdict([api_failed]) == "not held"  # no voting part holds anywhere
    assert verdict([failed]) == "not held"
    assert verdict([split]) == "partly"  # seeds disagree
    assert verdict([held, failed]) == "partly"  # one part of a compound claim
    assert verdict([failed, api_failed]) == "not held"
    assert verdict([held, failed, api_failed]) == "partly"
    assert verdict([held, close]) == "fragile"
    # Fragile outranks an API difference, and a part that fails outranks fragile.
    assert verdict([close, api_failed]) == "fragile"
    assert verdict([close, split]) == "partly"
    # Context is shown, never votes, and is never what makes a claim fragile.
    context = Check("g", {1: 1.5, 2: 2.5, 3: 2.0}, ">", 1, noise="seeds", kind="context")
    assert verdict([held, context, Check("h", 0, ">", 1, kind="context", noise="exact")]) == (
        "held"
    )
    assert claims.fragile_parts([held, close, context]) == [close]
    assert set(claims.VERDICTS) == {
        "held",
        "held, API not as described",
        "fragile",
        "partly",
        "not held",
    }
    with pytest.raises(ValueError, match="^checks must be a non-empty list"):
        verdict([1])
    with pytest.raises(ValueError, match="^checks must hold at least one part that votes"):
        verdict([context])


def test_margins_in_units_of_the_declared_noise():
    seeds = Check("r", {1: 1.5, 2: 2.5, 3: 2.0}, ">", 1, noise="seeds")
    m = claims.margin(seeds)
    assert m["distance"] == 0.5 and m["noise"] == 0.5 and m["units"] == 1.0 and m["fragile"]
    assert not claims.margin(Check("r", {1: 3.0, 2: 3.5}, ">", 1, noise="seeds"))["fragile"]
    one = claims.margin(Check("r", {42: 1.2}, ">", 1, noise="seeds"))
    assert one["noise"] is None and not one["fragile"]
    assert one["text"] == "margin 0.2, one seed: no spread"
    ulp = Check("err", 3e-9, "<", 5e-8, noise=1e-9, noise_unit="1 ulp")
    assert claims.margin(ulp)["text"] == "margin 4.7e-08 = 47 × 1 ulp (1e-09)"
    assert claims.margin(Check("err", 4.5e-8, "<", 5e-8, noise=1e-8, noise_unit="u"))["fragile"]
    exact = claims.margin(Check("n", 3, ">=", 3, noise="exact"))
    assert exact["text"] == "margin 0, exact" and not exact["fragile"]
    assert claims.margin(Check("n", 3, "==", 3)) is None
    nan = claims.margin(Check("r", {1: float("nan"), 2: 2.0}, ">", 1, noise="seeds"))
    assert nan["distance"] is None and nan["text"] == "margin n/a: a value is missing (NaN)"
    assert claims.margin(Check("r", 2.0, ">", 1))["text"] == "margin 1, noise not declared"


def test_pandas_and_numpy_values_become_plain():
    check = Check("r", pd.Series({42: np.float32(1.5), 43: np.int64(2)}), ">=", np.float64(1))
    assert check.values == {"42": 1.5, "43": 2}
    assert json.loads(json.dumps(check.record())) == check.record()
    assert Check.from_record(check.record()) == check


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(figure="", values=1, op=">", threshold=0), "^figure must be a non-empty"),
        (dict(figure="x", values=1, op="=>", threshold=0), "^op must be one of <, <=, >, >="),
        (dict(figure="x", values={}, op=">", threshold=0), "^values of 'x' must hold at least"),
        (dict(figure="x", values=object(), op=">", threshold=0), "^values must be a number"),
        (dict(figure="x", values={1: None}, op=">", threshold=0), r"^values\[1\] must be a"),
        (dict(figure="x", values=1, op="in", threshold=0), "^threshold of op 'in' must be"),
        (dict(figure="x", values=1, op=">", threshold=0, digits=-1), "^digits must be None"),
        (dict(figure="x", values=1, op=">", threshold=0, kind="vote"), "^kind must be one of"),
        (dict(figure="x", values=1, op=">", threshold=0, noise="ulp"), "^noise must be one of"),
        (dict(figure="x", values=1, op=">", threshold=0, noise=-1.0), "^noise must be one of"),
        (dict(figure="x", values=1, op=">", threshold=0, noise="seeds"), "^noise 'seeds' of 'x'"),
        (dict(figure="x", values=1, op=">", threshold=0, noise=1e-7), "^a numeric noise"),
        (dict(figure="x", values=1, op=">", threshold=0, noise="given"), "^noise of 'x' must"),
    ],
)
def test_bad_checks_are_one_sentence(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Check(**kwargs)


def test_records_stored_before_kinds_and_noise_still_read():
    old = {"figure": "x", "values": 1, "op": "==", "threshold": 2, "api": True, "digits": None}
    check = Check.from_record(old)
    assert check.kind == "api" and check.noise is None and check.name == ""
    with pytest.raises(ValueError, match="^a claim check record lacks a field"):
        Check.from_record({"figure": "x"})


def test_the_report_shows_the_index_lines_and_outcomes_prints_the_seeds_held(
    table, monkeypatch, capsys
):
    shown = []
    monkeypatch.setattr(
        "IPython.display.display", lambda obj, raw, metadata: shown.append((obj, metadata))
    )
    monkeypatch.setattr(claims, "_REPORTED", {})
    with pytest.raises(ValueError, match="^no claim has been reported in this kernel yet"):
        claims.outcomes()
    figures = {"ratio": {42: 2.0, 43: 3.0}, "error": 4e-6, "ops": {"a": 0}, "updates": False}
    claims.report("C1", noise={"error": 1e-9}, claims=table, **figures)
    ((bundle, metadata),) = shown
    lines = bundle["text/plain"].splitlines()
    assert lines[0] == "C1 (p. 341): held, API not as described"
    assert lines[1] == (
        "  - steps ratio r (> 1): 2.50 (2.00 to 3.00, 2 seeds) "
        "[2/2 seeds; margin 1 = 1.41 × the spread over 2 seeds (0.71)]"
    )
    assert lines[2] == (
        "  - ratio against the paper's 14 (>= 14): 2.5 (2 to 3, 2 seeds) [0/2 seeds; margin "
        "-12 = -17 × the spread over 2 seeds (0.71); context, does not vote]"
    )
    assert (
        lines[5]
        == "  - layers have `updates` (== True): False [not held; TensorFlow/Keras behaviour]"
    )
    record = metadata[claims.METADATA_KEY]
    assert (
        record["verdict"] == "held, API not as described"
        and record["checks"][0]["name"] == "ratio"
    )
    notebook = {"cells": [{"cell_type": "code", "outputs": [{"metadata": metadata}]}]}
    ((stored, checks, word),) = claims.records(notebook)
    assert stored == record and word == record["verdict"]
    assert [f"  - {claims.part_text(c)}" for c in checks] == lines[1:]
    claims.outcomes()
    assert capsys.readouterr().out == "C1: ratio 2/2, error held, ops[a] held, updates not held\n"

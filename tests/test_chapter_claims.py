"""helpers.chapter.claims: verdicts follow from figures and thresholds; bad input: one sentence."""

import json

from helpers.chapter import claims
from helpers.chapter.claims import Check, verdict_of

import numpy as np
import pandas as pd
import pytest


def test_the_claims_file_lists_the_books_claims_in_order():
    table = claims.load()
    assert list(table) == [f"C{i}" for i in range(1, len(table) + 1)]
    book, beyond = list(table.values())[:22], list(table.values())[22:]
    assert all(c["page"] and c["book"] and c["section"] for c in book)
    # Claims beyond the book (chapter 09) have no page, and say so in their text.
    assert all(not c["page"] and c["book"].startswith("(Beyond the book") for c in beyond)
    assert all(c["section"] for c in beyond)


def test_a_part_holds_per_seed_from_its_figure_and_threshold():
    check = Check("ratio r", {42: 2.0, 43: 0.5, 44: 3.0}, ">", 1)
    assert check.held() == {"42": True, "43": False, "44": True}
    assert check.status() == "partly"
    assert Check("x", 0.5, "<", 1).status() == "held"
    assert Check("m", 0.99, "in", [0.9, 0.99, 0.999]).status() == "held"
    assert Check("flags", [True, False], "==", [True, False]).status() == "held"
    assert Check("nan", float("nan"), "<", 1).status() == "not held"


def test_verdict_rules():
    held = Check("a", 2, ">", 1)
    failed = Check("b", 0, ">", 1)
    split = Check("c", {1: 2, 2: 0}, ">", 1)
    api_failed = Check("d", False, "==", True, kind="api")
    assert Check("d", False, "==", True, api=True) == api_failed  # the older spelling
    assert verdict_of([held, Check("e", {1: 3, 2: 4}, ">", 1)]) == "held"
    assert verdict_of([held, api_failed]) == "held, API not as described"
    assert verdict_of([api_failed]) == "held, API not as described"
    assert verdict_of([failed]) == "not held"
    assert verdict_of([failed, Check("f", {1: 0, 2: 0}, ">", 1)]) == "not held"
    assert verdict_of([split]) == "partly"  # seeds disagree
    assert verdict_of([held, failed]) == "partly"  # one part of a compound claim
    assert verdict_of([failed, api_failed]) == "not held"
    assert verdict_of([held, failed, api_failed]) == "partly"
    # Context is shown, never votes.
    assert verdict_of([held, Check("g", 0, ">", 1, kind="context")]) == "held"
    assert set(claims.VERDICTS) == {
        "held",
        "held, API not as described",
        "fragile",
        "partly",
        "not held",
    }


def test_margins_in_units_of_the_declared_noise():
    seeds = Check("r", {1: 1.5, 2: 2.5, 3: 2.0}, ">", 1, noise="seeds")
    m = claims.margin(seeds)
    assert m["distance"] == 0.5 and m["noise"] == 0.5 and m["units"] == 1.0
    assert m["fragile"] and claims.verdict_with_margins([seeds]) == "fragile"
    assert verdict_of([seeds]) == "held"  # what the chapter prints does not depend on it
    wide = Check("r", {1: 3.0, 2: 3.5}, ">", 1, noise="seeds")
    assert not claims.margin(wide)["fragile"]
    assert claims.verdict_with_margins([wide]) == "held"
    one = claims.margin(Check("r", {42: 1.2}, ">", 1, noise="seeds"))
    assert one["noise"] is None and not one["fragile"]
    assert one["text"] == "margin 0.2, one seed: no spread"
    ulp = Check("err", 3e-9, "<", 5e-8, noise=1e-9, noise_unit="1 ulp")
    assert claims.margin(ulp)["text"] == "margin 4.7e-08 = 47 × 1 ulp (1e-09)"
    near = Check("err", 4.5e-8, "<", 5e-8, noise=1e-8, noise_unit="1 ulp")
    assert claims.margin(near)["fragile"]
    exact = claims.margin(Check("n", 3, ">=", 3, noise="exact"))
    assert exact["text"] == "margin 0, exact" and not exact["fragile"]
    assert claims.margin(Check("n", 3, "==", 3)) is None
    nan = claims.margin(Check("r", {1: float("nan"), 2: 2.0}, ">", 1, noise="seeds"))
    assert nan["distance"] is None and nan["text"] == "margin n/a: a value is missing (NaN)"
    assert claims.margin(Check("r", 2.0, ">", 1))["text"] == "margin 1, noise not declared"
    # A fragile part that does not vote leaves the verdict alone.
    ctx = Check("r", {1: 1.5, 2: 2.5, 3: 2.0}, ">", 1, noise="seeds", kind="context")
    assert claims.verdict_with_margins([wide, ctx]) == "held"


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
        (dict(figure="x", values=1, op=">", threshold=0, noise="ulp"), "^noise must be 'seeds'"),
        (dict(figure="x", values=1, op=">", threshold=0, noise=-1.0), "^noise must be 'seeds'"),
        (dict(figure="x", values=1, op=">", threshold=0, noise="seeds"), "^noise 'seeds' of 'x'"),
        (dict(figure="x", values=1, op=">", threshold=0, noise=1e-7), "^a numeric noise"),
    ],
)
def test_bad_checks_are_one_sentence(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Check(**kwargs)


def test_bad_reports_are_one_sentence():
    with pytest.raises(ValueError, match="^claim_id must be one of the ids"):
        claims.report("C99", Check("x", 1, ">", 0))
    with pytest.raises(ValueError, match="^checks must be a non-empty list"):
        claims.report("C1")
    with pytest.raises(ValueError, match="^checks must be a non-empty list"):
        verdict_of([1])
    with pytest.raises(ValueError, match="^a claim check record lacks a field"):
        Check.from_record({"figure": "x"})
    with pytest.raises(ValueError, match="^checks must hold at least one part that votes"):
        verdict_of([Check("x", 1, ">", 0, kind="context")])


def test_records_stored_before_kinds_and_noise_still_read():
    old = {"figure": "x", "values": 1, "op": "==", "threshold": 2, "api": True, "digits": None}
    check = Check.from_record(old)
    assert (
        check.kind == "api"
        and check.noise is None
        and verdict_of([check]) == ("held, API not as described")
    )


def test_the_claims_file_is_checked(tmp_path):
    path = tmp_path / "claims.toml"
    path.write_text('[[claim]]\nid = "C1"\npage = "341"\n')
    with pytest.raises(ValueError, match=r"^claim 1 of .* lacks the text field\(s\)"):
        claims.load(path)
    one = 'id = "C1"\npage = ""\nbook = "b"\nchapter = "01_x"\nsection = "s"\ndecided_by = "d"\n'
    path.write_text(f"[[claim]]\n{one}\n[[claim]]\n{one}")
    with pytest.raises(ValueError, match="^claim id C1 appears twice"):
        claims.load(path)


def test_the_report_text_is_stable_and_the_record_holds_the_figures(monkeypatch):
    shown = []
    monkeypatch.setattr(
        "IPython.display.display", lambda obj, raw, metadata: shown.append((obj, metadata))
    )
    claims.report(
        "C1",
        Check("steps ratio r", {42: 2.123456, 43: 1.9}, ">", 1, digits=2),
        Check("steps ratio r", {42: 2.123456, 43: 1.9}, ">=", 14, digits=2),
        Check("layers", 3, "==", 3),
        Check("epsilon", 0.001, "==", 1e-5, digits=3),
        Check("Keras's default ε", 0.001, "==", 1e-5, kind="context", digits=3),
    )
    ((bundle, metadata),) = shown
    assert bundle["text/plain"].splitlines() == [
        "C1 (p. 341): partly",
        "  - steps ratio r > 1: held in 2 of 2 seeds",
        "  - steps ratio r >= 14: held in 0 of 2 seeds",
        "  - layers == 3: 3 (held)",
        "  - epsilon == 1e-05: 0.001 (not held)",
        "  - Keras's default ε == 1e-05: 0.001 (not held) [context: does not vote]",
    ]
    record = metadata[claims.METADATA_KEY]
    assert record["verdict"] == "partly" and record["checks"][0]["values"]["42"] == 2.123456
    notebook = {"cells": [{"cell_type": "code", "outputs": [{"metadata": metadata}]}]}
    ((stored, checks, verdict),) = claims.records(notebook)
    assert stored == record and verdict == "partly"
    assert claims.figure_text(checks[0]) == "2.01 (1.90 to 2.12, 2 seeds)"
    shown.clear()
    claims.report("C8", Check("parameters, total", 271_346, "==", 271_346))
    assert shown[0][0]["text/plain"].splitlines() == [
        "C8 (p. 342): held",
        "  - parameters, total == 271,346: 271,346 (held)",
    ]
    shown.clear()
    claims.report("C17", Check("settings rescued", {42: 8, 43: 6}, ">", 0))
    assert shown[0][0]["text/plain"].splitlines()[1] == (
        "  - settings rescued > 0: held in 2 of 2 seeds"  # training results: no digits
    )
    shown.clear()
    claims.report("C7", Check("layers", 3, "==", 3))
    assert shown[0][0]["text/plain"].startswith("C7 (pp. 341-342): held")

"""tools/claims_index.py: the index is built from the stored reports, and refuses gaps."""

import json
import os
import re

from helpers.chapter import claims
from helpers.chapter.claims import Check

import pytest

from tools import claims_index as index

from tool_modules import ROOT


def claim(cid, page, book, decided_by):
    return dict(
        id=cid, page=page, book=book, chapter="07_x", section="Speed (C1)", decided_by=decided_by
    )


CLAIMS = {"C1": claim("C1", "341", "fewer steps", "r"), "X1": claim("X1", "", "beyond", "d")}


def notebook(*records, heading="## Speed (C1)"):
    outputs = [
        {"output_type": "display_data", "data": {}, "metadata": {claims.METADATA_KEY: r}}
        for r in records
    ]
    return {
        "cells": [
            {"cell_type": "markdown", "source": [heading + "\n", "text\n"]},
            {"cell_type": "code", "outputs": outputs, "source": ""},
        ]
    }


def record(cid, *checks, verdict=None):
    return {
        "id": cid,
        "verdict": verdict or claims.verdict(list(checks)),
        "checks": [c.record() for c in checks],
    }


def write(tmp_path, nb, name="07_x"):
    (tmp_path / f"{name}.ipynb").write_text(json.dumps(nb))
    return tmp_path


RATIO = Check("steps ratio r", {42: 2.0, 43: 3.0}, ">", 1, noise="seeds", digits=2)


def test_the_index_has_a_row_per_claim_with_its_computed_verdict(tmp_path):
    nb = notebook(record("C1", RATIO, Check("r", {42: 2.0}, ">=", 14)), record("X1", RATIO))
    out = tmp_path / "index.md"
    assert index.write(write(tmp_path, nb), out, CLAIMS) == 2
    page = out.read_text()
    assert "| [C1](#c1) | 341 | {verdict}`partly` | n/a, not met | fewer steps |" in page
    figures = page.split("### C1\n")[1].split("###")[0]
    assert figures.startswith(
        "\nfewer steps\n\n{verdict}`partly`, checked in [07: Speed (C1)](07_x.ipynb#"
    )
    assert "- steps ratio r (> 1): 2.50 (2.00 to 3.00, 2 seeds) [2/2 seeds" in figures
    assert "margin 1 = 1.41 × the spread over 2 seeds (0.71)]" in figures
    beyond = page.split("## Claims beyond the book")[1]
    assert "| [X1](#x1) | {verdict}`held` | 1.4 × seeds' spread | beyond |" in beyond
    assert "Verdicts of the book's 1 claim: 1 partly. Beyond the book, 1 claim: 1 held." in page
    assert "Fragile verdicts: 0 (the goal is none)." in page
    assert "Parts that hold by no more than their noise, in any claim: 0 parts." in page


def test_a_part_within_its_noise_makes_the_claim_fragile_in_the_index(tmp_path):
    close = Check("steps ratio r", {42: 1.1, 43: 2.0}, ">", 1, noise="seeds")
    context = Check("Keras's default", 0.001, "==", 1e-5, kind="context")
    nb = notebook(record("C1", close, context), record("X1", RATIO))
    out = tmp_path / "index.md"
    index.write(write(tmp_path, nb), out, CLAIMS)
    page = out.read_text()
    assert "| {verdict}`fragile` | 0.16 × seeds' spread, within it | fewer steps |" in page
    assert "Fragile verdicts: 1 (the goal is none)." in page
    assert "Parts that hold by no more than their noise, in any claim: 1 part (C1)." in page
    assert "margin 0.1 = 0.157 × the spread over 2 seeds (0.64): fragile]" in page
    assert "Keras's default (== 1e-05): 0.001 [not held; context, does not vote]" in page
    # The stored verdict is the one the chapter printed, by the same function.
    assert index.collect(CLAIMS, tmp_path)["C1"][1] == "fragile"


@pytest.mark.parametrize(
    ("nb", "message"),
    [
        (notebook(record("C1", RATIO)), "^claim X1 is not reported by chapter 07_x: "),
        (
            notebook(record("C1", RATIO), record("C1", RATIO), record("X1", RATIO)),
            "^claim C1 is reported twice by chapter 07_x",
        ),
        (
            notebook(record("C1", RATIO, verdict="held"), record("X1", RATIO, verdict="partly")),
            "^claim X1 in chapter 07_x: the stored verdict 'partly' is not the 'held'",
        ),
        (notebook(record("C9", RATIO)), "^chapter 07_x reports 'C9', which claims.toml lacks"),
        (
            notebook(record("C1", RATIO), record("X1", RATIO), heading="## Speed"),
            "^claim C1: chapter 07_x has no heading 'Speed \\(C1\\)'",
        ),
    ],
)
def test_the_index_refuses_what_it_cannot_show(tmp_path, nb, message):
    with pytest.raises(index.ClaimsIndexError, match=message):
        index.collect(CLAIMS, write(tmp_path, nb))


def test_a_missing_chapter_is_named(tmp_path):
    with pytest.raises(index.ClaimsIndexError, match="^chapter 07_x has no executed notebook"):
        index.collect(CLAIMS, tmp_path)


def test_a_claim_reported_by_another_chapter_is_refused(tmp_path):
    write(tmp_path, notebook(record("C1", RATIO), record("X1", RATIO)))
    moved = {**CLAIMS, "C1": {**CLAIMS["C1"], "chapter": "03_y"}}
    write(tmp_path, notebook(heading="## Speed (C1)"), name="03_y")
    with pytest.raises(index.ClaimsIndexError, match="^claim C1 is reported by chapter 07_x, but"):
        index.collect(moved, tmp_path)


def test_the_stored_chapters_report_every_claim():
    """The real notebooks: every claim of helpers/chapter/claims.toml is reported, consistently."""
    table = claims.load()
    found = index.collect(table, os.path.join(ROOT, "chapters"))
    assert set(found) == set(table)
    undeclared = [
        f"{cid}: {check.figure}"
        for cid, (checks, _) in found.items()
        for check in checks
        if check.op in claims.ORDERED and check.noise is None
    ]
    assert not undeclared, f"comparisons of order without a declared noise: {undeclared}"


def test_each_chapter_prints_the_verdict_and_the_parts_the_index_shows():
    """The stored outputs, as a reader sees them: every report's text is the index's heading
    and part lines, and each chapter's compared outcomes() cell lists its claims' outcomes."""
    table = claims.load()
    for chapter in sorted({c["chapter"] for c in table.values()}):
        with open(os.path.join(ROOT, "chapters", chapter + ".ipynb"), encoding="utf-8") as f:
            nb = json.load(f)
        outcomes = []
        for cell in nb["cells"]:
            for output in cell.get("outputs", []):
                record = output.get("metadata", {}).get(claims.METADATA_KEY)
                if record is None:
                    continue
                checks = [claims.Check.from_record(c) for c in record["checks"]]
                cid = record["id"]
                heading = claims.heading(cid, table[cid]["page"], claims.verdict(checks))
                shown = "".join(output["data"]["text/plain"]).splitlines()
                assert shown == [heading] + [f"  - {claims.part_text(c)}" for c in checks], cid
                outcomes.append(claims.outcome_line(cid, checks))
        printed = [
            "".join(o.get("text", ""))
            for cell in nb["cells"]
            if "".join(cell.get("source", "")).strip() == "outcomes()"
            for o in cell.get("outputs", [])
        ]
        assert printed == ["\n".join(outcomes) + "\n"], chapter


def test_a_report_that_no_longer_follows_its_declaration_is_refused(tmp_path):
    toml = tmp_path / "claims.toml"
    part = '[[claim.part]]\nname = "r"\nfigure = "ratio"\nop = ">"\nthreshold = {t}\n'
    part += 'noise = "seeds"\n'
    head = '[[claim]]\nid = "C1"\npage = "341"\nbook = "b"\nchapter = "07_x"\n'
    head += 'section = "Speed (C1)"\n'
    toml.write_text(head + part.format(t=1))
    declared = claims.load(toml)
    checks = claims.bind("C1", {"r": {42: 2.0, 43: 3.0}}, claims=declared)
    write(tmp_path, notebook(record("C1", *checks)))
    assert index.collect(declared, tmp_path)["C1"][1] == "held"
    toml.write_text(head + part.format(t=2))  # the threshold moved, the chapter did not re-run
    with pytest.raises(index.ClaimsIndexError, match=r"checks r as > 1 .*re-execute it"):
        index.collect(claims.load(toml), tmp_path)
    toml.write_text(head + part.format(t=1).replace('"r"', '"s"'))
    with pytest.raises(
        index.ClaimsIndexError, match=r"binds the parts \['r'\], while claims.toml declares"
    ):
        index.collect(claims.load(toml), tmp_path)


# --- the verdicts as badges, the margins in the summary tables -----------------------------


def test_every_verdict_is_a_badge_holding_its_word():
    for word in claims.VERDICTS:
        assert index.badge(word) == f"{{verdict}}`{word}`"
    with pytest.raises(ValueError, match="^word must be one of"):
        index.badge("changed in Keras 3")


BADGE = re.compile(r"\{verdict\}`([^`]*)`")


def test_the_page_shows_each_verdict_as_a_badge_never_as_bold_text(tmp_path):
    close = Check("steps ratio r", {42: 1.1, 43: 2.0}, ">", 1, noise="seeds")
    nb = notebook(record("C1", close), record("X1", RATIO))
    out = tmp_path / "index.md"
    index.write(write(tmp_path, nb), out, CLAIMS)
    page = out.read_text()
    words = BADGE.findall(page)
    assert set(words) <= set(claims.VERDICTS) and set(claims.VERDICTS) <= set(words)
    # the rules (one badge per verdict), then each claim in its table and above its figures
    assert len(words) == len(claims.VERDICTS) + 2 * len(CLAIMS)
    assert not re.search(r"\*\*(" + "|".join(claims.VERDICTS) + r")\*\*", page)


def test_the_summary_tables_have_a_margin_column(tmp_path):
    nb = notebook(record("C1", RATIO), record("X1", RATIO))
    out = tmp_path / "index.md"
    index.write(write(tmp_path, nb), out, CLAIMS)
    page = out.read_text()
    assert "| claim | p. | verdict | margin | what the book says (our words) |" in page
    assert "| claim | verdict | margin | the claim |" in page
    rows = [line for line in page.splitlines() if line.startswith("| [")]
    assert len(rows) == 2 and all(
        " | {verdict}`held` | 1.4 × seeds' spread | " in row for row in rows
    )


SEEDS = {"noise": "seeds"}


@pytest.mark.parametrize(
    ("checks", "shown"),
    [
        ([RATIO], "1.4 × seeds' spread"),
        # the worst of two parts; a part in a stated noise (a float32 ulp) is named so
        (
            [RATIO, Check("err", 1e-6, "<", 1e-5, noise=1e-7, noise_unit="1 float32 ulp")],
            "1.4 × seeds' spread",
        ),
        ([Check("err", 1e-6, "<", 1e-5, noise=1e-7, noise_unit="ulp")], "90 × stated noise"),
        (
            [Check("err", 1e-6, "<", 1.7, noise=1e-7, noise_unit="ulp")],
            "17,000,000 × stated noise",
        ),
        # within its noise (fragile), and failing in a seed (negative)
        ([Check("r", {42: 1.1, 43: 2.0}, ">", 1, **SEEDS)], "0.16 × seeds' spread, within it"),
        ([Check("r", {42: 0.5, 43: 3.0}, ">", 1, **SEEDS)], "−0.28 × seeds' spread"),
        # no noise to count in: exact figures, and seeds that all agree
        ([Check("n", 3, "==", 3), Check("k", 4, ">", 1, noise="exact")], "exact"),
        ([Check("r", {42: 2.0, 43: 2.0}, ">", 1, **SEEDS)], "exact"),
        ([RATIO, Check("n", 3, "==", 4)], "exact, not met"),
        # noise unknown: one seed
        ([Check("r", {42: 2.0}, ">", 1, **SEEDS)], "n/a"),
        ([RATIO, Check("r", {42: 2.0}, ">", 1, **SEEDS)], "n/a"),
        ([RATIO, Check("r", {42: 0.5}, ">", 1, **SEEDS)], "n/a, not met"),
        # context never votes; a failing API part is the verdict's word, unless it is alone
        (
            [RATIO, Check("default", 0.5, ">", 1, kind="context", noise="exact")],
            "1.4 × seeds' spread",
        ),
        ([RATIO, Check("layer.updates", 0, "==", 1, kind="api")], "1.4 × seeds' spread"),
        ([Check("layer.updates", 0, "==", 1, kind="api")], "exact, not met"),
    ],
)
def test_the_margin_is_the_worst_voting_part_s_in_units_of_its_noise(checks, shown):
    assert index.worst_margin(checks) == shown

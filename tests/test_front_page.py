"""tools/front_page.py: the front page's totals, map and versions come from the chapters."""

import json
import re

from helpers.chapter.claims import Check, verdict

import pytest

from tools import claims_index as index
from tools import front_page as front


def claim(cid, page, chapter="07_x"):
    return dict(id=cid, page=page, book="b", chapter=chapter, section="S", decided_by="d")


#: A part that holds in both seeds with room, one that holds in one seed only, and one that
#: holds in both by less than the spread between them (fragile in the index).
HOLDS = Check("r", {42: 2.0, 43: 3.0}, ">", 1, noise="seeds")
SPLIT = Check("r", {42: 0.5, 43: 3.0}, ">", 1, noise="seeds")
CLOSE = Check("r", {42: 1.1, 43: 2.0}, ">", 1, noise="seeds")


def found(**parts):
    return {cid: ([part], verdict([part])) for cid, part in parts.items()}


def test_the_verdict_table_counts_each_group_and_leaves_out_empty_verdicts():
    claims = {c: claim(c, p) for c, p in [("C1", "341"), ("C2", "342"), ("C3", "343")]}
    claims["X1"] = claim("X1", "")
    table = front.verdict_table(claims, found(C1=HOLDS, C2=SPLIT, C3=CLOSE, X1=HOLDS))
    assert table.splitlines() == [
        "| verdict | the book's 3 claims | 1 claims beyond the book |",
        "|---|---|---|",
        "| {verdict}`held` | 1 | 1 |",
        "| {verdict}`fragile` | 1 | 0 |",
        "| {verdict}`partly` | 1 | 0 |",
    ]


#: A part that holds in no seed: the claim is not held.
FAILS = Check("r", {42: 0.5, 43: 0.7}, ">", 1, noise="seeds")


def test_the_claims_not_held_are_named_from_their_verdicts():
    claims = {c: claim(c, p) for c, p in [("C1", "341"), ("C2", "342"), ("C3", "343")]}
    claims["X1"] = claim("X1", "")
    claims["C2"]["book"] = "BN also regularizes."
    claims["C2"]["section"] = "Regularization (C2)"
    line = front.not_held(claims, found(C1=HOLDS, C2=FAILS, C3=SPLIT, X1=HOLDS))
    assert line == (
        "One claim is {verdict}`not held`: [C2](A1_claims_index.md#c2) (p. 342), "
        "“BN also regularizes”, checked in [07: Regularization (C2)]"
        "(07_x.ipynb#regularization-c2)."
    )
    line = front.not_held(claims, found(C1=FAILS, C2=FAILS, C3=CLOSE, X1=FAILS))
    assert line.startswith(
        "3 claims are {verdict}`not held`: [C1](A1_claims_index.md#c1) (p. 341)"
    )
    assert "; [X1](A1_claims_index.md#x1) (beyond the book), “b”" in line
    none = front.not_held(claims, found(C1=HOLDS, C2=SPLIT, C3=CLOSE, X1=HOLDS))
    assert none == "No claim is {verdict}`not held`: each holds, at least in part."


def notebook(title, versions=None):
    cells = [{"cell_type": "markdown", "source": f"# {title}\n\ntext"}]
    if versions:
        text = "      package this run    the book (TF 2.0)\n"
        text += "".join(f"{i}  {p}  {v}  x\n" for i, (p, v) in enumerate(versions.items()))
        cells.append(
            {
                "cell_type": "code",
                "source": "helpers.versions_frame()",
                "outputs": [{"data": {"text/plain": text}}],
            }
        )
    return {"cells": cells}


def write(tmp_path, name, nb):
    (tmp_path / f"{name}.ipynb").write_text(json.dumps(nb))


def test_the_map_uses_each_chapter_s_own_title_and_needs_a_line_for_each(tmp_path):
    write(tmp_path, "01_a", notebook("The first"))
    lines = {"01_a": "what it holds."}
    assert front.chapter_map(tmp_path, ["01_a"], lines) == (
        "- {doc}`The first <01_a>`: what it holds."
    )
    with pytest.raises(front.FrontPageError, match="^01_a has no line in book/chapters.yml"):
        front.chapter_map(tmp_path, ["01_a"], {})


def test_the_versions_line_names_the_versions_only_when_the_chapters_agree(tmp_path):
    write(tmp_path, "01_a", notebook("A", {"Python": "3.11.7", "Keras": "3.15.1"}))
    write(tmp_path, "02_b", notebook("B", {"Python": "3.11.7", "Keras": "3.15.1"}))
    line = front.versions_line(tmp_path, ["01_a", "02_b"])
    assert line == "The stored outputs were all produced with Python 3.11.7, Keras 3.15.1."
    write(tmp_path, "02_b", notebook("B", {"Python": "3.12.1", "Keras": "3.15.1"}))
    assert "not all run with the same versions" in front.versions_line(tmp_path, ["01_a", "02_b"])


def test_the_real_front_page_has_every_marker_filled(tmp_path):
    import os

    from tool_modules import ROOT

    chapters = os.path.join(ROOT, "chapters")
    names = sorted(n[:-6] for n in os.listdir(chapters) if n.endswith(".ipynb"))
    names.insert(next(i for i, n in enumerate(names) if n.startswith("A")), index.PAGE)
    page = front.render(chapters, names, pdf_available=True)
    assert "<!--" not in page
    assert f'<a href="{front.PDF_NAME}">' in page
    for name in names:
        assert f"<{name}>`" in page


def test_the_real_front_page_starts_here_and_names_the_claims_not_held():
    """Before the map of the chapters: a link to the chapter to start with, and the claims
    whose verdict, from the stored records, is not held."""
    import os

    from helpers.chapter import claims as claims_mod

    from tool_modules import ROOT

    chapters = os.path.join(ROOT, "chapters")
    names = sorted(n[:-6] for n in os.listdir(chapters) if n.endswith(".ipynb"))
    page = front.render(chapters, names, pdf_available=False)
    glance, rest = page.split("## The chapters")
    start = re.search(r"\*\*Start here:\*\* \{doc\}`([^`]+)`", glance)
    assert start and start.group(1) in names, "no start-here link to a chapter"
    table = claims_mod.load()
    gathered = index.collect(table, chapters)
    failing = [c for c, (checks, _) in gathered.items() if verdict(checks) == "not held"]
    assert glance.count("{verdict}`not held`") == 1
    for cid in failing:
        assert f"[{cid}](A1_claims_index.md#{index.slug(cid)})" in glance, cid
    assert glance.count("(A1_claims_index.md#") == len(failing)
    assert "## What the chapters found" in rest, "the verdict totals come after the map"

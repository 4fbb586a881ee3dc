"""The output discipline of the chapters, checked on their sources (nothing is executed).

nbval compares every stored output with a fresh run, except in cells marked as not compared.
Those cells are where the exact figures of training runs and timings are shown, so each must
still check its claim with an assert, and they must stay few.
"""

import glob
import os
import re

import jupytext
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHAPTERS = sorted(glob.glob(os.path.join(ROOT, "chapters", "[0-9][0-9]_*.md")))
#: Every way of telling nbval not to compare a cell's output (tags and comment markers).
NOT_COMPARED_TAGS = {"nbval-ignore-output", "nbval-skip"}
NOT_COMPARED_MARKERS = re.compile(r"^\s*#\s*NBVAL_(IGNORE_OUTPUT|SKIP)\b", re.MULTILINE)
#: The budget of not-compared cells in the whole book (CONTRIBUTING.md, "Only stable outputs").
MAX_NOT_COMPARED = 10


def not_compared(cell):
    return bool(NOT_COMPARED_TAGS & set(cell.metadata.get("tags", []))) or bool(
        NOT_COMPARED_MARKERS.search(cell.source))


def code_cells(md):
    return [c for c in jupytext.read(md).cells if c.cell_type == "code"]


def test_there_are_chapters():
    assert len(CHAPTERS) >= 9


@pytest.mark.parametrize("md", CHAPTERS, ids=os.path.basename)
def test_every_not_compared_cell_asserts_its_claim(md):
    for cell in code_cells(md):
        if not_compared(cell):
            assert re.search(r"^\s*assert\b|np\.testing\.assert_\w+\(", cell.source, re.MULTILINE), (
                f"{os.path.basename(md)}: a cell whose output nbval does not compare has no "
                f"assert: {cell.source.strip().splitlines()[0]!r}")


def test_not_compared_cells_stay_few():
    counts = {os.path.basename(md): sum(map(not_compared, code_cells(md))) for md in CHAPTERS}
    assert sum(counts.values()) <= MAX_NOT_COMPARED, counts


def test_the_sanitizer_never_rewrites_numbers():
    """nbval_sanitize.cfg may mask memory addresses, never numbers in general."""
    with open(os.path.join(ROOT, "nbval_sanitize.cfg")) as f:
        regexes = [line.split(":", 1)[1].strip() for line in f if line.startswith("regex:")]
    assert regexes
    for regex in regexes:
        for number in ("0.8080", "1.5e-08", "8 settings", "271,346", "-0.0960"):
            assert not re.search(regex, number), (regex, number)

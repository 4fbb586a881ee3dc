"""Each chapter within its budget of code (chapters/code_budget.yml), measured from its cells' tags
by tools/code_lines.py: visible lines, total lines, no visible cell over 30 lines, most of them
15 or fewer. Nothing is executed."""

import os

import pytest

from tools import code_lines

CHAPTERS = code_lines.chapter_sources()
#: The book's code when the budget was set (the built book measured in Chromium, and the
#: sources' folded and removed cells): the budgets halve the visible code and cut the total by
#: a quarter.
VISIBLE_BEFORE, TOTAL_BEFORE = 4059, 4782


def _name(path):
    return os.path.basename(path)[:2]


def test_every_chapter_has_a_budget_and_every_budget_a_chapter():
    assert sorted(code_lines.budgets()) == sorted(_name(p) for p in CHAPTERS)


def test_the_budgets_halve_the_visible_code_and_cut_the_total_by_a_quarter():
    limits = code_lines.budgets().values()
    assert sum(b["visible"] for b in limits) <= VISIBLE_BEFORE / 2
    assert sum(b["total"] for b in limits) <= 0.75 * TOTAL_BEFORE


@pytest.mark.parametrize("path", CHAPTERS, ids=_name)
def test_chapter_within_its_budget(path):
    found, limit = code_lines.measure(path), code_lines.budgets()[_name(path)]
    name = os.path.basename(path)
    assert found["visible"] <= limit["visible"], (
        f"{name} shows {found['visible']} lines of code, over its budget of {limit['visible']} "
        "(chapters/code_budget.yml): move code into a tested helper, or fold machinery"
    )
    assert found["total"] <= limit["total"], (
        f"{name} holds {found['total']} lines of code, over its budget of {limit['total']}: "
        "move code into a tested helper"
    )
    assert found["longest"] <= code_lines.LONGEST, (
        f"{name} shows a cell of {found['longest']} lines (at most {code_lines.LONGEST})"
    )
    assert found["short"] * 2 > found["cells"], (
        f"{name}: only {found['short']} of its {found['cells']} visible cells are "
        f"{code_lines.SHORT} lines or fewer (most should be)"
    )


def test_measure_counts_folded_and_visible_cells(tmp_path):
    md = tmp_path / "99_x.md"
    md.write_text(
        "---\njupyter:\n  kernelspec:\n    name: python3\n    display_name: Python 3\n---\n\n"
        "```{code-cell} ipython3\n:tags: [hide-input]\n\na = 1\nb = 2\n```\n\n"
        "```{code-cell} ipython3\nc = 3\n\nd = 4\n```\n\n"
        "```{code-cell} ipython3\n" + "x = 1\n" * 16 + "```\n",
        encoding="utf-8",
    )
    found = code_lines.measure(str(md))
    assert found == {
        "visible": 19,
        "folded": 2,
        "total": 21,
        "cells": 2,
        "short": 1,
        "longest": 16,
    }

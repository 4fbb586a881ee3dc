"""How much code each chapter shows, and how much it holds: the budget of chapters/code_budget.yml.

    python -m tools.code_lines [chapters/NN_topic.md ...]

A chapter's code is counted in its ``.md`` source, from the tags of its cells, line by line
(blank lines too): a cell is *folded* when the book hides its code (tags ``hide-input``,
``hide-cell``, ``remove-input``, ``remove-cell``) and *visible* otherwise; *total* counts both.
``tests/test_code_lines.py`` fails when a chapter exceeds its budget of visible or total lines,
shows a cell of more than `LONGEST` lines, or when fewer than half of its visible cells are
`SHORT` lines or fewer. Run as a script, it prints the table of every chapter beside its
budget.
"""

import glob
import os
import sys

import jupytext
import yaml

from tools.common import CHAPTERS, ROOT

BUDGET = os.path.join(ROOT, "chapters", "code_budget.yml")
#: The tags whose code the book does not show (folded under a label, or left out).
FOLDED = {"hide-input", "hide-cell", "remove-input", "remove-cell"}
#: No visible cell is longer than this, and most are `SHORT` lines or fewer.
LONGEST = 30
SHORT = 15


def cell_lines(cell):
    """The lines of a code cell's source, blank ones included."""
    return len(cell.source.splitlines())


def measure(md_path):
    """A chapter's code: ``{"visible", "folded", "total", "cells", "short", "longest"}``, where
    `cells` counts its visible code cells, `short` those of `SHORT` lines or fewer, `longest`
    the lines of its longest visible cell."""
    visible, folded, lengths = 0, 0, []
    for cell in jupytext.read(md_path).cells:
        if cell.cell_type != "code":
            continue
        n = cell_lines(cell)
        if FOLDED & set(cell.metadata.get("tags", [])):
            folded += n
        else:
            visible += n
            lengths.append(n)
    return {
        "visible": visible,
        "folded": folded,
        "total": visible + folded,
        "cells": len(lengths),
        "short": sum(n <= SHORT for n in lengths),
        "longest": max(lengths, default=0),
    }


def budgets(path=BUDGET):
    """``{chapter: {"visible": n, "total": n}}`` from chapters/code_budget.yml."""
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def chapter_sources():
    """The chapters' and appendices' ``.md`` sources, in the book's order."""
    return sorted(glob.glob(os.path.join(CHAPTERS, "[0-9][0-9]_*.md"))) + sorted(
        glob.glob(os.path.join(CHAPTERS, "A[0-9]_*.md"))
    )


def main(argv=None):
    paths = (argv if argv is not None else sys.argv[1:]) or chapter_sources()
    limits = budgets()
    print(f"{'chapter':<28} {'visible':>13} {'total':>13} {'longest':>8} {'<=15':>8}")
    for path in paths:
        name = os.path.basename(path)[:2]
        m = measure(path)
        b = limits.get(name, {})
        print(
            f"{os.path.basename(path):<28} {m['visible']:>5} / {b.get('visible', '-'):>5} "
            f"{m['total']:>5} / {b.get('total', '-'):>5} {m['longest']:>8} "
            f"{m['short']:>3}/{m['cells']:<3}"
        )


if __name__ == "__main__":
    main()

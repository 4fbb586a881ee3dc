"""Check that each chapter's MyST source and its executed notebook hold the same cells.

The .md is what people edit and review; the .ipynb carries the outputs that nbval checks and
the book renders. If one side was edited alone they disagree, and this says how to fix it.
The pair's Jupytext metadata must also have its stored form (`tools.pairing`).

    python -m tools.check_sync chapters/NN_topic.md ...

Exit status 1 on the first chapter out of sync, 0 when every pair matches.
"""

import os
import sys

import jupytext

from tools import pairing
from tools.common import first_line, rerun_hint


def _cells(nb):
    return [
        (c.cell_type, c.source.strip(), tuple(sorted(c.metadata.get("tags", []))))
        for c in nb.cells
    ]


def check_pair(md_path):
    """Return None when the pair is in sync, else a message saying what differs and what to do."""
    nb_path = md_path[: -len(".md")] + ".ipynb"
    if not os.path.exists(nb_path):
        return f"{nb_path} is missing. Create it with outputs: {rerun_hint(md_path)}"
    md_cells = _cells(jupytext.read(md_path))
    nb_cells = _cells(jupytext.read(nb_path))
    fix = (
        f"Re-execute from the .md: {rerun_hint(md_path)}"
        f" (or, after editing the .ipynb in JupyterLab, `make sync` then re-execute)."
    )
    if len(md_cells) != len(nb_cells):
        return f"{md_path} has {len(md_cells)} cells, {nb_path} has {len(nb_cells)}. {fix}"
    for i, (a, b) in enumerate(zip(md_cells, nb_cells)):
        if a != b:
            what = "type" if a[0] != b[0] else "tags" if a[1] == b[1] else "source"
            first = first_line(a[1])[:60]
            return (
                f"{md_path} and {nb_path} differ in the {what} of cell {i + 1} ({first!r}...). "
                + fix
            )
    nb = jupytext.read(nb_path)
    if any(
        c.cell_type == "code"
        and c.source.strip()
        and not c.get("outputs")
        and c.get("execution_count") is None
        for c in nb.cells
    ):
        return f"{nb_path} has code cells that were never executed. {fix}"
    return None


def main(paths):
    if not paths:
        print("no chapters found")
        return 1
    for md in paths:
        problem = check_pair(md) or pairing.problem(md)
        if problem:
            print("OUT OF SYNC:", problem)
            return 1
        print(f"in sync: {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

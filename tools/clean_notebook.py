"""Drop per-run metadata (papermill timings, execution timestamps) from executed notebooks.

Outputs stay; only metadata and ids that change on every run go, so `git diff` of a re-executed
chapter shows real changes only.

    python -m tools.clean_notebook NN_topic.ipynb ...
"""

import sys

import nbformat


def clean(path):
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("papermill", None)
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:03d}"  # by position: re-executing does not churn random ids
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        cell.metadata.pop("lines_to_next_cell", None)  # Jupytext's layout hint; the .md decides
        if cell.metadata.get("tags") == []:
            del cell.metadata["tags"]
    nbformat.write(nb, path)


if __name__ == "__main__":
    for p in sys.argv[1:]:
        clean(p)

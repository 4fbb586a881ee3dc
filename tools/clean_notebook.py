"""Drop per-run metadata (papermill timings, execution timestamps) from executed notebooks.

Outputs stay; only metadata and ids that change on every run go, so `git diff` of a re-executed
chapter shows real changes only. The one output that is shortened is the traceback of a cell
run for its error (tagged ``raises-exception``, such as the book's code that fails today): its
frames inside installed libraries name this machine's paths and change with every release, so
only the cell's own frame and the error's line stay (nbval compares the error's name and
message, never the traceback).

    python -m tools.clean_notebook NN_topic.ipynb ...
"""

import re
import sys

import nbformat

#: ANSI colour codes, which IPython puts into tracebacks.
ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: A traceback frame inside a file (a library's), rather than in the cell: ``File /path:12``.
FILE_FRAME = re.compile(r"^\s*File \S+", re.M)


def short_traceback(traceback):
    """A traceback without the frames of files: the cell's frame and the error stay."""
    return [t for t in traceback if not FILE_FRAME.search(ANSI.sub("", t))]


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
        if "raises-exception" in cell.metadata.get("tags", []):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = short_traceback(output["traceback"])
    nbformat.write(nb, path)


if __name__ == "__main__":
    for p in sys.argv[1:]:
        clean(p)

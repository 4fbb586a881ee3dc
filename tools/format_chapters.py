"""Fix and format chapter code cells with ruff, keeping each .md / .ipynb pair in step.

Ruff formats a notebook's code cells in place, but formatting only one side of a Jupytext pair
breaks the pairing. This applies ruff's safe fixes (import order, unused imports) and its
formatter to the MyST source through Jupytext (`--pipe`), which writes the
same code into the paired .ipynb and keeps its outputs; the .ipynb is then cleaned as after an
execution, and the pair's Jupytext metadata is put back in its stored form (`tools.pairing`:
Jupytext's ``--pipe`` drops the .ipynb's ``text_representation`` and writes version lines into
the .md header). Outputs are not re-executed: formatting changes layout, not what the code
computes. On chapters already formatted, it changes no byte of either file.

Usage: python -m tools.format_chapters [--ruff PATH] chapters/NN_topic.md ...
Checking without writing is `ruff format --check chapters/` (the .ipynb holds the same code).
"""

import argparse
import os
import shutil
import subprocess
import sys

import nbformat

from tools import pairing
from tools.clean_notebook import clean
from tools.common import CHAPTERS

CONFIG = os.path.join(CHAPTERS, "ruff.toml")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mds", nargs="+", metavar="chapters/NN_topic.md")
    parser.add_argument("--ruff", default=shutil.which("ruff") or "ruff")
    args = parser.parse_args(argv)
    jupytext = os.path.join(os.path.dirname(sys.executable), "jupytext")
    kept = {}
    for md in args.mds:
        nb = os.path.splitext(md)[0] + ".ipynb"
        if not (md.endswith(".md") and os.path.exists(md) and os.path.exists(nb)):
            sys.exit(f"{md}: expected a chapter .md with its paired .ipynb next to it")
        kept[md] = nbformat.read(nb, as_version=4).metadata.get("jupytext")
    fix = f"{args.ruff} check --fix-only --quiet --config {CONFIG} {{}}"
    fmt = f"{args.ruff} format --quiet --config {CONFIG} {{}}"
    # One Jupytext for every chapter: it starts once, and names the chapter that fails.
    run = subprocess.run(
        [jupytext, "--quiet", "--sync", "--pipe", fix, "--pipe", fmt, *args.mds],
        capture_output=True,
        text=True,
    )
    if run.returncode:
        sys.exit(f"formatting failed: {(run.stderr or run.stdout).strip()}")
    for md in args.mds:
        nb = os.path.splitext(md)[0] + ".ipynb"
        pairing.normalize(md, keep=kept[md])
        clean(nb)
        print(f"formatted {md} and {nb}")


if __name__ == "__main__":
    main()

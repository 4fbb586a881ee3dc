"""The Open in Colab badge and the install cell of every chapter, generated from pyproject.toml.

    python -m tools.colab --write chapters/NN_topic.md ...   (make colab-cells)
    python -m tools.colab --check chapters/NN_topic.md ...

Every chapter opens with an Open in Colab badge (a line right under its title) and, as its
first code cell, a cell that installs the companion's ``helpers`` where it is missing or is not
ours: on Colab quietly, from the same tag as the notebook; elsewhere it stops with the one
command to run. Both are written from two values of ``pyproject.toml``: ``[project.urls]
Repository`` and ``[project] version`` (the tag is ``v`` + version). The book's own Colab and
download buttons are configured from the same values (tools/build_book.py), so a release
changes them in one place, and ``--check`` (run by the unit tests) fails on a chapter whose
badge or install cell differs from what this script would write.

The badge image is our own SVG, inlined as a data URI: it shows on Colab, in JupyterLab and in
the static book without a request to any other host.
"""

import argparse
import base64
import os
import re
import sys
import tomllib

import jupytext
import nbformat

from tools.common import ROOT
from tools.pairing import strip_version_lines

PYPROJECT = os.path.join(ROOT, "pyproject.toml")
COLAB = "https://colab.research.google.com/github"

BADGE_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="20" role="img" '
    'aria-label="Open in Colab"><rect width="100" height="20" rx="3" fill="#3c3c3c"/>'
    '<rect x="52" width="48" height="20" rx="3" fill="#a84f00"/>'
    '<rect x="52" width="4" height="20" fill="#a84f00"/>'
    '<g fill="#fff" font-family="DejaVu Sans,Verdana,sans-serif" font-size="11">'
    '<text x="6" y="14">Open in</text><text x="57" y="14">Colab</text></g></svg>'
)
#: The badge line as it stands in a chapter (any URL), to find and replace it.
BADGE_LINE = re.compile(
    r'^<a href="[^"]*"><img src="data:image/svg\+xml;base64,[^"]*" alt="Open in Colab"'
)
#: The first line of the install cell, to find it.
INSTALL_MARK = "# Colab, or an environment without the companion:"


class ColabError(ValueError):
    """pyproject.toml lacks a value the badge needs, or a chapter has no title to put it under."""


def project(path=PYPROJECT):
    """``(repository URL, version, tag)`` from pyproject.toml."""
    with open(path, "rb") as f:
        meta = tomllib.load(f)["project"]
    url = meta.get("urls", {}).get("Repository", "")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ColabError(
            "[project.urls] Repository in pyproject.toml must be https://github.com/OWNER/REPO "
            f"(Colab opens notebooks from GitHub), got {url!r}"
        )
    return url, meta["version"], "v" + meta["version"]


def colab_url(chapter, path=PYPROJECT):
    """The Colab link of `chapter` ('01_equations'): its notebook at the release tag."""
    url, _, tag = project(path)
    return f"{COLAB}/{url.removeprefix('https://github.com/')}/blob/{tag}/chapters/{chapter}.ipynb"


def badge_line(chapter, path=PYPROJECT):
    """The line of `chapter`'s badge: our SVG inlined, linked to its Colab URL.

    HTML rather than Markdown image syntax: the book's Markdown parser (markdown-it) accepts
    no SVG data URI in an image, while Colab, JupyterLab and Sphinx all pass this HTML on.
    """
    data = base64.b64encode(BADGE_SVG.encode()).decode()
    return (
        f'<a href="{colab_url(chapter, path)}"><img src="data:image/svg+xml;base64,{data}" '
        'alt="Open in Colab" width="100" height="20"></a>'
    )


def install_source(path=PYPROJECT):
    """The source of the install cell (the first code cell of every chapter)."""
    url, version, tag = project(path)
    # Underscored names: the parameter check that follows accepts no other public variable.
    return f'''{INSTALL_MARK} install its helpers ({version})
import importlib.metadata
import importlib.util
import subprocess
import sys

_SOURCE = "git+{url}@{tag}"
try:
    _ours = importlib.metadata.version("bn-companion-helpers") == "{version}"
except importlib.metadata.PackageNotFoundError:
    _ours = False
if not _ours and "google.colab" in sys.modules:
    _pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    subprocess.run([*_pip, f"bn-companion-helpers @ {{_SOURCE}}"], check=True)
    print(f"Installed the companion's helpers ({version}) from {{_SOURCE}}")
elif not _ours:
    _extra = "" if importlib.util.find_spec("tensorflow") else "[tensorflow]"
    _command = f'pip install "bn-companion-helpers{{_extra}} @ {{_SOURCE}}"'
    raise ModuleNotFoundError(f"This chapter needs the companion: {{_command}}")'''


def _apply(nb, chapter, path=PYPROJECT):
    """`nb` with its badge and install cell as generated; returns (notebook, changed)."""
    changed = False
    first_md = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if first_md is None or not first_md.source.startswith("# "):
        raise ColabError(f"{chapter}: the first cell must be Markdown starting with its title")
    lines = first_md.source.split("\n")
    wanted = badge_line(chapter, path)
    at = next((i for i, line in enumerate(lines) if BADGE_LINE.match(line)), None)
    if at is None:
        lines[1:1] = ["", wanted]
        changed = True
    elif lines[at] != wanted:
        lines[at] = wanted
        changed = True
    first_md.source = "\n".join(lines)
    code = [c for c in nb.cells if c.cell_type == "code"]
    source = install_source(path)
    if code and code[0].source.startswith(INSTALL_MARK):
        if code[0].source != source:
            code[0].source = source
            changed = True
    else:  # before the parameters: split the Markdown above them at "## Parameters"
        cell = jupytext.reads(f"```{{code-cell}} ipython3\n{source}\n```", fmt="md:myst").cells[0]
        cell.metadata["tags"] = ["remove-cell"]
        at = nb.cells.index(code[0]) if code else len(nb.cells)
        above = nb.cells[at - 1] if at else None
        heading = "\n## Parameters"
        if above is not None and above.cell_type == "markdown" and heading in above.source:
            intro, rest = above.source.split(heading, 1)
            above.source = intro.rstrip("\n")
            nb.cells.insert(at, nbformat.v4.new_markdown_cell(heading.strip() + rest))
        nb.cells.insert(at, cell)
        changed = True
    return nb, changed


def check(md, path=PYPROJECT):
    """None if `md` carries the generated badge and install cell, else what differs."""
    chapter = os.path.splitext(os.path.basename(md))[0]
    nb = jupytext.read(md)
    code = [c for c in nb.cells if c.cell_type == "code"]
    first_md = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if first_md is None or badge_line(chapter, path) not in first_md.source.split("\n"):
        return f"{chapter}: the Open in Colab badge is missing or points elsewhere"
    if not code or code[0].source != install_source(path):
        return f"{chapter}: the first code cell is not the install cell"
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="update the chapters' .md files")
    mode.add_argument("--check", action="store_true", help="fail on a chapter that differs")
    parser.add_argument("chapters", nargs="+", metavar="NN_topic.md")
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = [p for p in map(check, args.chapters) if p]
            for p in problems:
                print(p, file=sys.stderr)
            if problems:
                print("run `make colab-cells` to regenerate them", file=sys.stderr)
            return 1 if problems else 0
        for md in args.chapters:
            chapter = os.path.splitext(os.path.basename(md))[0]
            nb, changed = _apply(jupytext.read(md), chapter)
            if changed:
                text = jupytext.writes(nb, fmt="md:myst")
                with open(md, "w", encoding="utf-8") as f:
                    f.write(strip_version_lines(text))
                print(f"updated {md}")
    except ColabError as err:
        print(err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

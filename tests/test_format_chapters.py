"""tools/format_chapters.py and tools/pairing.py: formatting and re-pairing keep each chapter's
Jupytext pairing metadata as stored."""

import json
import os
import shutil
import sys

import nbformat
import pytest

from tools import check_sync, format_chapters, pairing
from tools.common import CHAPTERS

from tool_modules import MYST_HEADER

#: The venv's ruff, as `make format` passes it.
RUFF = os.path.join(os.path.dirname(sys.executable), "ruff")


def _pairing_metadata(md):
    with open(md, encoding="utf-8") as f:
        text = f.read()
    nb = nbformat.read(md[:-3] + ".ipynb", as_version=4)
    return text[: text.index("\n---", 3)], json.dumps(nb.metadata.get("jupytext"), sort_keys=True)


@pytest.mark.integration
def test_make_format_changes_no_byte_of_a_formatted_chapter(tmp_path):
    """`make format` on the stored chapters (formatted already) leaves both files as they are:
    the pairing metadata first, then every byte."""
    names = sorted(n for n in os.listdir(CHAPTERS) if n.endswith((".md", ".ipynb")))
    for name in names:
        shutil.copyfile(os.path.join(CHAPTERS, name), tmp_path / name)
    mds = sorted(str(tmp_path / n) for n in names if n.endswith(".md"))
    before = {md: _pairing_metadata(md) for md in mds}
    stored = {n: (tmp_path / n).read_bytes() for n in names}
    format_chapters.main(["--ruff", RUFF, *mds])
    for md in mds:
        assert _pairing_metadata(md) == before[md], f"{os.path.basename(md)}: pairing metadata"
    for name in names:
        assert (tmp_path / name).read_bytes() == stored[name], f"{name} changed"


MD = MYST_HEADER + "\n# Title\n\n```{code-cell} ipython3\nx = 1\n```\n"


@pytest.fixture
def pair(tmp_path):
    """A chapter whose .ipynb holds what an execution from its .md stores."""
    import jupytext

    md = tmp_path / "01_x.md"
    md.write_text(MD)
    nb = jupytext.read(md)
    nb.cells[-1].execution_count, nb.cells[-1].outputs = 1, []
    nbformat.write(nb, tmp_path / "01_x.ipynb")
    assert pairing.problem(str(md)) is None
    return md


def test_a_save_in_jupyterlab_or_jupytext_sync_is_put_back_by_make_sync(pair):
    """Jupytext writes version lines into the header and drops the .ipynb's
    text_representation; `pairing.normalize` (make sync) restores both, and sync-check names
    the pair until then."""
    ipynb = pair.with_suffix(".ipynb")
    stored_md, stored_nb = pair.read_text(), ipynb.read_text()
    lines = "    format_version: 0.13\n    jupytext_version: 1.19.6\n"
    pair.write_text(
        stored_md.replace("    format_name: myst\n", "    format_name: myst\n" + lines)
    )
    nb = nbformat.read(ipynb, as_version=4)
    del nb.metadata.jupytext["text_representation"]
    nbformat.write(nb, ipynb)
    assert "version lines" in pairing.problem(str(pair))
    assert check_sync.main([str(pair)]) == 1
    assert pairing.normalize(str(pair)) is True
    assert pair.read_text() == stored_md and ipynb.read_text() == stored_nb
    assert pairing.normalize(str(pair)) is False
    assert check_sync.main([str(pair)]) == 0


def test_version_lines_in_the_body_are_left_alone():
    body = "\n```{code-cell} ipython3\ns = '''\n    jupytext_version: 1\n'''\n```\n"
    assert pairing.strip_version_lines(MYST_HEADER + body) == MYST_HEADER + body

"""tools/check_sync.py: a chapter edited on one side only is caught, with the fix named."""

import os
import shutil

import jupytext
import nbformat
import pytest

from tools import check_sync

from tool_modules import MYST_HEADER

MD = (
    MYST_HEADER
    + """
# Title

```{code-cell} ipython3
:tags: [parameters]

seed = 1
```

```{code-cell} ipython3
print(seed)
```
"""
)


@pytest.fixture
def pair(tmp_path):
    md = tmp_path / "09_demo.md"
    md.write_text(MD)
    nb = jupytext.read(str(md))
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.execution_count = 1
            cell.outputs = []
    # As an execution stores it (nbformat keeps the .md's text_representation; tools.pairing).
    nbformat.write(nb, str(tmp_path / "09_demo.ipynb"))
    return md


def test_in_sync(pair):
    assert check_sync.check_pair(str(pair)) is None


def test_md_edited_alone(pair):
    pair.write_text(MD.replace("print(seed)", "print(seed + 1)"))
    message = check_sync.check_pair(str(pair))
    assert "source of cell 3" in message and "make chapter CHAPTER=09" in message


def test_cell_added_on_one_side(pair):
    pair.write_text(MD + "\nMore text.\n\n```{code-cell} ipython3\n1\n```\n")
    assert "has 5 cells" in check_sync.check_pair(str(pair))


def test_tags_changed(pair):
    pair.write_text(MD.replace(":tags: [parameters]", ":tags: [parameters, hide-input]"))
    assert "tags of cell 2" in check_sync.check_pair(str(pair))


def test_missing_notebook(pair):
    os.remove(str(pair)[:-3] + ".ipynb")
    assert "is missing" in check_sync.check_pair(str(pair))


def test_never_executed(pair, tmp_path):
    nb = jupytext.read(str(pair))
    jupytext.write(nb, str(tmp_path / "09_demo.ipynb"))  # no execution counts, no outputs
    assert "never executed" in check_sync.check_pair(str(pair))


def test_main_exit_status(pair, capsys):
    assert check_sync.main([str(pair)]) == 0
    shutil.copy(pair, str(pair) + ".bak")
    pair.write_text(MD.replace("# Title", "# Another title"))
    assert check_sync.main([str(pair)]) == 1
    assert "OUT OF SYNC" in capsys.readouterr().out

"""tools/execute_chapters.py: a stored notebook is replaced only by a successful, cleaned run."""

import jupytext
import nbformat
import pytest
from tool_modules import MYST_HEADER, load_tool

execute_chapters = load_tool("execute_chapters")

HEADER = MYST_HEADER + """
```{code-cell} ipython3
:tags: [parameters]

seed = 42
```
"""


def chapter(folder, name, body):
    md = folder / f"{name}.md"
    md.write_text(HEADER + body)
    nbformat.write(jupytext.read(md), folder / f"{name}.ipynb")  # the "stored" notebook
    return md


def test_a_failing_chapter_leaves_the_stored_notebook_byte_for_byte(tmp_path, capsys):
    md = chapter(tmp_path, "01_fails", "\n```{code-cell} ipython3\nprint('before')\nassert seed == 0, 'wrong seed'\n```\n")
    stored = (tmp_path / "01_fails.ipynb").read_bytes()
    status = execute_chapters.main(["--in-place", "--build", str(tmp_path / "build"), str(md)])
    assert status == 1
    assert (tmp_path / "01_fails.ipynb").read_bytes() == stored
    assert (tmp_path / "build" / "failed" / "01_fails.ipynb").exists()
    err = capsys.readouterr().err
    assert "FAILED 01_fails" in err and "raised AssertionError: wrong seed" in err and "is unchanged" in err


def test_a_successful_chapter_is_replaced_cleaned_and_parameters_reach_it(tmp_path, capsys):
    md = chapter(tmp_path, "02_works", "\n```{code-cell} ipython3\nprint(seed * 2)\n```\n")
    assert execute_chapters.main(["--in-place", "--build", str(tmp_path / "build"), str(md)]) == 0
    nb = nbformat.read(tmp_path / "02_works.ipynb", as_version=4)
    assert nb.cells[-1].outputs[0]["text"] == "84\n"
    assert "papermill" not in nb.metadata and all(c.id.startswith("cell-") for c in nb.cells)
    out = tmp_path / "other"
    assert execute_chapters.main(["--into", str(out), "--seed", "5", "--jobs", "2", str(md)]) == 0
    assert nbformat.read(out / "02_works.ipynb", as_version=4).cells[-1].outputs[0]["text"] == "10\n"
    assert "executed 02_works (seed=5)" in capsys.readouterr().out


def test_jobs_only_with_into(tmp_path):
    with pytest.raises(SystemExit):
        execute_chapters.main(["--in-place", "--jobs", "2", str(tmp_path / "x.md")])

"""tools/reproduced.py: the report that ends `make book`, on copies of stored chapters."""

import shutil

import nbformat
import pytest

from tools import reproduced
from tools.common import CHAPTERS

NAMES = ("00_setup", "03_keras_model")


@pytest.fixture
def dirs(tmp_path):
    stored, executed = tmp_path / "stored", tmp_path / "executed"
    stored.mkdir()
    executed.mkdir()
    for name in NAMES:
        shutil.copy(f"{CHAPTERS}/{name}.ipynb", stored)
        shutil.copy(f"{CHAPTERS}/{name}.ipynb", executed)
    return stored, executed


def _edit(path, change):
    nb = nbformat.read(path, as_version=4)
    change(nb)
    nbformat.write(nb, path)


def _first(nb, compared):
    """The index of the first code cell that ran and whose outputs nbval compares, or not."""
    ran = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.execution_count]
    return next(i for i in ran if (i in reproduced.compared_cells(nb)) == compared)


def test_a_run_that_reproduced_everything_says_so(dirs):
    stored, executed = dirs
    lines = reproduced.report(str(executed), str(stored))
    assert len(lines) >= 2 + len(NAMES) + 1  # a chapter's claims may take two lines
    assert lines[-1].startswith("Everything reproduced:")
    assert "C7 held;" in "\n".join(lines)


def test_a_differing_compared_output_is_named_and_a_not_compared_one_is_not(dirs):
    stored, executed = dirs
    path = executed / "03_keras_model.ipynb"
    nb = nbformat.read(path, as_version=4)
    ignored, changed = _first(nb, compared=False), _first(nb, compared=True)

    def change(nb):
        for index in (ignored, changed):
            extra = nbformat.v4.new_output("stream", name="stdout", text="other digits\n")
            nb.cells[index].outputs.append(extra)

    _edit(path, change)
    lines = reproduced.report(str(executed), str(stored))
    text = "\n".join(lines)
    total = len(reproduced.compared_cells(nb))
    assert f"{total - 1} of {total} equal" in text
    assert f"differ: cells {changed}\n" in text + "\n"
    assert not lines[-1].startswith("Everything")


def test_images_metadata_and_memory_addresses_are_not_compared(dirs):
    stored, executed = dirs
    path = executed / "00_setup.ipynb"

    def change(nb):
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                output.setdefault("metadata", {})["x"] = 1
                if "image/png" in output.get("data", {}):
                    output.data["image/png"] = "AAAA"
        cell = next(c for c in nb.cells if c.cell_type == "code" and c.outputs)
        cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text="0x7f00aa11\n"))

    _edit(path, change)
    _edit(
        stored / "00_setup.ipynb",
        lambda nb: next(c for c in nb.cells if c.cell_type == "code" and c.outputs).outputs.append(
            nbformat.v4.new_output("stream", name="stdout", text="0x7f00bb22\n")
        ),
    )
    assert reproduced.report(str(executed), str(stored))[-1].startswith("Everything")


def test_a_verdict_that_moved_is_shown_beside_the_stored_one(dirs, monkeypatch):
    stored, executed = dirs
    here = nbformat.read(executed / "03_keras_model.ipynb", as_version=4)
    before = nbformat.read(stored / "03_keras_model.ipynb", as_version=4)
    monkeypatch.setattr(
        reproduced,
        "verdicts",
        lambda nb: {"C7": "not held", "C8": "held"} if nb is here else {"C7": "held", "C9": "x"},
    )
    lines, counts = reproduced.chapter_lines("03_keras_model", here, before, {})
    text = " ".join(line.strip() for line in lines)
    assert (
        "C7 not held (stored: held); C8 held (stored: none); C9 not reported (stored: x)" in text
    )
    assert counts["claims"] == 3 and counts["same verdict"] == 0 and counts["differ"] == 3


def test_a_chapter_not_executed_stops_the_report(dirs, capsys):
    stored, executed = dirs
    (executed / "03_keras_model.ipynb").unlink()
    assert reproduced.main([str(executed), "--stored", str(stored)]) == 1
    assert "03_keras_model was not executed" in capsys.readouterr().err

"""tools/standalone_nbval.py: the time of each chapter, read from pytest's JUnit report."""

import os

import nbformat
import pytest

from tools import chapter_times, common, standalone_nbval

REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="3">
<testcase classname="07_x.07_x.ipynb" name="Cell 0" time="6.5" />
<testcase classname="07_x.07_x.ipynb" name="Cell 1" time="30.25" />
<testcase classname="A2_y.A2_y.ipynb" name="Cell 0" time="2" />
</testsuite></testsuites>
"""


def test_a_chapters_time_is_the_sum_over_its_cells(tmp_path):
    (tmp_path / "report.xml").write_text(REPORT)
    assert standalone_nbval.times_of(tmp_path / "report.xml") == {"07_x": 36.75, "A2_y": 2.0}


@pytest.mark.integration
def test_a_passing_run_records_the_time_of_each_chapter(tmp_path, monkeypatch):
    """nbval's JUnit report names the chapters as `times_of` reads them (a real kernel)."""
    folder = tmp_path / "chapters"
    folder.mkdir()
    monkeypatch.setattr(common, "CHAPTERS", str(folder))
    monkeypatch.setattr(chapter_times, "FILE", str(tmp_path / "times.json"))
    monkeypatch.setattr(chapter_times, "MEASURED", str(tmp_path / "build" / "times.json"))
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(6 * 7)", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="42\n")]
    nb.cells = [cell]
    paths = []
    for name in ("01_a", "02_b"):
        paths.append(str(folder / f"{name}.ipynb"))
        nbformat.write(nb, paths[-1])
    monkeypatch.chdir(common.ROOT)
    assert standalone_nbval.main(["--jobs", "2", *paths]) == 0
    assert sorted(chapter_times.load(chapter_times.MEASURED)["defaults"]) == ["01_a", "02_b"]
    assert not os.path.exists(chapter_times.FILE)  # the tracked times change only on purpose

"""tools/chapter_times.py: measured times, stored rounded, order the parallel runs."""

import json

import pytest

from tools import chapter_times


def test_a_time_is_stored_in_steps_and_rewritten_only_when_the_order_changes(tmp_path):
    path = tmp_path / "times.json"
    assert chapter_times.record("defaults", {"07_x": 61.4, "01_y": 1.2}, path) == ["01_y", "07_x"]
    stored = json.loads(path.read_text())
    assert stored["defaults"] == {"01_y": 5, "07_x": 60} and stored["reduced"] == {}
    text = path.read_text()
    # Within a quarter (and 5 s) of the stored time, or every chapter slower (a busy machine):
    # the order is the same, and the file is not touched.
    assert chapter_times.record("defaults", {"07_x": 72.0, "01_y": 9.0}, path) == []
    assert chapter_times.record("defaults", {"07_x": 100.0, "01_y": 9.0}, path) == []
    assert path.read_text() == text
    # A chapter that overtakes another, or a new one, is written.
    assert chapter_times.record("defaults", {"01_y": 80.0}, path) == ["01_y"]
    assert chapter_times.load(path)["defaults"] == {"01_y": 80, "07_x": 60}
    assert chapter_times.record("defaults", {"02_z": 20}, path) == ["02_z"]
    assert chapter_times.record("reduced", {"07_x": 33}, path) == ["07_x"]
    assert chapter_times.load(path)["reduced"] == {"07_x": 35}


def test_longest_first_puts_unmeasured_chapters_first_and_keeps_ties_in_order(tmp_path):
    path = tmp_path / "times.json"
    chapter_times.record("reduced", {"01_a": 10, "02_b": 40, "03_c": 10, "04_d": 25}, path)
    given = ["chapters/01_a.md", "chapters/02_b.md", "chapters/03_c.md", "x/05_new.md"]
    given.append("chapters/04_d.md")
    assert chapter_times.longest_first(given, "reduced", path) == [
        "x/05_new.md",
        "chapters/02_b.md",
        "chapters/04_d.md",
        "chapters/01_a.md",
        "chapters/03_c.md",
    ]
    assert chapter_times.longest_first(given, "defaults", path) == given  # nothing measured
    assert chapter_times.load(tmp_path / "missing.json") == {"defaults": {}, "reduced": {}}


def test_an_unknown_kind_is_one_sentence(tmp_path):
    with pytest.raises(ValueError, match="kind must be one of defaults, reduced, got 'full'"):
        chapter_times.record("full", {"01_a": 1}, tmp_path / "t.json")


def test_runs_record_into_build_and_only_store_writes_the_tracked_file(tmp_path, monkeypatch):
    tracked, measured = tmp_path / "tools" / "times.json", tmp_path / "build" / "times.json"
    monkeypatch.setattr(chapter_times, "FILE", str(tracked))
    monkeypatch.setattr(chapter_times, "MEASURED", str(measured))
    chapter_times.record("defaults", {"01_a": 10, "02_b": 50}, str(tracked))
    text = tracked.read_text()
    # This machine finds 01_a the longer: recorded under build/, the order follows it ...
    assert chapter_times.record("defaults", {"01_a": 90, "02_b": 50}) == ["01_a", "02_b"]
    assert tracked.read_text() == text
    assert chapter_times.load(str(measured))["defaults"] == {"01_a": 90, "02_b": 50}
    given = ["chapters/02_b.md", "chapters/01_a.md", "chapters/03_c.md"]
    assert chapter_times.longest_first(given, "defaults") == [
        "chapters/03_c.md",
        "chapters/01_a.md",
        "chapters/02_b.md",
    ]
    # ... and the tracked file changes only when a developer stores it (make chapter-times).
    assert chapter_times.store() == {"defaults": ["01_a"], "reduced": []}
    assert chapter_times.load(str(tracked))["defaults"] == {"01_a": 90, "02_b": 50}
    before = tracked.read_text()
    assert chapter_times.store() == {"defaults": [], "reduced": []}
    assert tracked.read_text() == before

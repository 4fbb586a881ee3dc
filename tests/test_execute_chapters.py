"""tools/execute_chapters.py: a stored notebook is replaced only by a successful, cleaned run.

Most tests run chapters through papermill (a kernel each): integration tests.
"""

import os
import pathlib
import resource
import signal
import subprocess
import sys
import time

import jupytext
import nbformat
import pytest

from tools import execute_chapters

from tool_modules import MYST_HEADER, ROOT

HEADER = (
    MYST_HEADER
    + """
```{code-cell} ipython3
:tags: [parameters]

seed = 42
```
"""
)


def chapter(folder, name, body):
    md = folder / f"{name}.md"
    md.write_text(HEADER + body)
    nbformat.write(jupytext.read(md), folder / f"{name}.ipynb")  # the "stored" notebook
    return md


@pytest.mark.integration
def test_a_failing_chapter_leaves_the_stored_notebook_byte_for_byte(tmp_path, capsys):
    md = chapter(
        tmp_path,
        "01_fails",
        "\n```{code-cell} ipython3\nprint('before')\nassert seed == 0, 'wrong seed'\n```\n",
    )
    stored = (tmp_path / "01_fails.ipynb").read_bytes()
    status = execute_chapters.main(["--in-place", "--build", str(tmp_path / "build"), str(md)])
    assert status == 1
    assert (tmp_path / "01_fails.ipynb").read_bytes() == stored
    assert (tmp_path / "build" / "failed" / "01_fails.ipynb").exists()
    err = capsys.readouterr().err
    assert (
        "FAILED 01_fails" in err
        and "raised AssertionError: wrong seed" in err
        and "is unchanged" in err
    )


@pytest.mark.integration
def test_a_successful_chapter_is_replaced_cleaned_and_parameters_reach_it(tmp_path, capsys):
    md = chapter(tmp_path, "02_works", "\n```{code-cell} ipython3\nprint(seed * 2)\n```\n")
    assert execute_chapters.main(["--in-place", "--build", str(tmp_path / "build"), str(md)]) == 0
    nb = nbformat.read(tmp_path / "02_works.ipynb", as_version=4)
    assert nb.cells[-1].outputs[0]["text"] == "84\n"
    assert "papermill" not in nb.metadata and all(c.id.startswith("cell-") for c in nb.cells)
    out = tmp_path / "other"
    assert execute_chapters.main(["--into", str(out), "--seed", "5", "--jobs", "2", str(md)]) == 0
    assert (
        nbformat.read(out / "02_works.ipynb", as_version=4).cells[-1].outputs[0]["text"] == "10\n"
    )
    assert "executed 02_works (seed=5)" in capsys.readouterr().out


def test_jobs_only_with_into(tmp_path):
    with pytest.raises(SystemExit):
        execute_chapters.main(["--in-place", "--jobs", "2", str(tmp_path / "x.md")])


# --- the measured order --------------------------------------------------------------------


@pytest.fixture
def repository(tmp_path, monkeypatch):
    """A chapters/ folder taken for the repository's, and its own times files (the tracked
    one, and the one its runs measure into)."""
    from tools import chapter_times, common

    folder = tmp_path / "chapters"
    folder.mkdir()
    monkeypatch.setattr(common, "CHAPTERS", str(folder))
    monkeypatch.setattr(chapter_times, "FILE", str(tmp_path / "times.json"))
    monkeypatch.setattr(chapter_times, "MEASURED", str(tmp_path / "build" / "times.json"))
    return folder


def _fake_runs(monkeypatch, seconds):
    """Replace the kernels: each run writes its chapter's notebook and takes `seconds[name]`."""
    started = []

    def execute_all(jobs, runs):
        for md, output, _ in runs:
            name = os.path.basename(md)[:-3]
            started.append(name)
            nbformat.write(jupytext.read(md), output)
            yield None, seconds[name]

    monkeypatch.setattr(execute_chapters, "execute_all", execute_all)
    return started


def test_parallel_runs_go_longest_first_and_record_what_they_measure(
    repository, tmp_path, monkeypatch
):
    from tools import chapter_times

    mds = [str(chapter(repository, n, "")) for n in ("01_short", "02_long", "03_new")]
    chapter_times.record("reduced", {"01_short": 10, "02_long": 90}, chapter_times.FILE)
    tracked = pathlib.Path(chapter_times.FILE).read_text()
    started = _fake_runs(monkeypatch, {"01_short": 11, "02_long": 140, "03_new": 42})
    out = str(tmp_path / "out")
    assert execute_chapters.main(["--into", out, "--reduced", "--jobs", "2", *mds]) == 0
    assert started == ["03_new", "02_long", "01_short"]
    measured = chapter_times.load(chapter_times.MEASURED)
    assert measured["reduced"] == {"01_short": 10, "02_long": 140, "03_new": 40}
    assert measured["defaults"] == {}
    # a run never rewrites the tracked file
    assert pathlib.Path(chapter_times.FILE).read_text() == tracked

    started.clear()  # one job keeps the order given; a run at the defaults is recorded apart
    assert execute_chapters.main(["--into", out, *mds]) == 0
    assert started == ["01_short", "02_long", "03_new"]
    measured = chapter_times.load(chapter_times.MEASURED)
    assert measured["defaults"] == {"01_short": 10, "02_long": 140, "03_new": 40}
    assert pathlib.Path(chapter_times.FILE).read_text() == tracked


def test_runs_with_other_parameters_or_outside_chapters_record_nothing(
    repository, tmp_path, monkeypatch
):
    from tools import chapter_times

    md = str(chapter(repository, "01_a", ""))
    elsewhere = str(chapter(tmp_path, "02_b", ""))
    _fake_runs(monkeypatch, {"01_a": 30, "02_b": 30})
    out = str(tmp_path / "out")
    assert execute_chapters.main(["--into", out, "-p", "seed", "3", md]) == 0
    assert execute_chapters.main(["--into", out, elsewhere]) == 0
    assert not os.path.exists(chapter_times.MEASURED)
    assert not os.path.exists(chapter_times.FILE)


# --- faults: a run killed midway, a full disk ----------------------------------------------

TOOL = [sys.executable, "-m", "tools.execute_chapters"]


def _start(md, tmp_path, preexec_fn=None):
    env = {**os.environ, "IPYTHONDIR": str(tmp_path / "ipython")}  # a fresh, small history file

    def as_in_a_terminal():
        # A shell starts background jobs (`make unit &`) with SIGINT ignored, and a Python that
        # starts so never raises KeyboardInterrupt: give the runner Ctrl-C as a terminal does.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if preexec_fn:
            preexec_fn()

    return subprocess.Popen(
        [*TOOL, "--in-place", "--build", str(tmp_path / "build"), str(md)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=as_in_a_terminal,
    )


def _wait_for(path, proc, seconds=90):
    deadline = time.monotonic() + seconds
    while not (path.exists() and path.read_text()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the chapter never started its long cell"
        time.sleep(0.2)
    return int(path.read_text())


@pytest.mark.integration
@pytest.mark.parametrize(
    "target, sig, message",
    [
        ("runner", signal.SIGINT, "interrupted"),
        ("kernel", signal.SIGINT, "raised KeyboardInterrupt"),
        ("kernel", signal.SIGKILL, "the kernel died"),
    ],
)
def test_a_run_killed_midway_leaves_the_stored_notebook_byte_for_byte(
    tmp_path, target, sig, message
):
    marker = tmp_path / "kernel.pid"
    md = chapter(
        tmp_path,
        "03_sleeps",
        "\n```{code-cell} ipython3\nimport os, time\n"
        f"open({str(marker)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n```\n",
    )
    stored = (tmp_path / "03_sleeps.ipynb").read_bytes()
    proc = _start(md, tmp_path)
    kernel = _wait_for(marker, proc)
    os.kill(proc.pid if target == "runner" else kernel, sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (1, 130)
    assert message in err and "03_sleeps.ipynb is unchanged" in err
    assert (tmp_path / "03_sleeps.ipynb").read_bytes() == stored
    assert not os.listdir(tmp_path / "build" / "run")  # no temporary file left
    time.sleep(1)
    with pytest.raises(ProcessLookupError):  # and no kernel left behind
        os.kill(kernel, 0)


@pytest.mark.integration
def test_a_full_disk_leaves_the_stored_notebook_and_says_so(tmp_path):
    md = chapter(tmp_path, "04_big", "\n```{code-cell} ipython3\nprint('x' * 300_000)\n```\n")
    stored = (tmp_path / "04_big.ipynb").read_bytes()

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))

    proc = _start(md, tmp_path, preexec_fn=limit_file_size)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert (
        "FAILED 04_big" in err and "File too large" in err and "04_big.ipynb is unchanged" in err
    )
    assert (tmp_path / "04_big.ipynb").read_bytes() == stored


def test_the_traceback_of_a_cell_run_for_its_error_keeps_the_cell_and_the_error():
    from tools.clean_notebook import short_traceback

    traceback = [
        "\x1b[0;31m-----\x1b[0m",
        "\x1b[0;31mTypeError\x1b[0m    Traceback (most recent call last)",
        "Cell \x1b[0;32mIn[7], line 1\x1b[0m\n\x1b[0;32m----> 1\x1b[0m layer(axis=[1, 2])\n",
        "File \x1b[0;32m/home/x/.venv/lib/python3.11/site-packages/keras/bn.py:99\x1b[0m, in "
        "\x1b[0;36m__init__\x1b[0;34m(self, axis)\x1b[0m\n\x1b[0;32m---> 99\x1b[0m int(axis)\n",
        "\x1b[0;31mTypeError\x1b[0m: int() argument must be a string, not 'list'",
    ]
    kept = short_traceback(traceback)
    assert kept == traceback[:3] + traceback[4:]


@pytest.mark.integration
def test_a_cell_tagged_raises_exception_shows_its_error_and_must_raise(tmp_path, capsys):
    listing = (
        "\n```{code-cell} ipython3\n:tags: [book-listing, raises-exception]\n\n[].updates\n```\n"
    )
    check = (
        "\n```{code-cell} ipython3\nimport sys\n\n"
        "assert isinstance(sys.last_value, AttributeError)\nprint('checked')\n```\n"
    )
    md = chapter(tmp_path, "01_raises", listing + check)
    assert execute_chapters.main(["--in-place", "--build", str(tmp_path / "build"), str(md)]) == 0
    cells = nbformat.read(tmp_path / "01_raises.ipynb", as_version=4).cells
    assert [o["ename"] for o in cells[-2].outputs] == ["AttributeError"]
    assert cells[-1].outputs[0]["text"] == "checked\n"
    md = chapter(tmp_path, "02_raises_not", listing.replace("[].updates", "[].copy"))
    assert execute_chapters.main(["--in-place", "--build", str(tmp_path / "build"), str(md)]) == 1
    assert "is tagged raises-exception but raised nothing" in capsys.readouterr().err


def test_an_error_before_a_cell_tagged_raises_exception_is_the_one_reported(monkeypatch):
    error = nbformat.v4.new_output("error", ename="AttributeError", evalue="x", traceback=[])
    failed = nbformat.v4.new_code_cell("model.updates_frame()", outputs=[error])
    tagged = nbformat.v4.new_code_cell("[].updates", metadata={"tags": ["raises-exception"]})
    nb = nbformat.v4.new_notebook(cells=[failed, tagged])
    seen = []
    monkeypatch.setattr(
        execute_chapters, "_papermill_raise_for_execution_errors", lambda nb, path: seen.append(nb)
    )
    execute_chapters._raise_for_untagged_errors(nb, "out.ipynb")
    assert seen == [nb] and nb.cells[0].outputs == [error]
    with pytest.raises(execute_chapters._UnraisedError, match="cell 0 .* raised nothing"):
        execute_chapters._raise_for_untagged_errors(
            nbformat.v4.new_notebook(cells=[tagged, failed]), "out.ipynb"
        )

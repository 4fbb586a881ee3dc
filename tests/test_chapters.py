"""The output discipline of the chapters, checked on their sources (nothing is executed).

nbval compares every stored output with a fresh run, except in cells marked as not compared.
Those cells are where the exact figures of training runs and timings are shown, so each must
still check its claim with an assert, and they must stay few.
"""

import glob
import os
import re
import subprocess
import sys

import jupytext
import pytest

from tools import colab, execute_chapters

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: The chapters (NN_topic.md) and the executed appendices (A<digit>_topic.md).
CHAPTERS = sorted(
    glob.glob(os.path.join(ROOT, "chapters", "[0-9][0-9]_*.md"))
    + glob.glob(os.path.join(ROOT, "chapters", "A[0-9]_*.md"))
)
#: Every way of telling nbval not to compare a cell's output (tags and comment markers).
NOT_COMPARED_TAGS = {"nbval-ignore-output", "nbval-skip"}
NOT_COMPARED_MARKERS = re.compile(r"^\s*#\s*NBVAL_(IGNORE_OUTPUT|SKIP)\b", re.MULTILINE)
#: The budget of not-compared cells in the whole book (CONTRIBUTING.md, "Only claims in
#: compared outputs"): 11 cells of per-seed figures and timings, plus the Versions table of
#: each chapter (11), whose values are the reader's versions, not claims, plus the claims
#: report of each chapter that has claims (9), whose outcomes a compared cell prints.
MAX_NOT_COMPARED = 11 + 11 + 9
#: The compared cell that follows a chapter's claims reports and prints their outcomes.
OUTCOMES_CELL = "outcomes()"
#: The Versions cell: the one not-compared cell that asserts nothing, exactly one per chapter.
VERSIONS_CELL = "helpers.versions_frame()"


def not_compared(cell):
    return bool(NOT_COMPARED_TAGS & set(cell.metadata.get("tags", []))) or bool(
        NOT_COMPARED_MARKERS.search(cell.source)
    )


def code_cells(md):
    return [c for c in jupytext.read(md).cells if c.cell_type == "code"]


def test_there_are_chapters():
    assert len(CHAPTERS) >= 10


def is_claims_report(cells, i):
    """A not-compared cell of claim reports, directly followed by the compared cell that
    prints their outcomes: those are checked there, as answers rather than asserts."""
    following = cells[i + 1] if i + 1 < len(cells) else None
    return (
        "report(" in cells[i].source
        and following is not None
        and following.source.strip() == OUTCOMES_CELL
        and not not_compared(following)
    )


@pytest.mark.parametrize("md", CHAPTERS, ids=os.path.basename)
def test_every_not_compared_cell_asserts_its_claim(md):
    cells = code_cells(md)
    for i, cell in enumerate(cells):
        if is_claims_report(cells, i):
            continue
        if not_compared(cell) and cell.source.strip() != VERSIONS_CELL:
            assert re.search(
                r"^\s*assert\b|np\.testing\.assert_\w+\(", cell.source, re.MULTILINE
            ), (
                f"{os.path.basename(md)}: a cell whose output nbval does not compare has no "
                f"assert: {cell.source.strip().splitlines()[0]!r}"
            )


def test_not_compared_cells_stay_few():
    counts = {os.path.basename(md): sum(map(not_compared, code_cells(md))) for md in CHAPTERS}
    assert sum(counts.values()) <= MAX_NOT_COMPARED, counts


@pytest.mark.parametrize("md", CHAPTERS, ids=os.path.basename)
def test_versions_are_shown_once_and_never_compared(md):
    """Versions are the reader's, not claims: one not-compared Versions cell, none elsewhere."""
    cells = code_cells(md)
    versions = [c for c in cells if VERSIONS_CELL in c.source]
    assert len(versions) == 1 and versions[0].source.strip() == VERSIONS_CELL
    assert not_compared(versions[0])
    for cell in cells:
        assert "__version__" not in cell.source or not_compared(cell), (
            f"{os.path.basename(md)}: a compared cell prints a version: "
            f"{cell.source.strip().splitlines()[0]!r}"
        )


def test_the_sanitizer_never_rewrites_numbers():
    """nbval_sanitize.cfg may mask memory addresses, never numbers in general."""
    with open(os.path.join(ROOT, "nbval_sanitize.cfg")) as f:
        regexes = [line.split(":", 1)[1].strip() for line in f if line.startswith("regex:")]
    assert regexes
    for regex in regexes:
        for number in ("0.8080", "1.5e-08", "8 settings", "271,346", "-0.0960"):
            assert not re.search(regex, number), (regex, number)


@pytest.mark.parametrize("md", CHAPTERS, ids=os.path.basename)
def test_badge_and_install_cell_follow_pyproject(md):
    """The Open in Colab badge and the first code cell are what tools/colab.py writes."""
    assert colab.check(md) is None


@pytest.mark.parametrize("md", CHAPTERS, ids=os.path.basename)
def test_no_compared_output_shows_a_version(md):
    """The stored outputs that nbval compares carry none of the versions that produced them."""
    import platform

    import keras
    import numpy as np
    import tensorflow as tf

    running = {platform.python_version(), tf.__version__, keras.__version__, np.__version__}
    nb = jupytext.read(md[: -len(".md")] + ".ipynb")
    for cell in nb.cells:
        if cell.cell_type != "code" or not_compared(cell):
            continue
        shown = str(
            [o.get("text", "") for o in cell.outputs] + [o.get("data", {}) for o in cell.outputs]
        )
        found = sorted(
            v for v in running if re.search(rf"(?<![\d.]){re.escape(v)}(?![\d])", shown)
        )
        assert not found, f"{os.path.basename(md)}: a compared output shows {found}"


# --- parameters: checked right after the parameters cell, one sentence when wrong -----------


def parameter_cells(md):
    """The parameters cell and the cell right after it (the check)."""
    cells = code_cells(md)
    index = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    return cells[index], cells[index + 1]


@pytest.mark.parametrize("md", CHAPTERS, ids=os.path.basename)
def test_the_defaults_pass_and_every_wrong_value_is_named(md):
    from helpers.chapter.parameters import ParameterError

    parameters, checking = parameter_cells(md)
    assert re.search(r"\bcheck\(\s*globals\(\),", checking.source), (
        "the cell after the parameters must check them"
    )
    install = code_cells(md)[0]  # runs before the parameters and leaves its names behind
    defaults = {}
    exec(install.source, defaults)
    exec(parameters.source, defaults)
    names = [n for n in defaults if not n.startswith("_") and n in parameters.source]
    exec(checking.source, dict(defaults))
    for name in names:
        with pytest.raises(ParameterError, match=f"^{name} must be "):
            exec(checking.source, {**defaults, name: object()})
    with pytest.raises(ParameterError, match="^n_trian is not a parameter of this chapter"):
        exec(checking.source, {**defaults, "n_trian": 5})


#: One wrong value per chapter, as a reader would pass it to `make run`, and the sentence it gets.
BAD = {
    "00": (
        "n_samples_per_class",
        "0",
        "n_samples_per_class must be an integer from 1 to 50, got 0",
    ),
    "01": (
        "batch_size",
        "12",
        "batch_size must be an integer from 8 to 55,000, a multiple of 8, got 12",
    ),
    "02": ("ema_steps", "150", "ema_steps must be an integer >= 100, a multiple of 100, got 150"),
    "03": ("n_fit", "0", "n_fit must be an integer from 32 (batch_size) to 50,000, got 0"),
    "04": ("n_train", "0", "n_train must be an integer from 32 (batch_size) to 55,000, got 0"),
    "05": ("seed", "abc", "seed must be an integer >= 0, got 'abc'"),
    "06": ("epochs", "-1", "epochs must be an integer >= 1, got -1"),
    "07": ("n_train", "10", "n_train must be an integer from 64 (batch_size) to 55,000, got 10"),
    "08": ("norm_limits", "[]", "norm_limits must be a non-empty list of a number > 0, got []"),
    "09": ("n_replicas", "3", "n_replicas must be one of 2, 4, 8, got 3"),
    "A2": ("seed", "-1", "seed must be an integer >= 0, got -1"),
}


def test_every_chapter_has_a_bad_parameter_case():
    assert sorted(BAD) == [os.path.basename(md)[:2] for md in CHAPTERS]


@pytest.mark.parametrize("md", CHAPTERS, ids=os.path.basename)
def test_a_bad_parameter_gets_its_sentence(md):
    """What `make run PARAMS="-p NAME VALUE"` does up to the check, without starting a kernel.

    The value is read by the runner's own parser, set after the defaults (where papermill
    injects it) and checked by the chapter's own check cell.
    """
    from helpers.chapter.parameters import ParameterError

    name, value, sentence = BAD[os.path.basename(md)[:2]]
    parameters, checking = parameter_cells(md)
    namespace = {}
    exec(parameters.source, namespace)
    namespace.update(execute_chapters.parse_parameters([(name, value)], None))
    with pytest.raises(ParameterError) as raised:
        exec(checking.source, namespace)
    assert str(raised.value) == sentence


#: The chapter whose bad parameter also goes through papermill and a real kernel, end to end.
END_TO_END = "06"


@pytest.mark.integration
def test_a_bad_parameter_stops_a_real_run_with_one_sentence(tmp_path):
    (md,) = [md for md in CHAPTERS if os.path.basename(md).startswith(END_TO_END)]
    name, value, sentence = BAD[END_TO_END]
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.execute_chapters",
            "--into",
            str(tmp_path / "out"),
            "--build",
            str(tmp_path / "build"),
            "-p",
            name,
            value,
            md,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert run.returncode == 1
    failure = [line for line in run.stderr.splitlines() if line.startswith("FAILED")]
    assert failure and failure[0].endswith(f"raised ParameterError: {sentence}"), run.stderr[
        -2000:
    ]
    assert not (tmp_path / "out" / (os.path.basename(md)[:-3] + ".ipynb")).exists()

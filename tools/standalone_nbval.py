"""nbval on chapters that stand alone: each stored notebook copied into an empty folder.

    python -m tools.standalone_nbval [--jobs N] chapters/NN_topic.ipynb ...

Run it with the Python of the environment under test (``make nbval-oldest`` uses the oldest
supported stack, with the package installed from its wheel): each notebook is copied alone into
its own folder outside the repository, as a reader opens it in Colab, and nbval re-executes it
there and compares its outputs with the stored ones, with the repository's
``nbval_sanitize.cfg``. The folders are removed afterwards. Exits with pytest's status.

With ``--jobs N``, N notebooks are checked at once, handed out longest first by the chapters'
times (`tools.chapter_times`; pytest-xdist would otherwise reorder them by their number of
cells); the time each chapter took (from pytest's JUnit report, kernel start included) is
recorded as a run at the default parameters in ``build/chapter_times.json``, never in the
tracked ``tools/chapter_times.json`` (``make chapter-times`` stores it there on purpose).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

from tools import chapter_times
from tools.common import ROOT, chapter_name, copy_alone, is_repository_chapter


def times_of(report):
    """``{chapter: seconds}`` from a pytest JUnit report of nbval over copied notebooks.

    Each cell is a test case whose class name starts with the notebook's folder (``NN_topic``);
    a chapter's time is the sum over its cells, set-up (the kernel's start) included.
    """
    times = {}
    for case in ET.parse(report).iter("testcase"):
        name = case.get("classname", "").split(".")[0]
        times[name] = times.get(name, 0.0) + float(case.get("time") or 0)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1, help="notebooks checked at once")
    parser.add_argument("notebooks", nargs="+", metavar="NN_topic.ipynb")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be 1 or more, got {args.jobs}")
    missing = [nb for nb in args.notebooks if not os.path.isfile(nb)]
    if missing:
        parser.error(f"no such notebook: {missing[0]}")
    notebooks = args.notebooks
    if args.jobs > 1:
        notebooks = chapter_times.longest_first(notebooks, "defaults")
    with tempfile.TemporaryDirectory(
        prefix="bn-companion-nbval-", ignore_cleanup_errors=True
    ) as home:
        copies = [copy_alone(nb, home) for nb in notebooks]
        # A configuration of its own, so that pytest takes nothing from a pyproject.toml above.
        with open(os.path.join(home, "pytest.ini"), "w") as f:
            f.write("[pytest]\n")
        report = os.path.join(home, "report.xml")
        command = [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", home,
            "--nbval", "--nbval-current-env", "--nbval-cell-timeout", "900",
            "--nbval-sanitize-with", os.path.join(ROOT, "nbval_sanitize.cfg"),
            "--junitxml", report,
        ]  # fmt: skip
        if args.jobs > 1:
            command += ["-n", str(args.jobs), "--dist", "loadfile", "--no-loadscope-reorder"]
        status = subprocess.run(command + copies, cwd=home).returncode
        if status == 0 and os.path.exists(report):
            ours = {chapter_name(nb) for nb in notebooks if is_repository_chapter(nb)}
            measured = {k: v for k, v in times_of(report).items() if k in ours}
            try:
                chapter_times.record("defaults", measured)
            except OSError as err:  # the times only order later runs: say so and go on
                print(f"could not store the chapters' times: {err}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())

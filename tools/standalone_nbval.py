"""nbval on chapters that stand alone: each stored notebook copied into an empty folder.

    python -m tools.standalone_nbval [--jobs N] chapters/NN_topic.ipynb ...

Run it with the Python of the environment under test (``make nbval-oldest`` uses the oldest
supported stack, with the package installed from its wheel): each notebook is copied alone into
its own folder outside the repository, as a reader opens it in Colab, and nbval re-executes it
there and compares its outputs with the stored ones, with the repository's
``nbval_sanitize.cfg``. The folders are removed afterwards. Exits with pytest's status.
"""

import argparse
import os
import subprocess
import sys
import tempfile

from tools.common import ROOT, copy_alone


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
    with tempfile.TemporaryDirectory(
        prefix="bn-companion-nbval-", ignore_cleanup_errors=True
    ) as home:
        copies = [copy_alone(nb, home) for nb in args.notebooks]
        # A configuration of its own, so that pytest takes nothing from a pyproject.toml above.
        with open(os.path.join(home, "pytest.ini"), "w") as f:
            f.write("[pytest]\n")
        command = [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", home,
            "--nbval", "--nbval-current-env", "--nbval-cell-timeout", "900",
            "--nbval-sanitize-with", os.path.join(ROOT, "nbval_sanitize.cfg"),
        ]  # fmt: skip
        if args.jobs > 1:
            command += ["-n", str(args.jobs), "--dist", "loadfile"]
        return subprocess.run(command + copies, cwd=home).returncode


if __name__ == "__main__":
    sys.exit(main())

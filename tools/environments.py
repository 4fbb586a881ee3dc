"""The virtual environments and locks behind `make`: which Python, which lock, which commands.

    python -m tools.environments uv-requirement LOCK            # uv's entry of LOCK, for pip
    python -m tools.environments find-python 3.13                # a CPython 3.13 that runs
    python -m tools.environments reader-env VENV PYTHON LOCK     # a reader's venv from the wheel
    python -m tools.environments lock [--upgrade] [--dry-run]    # every lock, from pyproject.toml

Standard library only: `make` runs ``uv-requirement`` with the system Python (``$(PYTHON)``)
before ``.venv`` exists, to install uv (its entry in the lock, hash-checked) with the venv's
own pip; uv then installs the rest of the lock.

The locks: ``requirements.lock`` is the one `make` installs (CPython 3.11 on Linux x86-64).
The same packages are resolved for macOS arm64 and Linux aarch64 (resolved, not run here), for
CPython 3.13 with the newest releases (``locks/py313.lock``) and for the oldest supported stack
(``locks/oldest.lock``). uv keeps the versions already in each lock and resolves only what
pyproject.toml added; ``--upgrade`` moves every package to its newest version. Each lock holds
one TensorFlow distribution (the ``tensorflow-local`` group).
"""

import argparse
import glob
import os
import pathlib
import shlex
import shutil
import subprocess
import sys

#: The extras and groups of the full locks (requirements.lock and the other platforms').
FULL = (
    "--extra notebooks --extra book --extra lab --extra test --extra lint --extra lock "
    "--extra jax "
    "--group pyproject.toml:tensorflow-local"
).split()
#: What Python 3.13 gets: the package's runtime and the tests (test-extended runs there).
PY313 = "--extra notebooks --extra test --group pyproject.toml:tensorflow-local".split()
X86 = "x86_64-manylinux_2_28"

#: Each lock: (file, what it resolves from pyproject.toml, Python version, platform). A lock of
#: another platform starts as a copy of requirements.lock the first time, so that uv keeps its
#: versions there too.
LOCKS = (
    ("requirements.lock", ["pyproject.toml", *FULL], "3.11.7", X86),
    ("locks/macos-arm64.lock", ["pyproject.toml", *FULL], "3.11.7", "aarch64-apple-darwin"),
    ("locks/linux-aarch64.lock", ["pyproject.toml", *FULL], "3.11.7", "aarch64-manylinux_2_28"),
    ("locks/py313.lock", ["pyproject.toml", *PY313], "3.13", X86),
    ("locks/oldest.lock", ["--group", "pyproject.toml:oldest"], "3.11.7", X86),
)
#: The locks that start as a copy of requirements.lock when they do not exist yet.
SEEDED_FROM_MAIN = ("locks/macos-arm64.lock", "locks/linux-aarch64.lock")


class SetupError(RuntimeError):
    """A lock or an interpreter is not what `make` needs; the message says what to do."""


def uv_requirement(lock_text):
    """The requirement of ``uv`` in a lock: its ``uv==`` line and the hash lines that follow.

    Args:
        lock_text: the text of a lock written by ``uv pip compile --generate-hashes``.

    Returns:
        The entry's lines, each ending in a newline, for ``pip install --require-hashes -r``.

    Raises:
        SetupError: the lock has no ``uv==`` entry.
    """
    lines = []
    for line in lock_text.splitlines():
        if not lines and not line.startswith("uv=="):
            continue
        lines.append(line + "\n")
        if not line.rstrip().endswith("\\"):
            break
    if not lines:
        raise SetupError("the lock has no uv== entry; add the `lock` extra and run make lock")
    return "".join(lines)


def runs(python):
    """Whether `python` starts and runs a line (a pyenv shim of an unselected version does not)."""
    try:
        done = subprocess.run(
            [python, "-c", "print(1)"], capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def pyenv_root():
    """pyenv's root folder (``pyenv root``), or None without pyenv."""
    if shutil.which("pyenv") is None:
        return None
    done = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def candidates(version, root=None, path=None):
    """The interpreters that may be CPython `version`: pyenv's first, then the PATH's.

    Args:
        version: ``"3.13"``.
        root: pyenv's root folder, or None without pyenv.
        path: the search path for ``pythonX.Y`` (default: ``PATH``).

    Returns:
        pyenv's ``versions/X.Y*/bin/pythonX.Y`` in sorted order, then ``pythonX.Y`` on the path.
    """
    found = []
    if root:
        found += sorted(
            glob.glob(os.path.join(root, "versions", f"{version}*", "bin", f"python{version}"))
        )
    on_path = shutil.which(f"python{version}", path=path)
    if on_path:
        found.append(on_path)
    return found


def find_python(version, root=None, path=None, runs=runs):
    """The first candidate (see `candidates`) that runs, or None.

    Args:
        version: ``"3.13"``.
        root: pyenv's root folder, or None without pyenv.
        path: the search path for ``pythonX.Y`` (default: ``PATH``).
        runs: tells whether an interpreter runs (tests pass their own).

    Returns:
        The interpreter's path, or None if no candidate runs.
    """
    return next((c for c in candidates(version, root, path) if runs(c)), None)


def missing_python(venv, lock):
    """The message when `venv` cannot be made because its Python was not found."""
    return (
        f"{venv} needs {lock}'s Python, which was not found "
        "(pyenv install it, or set PYTHON313/PYTHON312)"
    )


def reader_env_commands(venv, python, lock, uv, wheels, host_python=sys.executable):
    """The commands that make `venv` a reader's environment: the lock, then the package's wheel.

    The venv gets `lock`'s packages (hash-checked, installed by uv), then the wheel installed by
    pip as a reader installs it (``tools/reader_install.py``: a dry run whose report must list
    nothing but the package, so that installing it changes no version already there).

    Args:
        venv: the venv's folder (``.venv-oldest``).
        python: the interpreter that creates it, when it does not exist yet.
        lock: the lock it installs.
        uv: the uv executable (``.venv/bin/uv``).
        wheels: the package's wheels (``build/dist/*.whl``).
        host_python: the Python that runs ``tools.reader_install``.

    Returns:
        A list of argument lists, in order.
    """
    venv_python = os.path.join(venv, "bin", "python")
    commands = []
    if not os.access(venv_python, os.X_OK):
        commands.append([python, "-m", "venv", venv])
    commands.append(
        [uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", venv_python]
        + ["--require-hashes", "-r", lock]
    )
    commands.append([host_python, "-m", "tools.reader_install", venv_python, *wheels])
    return commands


def lock_commands(uv, upgrade=False):
    """The ``uv pip compile`` command of each lock in `LOCKS`, in order.

    Args:
        uv: the uv executable (``.venv/bin/uv``).
        upgrade: move every package to its newest version instead of keeping the locked ones.

    Returns:
        ``(output, argv)`` pairs.
    """
    compile_ = [uv, "pip", "compile", "--quiet", "--generate-hashes"]
    compile_ += ["--custom-compile-command", "make lock"] + (["--upgrade"] if upgrade else [])
    return [
        (
            out,
            [
                *compile_,
                *sources,
                "--python-version",
                version,
                "--python-platform",
                plat,
                "-o",
                out,
            ],
        )
        for out, sources, version, plat in LOCKS
    ]


def _run(argv):
    print(shlex.join(argv), flush=True)
    subprocess.run(argv, check=True)


def make_reader_env(venv, python, lock, uv, wheels):
    """Create or update `venv` (see `reader_env_commands`), then touch its ``.installed``."""
    if not python:
        raise SetupError(missing_python(venv, lock))
    for argv in reader_env_commands(venv, python, lock, uv, wheels):
        _run(argv)
    pathlib.Path(venv, ".installed").touch()


def make_locks(uv, upgrade=False, dry_run=False):
    """Write every lock (see `LOCKS`); with `dry_run`, print the commands only."""
    for out, argv in lock_commands(uv, upgrade):
        if not dry_run and os.path.dirname(out):
            os.makedirs(os.path.dirname(out), exist_ok=True)
        if out in SEEDED_FROM_MAIN and not os.path.exists(out):
            print(f"cp requirements.lock {out}", flush=True)
            if not dry_run:
                shutil.copyfile("requirements.lock", out)
        if dry_run:
            print(shlex.join(argv))
        else:
            _run(argv)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tools.environments", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("uv-requirement", help="print uv's entry of LOCK (its hashes included)")
    p.add_argument("lock")
    p = sub.add_parser("find-python", help="print a CPython X.Y that runs (nothing if none)")
    p.add_argument("version")
    p = sub.add_parser("reader-env", help="install LOCK and the package's wheel into VENV")
    p.add_argument("venv")
    p.add_argument("python", help="the interpreter that creates VENV ('' when none was found)")
    p.add_argument("lock")
    p.add_argument("--uv", default=".venv/bin/uv")
    p.add_argument("--wheels", default="build/dist/*.whl", help="a glob (default: %(default)s)")
    p = sub.add_parser("lock", help="regenerate requirements.lock and locks/*.lock")
    p.add_argument("--uv", default=".venv/bin/uv")
    p.add_argument("--upgrade", action="store_true", help="move every package to its newest")
    p.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args(argv)
    try:
        if args.command == "uv-requirement":
            with open(args.lock, encoding="utf-8") as f:
                sys.stdout.write(uv_requirement(f.read()))
        elif args.command == "find-python":
            found = find_python(args.version, pyenv_root())
            if found:
                print(found)
        elif args.command == "reader-env":
            wheels = sorted(glob.glob(args.wheels))
            make_reader_env(args.venv, args.python, args.lock, args.uv, wheels)
        else:
            make_locks(args.uv, args.upgrade, args.dry_run)
    except (SetupError, subprocess.CalledProcessError) as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

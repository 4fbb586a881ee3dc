"""Install the package's wheel into an environment as a reader does, and prove it moved nothing.

    python -m tools.reader_install VENV_PYTHON WHEEL
    python -m tools.reader_install --fresh PYTHON WHEEL [--with SPEC ...]

A reader installs the companion with ``pip install`` into an environment that already has
TensorFlow, Keras and NumPy (Colab's, or their own). That must install the package and nothing
else: no second TensorFlow distribution, no other Keras or NumPy. For VENV_PYTHON's
environment this script

1. removes any earlier install of the package;
2. asks pip for a dry run with a JSON report (``pip install --dry-run --report``) and fails,
   naming them, if the report would install anything but the package;
3. installs the wheel for real and fails if any other distribution's version changed;
4. imports ``helpers`` and NumPy with ImportWarning as an error, so that a numerics pin that
   this NumPy does not understand fails here instead of being ignored;
5. folds a small saved BN model with ``python -m helpers.fusion``, the command readers run on
   their own models.

With ``--fresh``, PYTHON is an interpreter: the dry run goes into a new, empty virtual
environment (pip must accept the wheel's Requires-Python there and resolve its dependencies).
``--with`` adds pinned requirements to that dry run, as if they were installed already (such
as Colab's ``tensorflow==2.19.0 keras==3.10.0``): the resolution must keep every pin and hold
one TensorFlow distribution only.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

PACKAGE = "bn-companion-helpers"


class InstallError(RuntimeError):
    """The install would change, or did change, something besides the package."""


def _canonical(name):
    return name.lower().replace("_", "-").replace(".", "-")


def planned_installs(report):
    """The ``(name, version)`` pairs that a ``pip install --report`` report would install."""
    return [
        (_canonical(item["metadata"]["name"]), item["metadata"]["version"])
        for item in report.get("install", [])
    ]


def others(planned):
    """`planned` without the package itself."""
    return [(n, v) for n, v in planned if n != PACKAGE]


def _pip(python, *args, capture=True):
    result = subprocess.run(
        [python, "-m", "pip", *args],
        capture_output=capture,
        text=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    if result.returncode:
        last = (result.stderr or result.stdout or "").strip().splitlines()
        raise InstallError(f"pip {args[0]} failed: {last[-1] if last else result.returncode}")
    return result.stdout


def dry_run(python, wheel, *also):
    """What ``pip install WHEEL [ALSO...]`` would install into `python`'s environment."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "report.json")
        _pip(python, "install", "--quiet", "--dry-run", "--report", path, wheel, *also)
        with open(path) as f:
            return planned_installs(json.load(f))


def installed(python):
    """``{name: version}`` of every distribution in `python`'s environment."""
    listing = json.loads(_pip(python, "list", "--format", "json"))
    return {_canonical(d["name"]): d["version"] for d in listing}


def into_environment(python, wheel):
    """Steps 1-4 of the module docstring; returns a one-line summary."""
    _pip(python, "uninstall", "--quiet", "--yes", PACKAGE)
    before = installed(python)
    extra = others(dry_run(python, wheel))
    if extra:
        raise InstallError(
            f"pip install of {os.path.basename(wheel)} would also install "
            + ", ".join(f"{n} {v}" for n, v in extra)
            + "; into an environment that has its dependencies it must install nothing else"
        )
    _pip(python, "install", "--quiet", wheel)
    after = installed(python)
    moved = {n: (before[n], after.get(n)) for n in before if after.get(n) != before[n]}
    added = sorted(set(after) - set(before) - {PACKAGE})
    if moved or added:
        raise InstallError(
            f"installing {os.path.basename(wheel)} changed {moved or ''} {added or ''}".strip()
        )
    subprocess.run(
        [python, "-W", "error::ImportWarning", "-c", "import helpers, numpy"], check=True
    )
    fuse_command(python)
    kept = ", ".join(
        f"{n} {after[n]}"
        for n in ("tensorflow", "tensorflow-cpu", "keras", "numpy", "pandas")
        if n in after
    )
    return f"{PACKAGE} {after[PACKAGE]} installed; nothing else changed ({kept} kept)"


#: A small model with one BN to fold, saved for `fuse_command`.
_SAVE_MODEL = """
import sys, keras
m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization(),
                      keras.layers.Dense(2)])
m.save(sys.argv[1])
"""


def fuse_command(python):
    """Save a small BN model in `python`'s environment and fold it with its fusion command."""
    with tempfile.TemporaryDirectory() as tmp:
        model, fused = os.path.join(tmp, "m.keras"), os.path.join(tmp, "fused.keras")
        subprocess.run([python, "-c", _SAVE_MODEL, model], check=True, capture_output=True)
        run = subprocess.run(
            [python, "-m", "helpers.fusion", model, "-o", fused], capture_output=True, text=True
        )
        if run.returncode or not os.path.exists(fused):
            last = (run.stderr or run.stdout).strip().splitlines()
            raise InstallError(f"python -m helpers.fusion failed: {last[-1] if last else ''}")


def pins(specs):
    """``{name: version}`` of requirements written ``name==version``."""
    found = {}
    for spec in specs:
        name, sep, version = spec.partition("==")
        if not sep or not version:
            raise InstallError(f"--with takes pinned requirements such as keras==3.10.0: {spec}")
        found[_canonical(name)] = version
    return found


def into_fresh(python, wheel, also=()):
    """The dry run of ``--fresh``; returns a one-line summary."""
    pinned = pins(also)
    with tempfile.TemporaryDirectory() as tmp:
        venv = os.path.join(tmp, "venv")
        subprocess.run([python, "-m", "venv", venv], check=True)
        planned = dry_run(os.path.join(venv, "bin", "python"), wheel, *also)
    names = dict(planned)
    if PACKAGE not in names:
        raise InstallError(f"pip's dry run would not install {PACKAGE}: {planned}")
    tensorflows = sorted({"tensorflow", "tensorflow-cpu"} & set(names))
    if tensorflows != sorted({"tensorflow", "tensorflow-cpu"} & set(pinned)):
        raise InstallError(f"the dry run would install TensorFlow as {tensorflows or 'nothing'}")
    moved = {n: (v, names.get(n)) for n, v in pinned.items() if names.get(n) != v}
    if moved:
        raise InstallError(f"the dry run would change pinned versions: {moved}")
    kept = f", keeping {' '.join(also)}" if also else ""
    return (
        f"pip would install {PACKAGE} {names[PACKAGE]} with {len(planned) - 1 - len(pinned)} "
        f"other dependencies into a fresh environment{kept}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", action="store_true", help="dry run into a new, empty venv")
    parser.add_argument("python")
    parser.add_argument("wheel")
    parser.add_argument(
        "--with", dest="also", nargs="+", default=[], metavar="SPEC", help="with --fresh"
    )
    args = parser.parse_args(argv)
    if args.also and not args.fresh:
        parser.error("--with goes with --fresh")
    try:
        version = subprocess.run(
            [args.python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        print(f"{args.python} is not a Python interpreter that runs", file=sys.stderr)
        return 1
    try:
        if args.fresh:
            line = into_fresh(args.python, args.wheel, args.also)
        else:
            line = into_environment(args.python, args.wheel)
    except (InstallError, subprocess.CalledProcessError) as err:
        print(f"Python {version}: {err}", file=sys.stderr)
        return 1
    print(f"Python {version}: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

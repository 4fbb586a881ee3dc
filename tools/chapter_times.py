"""How long each chapter takes, measured by the runs and kept in ``tools/chapter_times.json``.

    python -m tools.chapter_times     (prints the stored times, longest first)

``make execute-check`` and ``make nbval`` run JOBS chapters at a time, handed out in the order
they are given; a long chapter that starts last keeps one worker busy while the other sits
idle. So `tools.execute_chapters` and `tools.standalone_nbval` order their chapters longest
first (`longest_first`) by the times stored here, which they rewrite from what they measure
(`record`): wall-clock seconds from the chapter's start to its end, kernel start included.

Two kinds of run, timed apart: ``defaults`` (every chapter at its default parameters: nbval,
``make book``) and ``reduced`` (with ``chapters/reduced_sizes.yml``:
``make execute-check``). Runs with other parameters (``-p``, ``-y``) and chapters outside
``chapters/`` are not recorded. Only the order is used. So that the file does not change on
every run, a time is stored in steps of 5 s, and the file is rewritten only for a chapter it
lacks or when the order changes: a measurement that moved more than a quarter (and more than
5 s) from the stored time and puts the chapters in another order. A slower machine, or one
busy with other work, makes every chapter slower and leaves the file alone. A chapter without
a time goes first (it might be a long one).
"""

import json
import os
import sys

from tools.common import ROOT

FILE = os.path.join(ROOT, "tools", "chapter_times.json")
KINDS = ("defaults", "reduced")
STEP = 5
ABOUT = (
    "Seconds per chapter (kernel start included), measured by tools/execute_chapters.py and "
    "tools/standalone_nbval.py and rewritten by them; see tools/chapter_times.py."
)


def load(path=None):
    """``{kind: {chapter: seconds}}`` from `path` (default `FILE`; empty when it is missing)."""
    path = path or FILE
    try:
        with open(path, encoding="utf-8") as f:
            stored = json.load(f)
    except FileNotFoundError:
        stored = {}
    return {kind: dict(stored.get(kind) or {}) for kind in KINDS}


def rounded(seconds):
    """`seconds` in steps of `STEP` (at least one step)."""
    return max(STEP, STEP * round(seconds / STEP))


def moved(stored, seconds):
    """Whether a measurement of `seconds` is far enough from `stored` to replace it."""
    return stored is None or abs(seconds - stored) > max(STEP, stored / 4)


def _order(times):
    return sorted(times, key=lambda name: (-times[name], name))


def record(kind, measured, path=None):
    """Store the times of `measured` (``{chapter: seconds}``) that moved; return their names.

    The file is written only when a chapter is new or the order changes (see the module's
    docstring), and replaced in one ``os.replace``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    path = path or FILE
    times = load(path)
    changed = [
        name for name, seconds in sorted(measured.items()) if moved(times[kind].get(name), seconds)
    ]
    new = dict(times[kind], **{name: rounded(measured[name]) for name in changed})
    if not changed or (set(new) == set(times[kind]) and _order(new) == _order(times[kind])):
        return []
    times[kind] = new
    text = json.dumps(
        {"about": ABOUT, **{k: dict(sorted(times[k].items())) for k in KINDS}}, indent=2
    )
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    os.replace(temporary, path)
    return changed


def longest_first(paths, kind, path=None):
    """`paths` (chapter files) ordered by their stored time, longest first.

    Chapters without a time come first, then the others; ties keep the order given.
    """
    times = load(path)[kind]

    def cost(p):
        seconds = times.get(os.path.splitext(os.path.basename(p))[0])
        return -float("inf") if seconds is None else -seconds

    return sorted(paths, key=cost)


def main():
    times = load()
    for kind in KINDS:
        print(f"{kind}:")
        for name, seconds in sorted(times[kind].items(), key=lambda item: -item[1]):
            print(f"  {name:28} {seconds:4d} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

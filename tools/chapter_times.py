"""How long each chapter takes: measured by the runs into ``build/``, kept in ``tools/``.

    python -m tools.chapter_times            (prints the times, longest first)
    python -m tools.chapter_times --store    (make chapter-times: this machine's into tools/)

``make execute-check`` and ``make nbval`` run JOBS chapters at a time, handed out in the order
they are given; a long chapter that starts last keeps one worker busy while the other sits
idle. So `tools.execute_chapters` and `tools.standalone_nbval` order their chapters longest
first (`longest_first`) by the times of this machine when it has measured them
(``build/chapter_times.json``, `MEASURED`), else by the tracked ones
(``tools/chapter_times.json``, `FILE`). The runs write only what they measure, into `MEASURED`
(`record`): wall-clock seconds from the chapter's start to its end, kernel start included. A
reader's run never changes a tracked file: the tracked times change only when a developer
stores this machine's on purpose (``make chapter-times``, `store`), and commits them.

Two kinds of run, timed apart: ``defaults`` (every chapter at its default parameters: nbval,
``make book``) and ``reduced`` (with ``chapters/reduced_sizes.yml``:
``make execute-check``). Runs with other parameters (``-p``, ``-y``) and chapters outside
``chapters/`` are not recorded. Only the order is used. So that a file does not change on
every run, a time is stored in steps of 5 s, and a file is rewritten only for a chapter it
lacks or when the order changes: a measurement that moved more than a quarter (and more than
5 s) from the stored time and puts the chapters in another order. A slower machine, or one
busy with other work, makes every chapter slower and leaves the file alone. A chapter without
a time goes first (it might be a long one).
"""

import json
import os
import sys

from tools.common import ROOT

#: The tracked times, committed: the order on a machine that has measured nothing yet.
FILE = os.path.join(ROOT, "tools", "chapter_times.json")
#: What this machine's runs measured (untracked, under build/).
MEASURED = os.path.join(ROOT, "build", "chapter_times.json")
KINDS = ("defaults", "reduced")
STEP = 5
ABOUT = (
    "Seconds per chapter (kernel start included), measured by tools/execute_chapters.py and "
    "tools/standalone_nbval.py into build/chapter_times.json and stored here by "
    "`make chapter-times`; see tools/chapter_times.py."
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

    The file (default `MEASURED`) is written only when a chapter is new or the order changes
    (see the module's docstring), and replaced in one ``os.replace``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    path = path or MEASURED
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
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    os.replace(temporary, path)
    return changed


def times_for(kind):
    """``{chapter: seconds}`` of `kind`: the tracked times, overridden by this machine's."""
    return {**load(FILE)[kind], **load(MEASURED)[kind]}


def longest_first(paths, kind, path=None):
    """`paths` (chapter files) ordered by their time, longest first.

    The times are `path`'s, or by default `times_for` (this machine's where it measured them).
    Chapters without a time come first, then the others; ties keep the order given.
    """
    times = load(path)[kind] if path else times_for(kind)

    def cost(p):
        seconds = times.get(os.path.splitext(os.path.basename(p))[0])
        return -float("inf") if seconds is None else -seconds

    return sorted(paths, key=cost)


def store(source=None, target=None):
    """Store the times measured into `source` (`MEASURED`) into `target` (`FILE`).

    By the same rule as `record`: only a new chapter or another order rewrites `target`.

    Returns:
        ``{kind: [chapters whose time was stored]}``, empty lists when nothing changed.
    """
    measured = load(source or MEASURED)
    return {kind: record(kind, measured[kind], target or FILE) for kind in KINDS}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv not in ([], ["--store"]):
        sys.exit("usage: python -m tools.chapter_times [--store]")
    if argv == ["--store"]:
        if not os.path.exists(MEASURED):
            sys.exit(f"no measured times in {os.path.relpath(MEASURED)}: run make nbval first")
        changed = store()
        for kind, names in changed.items():
            print(f"{kind}: {', '.join(names) + ' stored' if names else 'the order is unchanged'}")
        return 0
    for label, path in (("tracked", FILE), ("measured here", MEASURED)):
        times = load(path)
        for kind in KINDS:
            print(f"{kind} ({label}, {os.path.relpath(path)}):")
            for name, seconds in sorted(times[kind].items(), key=lambda item: -item[1]):
                print(f"  {name:28} {seconds:4d} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What a reader's own run reproduced: one screen, one line per chapter.

    python -m tools.reproduced build/executed [--stored chapters]

``make book`` executes every chapter into ``build/executed`` and ends with this report. For
each chapter it compares the executed notebook with the stored ``chapters/NN_topic.ipynb``:

- the compared outputs, counted as nbval counts them (`compared_cells`): every code cell that
  was run, except those tagged ``nbval-ignore-output`` or ``nbval-skip`` (or marked by nbval's
  comments), compared with nbval's own rules (`comparable`: streams of one name joined, images,
  metadata and execution counts left out, ``nbval_sanitize.cfg`` applied);
- each claim's verdict on this machine beside the stored one (`verdicts`, which reads both
  with the claims index's own verdict function).

Nothing is written; the exit status is 0 when every notebook could be read, whatever differs
(a reader's machine may differ from ours: the report says where), and 1 when one is missing.
"""

import argparse
import glob
import os
import re
import sys

from helpers.chapter import claims

import nbformat
from nbval.plugin import (
    coalesce_streams,
    find_comment_markers,
    find_metadata_tags,
    get_sanitize_patterns,
    transform_streams_for_comparison,
)

from tools.common import CHAPTERS, ROOT, chapter_name

SANITIZE = os.path.join(ROOT, "nbval_sanitize.cfg")
#: What nbval leaves out of the comparison (nbval.plugin.IPyNbFile.skip_compare, without
#: --nbdime): the output's metadata, tracebacks, counters, stream names, and images.
SKIP = {
    "metadata",
    "traceback",
    "prompt_number",
    "output_type",
    "name",
    "execution_count",
    "application/vnd.jupyter.widget-view+json",
    "image/png",
    "image/jpeg",
}
WIDTH = 100


def verdicts(notebook):
    """``{claim id: verdict}`` of an executed notebook, as the claims index computes it.

    The one call into `helpers.chapter.claims` for verdicts: the report compares this
    machine's with the stored ones through it.
    """
    return {record["id"]: verdict for record, _, verdict in claims.records(notebook)}


def sanitize_patterns(path=SANITIZE):
    """The regular expressions of nbval's sanitize file, as ``{regex: replacement}``."""
    with open(path, encoding="utf-8") as f:
        return dict(get_sanitize_patterns(f.read()))


def compared_cells(notebook):
    """``{index: cell}`` of the code cells whose outputs nbval compares."""
    found = {}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code" or cell.get("execution_count") is None:
            continue
        options = dict(find_metadata_tags(cell.metadata))
        options.update(find_comment_markers(cell.source))
        if options.get("skip") or options.get("check") is False:
            continue
        found[index] = cell
    return found


def comparable(outputs, patterns):
    """A cell's outputs as nbval compares them: ``{key: [sanitized values, in order]}``."""
    flat = {}
    copies = [nbformat.from_dict(dict(o)) for o in outputs]
    for output in transform_streams_for_comparison(coalesce_streams(copies)):
        for key, value in output.items():
            if key in SKIP:
                continue
            items = value.items() if key == "data" else [(key, value)]
            for name, item in items:
                if name in SKIP:
                    continue
                if isinstance(item, str):
                    for regex, replacement in patterns.items():
                        item = re.sub(regex, replacement, item)
                flat.setdefault(name, []).append(item)
    return flat


def compare(executed, stored, patterns):
    """``(equal, compared, differing cell indices, cells whose source differs)``."""
    cells = compared_cells(stored)
    ran = executed.cells
    equal, differing, edited = 0, [], []
    for index, cell in cells.items():
        if index >= len(ran) or ran[index].source != cell.source:
            edited.append(index)
        elif comparable(ran[index].outputs, patterns) == comparable(cell.outputs, patterns):
            equal += 1
        else:
            differing.append(index)
    return equal, len(cells), differing, edited


def chapter_lines(name, executed, stored, patterns):
    """One chapter's lines of the report, and its counts.

    Returns:
        ``(lines, counts)``, counts being ``{"equal", "compared", "claims", "same verdict",
        "differ"}`` (``differ``: the number of cells that differ or were edited, plus the
        claims without their stored verdict).
    """
    equal, total, differing, edited = compare(executed, stored, patterns)
    here, before = verdicts(executed), verdicts(stored)
    shown = [
        f"{cid} {verdict}"
        if before.get(cid) == verdict
        else f"{cid} {verdict} (stored: {before.get(cid) or 'none'})"
        for cid, verdict in here.items()
    ]
    shown += [f"{cid} not reported (stored: {v})" for cid, v in before.items() if cid not in here]
    lines = [f"  {name:22} {f'{equal} of {total} equal':18} "]
    for i, part in enumerate(shown or ["-"]):
        part += ";" if i < len(shown) - 1 else ""
        if len(lines[-1]) + len(part) > WIDTH and not lines[-1].endswith(" " * 2):
            lines.append(" " * 44)
        lines[-1] += part + " "
    lines = [line.rstrip() for line in lines]
    if differing:
        lines.append(f"{'':25}differ: cells {', '.join(map(str, differing))}")
    if edited:
        lines.append(
            f"{'':25}source changed since stored (not compared): "
            f"cells {', '.join(map(str, edited))}"
        )
    same = sum(before.get(c) == v for c, v in here.items())
    counts = {
        "equal": equal,
        "compared": total,
        "claims": len(set(here) | set(before)),
        "same verdict": same,
    }
    counts["differ"] = len(differing) + len(edited) + counts["claims"] - same
    return lines, counts


def report(executed_dir, stored_dir=CHAPTERS):
    """The report's lines; raises FileNotFoundError when a notebook is missing."""
    patterns = sanitize_patterns()
    paths = sorted(glob.glob(os.path.join(stored_dir, "[0-9][0-9]_*.ipynb")))
    paths += sorted(glob.glob(os.path.join(stored_dir, "A[0-9]_*.ipynb")))
    lines = [
        f"What this machine reproduced ({os.path.relpath(executed_dir)} against the stored "
        f"{os.path.relpath(stored_dir)}/*.ipynb):",
        f"  {'chapter':22} {'compared outputs':18} claims: verdict here (stored, if it differs)",
    ]
    totals = dict.fromkeys(("equal", "compared", "claims", "same verdict", "differ"), 0)
    for path in paths:
        name = chapter_name(path)
        ran = os.path.join(executed_dir, name + ".ipynb")
        if not os.path.exists(ran):
            raise FileNotFoundError(f"{name} was not executed: {ran} is missing")
        executed = nbformat.read(ran, as_version=4)
        stored = nbformat.read(path, as_version=4)
        chapter, counts = chapter_lines(name, executed, stored, patterns)
        lines += chapter
        totals = {k: totals[k] + counts[k] for k in totals}
    verdict_text = (
        f"{totals['same verdict']} of {totals['claims']} claims have their stored verdict"
    )
    if not totals["differ"]:
        lines.append(
            f"Everything reproduced: {totals['compared']} compared outputs equal, {verdict_text}."
        )
    else:
        lines.append(
            f"{totals['equal']} of {totals['compared']} compared outputs equal; {verdict_text}."
        )
        lines.append(
            "A differing cell: compare build/executed/NN_topic.ipynb with chapters/NN_topic.ipynb"
            " (cells counted from 0); `make store` would store this machine's outputs."
        )
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("executed", metavar="DIR", help="the executed notebooks (build/executed)")
    parser.add_argument("--stored", default=CHAPTERS, metavar="DIR", help="the stored ones")
    args = parser.parse_args(argv)
    try:
        lines = report(args.executed, args.stored)
    except (FileNotFoundError, ValueError) as err:
        print(f"No report of what reproduced: {err}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

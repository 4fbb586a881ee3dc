"""Execute chapters from their MyST source with papermill, never losing a stored notebook.

    python -m tools.execute_chapters (--in-place | --into DIR [--standalone]) [--seed N]
        [--reduced] [-p NAME VALUE ...] [-y YAML] [--jobs N] [--keep-going] NN_topic.md ...

* ``--in-place`` refreshes the stored ``chapters/NN_topic.ipynb``; ``--into DIR`` writes
  ``DIR/NN_topic.ipynb`` (``make run`` uses ``runs/``). Either way a chapter runs into a
  temporary file (under ``build/run/``, or hidden in DIR), and only a run that succeeded is cleaned
  (`clean_notebook`) and moved over its target in one ``os.replace``. An interrupted or failed
  run, a kernel that died or a disk that filled up leave the target as it was; a failed run is
  kept under ``build/failed/``.
* ``--standalone`` runs each chapter's executed ``.ipynb`` (not its ``.md``) copied alone into
  an empty folder outside the repository, as a reader who opens one notebook in Colab runs it:
  only the installed package, nothing of the repository around it.
* ``-p NAME VALUE`` sets a parameter (the value is read as YAML: ``20``, ``0.5``, ``[8, 256]``,
  ``abc``), ``-y`` gives several as YAML, ``--seed N`` sets the seed, and ``--reduced`` adds the
  chapter's smaller sizes from ``chapters/reduced_sizes.yml``. CI uses the last two: at any seed
  and at those sizes, every assert of a chapter still tests its claim.

With ``--jobs N``, N chapters run at once, longest first by the chapters' times
(`tools.chapter_times`); a run at the default or the reduced sizes records what it measured in
``build/chapter_times.json``, never in the tracked ``tools/chapter_times.json``. Run it through
``python -m helpers --`` (the Makefile does), so that every kernel inherits the numerics pins.
It stops at the first chapter that fails (unless ``--keep-going``), names it, its cell and the
first line of the error, lists the chapters refreshed before it, and exits with status 1 (130
when interrupted).

A cell tagged ``raises-exception`` (book code that fails today, shown with its error) must
raise: its error is its output, and the run goes on, as under nbval. Papermill itself would
stop at any error output after the run; `execute` lets it see only the untagged cells, and a
tagged cell that raised nothing fails the run.
"""

import argparse
import concurrent.futures
import os
import shutil
import sys
import tempfile
import time

import jupytext
import nbformat
import papermill
import yaml

from tools import chapter_times
from tools.clean_notebook import clean
from tools.common import (
    ROOT,
    chapter_name,
    copy_alone,
    error_line,
    first_line,
    is_repository_chapter,
)

REDUCED = os.path.join(ROOT, "chapters", "reduced_sizes.yml")


def reduced_sizes(number):
    """The parameters that `chapters/reduced_sizes.yml` gives chapter `number` ('NN')."""
    with open(REDUCED) as f:
        sizes = yaml.safe_load(f) or {}
    return dict(sizes.get(number) or {})


RAISES = "raises-exception"


class _UnraisedError(Exception):
    """A cell tagged ``raises-exception`` ran without raising."""


def _raise_for_untagged_errors(nb, output_path):
    """Papermill's check for errors, blind to the expected errors of ``raises-exception`` cells.

    A tagged cell without an error output is an error of its own: the book's failing code no
    longer fails, and the text around it is wrong. Only the tagged cells before the first
    untagged error count: papermill ran none after it, and that error is the one to report.
    """
    expected = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if RAISES not in cell.metadata.get("tags", []):
            if any(o.output_type == "error" for o in cell.get("outputs", [])):
                break
        else:
            errors = [o for o in cell.outputs if o.output_type == "error"]
            if not errors:
                raise _UnraisedError(
                    f"cell {index} ({first_line(cell.source)[:60]!r}...) is tagged {RAISES} "
                    "but raised nothing"
                )
            expected[index] = cell.outputs
            cell.outputs = [o for o in cell.outputs if o.output_type != "error"]
    try:
        _papermill_raise_for_execution_errors(nb, output_path)
    finally:
        for index, outputs in expected.items():
            nb.cells[index].outputs = outputs


_papermill_raise_for_execution_errors = papermill.execute.raise_for_execution_errors


def execute(md, output, parameters):
    """Execute the chapter `md` into `output`; return (None or the error as one line, seconds)."""
    start = time.monotonic()
    papermill.execute.raise_for_execution_errors = _raise_for_untagged_errors
    try:
        nb = jupytext.read(md)
        papermill.execute_notebook(
            nb,
            output,
            parameters=parameters,
            cwd=os.path.dirname(md),
            progress_bar=False,
            log_output=False,
        )
    except _UnraisedError as err:
        error = str(err)
    except papermill.PapermillExecutionError as err:
        code = first_line(err.source)[:60]
        error = f"cell {err.cell_index} ({code!r}...) raised {err.ename}: {first_line(err.evalue)}"
    except KeyboardInterrupt:
        error = "interrupted"
    except OSError as err:  # e.g. no space left on device, file too large
        error = f"could not write {err.filename or output}: {err.strerror or err}"
    except Exception as err:
        error = error_line(err)
        if "DeadKernel" in type(err).__name__:
            error = f"the kernel died ({first_line(err) or 'killed'})"
    else:
        error = None
    finally:
        papermill.execute.raise_for_execution_errors = _papermill_raise_for_execution_errors
    return error, time.monotonic() - start


def execute_all(jobs, runs):
    """Execute ``runs`` (tuples of `execute`'s arguments), `jobs` at a time, in order.

    With one job the chapters run one after the other, and a caller that stops at a failure
    starts no further chapter.
    """
    if jobs == 1:
        for run in runs:
            yield execute(*run)
        return
    pool = concurrent.futures.ProcessPoolExecutor(jobs)
    try:
        for future in [pool.submit(execute, *run) for run in runs]:
            yield future.result()
    finally:  # a caller that stopped early: start no further chapter
        pool.shutdown(wait=True, cancel_futures=True)


def parse_parameters(pairs, yaml_text):
    """`-p NAME VALUE` pairs and a `-y` YAML mapping as one dict (values read as YAML)."""
    parameters = {}
    if yaml_text:
        given = yaml.safe_load(yaml_text)
        if not isinstance(given, dict):
            raise ValueError(f"-y must be a YAML mapping such as 'epochs: 5', got {yaml_text!r}")
        parameters.update(given)
    for name, value in pairs or []:
        parameters[name] = yaml.safe_load(value) if value.strip() else value
    return parameters


def _discard(path):
    try:
        os.remove(path)
    except OSError:
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--in-place", action="store_true", help="refresh the stored notebooks")
    where.add_argument("--into", metavar="DIR", help="write the executed copies to DIR")
    parser.add_argument("--seed", type=int, help="run every chapter at this seed")
    parser.add_argument("--reduced", action="store_true", help="use chapters/reduced_sizes.yml")
    parser.add_argument(
        "--standalone",
        action="store_true",
        help="run each chapter's .ipynb alone in an empty folder outside the repository",
    )
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        help="set a parameter (value read as YAML)",
    )
    parser.add_argument("-y", "--yaml", help="parameters as a YAML mapping")
    parser.add_argument(
        "--keep-going", action="store_true", help="run every chapter even after a failure"
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="chapters executed at once (with --into only)"
    )
    parser.add_argument(
        "--build", default=os.path.join(ROOT, "build"), help="where run/ and failed/ go"
    )
    parser.add_argument("chapters", nargs="+", metavar="NN_topic.md")
    args = parser.parse_args(argv)
    if args.jobs < 1 or (args.jobs > 1 and args.in_place):
        parser.error(
            "--jobs must be 1 or more, and 1 with --in-place (each chapter is replaced in turn)"
        )
    if args.standalone and args.in_place:
        parser.error("--standalone runs copies, so it goes with --into, not --in-place")
    try:
        given = parse_parameters(args.parameter, args.yaml)
    except (ValueError, yaml.YAMLError) as err:
        parser.error(f"cannot read the parameters: {first_line(err)}")
    missing = [md for md in args.chapters if not os.path.isfile(md)]
    if missing:
        parser.error(f"no such chapter: {missing[0]}")
    alone = tempfile.mkdtemp(prefix="bn-companion-alone-") if args.standalone else None
    try:
        return _run(args, given, alone)
    finally:
        if alone:
            shutil.rmtree(alone, ignore_errors=True)


def _run(args, given, alone):
    """Execute every chapter of `args` (copies under `alone` if set); return the exit status."""
    # The temporary file sits next to its target's folder: os.replace never crosses devices.
    work = os.path.join(args.build, "run") if args.in_place else args.into
    os.makedirs(work, exist_ok=True)
    chapters = args.chapters
    if args.jobs > 1:  # one chapter at a time keeps the order given (and stops in it)
        chapters = chapter_times.longest_first(chapters, _kind(args))
    runs, targets, sources = [], [], []
    for md in chapters:
        name = chapter_name(md)
        parameters = dict(reduced_sizes(name[:2])) if args.reduced else {}
        if args.seed is not None:
            parameters["seed"] = args.seed
        parameters.update(given)
        target = (
            md[: -len(".md")] + ".ipynb"
            if args.in_place
            else os.path.join(args.into, name + ".ipynb")
        )
        fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".ipynb", dir=work)
        os.close(fd)
        runs.append((copy_alone(md, alone) if alone else md, temporary, parameters))
        targets.append(target)
        sources.append(md)

    refreshed, failed, measured = [], [], {}
    try:
        for (md, temporary, parameters), target, source, (error, seconds) in zip(
            runs, targets, sources, execute_all(args.jobs, runs)
        ):
            name = chapter_name(md)
            shown = " ".join(f"{k}={v}" for k, v in parameters.items())
            label = f"{name}{f' ({shown})' if shown else ''}"
            if not error:
                try:
                    clean(temporary)
                    nbformat.validate(nbformat.read(temporary, as_version=4))
                    os.replace(temporary, target)
                except (OSError, ValueError) as err:
                    error = f"could not store the executed notebook: {err}"
            if error:
                kept = None
                if os.path.exists(temporary) and os.path.getsize(temporary):
                    os.makedirs(os.path.join(args.build, "failed"), exist_ok=True)
                    kept = os.path.join(args.build, "failed", name + ".ipynb")
                    shutil.move(temporary, kept)
                _discard(temporary)
                print(f"FAILED {label} after {seconds:.0f} s: {error}", file=sys.stderr)
                if kept:
                    print(f"  the failed run is in {os.path.relpath(kept)}", file=sys.stderr)
                if os.path.exists(target):
                    print(f"  {os.path.relpath(target)} is unchanged", file=sys.stderr)
                if refreshed:
                    print(f"  refreshed before it: {', '.join(refreshed)}", file=sys.stderr)
                failed.append(name)
                if error == "interrupted" or not args.keep_going:
                    return 130 if error == "interrupted" else 1
                continue
            refreshed.append(name)
            if is_repository_chapter(source):
                measured[name] = seconds
            print(f"executed {label} in {seconds:.0f} s -> {os.path.relpath(target)}")
    except KeyboardInterrupt:
        print(
            "interrupted; every notebook not listed above as executed is unchanged",
            file=sys.stderr,
        )
        return 130
    finally:
        for _, temporary, _ in runs:
            _discard(temporary)
        _record(args, given, measured)
    if failed:
        print(f"{len(failed)} chapter(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _kind(args):
    """The kind of run whose times `args` measure (`tools.chapter_times.KINDS`)."""
    return "reduced" if args.reduced else "defaults"


def _record(args, given, measured):
    """Store the times of a run at the default or reduced sizes (not with -p or -y).

    Only runs on Keras's TensorFlow backend count: the times order the TensorFlow runs.
    """
    if given or not measured:
        return
    if (os.environ.get("KERAS_BACKEND") or "tensorflow").strip().lower() != "tensorflow":
        return
    try:
        chapter_times.record(_kind(args), measured)
    except OSError as err:  # the times only order later runs: say so and go on
        print(f"could not store the chapters' times: {err}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())

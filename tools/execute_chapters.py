"""Execute chapters from their MyST source with papermill, one after the other.

    python tools/execute_chapters.py [--in-place | --into DIR] [--seed N] [--reduced] NN_topic.md ...

* ``--in-place`` refreshes the stored ``chapters/NN_topic.ipynb``. Each chapter runs into a
  file under ``build/run/``; only a run that succeeded is cleaned (`clean_notebook`) and then
  moved over the stored notebook in one ``os.replace``. An interrupted or failed run leaves the
  stored notebook as it was, and a failed one is kept under ``build/failed/``.
* ``--into DIR`` writes the executed copies to DIR and leaves the chapters alone.
* ``--seed N`` runs every chapter at another seed; ``--reduced`` adds the chapter's smaller
  sizes from ``chapters/reduced_sizes.yml``. CI uses both: at any seed and at those sizes, every
  assert of a chapter still tests its claim.

Run it through ``python -m helpers --`` (the Makefile does), so that every kernel inherits the
numerics pins. It stops at the first chapter that fails, names it, its cell and the first line
of the error, and exits with status 1.
"""

import argparse
import concurrent.futures
import os
import sys
import time

import jupytext
import nbformat
import papermill
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clean_notebook import clean  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REDUCED = os.path.join(ROOT, "chapters", "reduced_sizes.yml")


def reduced_sizes(number):
    """The parameters that `chapters/reduced_sizes.yml` gives chapter `number` ('NN')."""
    with open(REDUCED) as f:
        sizes = yaml.safe_load(f) or {}
    return dict(sizes.get(number) or {})


def execute(md, output, parameters):
    """Execute the chapter `md` into `output`; return (None or the error as one line, seconds)."""
    start = time.monotonic()
    nb = jupytext.read(md)
    try:
        papermill.execute_notebook(nb, output, parameters=parameters, cwd=os.path.dirname(md),
                                   progress_bar=False, log_output=False)
    except papermill.PapermillExecutionError as err:
        first = (str(err.evalue).strip().splitlines() or [""])[0]
        code = (err.source.strip().splitlines() or [""])[0][:60]
        return f"code cell {err.cell_index} ({code!r}...) raised {err.ename}: {first}", time.monotonic() - start
    except KeyboardInterrupt:
        return "interrupted", time.monotonic() - start
    return None, time.monotonic() - start


def execute_all(jobs, runs):
    """Execute ``runs`` (tuples of `execute`'s arguments), `jobs` at a time, yielding results in order.

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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--in-place", action="store_true", help="refresh the stored notebooks")
    where.add_argument("--into", metavar="DIR", help="write the executed copies to DIR")
    parser.add_argument("--seed", type=int, help="run every chapter at this seed")
    parser.add_argument("--reduced", action="store_true", help="use chapters/reduced_sizes.yml")
    parser.add_argument("--keep-going", action="store_true", help="run every chapter even after a failure")
    parser.add_argument("--jobs", type=int, default=1, help="chapters executed at once (with --into only)")
    parser.add_argument("--build", default=os.path.join(ROOT, "build"), help="where run/ and failed/ go")
    parser.add_argument("chapters", nargs="+", metavar="NN_topic.md")
    args = parser.parse_args(argv)
    if args.jobs < 1 or (args.jobs > 1 and args.in_place):
        parser.error("--jobs must be 1 or more, and 1 with --in-place (each chapter is replaced in turn)")

    runs = []
    for md in args.chapters:
        name = os.path.splitext(os.path.basename(md))[0]
        parameters = {"seed": args.seed} if args.seed is not None else {}
        if args.reduced:
            parameters.update(reduced_sizes(name[:2]))
        folder = os.path.join(args.build, "run") if args.in_place else args.into
        os.makedirs(folder, exist_ok=True)
        runs.append((md, os.path.join(folder, name + ".ipynb"), parameters))

    refreshed, failed = [], []
    for (md, output, parameters), (error, seconds) in zip(runs, execute_all(args.jobs, runs)):
        name = os.path.splitext(os.path.basename(md))[0]
        shown = " ".join(f"{k}={v}" for k, v in parameters.items())
        if error:
            kept = output
            if args.in_place and os.path.exists(output):
                os.makedirs(os.path.join(args.build, "failed"), exist_ok=True)
                kept = os.path.join(args.build, "failed", name + ".ipynb")
                os.replace(output, kept)
            print(f"FAILED {name}{f' ({shown})' if shown else ''} after {seconds:.0f} s: {error}",
                  file=sys.stderr)
            if os.path.exists(kept):
                print(f"  the failed run is in {os.path.relpath(kept)}", file=sys.stderr)
            if args.in_place:
                print(f"  {os.path.relpath(md[: -len('.md')] + '.ipynb')} is unchanged", file=sys.stderr)
                if refreshed:
                    print(f"  refreshed before it: {', '.join(refreshed)}", file=sys.stderr)
            failed.append(name)
            if error == "interrupted" or not args.keep_going:
                return 1
            continue
        if args.in_place:
            clean(output)
            nbformat.validate(nbformat.read(output, as_version=4))
            os.replace(output, md[: -len(".md")] + ".ipynb")
            refreshed.append(name)
        print(f"executed {name}{f' ({shown})' if shown else ''} in {seconds:.0f} s")
    if failed:
        print(f"{len(failed)} chapter(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

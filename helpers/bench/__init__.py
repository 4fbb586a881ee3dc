"""The stored results of ``make bench``, which ship inside the package, and their one reader.

The scripts of ``bench/`` measure and write ``<name>.json`` (the figures) and ``<name>.md`` (a
Markdown table) here with `store`; chapters 06 and 07 read them with `stored`, wherever they
run (Colab included): timings are measured by the benchmarks, interleaved and repeated, not by
the chapters.
"""

import json
import os
import platform
import time
from importlib import resources

__all__ = ["BENCHES", "CALL_PATH", "STATISTICS", "batch_entries", "meta", "store", "stored"]

#: How the latency benchmarks call each variant, stored with their results.
CALL_PATH = (
    "Keras: concrete tf.function of model(x, training=False) + .numpy(); "
    "TFLite: invoke() + get_tensor(), XNNPACK delegate, num_threads=2; "
    "Keras variants interleaved with each other, TFLite variants with each other"
)
#: What the latency benchmarks report of their repetitions.
STATISTICS = (
    "median and IQR over reps; ratios are medians (and quartiles) of per-repetition ratios"
)

#: The stored results of ``make bench``: file stem -> what it measured.
BENCHES = {
    "latency": "inference latency of the book's two models, before and after fusion (C3)",
    "networks": "inference latency of MobileNetV2, EfficientNetB0 and ResNet50 (C3)",
    "wall_time": "wall time to a target accuracy with and without BN (C6)",
}


def batch_entries(batch_sizes, reps):
    """The empty per-batch records a latency benchmark fills in, one per batch size."""
    return {
        str(b): {"inner_calls": {}, "reps": reps, "variants": {}, "ratios": {}}
        for b in batch_sizes
    }


def meta(started, load_start=None, **extra):
    """What every stored result says about the run that measured it.

    Args:
        started: ``time.time()`` when the measurements began.
        load_start: the 1-minute load average then, if the script read it.
        **extra: the script's own fields (its repetitions, its call path, ...).

    Returns:
        A dict: TensorFlow's, Keras's and Python's versions, the CPU count and machine, `extra`,
        the load average at the start (when given) and now, and the seconds the run took.
    """
    import keras
    import tensorflow as tf

    record = {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        **extra,
    }
    if load_start is not None:
        record["load_average_1min_start"] = load_start
    record["load_average_1min"] = os.getloadavg()[0]
    record["seconds"] = round(time.time() - started, 1)
    return record


def _known(name):
    if name not in BENCHES:
        raise ValueError(f"name must be one of {', '.join(BENCHES)}, got {name!r}")


def stored(name):
    """The stored results of one part of ``make bench``.

    Args:
        name: a key of `BENCHES`: ``"latency"``, ``"networks"`` or ``"wall_time"``.

    Returns:
        ``(results, table)``: the parsed ``<name>.json`` and the Markdown of ``<name>.md``.

    Raises:
        ValueError: `name` is not a key of `BENCHES`.
        FileNotFoundError: the results were never stored (run ``make bench``).
    """
    _known(name)
    folder = resources.files(__name__)
    if not (folder / f"{name}.json").is_file():
        raise FileNotFoundError(
            f"helpers/bench/{name}.json is missing: run make bench to measure {BENCHES[name]}"
        )
    results = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    return results, (folder / f"{name}.md").read_text(encoding="utf-8")


def store(name, results, table, folder):
    """Write the results of one part of ``make bench`` for `stored` to read.

    Args:
        name: a key of `BENCHES`.
        results: the figures, a dict that ``json`` can write (NumPy numbers become floats).
        table: the Markdown of the results.
        folder: where to write ``<name>.json`` and ``<name>.md`` (created if missing); the
            package's own folder, ``helpers/bench``, is the one `stored` reads.

    Returns:
        The paths of the two files written.

    Raises:
        ValueError: `name` is not a key of `BENCHES`.
    """
    _known(name)
    os.makedirs(folder, exist_ok=True)
    paths = os.path.join(folder, f"{name}.json"), os.path.join(folder, f"{name}.md")
    with open(paths[0], "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2, default=float)
        f.write("\n")
    with open(paths[1], "w", encoding="utf-8") as f:
        f.write(table)
    return paths

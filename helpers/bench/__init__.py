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

__all__ = [
    "BENCHES",
    "CALL_PATH",
    "STATISTICS",
    "batch_entries",
    "meta",
    "ratio_medians",
    "ratio_ranges",
    "seed_medians",
    "seed_noise",
    "slowest",
    "slowest_ratios",
    "store",
    "stored",
]

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


def _entries(results):
    for group in ("models", "networks"):
        if isinstance(results, dict) and group in results:
            return results[group]
    raise ValueError(
        "results must be the latency or networks results of stored(), with a 'models' or "
        "'networks' entry"
    )


def ratio_medians(results, ratio="original/fused"):
    """The median of one latency ratio for every model (or network) and batch size.

    Args:
        results: the results of ``stored("latency")`` or ``stored("networks")``.
        ratio: the ratio's name, e.g. ``"original/fused"`` or ``"fused/no_bn"``.

    Returns:
        A dict ``{(name, batch size as stored): median}``.

    Raises:
        ValueError: `results` holds no models or networks, or `ratio` was not measured.
    """
    medians = {}
    for name, entry in _entries(results).items():
        for batch, figures in entry["batches"].items():
            if ratio not in figures["ratios"]:
                raise ValueError(
                    f"ratio must be one of {', '.join(figures['ratios'])}, got {ratio!r}"
                )
            medians[name, batch] = figures["ratios"][ratio]["median"]
    return medians


def ratio_ranges(results, ratio="original/fused"):
    """The smallest and largest median of one latency ratio over the models, per batch size.

    Args:
        results: as `ratio_medians`.
        ratio: as `ratio_medians`.

    Returns:
        A dict ``{batch size as stored: (smallest, largest)}``.
    """
    by_batch = {}
    for (_, batch), median in ratio_medians(results, ratio).items():
        by_batch.setdefault(batch, []).append(median)
    return {batch: (min(v), max(v)) for batch, v in by_batch.items()}


def slowest(entry, ratio="original/fused"):
    """The statistics of `ratio` at the batch size where it is smallest (fusing gains least).

    Args:
        entry: one model's results, ``stored("latency")[0]["models"][name]``.
        ratio: the ratio's name.

    Returns:
        A dict with ``"median"``, ``"q25"`` and ``"q75"``.
    """
    if not isinstance(entry, dict) or "batches" not in entry:
        raise ValueError("entry must be one model's results, with a 'batches' entry")
    return min((b["ratios"][ratio] for b in entry["batches"].values()), key=lambda r: r["median"])


def _seeds(results, key):
    if not isinstance(results, dict) or "seeds" not in results:
        raise ValueError("results must be the wall_time results of stored(), with 'seeds'")
    known = next(iter(results["seeds"].values()), {})
    if key not in known:
        raise ValueError(f"key must be one of {', '.join(known)}, got {key!r}")
    return {int(seed): figures[key] for seed, figures in results["seeds"].items()}


def seed_medians(results, key):
    """The median of one wall-time figure per stored seed.

    Args:
        results: the results of ``stored("wall_time")``.
        key: ``"time_ratio"`` or ``"step_slowdown"``.

    Returns:
        A dict ``{seed: median}``.

    Raises:
        ValueError: `results` is not the wall-time results or `key` is not one of its figures.
    """
    return {seed: v["median"] for seed, v in _seeds(results, key).items()}


def seed_noise(results, key):
    """Half the largest inter-quartile range of one wall-time figure over the stored seeds.

    Args:
        results: as `seed_medians`.
        key: as `seed_medians`.

    Returns:
        A float, the figure's noise in its own unit.
    """
    return max(v["q75"] - v["q25"] for v in _seeds(results, key).values()) / 2


def slowest_ratios(results, ratio="original/fused"):
    """Per model, `ratio` at its `slowest` batch size, and the noise of that figure.

    Args:
        results: the results of ``stored("latency")``.
        ratio: the ratio's name.

    Returns:
        ``(medians, noise)``: dicts ``{model: median}`` and ``{model: half the IQR}``.
    """
    worst = {name: slowest(entry, ratio) for name, entry in _entries(results).items()}
    medians = {name: r["median"] for name, r in worst.items()}
    return medians, {name: (r["q75"] - r["q25"]) / 2 for name, r in worst.items()}

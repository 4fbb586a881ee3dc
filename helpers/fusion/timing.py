"""Timing inference fairly: Keras models traced once, and callables timed interleaved.

Used by chapter 06 and ``make bench`` to time a model before and after fusion: the benchmarks
time each group of variants with `time_group` and store the results with `helpers.bench.store`.
"""

from helpers import checks

import numpy as np

__all__ = ["keras_inference_fn", "time_group", "time_interleaved"]


def keras_inference_fn(model, x):
    """A no-argument callable that runs `model` on `x` in inference mode, as timed code should.

    The model is traced once into a concrete ``tf.function`` for the shape of `x`, so each call
    runs the graph and converts the output to NumPy, without Keras's per-call Python overhead
    (the way both chapter 06 and ``make bench`` time Keras models).

    Args:
        model: a built Keras model.
        x: the input batch (array or tensor); its shape is fixed by the trace.

    Returns:
        A callable with no arguments returning ``model(x, training=False)`` as a NumPy array.
    """
    import tensorflow as tf

    x = tf.convert_to_tensor(x, dtype=tf.float32)
    f = tf.function(lambda t: model(t, training=False)).get_concrete_function(
        tf.TensorSpec(x.shape, tf.float32)
    )
    return lambda: f(x).numpy()


def time_interleaved(fns, reps=30, inner=1, warmup=3):
    """Time several callables interleaved (A B C A B C ...), warm-up excluded.

    Each repetition calls every function `inner` times in a row and records the mean time per
    call; the order of the functions rotates from one repetition to the next, so slow drifts of
    the machine (other processes, clock changes) hit every function alike.

    Args:
        fns: dict ``name -> callable`` taking no arguments.
        reps: number of repetitions (>= 1) kept for the statistics.
        inner: calls per function per repetition (>= 1).
        warmup: calls per function before timing starts (>= 0), not recorded.

    Returns:
        dict ``name -> numpy array of shape (reps,)`` of seconds per call.

    Raises:
        ValueError: `fns` is empty or holds a non-callable, or a count is out of range.
    """
    import time

    if not isinstance(fns, dict) or not fns or not all(callable(f) for f in fns.values()):
        raise ValueError(
            "fns must be a non-empty dict mapping names to callables without arguments."
        )
    reps = checks.integer(reps, "reps", minimum=1)
    inner = checks.integer(inner, "inner", minimum=1)
    warmup = checks.integer(warmup, "warmup", minimum=0)
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    out = {name: np.empty(reps) for name in names}
    for r in range(reps):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            f = fns[name]
            start = time.perf_counter()
            for _ in range(inner):
                f()
            out[name][r] = (time.perf_counter() - start) / inner
    return out


def time_group(fns, entry, *, reps, target_ms, ratios=(), probe_reps=3, probe_warmup=3, warmup=2):
    """Time one group of callables interleaved and store medians, IQRs and paired ratios.

    A probe (`time_interleaved` with `probe_reps` repetitions of one call each, after
    `probe_warmup` warm-up calls) sets the calls per repetition so that the slowest callable
    takes about `target_ms` per measurement; then `reps` repetitions are timed, after `warmup`
    calls. Ratios are computed only between callables of the group, so they are paired
    repetition by repetition.

    Args:
        fns: dict ``name -> callable`` taking no arguments, as for `time_interleaved`.
        entry: dict with ``"variants"``, ``"inner_calls"`` and ``"ratios"`` dicts, updated in
            place: ``variants[name] = {"median_us", "iqr_us"}`` (microseconds per call),
            ``inner_calls[name]``, and for each pair ``(a, b)`` of `ratios` whose both names
            are in `fns`, ``ratios["a/b"] = {"median", "q25", "q75"}`` of the per-repetition
            ratios of their times.
        reps: timed repetitions (>= 1).
        target_ms: milliseconds the slowest callable should take per measurement.
        ratios: pairs of names ``(a, b)``.
        probe_reps, probe_warmup, warmup: repetitions and warm-up calls of the probe, and
            warm-up calls of the timed run.

    Raises:
        ValueError: as `time_interleaved`.
    """
    probe = time_interleaved(fns, reps=probe_reps, inner=1, warmup=probe_warmup)
    slowest = max(float(np.median(v)) for v in probe.values())
    inner = max(1, int(round(target_ms / 1000 / slowest)))
    times = time_interleaved(fns, reps=reps, inner=inner, warmup=warmup)
    for name, t in times.items():
        q25, q50, q75 = np.percentile(t * 1e6, [25, 50, 75])
        entry["variants"][name] = {"median_us": q50, "iqr_us": q75 - q25}
        entry["inner_calls"][name] = inner
    for a, b in ratios:
        if a in times and b in times:
            lo, mid, hi = np.percentile(times[a] / times[b], [25, 50, 75])
            entry["ratios"][f"{a}/{b}"] = {"median": mid, "q25": lo, "q75": hi}

"""Inference latency of real `keras.applications` networks before and after folding BN (C3).

The book's two models (`fusion_latency.py`) are small Dense stacks; the networks people deploy
are convolutional. This times MobileNetV2, EfficientNetB0 and ResNet50 (``weights=None``, BN
layers calibrated as after training by `helpers.fusion.applications.application`, at
``--size`` pixels) at batch sizes 1 and 32, with the method of `fusion_latency.py`
(`helpers.fusion.timing.time_group`):

* ``original`` and ``fused`` (`helpers.fusion.fuse`), Keras, interleaved with each other;
* ``tflite_original`` and ``tflite_fused``, TensorFlow Lite's conversion of each (float32,
  default converter, XNNPACK, 2 threads), interleaved with each other.

Medians and inter-quartile ranges over ``--reps`` repetitions; ratios are medians of the
per-repetition (paired) ratios. The number of repetitions is bounded so that the whole run
stays within a few minutes on 2 cores; ``--families`` runs some of the networks and merges
them into the stored results, so that the three can be measured one after the other.

Usage: ``python bench/network_latency.py --out helpers/bench`` (what ``make bench`` runs);
writes ``networks.json`` and ``networks.md``, which chapter 06 reads
(`helpers.bench.stored`).
"""

import argparse
import json
import os
import time
import warnings

import helpers
from helpers.bench import CALL_PATH, STATISTICS, batch_entries, meta, store

FAMILIES = ("MobileNetV2", "EfficientNetB0", "ResNet50")
BATCH_SIZES = (1, 32)
VARIANTS = ("original", "fused", "tflite_original", "tflite_fused")
RATIOS = (("original", "fused"), ("tflite_original", "tflite_fused"))


def measure(name, args):
    """One family: build, fuse, convert, time; returns its JSON entry."""
    from helpers.fusion import applications, fuse
    from helpers.fusion.tflite import tflite_ops, tflite_predict, to_tflite
    from helpers.fusion.timing import keras_inference_fn, time_group

    import numpy as np
    import tensorflow as tf

    load_start, started = os.getloadavg()[0], time.time()
    # A shorter probe and warm-up than fusion_latency.py's, to keep the run within minutes.
    timed = dict(
        reps=args.reps,
        target_ms=args.target_ms,
        ratios=RATIOS,
        probe_reps=2,
        probe_warmup=1,
        warmup=1,
    )
    helpers.setup(args.seed)
    model = applications.application(name, size=args.size, seed=args.seed)
    fused, report = fuse(model, n_random=4, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    x_all = rng.standard_normal((max(BATCH_SIZES), args.size, args.size, 3)).astype(np.float32)
    entry = {
        "input": f"{args.size}x{args.size}x3",
        "bn_layers": len(report.records),
        "bn_layers_folded": len(report.folded),
        "bn_layers_left": len(report.left),
        "batches": batch_entries(BATCH_SIZES, args.reps),
    }
    for batch in BATCH_SIZES:
        x = tf.constant(x_all[:batch])
        fns = {k: keras_inference_fn(m, x) for k, m in (("original", model), ("fused", fused))}
        time_group(fns, entry["batches"][str(batch)], **timed)
    tfl = {
        "tflite_original": to_tflite(model)[0],
        "tflite_fused": to_tflite(fused)[0],
    }
    entry["tflite_ops"] = {k: len(tflite_ops(c)[0]) for k, c in tfl.items()}
    reference = model(x_all[:2], training=False).numpy()
    for content in tfl.values():
        np.testing.assert_allclose(tflite_predict(content, x_all[:2]), reference, atol=1e-3)
    for batch in BATCH_SIZES:
        fns = {}
        for key, content in tfl.items():
            it = tf.lite.Interpreter(model_content=content, num_threads=2)
            inp, out = it.get_input_details()[0], it.get_output_details()[0]
            it.resize_tensor_input(inp["index"], [batch, args.size, args.size, 3])
            it.allocate_tensors()
            it.set_tensor(inp["index"], x_all[:batch])
            fns[key] = lambda it=it, o=out["index"]: (it.invoke(), it.get_tensor(o))
        time_group(fns, entry["batches"][str(batch)], **timed)
        print(
            f"{name} batch {batch:3d}: "
            + ", ".join(
                f"{v} {entry['batches'][str(batch)]['variants'][v]['median_us'] / 1e3:.1f} ms"
                for v in VARIANTS
            ),
            flush=True,
        )
    entry["load_average_1min"] = [load_start, os.getloadavg()[0]]
    entry["seconds"] = round(time.time() - started, 1)
    return entry


def markdown(results):
    """The results as a Markdown table (milliseconds per call)."""
    meta = results["meta"]
    loads = [x for e in results["networks"].values() for x in e["load_average_1min"]]
    lines = [
        "Inference latency per call, ms: median (IQR) of interleaved repetitions "
        f"(`keras.applications`, weights=None, BN calibrated as after training, input "
        f"{meta['size']}x{meta['size']}x3). TensorFlow {meta['tensorflow']}, Keras "
        f"{meta['keras']}, {meta['cpu_count']} CPUs shared with other work: 1-min load average "
        f"from {min(loads):.1f} to {max(loads):.1f} at the start and end of each network.",
        "",
        "| network | BN layers (left by fuse) | batch | reps | original | fused | TFLite original "
        "| TFLite fused | original/fused | TFLite orig./fused |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, entry in results["networks"].items():
        for batch, b in entry["batches"].items():
            v = b["variants"]
            cells = [
                f"{v[n]['median_us'] / 1e3:.2f} ({v[n]['iqr_us'] / 1e3:.2f})" for n in VARIANTS
            ]
            ratios = [f"{b['ratios'][f'{a}/{c}']['median']:.3f}" for a, c in RATIOS]
            lines.append(
                f"| {name} | {entry['bn_layers']} ({entry['bn_layers_left']}) | {batch} "
                f"| {b['reps']} | " + " | ".join(cells + ratios) + " |"
            )
    lines += ["", f"Call path: {meta['call_path']}.", ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="helpers/bench", help="folder of networks.json/.md")
    parser.add_argument("--reps", type=int, default=10, help="timed repetitions (>= 5)")
    parser.add_argument("--size", type=int, default=160, help="input height and width")
    parser.add_argument("--target-ms", type=float, default=20.0, help="time per measurement")
    parser.add_argument(
        "--families",
        nargs="+",
        choices=FAMILIES,
        default=list(FAMILIES),
        help="networks to measure now; the others keep their stored results",
    )
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    if args.reps < 5:
        parser.error("--reps must be at least 5")
    if args.size < 32:
        parser.error("--size must be at least 32 (the families' smallest input)")

    load_start = os.getloadavg()[0]
    helpers.setup(args.seed)
    warnings.filterwarnings("ignore", message=r"\s*Warning: tf.lite.Interpreter is deprecated")

    path = os.path.join(args.out, "networks.json")
    results = {"networks": {}}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            stored = json.load(f)
        if stored.get("meta", {}).get("size") == args.size:
            results["networks"] = stored["networks"]
    started = time.time()
    for name in args.families:
        results["networks"][name] = measure(name, args)
    results["networks"] = {k: results["networks"][k] for k in FAMILIES if k in results["networks"]}
    results["meta"] = meta(
        started,
        load_start,
        size=args.size,
        families_measured_last=args.families,
        call_path=CALL_PATH,
        statistics=STATISTICS,
    )
    store("networks", results, markdown(results), args.out)
    print(markdown(results))


if __name__ == "__main__":
    main()

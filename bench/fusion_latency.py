"""Inference latency of the book's two BN models, before and after folding BN away (claim C3).

For each of the book's two models (p. 342: BN after each hidden layer's activation and on the
input; p. 343: BN before each activation, Dense layers without bias), and for batch sizes 1, 32
and 1024, this times five variants interleaved in one process:

* ``original``: the trained Keras model with its BN layers;
* ``fused``: `helpers.fusion.fuse(original)`;
* ``no_bn``: the same architecture built without BN (Dense layers with bias), holding the fused
  weights, i.e. the floor that fusion can reach;
* ``tflite_original`` / ``tflite_fused``: TensorFlow Lite's conversion of each (float32, default
  converter, default XNNPACK delegate, 2 threads).

Keras variants are called as a traced ``tf.function`` of ``model(x, training=False)`` with a fixed
input shape, followed by ``.numpy()`` on the output; TFLite variants as ``invoke()`` followed by
``get_tensor()`` (the input is set once). The three Keras variants are interleaved with each
other, and the two TFLite variants with each other (TFLite's spinning worker threads would slow
a TensorFlow call that follows them). Each repetition times every variant of a group in turn,
rotating the order, after a warm-up; the statistics are medians and inter-quartile ranges over the
repetitions, and the ratios are medians of the per-repetition (paired) ratios
(`helpers.fusion.timing.time_group`).

Usage: ``python bench/fusion_latency.py --out helpers/bench`` (what ``make bench`` runs). The
results ship inside the package, so that chapter 06 reads them wherever it runs
(`helpers.bench.stored`).
"""

import argparse
import os
import time
import warnings

import helpers
from helpers.bench import CALL_PATH, STATISTICS, batch_entries, meta, store

BATCH_SIZES = (1, 32, 1024)
VARIANTS = ("original", "fused", "no_bn", "tflite_original", "tflite_fused")
RATIOS = (("original", "fused"), ("fused", "no_bn"), ("tflite_original", "tflite_fused"))


def build(placement, with_bn=True):
    """The book's model with BN after (p. 342) or before (p. 343) the activations."""
    import keras

    L = keras.layers
    bn = (lambda: [L.BatchNormalization()]) if with_bn else (lambda: [])
    layers = [keras.Input((28, 28)), L.Flatten(), *bn()]
    for units in (300, 100):
        if placement == "after":
            layers += [L.Dense(units, activation="elu", kernel_initializer="he_normal"), *bn()]
        else:
            layers += [
                L.Dense(units, kernel_initializer="he_normal", use_bias=not with_bn),
                *bn(),
                L.Activation("elu"),
            ]
    layers.append(L.Dense(10, activation="softmax"))
    return keras.Sequential(layers, name=f"bn_{placement}" if with_bn else f"no_bn_{placement}")


README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
MARKERS = ("<!-- bench:start (written by make bench) -->", "<!-- bench:end -->")


def update_readme(table, path=README):
    """Replace the README's benchmark section (between `MARKERS`) with the new results."""
    with open(path) as f:
        text = f.read()
    start, end = text.find(MARKERS[0]), text.find(MARKERS[1])
    if start < 0 or end < start:
        print(f"{path} has no benchmark markers; the results are only in helpers/bench/latency.md")
        return
    text = text[: start + len(MARKERS[0])] + "\n" + table.strip() + "\n" + text[end:]
    with open(path, "w") as f:
        f.write(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default="helpers/bench", help="folder for latency.json and latency.md"
    )
    parser.add_argument(
        "--reps", type=int, default=60, help="timed repetitions per variant (>= 30)"
    )
    parser.add_argument(
        "--target-ms",
        type=float,
        default=4.0,
        help="time per measurement (sets calls per repetition)",
    )
    parser.add_argument(
        "--n-train", type=int, default=10_000, help="training images for the short fit"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--update-readme",
        action="store_true",
        help="also rewrite the README's benchmark section (what make bench does)",
    )
    args = parser.parse_args(argv)
    if args.reps < 30:
        parser.error("--reps must be at least 30")

    helpers.setup(args.seed)
    warnings.filterwarnings("ignore", message=r"\s*Warning: tf.lite.Interpreter is deprecated")
    from helpers.data import load_fashion_mnist
    from helpers.fusion import fuse
    from helpers.fusion.tflite import tflite_ops, tflite_predict, to_tflite
    from helpers.fusion.timing import keras_inference_fn, time_group

    import numpy as np
    import tensorflow as tf

    (X_train, y_train), _, (X_test, _) = load_fashion_mnist()
    started = time.time()
    results = {"models": {}}
    # Phase 1, Keras only: train, fuse and time the three Keras variants of both models; phase
    # 2 converts to TensorFlow Lite and times those. Keras and TFLite variants are never
    # interleaved with each other: TFLite's worker threads keep spinning after invoke() and
    # slow the TensorFlow call that follows. Every ratio compares variants of one runtime.
    built = {}
    for placement, page in (("after", 342), ("before", 343)):
        helpers.setup(args.seed)
        model = build(placement)
        model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd")
        model.fit(X_train[: args.n_train], y_train[: args.n_train], epochs=1, verbose=0)
        fused, report = fuse(model, X_test[:256])
        no_bn = build(placement, with_bn=False)
        no_bn.set_weights(fused.get_weights())
        np.testing.assert_allclose(no_bn(X_test[:256]), fused(X_test[:256]), atol=1e-6)
        keras_models = {"original": model, "fused": fused, "no_bn": no_bn}
        key = f"bn_{placement}_activation (p. {page})"
        built[key] = (keras_models, report)
        results["models"][key] = {
            "bn_layers_folded": len(report.folded),
            "bn_layers_left": len(report.left),
            "batches": batch_entries(BATCH_SIZES, args.reps),
        }
        for batch in BATCH_SIZES:
            x = tf.constant(X_test[:batch])
            fns = {name: keras_inference_fn(m, x) for name, m in keras_models.items()}
            entry = results["models"][key]["batches"][str(batch)]
            time_group(fns, entry, reps=args.reps, target_ms=args.target_ms, ratios=RATIOS)

    # Phase 2, TensorFlow Lite: convert both variants of each model and time them together.
    for key, (keras_models, _report) in built.items():
        model, fused = keras_models["original"], keras_models["fused"]
        tfl = {
            name: to_tflite(m)[0]
            for name, m in (("tflite_original", model), ("tflite_fused", fused))
        }
        results["models"][key]["tflite_ops"] = {
            name: " ".join(tflite_ops(c)[0]) for name, c in tfl.items()
        }
        for content in tfl.values():
            np.testing.assert_allclose(
                tflite_predict(content, X_test[:256]), model(X_test[:256]), atol=1e-4
            )
        for batch in BATCH_SIZES:
            fns = {}
            for name, content in tfl.items():
                it = tf.lite.Interpreter(model_content=content, num_threads=2)
                inp, out = it.get_input_details()[0], it.get_output_details()[0]
                it.resize_tensor_input(inp["index"], [batch, 28, 28])
                it.allocate_tensors()
                it.set_tensor(inp["index"], X_test[:batch])
                fns[name] = lambda it=it, o=out["index"]: (it.invoke(), it.get_tensor(o))
            entry = results["models"][key]["batches"][str(batch)]
            time_group(fns, entry, reps=args.reps, target_ms=args.target_ms, ratios=RATIOS)
            print(
                f"{key} batch {batch:4d}: "
                + ", ".join(f"{n} {entry['variants'][n]['median_us']:.0f} us" for n in VARIANTS),
                flush=True,
            )
    results["meta"] = meta(started, call_path=CALL_PATH, statistics=STATISTICS)
    store("latency", results, markdown(results), args.out)
    if args.update_readme:
        update_readme(markdown(results))
    print(markdown(results))


def markdown(results):
    """The results as a Markdown table (latencies in microseconds per call)."""
    meta = results["meta"]
    lines = [
        "Inference latency per call, µs: median (IQR) of "
        f"{next(iter(next(iter(results['models'].values()))['batches'].values()))['reps']} "
        "interleaved repetitions. "
        f"TensorFlow {meta['tensorflow']}, Keras {meta['keras']}, {meta['cpu_count']} CPUs, "
        f"1-min load average {meta['load_average_1min']:.1f} when the run ended.",
        "",
        "| model | batch | original | fused | no BN | TFLite original | TFLite fused "
        "| original/fused | fused/no BN | TFLite orig./fused |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for model, entry in results["models"].items():
        for batch, b in entry["batches"].items():
            v = b["variants"]
            cells = [f"{v[n]['median_us']:.0f} ({v[n]['iqr_us']:.0f})" for n in VARIANTS]
            ratios = [f"{b['ratios'][f'{a}/{c}']['median']:.3f}" for a, c in RATIOS]
            lines.append(f"| {model} | {batch} | " + " | ".join(cells + ratios) + " |")
    lines += ["", f"Call path: {meta['call_path']}.", ""]
    lines += [
        "Keras is timed through `helpers.fusion.timing.keras_inference_fn`, which traces the model"
        " as a",
        "closure. A traced function that takes the model as a default argument",
        "(`lambda t, m=m: m(t, training=False)`) pays milliseconds of Python overhead on every",
        "call, enough to hide most of BN's cost at small batches.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""Wall time to a target accuracy with and without BN (claim C6), measured interleaved.

The book (p. 341) says that each epoch takes longer with BN but that so many fewer epochs are
needed that the wall time is usually shorter. Chapter 07 counts the steps each network needs to
reach the target; seconds depend on the machine, so they are measured here, the way the latency
rows are, and stored with the package for the chapter to read (`helpers.bench.stored`).

The set-up is chapter 07's speed experiment at its default parameters: a 10-layer ELU MLP of
64 units, without BN and with BN before each activation, plain SGD with batches of 64 on
10,000 Fashion-MNIST images, validation on 2,000, target 0.82, checkpoints every 25 steps.

1. For each seed, each network sweeps the learning rates and keeps the one that reaches the
   target in the fewest steps (ties go to the smaller rate), exactly as the chapter does.
2. Then, per seed, the two networks are trained from their initial weights to that step at
   that rate, in one compiled call each, alternately (no BN, BN, BN, no BN, ...), ``--reps``
   times. The time of a run is the clock time of that call: the training steps, without the
   evaluations that only serve to find the step. The training is deterministic, so every
   repetition reaches the same accuracy, which is checked.

Step 1 runs under the chapter's numerics, in a process of its own (``--find-steps``, which
``make bench`` starts with the pins of ``helpers.runtime.numerics``, one thread per
operation): with TensorFlow's default thread counts the last digits of every step differ, and a
network can reach the target at another checkpoint, so a sweep there would find other runs
than the ones the chapter counted. Step 2 (``--steps``) then times exactly those runs with
TensorFlow's default thread counts, as a reader's own training runs; the accuracy each one
reaches there is recorded beside the target. Chapter 07 shows whether the stored steps and
learning rates are its own, and a test checks that they are those of the stored chapter.

Reported per seed: the steps and learning rates, the median seconds to target of each network
(and their IQR), the median of the per-repetition ratios (no BN / BN: above 1 means BN reached
the target sooner on the clock), and the median time per step of each network.

Usage: ``python bench/wall_time.py --out helpers/bench`` (what ``make bench`` runs); writes
``wall_time.json`` and ``wall_time.md``.
"""

import argparse
import json
import os
import time

import helpers
from helpers.bench import meta, store

#: Chapter 07's default parameters of the speed experiment (its parameters cell).
SETUP = {
    "n_train": 10_000,
    "n_valid": 2_000,
    "batch_size": 64,
    "eval_every": 25,
    "depth": 10,
    "width": 64,
    "learning_rates": [0.01, 0.03, 0.1, 0.3, 1.0],
    "target_accuracy": 0.82,
    "max_epochs": 10,
}
NETWORKS = {"no_bn": None, "bn": "before"}


def best_runs(runners, seed):
    """Per network: (learning rate, steps) of the sweep's fastest run to the target."""
    from helpers.training.models import MLPSpec
    from helpers.training.runner import TrainConfig

    steps_per_epoch = SETUP["n_train"] // SETUP["batch_size"]
    best = {}
    for key, bn in NETWORKS.items():
        spec = MLPSpec(depth=SETUP["depth"], width=SETUP["width"], activation="elu", batch_norm=bn)
        found = []
        for lr in SETUP["learning_rates"]:
            run = runners[key].train(
                spec,
                TrainConfig(
                    learning_rate=lr,
                    batch_size=SETUP["batch_size"],
                    max_steps=SETUP["max_epochs"] * steps_per_epoch,
                    eval_every=SETUP["eval_every"],
                    target=SETUP["target_accuracy"],
                    stop_at_target=True,
                    train_accuracy=False,
                ),
                seed=seed,
            )
            if run.step_to_target is not None and not run.diverged:
                found.append((run.step_to_target, lr))
        best[key] = (min(found)[1], min(found)[0]) if found else (None, None)
    return best


def timed_run(runner, bn, lr, steps, seed):
    """Seconds of one run of `steps` training steps in one compiled call, and its accuracy."""
    from helpers.training.models import MLPSpec
    from helpers.training.runner import TrainConfig

    spec = MLPSpec(depth=SETUP["depth"], width=SETUP["width"], activation="elu", batch_norm=bn)
    run = runner.train(
        spec,
        TrainConfig(
            learning_rate=lr,
            batch_size=SETUP["batch_size"],
            max_steps=steps,
            eval_every=steps,
            train_accuracy=False,
        ),
        seed=seed,
    )
    return float(run.history["seconds"].sum()), float(run.history["val_acc"].iloc[-1])


def markdown(results):
    meta = results["meta"]
    lines = [
        "Wall time to the target accuracy "
        f"{SETUP['target_accuracy']} (chapter 07's speed experiment at its default parameters), "
        f"seconds of training steps: median (IQR) of {meta['reps']} interleaved repetitions per "
        f"network and seed. TensorFlow {meta['tensorflow']}, Keras {meta['keras']}, "
        f"{meta['cpu_count']} CPUs shared with other work: 1-min load average "
        f"{meta['load_average_1min_start']:.1f} at the start and "
        f"{meta['load_average_1min']:.1f} at the end.",
        "",
        "| seed | η no BN | η BN | steps no BN | steps BN | accuracy reached | s no BN | s BN "
        "| ms/step no BN | ms/step BN | time ratio no BN / BN |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for seed, r in results["seeds"].items():
        a, b = r["no_bn"], r["bn"]
        lines.append(
            f"| {seed} | {a['learning_rate']:g} | {b['learning_rate']:g} | {a['steps']} "
            f"| {b['steps']} | {a['accuracy_reached']:.3f} / {b['accuracy_reached']:.3f} "
            f"| {a['seconds_median']:.3f} ({a['seconds_iqr']:.3f}) "
            f"| {b['seconds_median']:.3f} ({b['seconds_iqr']:.3f}) "
            f"| {1e3 * a['seconds_per_step']:.2f} | {1e3 * b['seconds_per_step']:.2f} "
            f"| {r['time_ratio']['median']:.2f} ({r['time_ratio']['q25']:.2f}-"
            f"{r['time_ratio']['q75']:.2f}) |"
        )
    lines += [
        "",
        "Each repetition trains a network from its initial weights to the step at which it "
        "reached the target in chapter 07's sweep (its numerics: one thread per operation), at "
        "its best learning rate, in one compiled call, with TensorFlow's default thread counts; "
        "evaluations are not timed. The accuracy reached is that run's, no BN / BN (the "
        "thread counts move the last digits of every step). The ratio is the median (and "
        "quartiles) of the per-repetition ratios.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="helpers/bench", help="folder of wall_time.json/.md")
    parser.add_argument("--reps", type=int, default=11, help="timed repetitions (>= 5)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--find-steps", metavar="JSON", help="step 1: sweep, write, stop")
    parser.add_argument("--steps", metavar="JSON", help="step 2: time the runs step 1 wrote")
    args = parser.parse_args(argv)
    if args.reps < 5:
        parser.error("--reps must be at least 5")

    load_start = os.getloadavg()[0]
    helpers.setup(args.seeds[0])
    from helpers.data import load_fashion_mnist
    from helpers.training.runner import Runner

    import numpy as np

    (X_train, y_train), (X_valid, y_valid), _ = load_fashion_mnist()
    n, m = SETUP["n_train"], SETUP["n_valid"]
    data = (X_train[:n], y_train[:n], X_valid[:m], y_valid[:m])
    runners = {key: Runner(data) for key in NETWORKS}  # one compiled model each
    started = time.time()
    if args.find_steps:
        found = {str(seed): best_runs(runners, seed) for seed in args.seeds}
        os.makedirs(os.path.dirname(os.path.abspath(args.find_steps)), exist_ok=True)
        with open(args.find_steps, "w", encoding="utf-8") as f:
            json.dump(found, f, indent=1)
        print(f"steps to target under these numerics -> {args.find_steps}: {found}")
        return
    if args.steps:
        with open(args.steps, encoding="utf-8") as f:
            given = {int(k): {n: tuple(v) for n, v in b.items()} for k, b in json.load(f).items()}
        if sorted(given) != sorted(args.seeds):
            raise SystemExit(f"{args.steps} holds seeds {sorted(given)}, not {args.seeds}")
    results = {"setup": SETUP, "seeds": {}}
    for seed in args.seeds:
        best = given[seed] if args.steps else best_runs(runners, seed)
        if None in (best["no_bn"][0], best["bn"][0]):
            raise SystemExit(f"seed {seed}: a network never reached the target: {best}")
        reached = {}
        seconds = {key: [] for key in NETWORKS}
        for rep in range(args.reps):
            order = list(NETWORKS) if rep % 2 == 0 else list(NETWORKS)[::-1]
            for key in order:
                lr, steps = best[key]
                t, acc = timed_run(runners[key], NETWORKS[key], lr, steps, seed)
                if reached.setdefault(key, acc) != acc:
                    raise SystemExit(
                        f"seed {seed}, {key}: repetitions ended at {acc} and "
                        f"{reached[key]}; the training is not deterministic"
                    )
                seconds[key].append(t)
        entry = {}
        for key in NETWORKS:
            lr, steps = best[key]
            t = np.array(seconds[key])
            q25, q50, q75 = np.percentile(t, [25, 50, 75])
            entry[key] = {
                "learning_rate": lr,
                "steps": steps,
                "seconds": t.tolist(),
                "seconds_median": q50,
                "seconds_iqr": q75 - q25,
                "seconds_per_step": q50 / steps,
                "accuracy_reached": reached[key],
            }
        ratio = np.array(seconds["no_bn"]) / np.array(seconds["bn"])
        slowdown = (np.array(seconds["bn"]) / entry["bn"]["steps"]) / (
            np.array(seconds["no_bn"]) / entry["no_bn"]["steps"]
        )
        for name, r in (("time_ratio", ratio), ("step_slowdown", slowdown)):
            lo, mid, hi = np.percentile(r, [25, 50, 75])
            entry[name] = {"median": mid, "q25": lo, "q75": hi}
        results["seeds"][str(seed)] = entry
        print(
            f"seed {seed}: no BN {entry['no_bn']['steps']} steps "
            f"{entry['no_bn']['seconds_median']:.3f} s, BN {entry['bn']['steps']} steps "
            f"{entry['bn']['seconds_median']:.3f} s, ratio {entry['time_ratio']['median']:.2f}",
            flush=True,
        )
    results["meta"] = meta(
        started,
        load_start,
        reps=args.reps,
        order="alternating: no BN, BN in even repetitions, BN, no BN in odd ones",
        steps_from=args.steps or "this process's own sweep",
    )
    store("wall_time", results, markdown(results), args.out)
    print(markdown(results))


if __name__ == "__main__":
    main()

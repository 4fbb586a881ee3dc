"""The experiments of chapter 07 (what BN delivers, pp. 340-345): their loops and their findings.

Each experiment trains a few networks (`helpers.training.models.MLPSpec`) over learning rates
and seeds with a `helpers.training.runner.Runner`, and turns the runs into per-seed figures and
findings:

* `sweep` runs every network at every learning rate for every seed; `accuracy_table` tabulates
  the runs, a diverged run counting as chance.
* `speed_figures` (steps to a target accuracy), `step_slowdown`, `clock_table` and
  `bench_timed` serve the speed and wall-time experiments (C1, C6); `grid_findings`,
  `grid_verdicts` and `grid_gain` the grid of activations, initializations and learning rates
  (C17); `pre_bn_spread` measures what BN's ε does to a network's first pass; and
  `gaps_at_equal_progress` compares train/validation gaps at equal progress (C2).

The figures that show these runs are drawn by `helpers.training.evidence_figures`.
"""

import dataclasses

from helpers import checks
from helpers.chapter.verdicts import verdict
from helpers.training.models import MLPSpec, build_mlp
from helpers.training.runner import (
    Runner,
    RunResult,
    TrainConfig,
    first_step_reaching,
    results_table,
)

import numpy as np

#: The accuracy of a guess among ten classes, what a diverged run counts as.
CHANCE = 0.1

#: The two networks of the speed experiment, in the order of its tables.
SPEED_NAMES = ("no BN", "BN")


def sweep(runner, specs, config, seeds, learning_rates=None):
    """Train every network at every learning rate for every seed.

    The loops run network by network, then learning rate, then seed, so that runs of one
    architecture follow each other and reuse the runner's compiled model.

    Args:
        runner: a `Runner`.
        specs: a dict ``{name: MLPSpec}`` (the runs are named so), or a list of specs (the
            runs get the runner's default names).
        config: a `TrainConfig`; its learning rate is used when `learning_rates` is None.
        seeds: the seeds, a non-empty list of integers.
        learning_rates: the learning rates to try, or None.

    Returns:
        A list of `RunResult`.

    Raises:
        ValueError: `runner`, `config` or a spec has the wrong type, or `seeds` or `specs` is
            empty.
    """
    if not isinstance(runner, Runner):
        raise ValueError(f"runner must be a Runner, got {type(runner).__name__}")
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    named = specs.items() if isinstance(specs, dict) else [(None, s) for s in specs]
    named = list(named)
    if not named or not all(isinstance(s, MLPSpec) for _, s in named):
        raise ValueError("specs must be a non-empty dict {name: MLPSpec} or list of MLPSpec")
    seeds = [checks.seed(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must hold at least one seed, e.g. [42]")
    rates = [config.learning_rate] if learning_rates is None else list(learning_rates)
    return [
        runner.train(spec, dataclasses.replace(config, learning_rate=lr), seed=s, name=name)
        for name, spec in named
        for lr in rates
        for s in seeds
    ]


def accuracy_table(runs, chance=CHANCE):
    """`results_table` of `runs` with an ``accuracy`` column: the final validation accuracy,
    or `chance` for a run that diverged (a diverged network predicts no better than chance).

    Args:
        runs: an iterable of `RunResult`.
        chance: the accuracy a diverged run counts as, in [0, 1].

    Returns:
        A pandas DataFrame, one row per run.
    """
    if not checks.is_real(chance) or not 0 <= chance <= 1:
        raise ValueError(f"chance must be an accuracy in [0, 1], got {chance!r}")
    table = results_table(runs)
    table["accuracy"] = table.final_val_acc.fillna(chance)
    return table


def _best_runs(table):
    """Per network, the run with the fewest steps to the target (ties: smaller learning rate)."""
    reached = table[~table.diverged & table.step_to_target.notna()]
    best = reached.sort_values(["step_to_target", "learning_rate"]).groupby("name").first()
    return reached, best.reindex(list(SPEED_NAMES))


def speed_figures(table):
    """One seed's speed figures, eq. (steps-ratio): the best steps to the target of each network.

    Args:
        table: `results_table` of one seed's runs, named ``"no BN"`` and ``"BN"``.

    Returns:
        A dict: ``"steps, no BN"``, ``"steps, BN"``, their ``"ratio r"`` (NaN when a network
        never reached the target), ``"best η, ..."`` and ``"largest η reaching the target,
        ..."`` for each network.

    Raises:
        ValueError: `table` holds more than one seed.
    """
    if table.seed.nunique() > 1:
        raise ValueError("table must hold the runs of one seed; select them first")
    reached, best = _best_runs(table)
    largest = reached.groupby("name").learning_rate.max().reindex(list(SPEED_NAMES))
    steps = best.step_to_target.astype(float)
    return {
        "steps, no BN": steps["no BN"],
        "steps, BN": steps["BN"],
        "ratio r": steps["no BN"] / steps["BN"],
        "best η, no BN": best.learning_rate["no BN"],
        "best η, BN": best.learning_rate["BN"],
        "largest η reaching the target, no BN": largest["no BN"],
        "largest η reaching the target, BN": largest["BN"],
    }


def per_seed(table, figures):
    """`figures` of each seed's rows of `table`, as a table with one row per seed.

    Args:
        table: a results table with a ``seed`` column.
        figures: a function of one seed's rows returning a dict of numbers.

    Returns:
        A float pandas DataFrame indexed by seed.
    """
    import pandas as pd

    seeds = list(dict.fromkeys(table.seed))
    return pd.DataFrame({s: figures(table[table.seed == s]) for s in seeds}).T.astype(float)


def _median_step_seconds(runs):
    return np.median(
        np.concatenate(
            [r.history["seconds"].iloc[1:].to_numpy() / np.diff(r.history["step"]) for r in runs]
        )
    )


def step_slowdown(runs, slow="BN", fast="no BN"):
    """How many times as long a step of the `slow` runs took as one of the `fast` runs.

    Each is the median, over every evaluation interval of every run of that name, of the
    interval's seconds per step.

    Args:
        runs: `RunResult` objects, some named `slow` and some `fast`.
        slow, fast: the two names.

    Returns:
        The ratio of the two medians, a float.

    Raises:
        ValueError: no run has one of the names.
    """
    groups = {
        n: [r for r in runs if isinstance(r, RunResult) and r.name == n] for n in (slow, fast)
    }
    empty = [n for n, g in groups.items() if not g]
    if empty:
        raise ValueError(
            f"runs must include runs named {slow!r} and {fast!r}; none is {empty[0]!r}"
        )
    return float(_median_step_seconds(groups[slow]) / _median_step_seconds(groups[fast]))


def clock_table(table):
    """This run's own clock, per seed: epochs, seconds per epoch and seconds to the target.

    For each seed and network, the run with the fewest steps to the target (as
    `speed_figures` picks it).

    Args:
        table: `results_table` of the speed runs, named ``"no BN"`` and ``"BN"``.

    Returns:
        A float pandas DataFrame indexed by seed.
    """

    def figures(rows):
        _, best = _best_runs(rows)
        out = {}
        for column, label in (
            ("epochs_to_target", "epochs to target"),
            ("sec_per_epoch", "s per epoch"),
            ("sec_to_target", "s to target"),
        ):
            out.update({f"{label}, {name}": best[column][name] for name in SPEED_NAMES})
        return out

    return per_seed(table, figures)


def bench_timed(wall, per_seed_speed):
    """Whether the stored wall-time benchmark timed the very runs this chapter found.

    Args:
        wall: the results of ``helpers.bench.stored("wall_time")``.
        per_seed_speed: `per_seed` of `speed_figures`, indexed by seed.

    Returns:
        True when the benchmark has exactly these seeds and, for each seed and network, the
        same best learning rate and steps to the target.
    """
    stored_seeds = sorted(int(s) for s in wall["seeds"])
    if stored_seeds != sorted(int(s) for s in per_seed_speed.index):
        return False
    return all(
        wall["seeds"][str(s)][key]["steps"] == per_seed_speed.loc[s, f"steps, {name}"]
        and wall["seeds"][str(s)][key]["learning_rate"] == per_seed_speed.loc[s, f"best η, {name}"]
        for s in per_seed_speed.index
        for key, name in (("no_bn", "no BN"), ("bn", "BN"))
    )


def stored_steps_ratio(wall):
    """Per stored seed of the wall-time benchmark: the plain network's steps over BN's."""
    return {int(s): v["no_bn"]["steps"] / v["bn"]["steps"] for s, v in wall["seeds"].items()}


def accuracy_panel(table, bn):
    """Mean accuracy over the seeds of every (activation, initializer) and learning rate.

    Args:
        table: `accuracy_table` of the grid's runs.
        bn: the BN placement of the panel, ``"none"`` or ``"before"``.

    Returns:
        A pandas DataFrame: rows (activation, initializer) in the grid's order, columns the
        learning rates.
    """
    sub = table[table.batch_norm == bn]
    if sub.empty:
        raise ValueError(f"bn must be a placement the table holds, e.g. 'none', got {bn!r}")
    return sub.pivot_table(
        index=["activation", "initializer"],
        columns="learning_rate",
        values="accuracy",
        aggfunc="mean",
        sort=False,
    )


def grid_findings(table, top, trains):
    """One seed's grid: each comparison of page 340 as (BN's value, the plain network's value).

    Args:
        table: `accuracy_table` of one seed's grid runs, BN ``"before"`` and ``"none"``.
        top: the largest learning rate of the grid.
        trains: the accuracy from which a run counts as trained.

    Returns:
        A dict: ``"mean accuracy, sigmoid"`` and ``"mean accuracy, tanh"`` (for those of the
        two the grid has), ``"mean accuracy, worse initialization"``, ``"mean accuracy, η =
        <top>"`` and ``"settings that train (≥ <trains>), rescued vs broken"``.
    """
    acc = table.set_index(["activation", "initializer", "learning_rate", "batch_norm"])[
        "accuracy"
    ].unstack("batch_norm")
    pair = ["before", "none"]
    worse_init = acc.groupby(level=["activation", "learning_rate"]).min()
    trained = acc >= trains
    activations = list(dict.fromkeys(table.activation))
    found = {
        f"mean accuracy, {a}": tuple(acc.xs(a, level="activation")[pair].mean())
        for a in activations
        if a in ("sigmoid", "tanh")
    }
    found["mean accuracy, worse initialization"] = tuple(worse_init[pair].mean())
    found[f"mean accuracy, η = {top:g}"] = tuple(acc.xs(top, level="learning_rate")[pair].mean())
    found[f"settings that train (≥ {trains}), rescued vs broken"] = (
        int((trained.before & ~trained.none).sum()),
        int((trained.none & ~trained.before).sum()),
    )
    return found


def grid_gain(grid_by_seed, key):
    """BN's value minus the plain network's for one finding of `grid_findings`, per seed."""
    return {s: found[key][0] - found[key][1] for s, found in grid_by_seed.items()}


def grid_verdicts(grid_by_seed, margin):
    """The verdict on each finding of `grid_findings`: is BN ahead, seed by seed?

    A mean accuracy counts when BN is ahead by more than `margin`; the count of settings
    when BN rescues more than it breaks.

    Args:
        grid_by_seed: ``{seed: grid_findings(...)}``.
        margin: the gain in mean accuracy a finding needs, >= 0.

    Returns:
        A dict ``{finding: verdict}``.
    """
    if not grid_by_seed:
        raise ValueError("grid_by_seed must hold the findings of at least one seed")
    keys = next(iter(grid_by_seed.values()))
    return {
        key: verdict(
            {
                s: bool(g > (0 if key.startswith("settings") else margin))
                for s, g in grid_gain(grid_by_seed, key).items()
            }
        )
        for key in keys
    }


def pre_bn_spread(spec, images, seed=42):
    """Per hidden layer of a BN network at initialization: the spread of its input to BN.

    The spread of a layer is the standard deviation, over the batch `images`, of each output
    of its Dense layer, averaged over the layer's units, in training mode (BN normalizing with
    the batch's statistics).

    Args:
        spec: an `MLPSpec` with ``batch_norm="before"`` and no residual blocks.
        images: the batch, ``(n, ...)``, flattened per example.
        seed: seed of the initial weights.

    Returns:
        A float array of shape ``(spec.depth,)``.

    Raises:
        ValueError: `spec` has no BN before its activations, or `images` is empty.
    """
    import keras

    if not isinstance(spec, MLPSpec) or spec.batch_norm != "before" or spec.residual:
        raise ValueError("spec must be a plain MLPSpec with batch_norm='before'")
    images = np.asarray(images, np.float32)
    if images.ndim < 2 or len(images) == 0:
        raise ValueError(f"images must be a non-empty batch (n, ...), got shape {images.shape}")
    images = images.reshape(len(images), -1)
    model = build_mlp(spec, images.shape[1], seed=seed)
    dense = [model.get_layer(f"dense_{i}").output for i in range(1, spec.depth + 1)]
    outputs = keras.Model(model.input, dense)(images, training=True)
    return np.array([np.asarray(o).std(axis=0).mean() for o in outputs])


def spread_table(spreads, root_eps):
    """How the spreads of `pre_bn_spread` compare with √ε, per initialization.

    Args:
        spreads: ``{initialization: pre_bn_spread(...)}``.
        root_eps: √ε of the BN layers.

    Returns:
        A pandas DataFrame, one row per initialization: the hidden layers below √ε, the first
        layer's spread in units of √ε, and whether the last layer's is below or above.
    """
    import pandas as pd

    return pd.DataFrame(
        {
            "hidden layers with spread < √ε": {
                k: f"{(v < root_eps).sum()} of {len(v)}" for k, v in spreads.items()
            },
            "first layer's spread / √ε": {k: f"{v[0] / root_eps:.0f}" for k, v in spreads.items()},
            "last layer's spread": {
                k: "below √ε" if v[-1] < root_eps else "above √ε" for k, v in spreads.items()
            },
        }
    )


def gaps_at_equal_progress(runs):
    """The train/validation gap of each run where every run of its seed has made equal progress.

    The level is the highest training accuracy, in whole percent, that every run of the seed
    reaches by its end; each run's gap is read at its first checkpoint reaching that level.

    Args:
        runs: `RunResult` objects trained with ``train_accuracy=True``.

    Returns:
        A pandas DataFrame indexed by (name, seed): ``gap_at_equal_train_acc`` and ``level``.
    """
    import pandas as pd

    rows = {}
    for s in dict.fromkeys(r.seed for r in runs):
        of_seed = [r for r in runs if r.seed == s]
        level = np.floor(min(r.history.train_acc.iloc[-1] for r in of_seed) * 100) / 100
        for r in of_seed:
            h = r.history.set_index("step")
            step = first_step_reaching(h.index, h["train_acc"], level)
            gap = h.loc[step, "train_acc"] - h.loc[step, "val_acc"]
            rows[r.name, s] = {"gap_at_equal_train_acc": gap, "level": level}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["name", "seed"])

"""The exploding-gradient experiment of chapter 08: a recurrent network trained with each kind
of clipping at a few thresholds over several seeds, and what its TensorBoard event files say.

`settings` names the optimizer arguments of every run, `irnn` builds the network,
`train_settings` trains it once per setting and seed (each run logged to its own folder,
`run_dir`), `matches_history` checks the event files read back against Keras's history,
`results_table` and `setting_figures` summarise each run and each setting, and
`angle_table` measures how far the clipped steps turned the gradient.
"""

import os

from helpers import checks
from helpers.clipping.seeds import fit_seeds

import numpy as np

#: What counts as a clipped step: the step is shorter than the learning rate times the raw
#: gradient's norm by more than this relative amount (float32 rounding is far below it).
CLIPPED_MARGIN = 1e-4
#: The kinds of clipping, as Keras's optimizers name their arguments.
KINDS = ("clipvalue", "clipnorm", "global_clipnorm")


def _thresholds(values, name):
    if isinstance(values, str) or not hasattr(values, "__iter__"):
        raise ValueError(f"{name} must be a list of thresholds > 0, got {values!r}")
    return [checks.positive(v, name) for v in values]


def settings(value_limits, norm_limits):
    """The optimizer arguments of every run: no clipping, then each kind at each threshold.

    Args:
        value_limits: thresholds for ``clipvalue``, numbers > 0.
        norm_limits: thresholds for ``clipnorm`` and ``global_clipnorm``, numbers > 0.

    Returns:
        A dict ``{name: kwargs}``, such as ``{"no clipping": {}, "clipvalue=1.0":
        {"clipvalue": 1.0}, ...}``, in the order no clipping, ``clipvalue``, ``clipnorm``,
        ``global_clipnorm``.

    Raises:
        ValueError: a threshold is not a number > 0.
    """
    values = _thresholds(value_limits, "value_limits")
    norms = _thresholds(norm_limits, "norm_limits")
    configs = {"no clipping": {}}
    for kind, limits in zip(KINDS, (values, norms, norms)):
        configs.update({f"{kind}={t}": {kind: t} for t in limits})
    return configs


def irnn(units, steps=28, features=28, n_classes=10):
    """A ReLU `SimpleRNN` with identity recurrent weights (Le, Jaitly and Hinton's IRNN),
    reading an image one row at a time, then a softmax `Dense` layer.

    Args:
        units: recurrent units, an integer >= 1.
        steps: time steps (image rows), an integer >= 1.
        features: values per step (pixels per row), an integer >= 1.
        n_classes: outputs, an integer >= 2.

    Returns:
        A new, uncompiled `keras.Sequential`.

    Raises:
        ValueError: a size is not an integer in its range.
    """
    import keras

    units = checks.integer(units, "units", 1)
    steps = checks.integer(steps, "steps", 1)
    features = checks.integer(features, "features", 1)
    n_classes = checks.integer(n_classes, "n_classes", 2)
    return keras.Sequential(
        [
            keras.Input((steps, features)),
            keras.layers.SimpleRNN(units, activation="relu", recurrent_initializer="identity"),
            keras.layers.Dense(n_classes, activation="softmax"),
        ]
    )


def run_dir(root, name, seed):
    """The folder of one run's event files: ``root/seed_<seed>/<name>``.

    Raises:
        ValueError: `root` or `name` is empty, or `seed` is not a non-negative integer.
    """
    if not os.fspath(root) or not name:
        raise ValueError(f"root and name must be non-empty, got {root!r} and {name!r}")
    return os.path.join(os.fspath(root), f"seed_{checks.seed(seed)}", name)


def train_settings(build, configs, seeds, root, learning_rate, train, valid, **fit_kwargs):
    """Train `build()` with plain SGD once per setting of `configs` and per seed.

    Each setting goes through `helpers.clipping.seeds.fit_seeds` (every run equal to a fresh
    one), and each run writes its per-step scalars under ``run_dir(root, name, seed)``.

    Args:
        build: a function returning a new, uncompiled Keras model.
        configs: ``{name: clipping kwargs}``, as `settings` returns.
        seeds: the seeds, non-negative integers.
        root: the folder for the event files.
        learning_rate: SGD's learning rate, a number > 0.
        train: ``(x, y)``, the training images and labels.
        valid: ``(x, y)``, the validation images and labels.
        **fit_kwargs: passed to ``fit`` (``epochs``, ``batch_size``, ...).

    Returns:
        A dict ``{(name, seed): (history, weights)}``.

    Raises:
        ValueError: `configs` is empty, `learning_rate` is not > 0, or `train` or `valid`
            is not a pair ``(x, y)`` (and see `fit_seeds`).
    """
    import keras

    learning_rate = checks.positive(learning_rate, "learning_rate")
    if not isinstance(configs, dict) or not configs:
        raise ValueError(f"configs must be a non-empty dict {{name: kwargs}}, got {configs!r}")
    for pair, name in ((train, "train"), (valid, "valid")):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"{name} must be a pair (x, y) of images and labels, got {pair!r}")
    runs = {}
    for name, clip in configs.items():
        per_seed = fit_seeds(
            build,
            lambda clip=clip: keras.optimizers.SGD(learning_rate=learning_rate, **clip),
            seeds,
            lambda s, name=name: run_dir(root, name, s),
            x=train[0],
            y=train[1],
            validation_data=tuple(valid),
            **fit_kwargs,
        )
        runs.update({(name, s): run for s, run in per_seed.items()})
    return runs


STEP_TAGS = ("batch_loss", "grad_norm", "update_norm", "update_angle")


def matches_history(scalars, history, n_steps):
    """Whether a run's event files hold what Keras's `History` kept, at every step.

    Every ``batch/<tag>`` of `STEP_TAGS` has steps 0 .. n_steps - 1 and its last value equals
    the history's last (both float32), and ``epoch/val_loss`` equals the history's.

    Args:
        scalars: `helpers.clipping.tensorboard.read_scalars` of the run's folder.
        history: the run's ``History.history`` dict.
        n_steps: the training steps of the run, an integer >= 1.

    Returns:
        True or False.

    Raises:
        ValueError: `n_steps` is not an integer >= 1.
    """
    n_steps = checks.integer(n_steps, "n_steps", 1)
    for tag in STEP_TAGS:
        steps, values = scalars.get(f"batch/{tag}", (np.array([]), np.array([])))
        if not np.array_equal(steps, np.arange(n_steps)):
            return False
        if not np.array_equal(values[-1], np.float32(history[tag][-1]), equal_nan=True):
            return False
    val_loss = scalars.get("epoch/val_loss", (None, np.array([])))[1]
    return bool(np.array_equal(val_loss, np.float32(history["val_loss"]), equal_nan=True))


def _clipped(update_norm, grad_norm, learning_rate):
    return update_norm < learning_rate * grad_norm * (1 - CLIPPED_MARGIN)


def results_table(scalars, histories, learning_rate):
    """One row per run: final validation accuracy and loss, non-finite steps, the largest
    batch loss, and the share of clipped steps (shorter than the learning rate times the raw
    gradient norm by more than `CLIPPED_MARGIN`, among the steps with a finite gradient).

    Args:
        scalars: ``{(setting, seed): read_scalars(...)}``.
        histories: ``{(setting, seed): History.history}``, the same keys.
        learning_rate: SGD's learning rate, a number > 0.

    Returns:
        A pandas DataFrame indexed by ``(setting, seed)``.

    Raises:
        ValueError: the keys of `scalars` and `histories` differ, or `learning_rate` is not
            a number > 0.
    """
    import pandas as pd

    learning_rate = checks.positive(learning_rate, "learning_rate")
    if set(scalars) != set(histories):
        raise ValueError("scalars and histories must have the same (setting, seed) keys")
    rows = []
    for (name, seed), tags in scalars.items():
        grad_norm, update_norm, batch_loss = (
            tags[f"batch/{t}"][1] for t in ("grad_norm", "update_norm", "batch_loss")
        )
        finite = np.isfinite(grad_norm)
        clipped = _clipped(update_norm[finite], grad_norm[finite], learning_rate)
        history = histories[name, seed]
        rows.append(
            {
                "setting": name,
                "seed": seed,
                "val accuracy": history["val_accuracy"][-1],
                "val loss": history["val_loss"][-1],
                "non-finite steps": int((~finite).sum()),
                "largest batch loss": batch_loss[np.isfinite(batch_loss)].max(),
                "steps clipped (%)": 100 * clipped.mean(),
            }
        )
    return pd.DataFrame(rows).set_index(["setting", "seed"])


def setting_figures(results, chance=0.15):
    """Per setting over the seeds: validation accuracy (mean, min, max), the most non-finite
    steps, the largest batch loss, the mean share of clipped steps; plus the best setting of
    each seed and the runs that ended at chance level.

    Args:
        results: `results_table`'s frame.
        chance: a run below this validation accuracy ended at chance level, in (0, 1).

    Returns:
        ``(figures, best, at_chance)``: a DataFrame per setting, text ``"seed s: setting,
        ..."``, and text ``"setting (seed s), ..."`` or ``"none"``.

    Raises:
        ValueError: `chance` is not in (0, 1).
    """
    import pandas as pd

    if not checks.is_real(chance) or not 0 < chance < 1:
        raise ValueError(f"chance must be an accuracy in (0, 1), got {chance!r}")
    by_setting = results.groupby(level="setting", sort=False)
    figures = pd.DataFrame(
        {
            "val accuracy, mean": by_setting["val accuracy"].mean(),
            "min": by_setting["val accuracy"].min(),
            "max": by_setting["val accuracy"].max(),
            "non-finite steps, max": by_setting["non-finite steps"].max(),
            "largest batch loss": by_setting["largest batch loss"].max(),
            "steps clipped (%)": by_setting["steps clipped (%)"].mean(),
        }
    )
    best = results["val accuracy"].unstack("seed").idxmax()
    best_text = ", ".join(f"seed {s}: {best[s]}" for s in best.index)
    low = results.index[results["val accuracy"] < chance]
    return figures, best_text, ", ".join(f"{n} (seed {s})" for n, s in low) or "none"


def angle_table(scalars, final_weight_norms, learning_rate):
    """How far the clipped steps turned the gradient, per run with clipping.

    A step is clipped when its angle is finite and it is shorter than the learning rate times
    the raw gradient norm (by more than `CLIPPED_MARGIN`). The step is read as the difference
    of two float32 weight vectors, so rounding alone tilts it by up to about
    ``eps32 * ||w|| / ||step||`` radians; `final_weight_norms` bounds ``||w||``.

    Args:
        scalars: ``{(setting, seed): read_scalars(...)}``.
        final_weight_norms: ``{(setting, seed): global norm of the final weights}``.
        learning_rate: SGD's learning rate, a number > 0.

    Returns:
        ``(angles, table)``: ``{(setting, seed): angles of the clipped steps, in degrees}``
        for every run, and a DataFrame indexed by ``(setting, seed)`` without the runs of
        ``"no clipping"``: clipped steps, median and largest angle (NaN without clipped
        steps), and the share of clipped steps within the rounding bound (%).

    Raises:
        ValueError: `learning_rate` is not a number > 0.
    """
    import pandas as pd

    learning_rate = checks.positive(learning_rate, "learning_rate")
    eps32 = np.finfo(np.float32).eps
    angles, rows = {}, {}
    for key, tags in scalars.items():
        angle, update_norm, grad_norm = (
            tags[f"batch/{t}"][1] for t in ("update_angle", "update_norm", "grad_norm")
        )
        acted = np.isfinite(angle) & _clipped(update_norm, grad_norm, learning_rate)
        rounding = np.degrees(eps32 * final_weight_norms[key] / update_norm[acted])
        angles[key] = angle[acted]
        some = bool(acted.any())
        rows[key] = {
            "clipped steps": int(acted.sum()),
            "median angle (°)": np.median(angle[acted]) if some else np.nan,
            "largest angle (°)": angle[acted].max() if some else np.nan,
            "within rounding (%)": 100 * np.mean(angle[acted] <= rounding) if some else np.nan,
        }
    table = pd.DataFrame(rows).T.rename_axis(["setting", "seed"])
    return angles, table.drop(index="no clipping", level="setting", errors="ignore")


def each_setting(table, kind, test):
    """Per seed, whether `test` holds for the row of every setting of one kind of clipping.

    Args:
        table: a DataFrame indexed by ``(setting, seed)``, settings named ``"<kind>=<t>"``.
        kind: one of `KINDS`.
        test: a function of one row, returning True or False.

    Returns:
        A dict ``{seed: bool}``.

    Raises:
        ValueError: `kind` is not one of `KINDS`, or the table holds no setting of it.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    names = [n for n in table.index.unique("setting") if n.split("=")[0] == kind]
    if not names:
        raise ValueError(f"the table holds no setting of kind {kind!r}")
    seeds = table.index.unique("seed")
    return {s: all(bool(test(table.loc[(n, s)])) for n in names) for s in seeds}

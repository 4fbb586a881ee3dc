"""Training the networks of `helpers.training.models` the same way every time; tabulating runs.

Chapter 07 asks whether BN delivers what the book promises (pp. 340-345): fewer training steps,
shorter wall time, saturating activations and bad initializations made usable, larger learning
rates, a regularizing effect, and whether Fixup can replace it. Each of those questions is
"train this network with that setting and see what happens":

* `TrainConfig` holds the settings of a run (learning rate, batch size, steps, evaluation).
* `Runner` holds one dataset and trains networks on it with plain mini-batch SGD in a compiled
  loop. It evaluates a fixed validation slice every ``eval_every`` steps, notes the first step
  that reaches a target accuracy, times the steps, and records a run whose loss turns NaN or
  infinite as *diverged* instead of crashing. Runs that differ only in initialization, learning
  rate or seed reuse the compiled model, which is what makes a grid of short runs affordable.
  `train` is a one-off run with a fresh `Runner`; both give identical results.
* `results_table` puts many runs in one tidy pandas table (one row per run).
* `step_operations` counts the operations of one training step, a deterministic measure of the
  work BN adds.

The model outputs logits and the loss is computed from them: a softmax output layer with
Keras's clipped cross-entropy keeps the loss finite even when the weights have blown up, which
would hide a divergence.
"""

import dataclasses
import math
import time

from helpers import checks
from helpers.runtime.session import setup
from helpers.training.models import MLPSpec, build_mlp, initialize_weights
from helpers.training.steps import gradient_step, make_batches

import numpy as np


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train: plain mini-batch SGD with a fixed budget and evaluation schedule.

    Args:
        learning_rate: SGD step size, > 0.
        sgd_momentum: the momentum of the SGD optimizer (Keras's ``SGD(momentum=)``), in
            [0, 1); not BN's moving-average momentum.
        batch_size: examples per step, >= 1.
        max_steps: training budget in steps (mini-batches), >= 1.
        eval_every: evaluate the validation slice every this many steps, >= 1; this is the
            resolution of "steps to target".
        target: validation accuracy whose first crossing is recorded, in (0, 1], or None.
        stop_at_target: stop as soon as `target` is reached (saves time when only the
            number of steps matters).
        train_accuracy: also evaluate the training slice at every checkpoint (needed for the
            train/validation gap; evaluating costs about as much as the steps between two
            checkpoints, so experiments that only need validation accuracy turn it off and get
            NaN ``train_acc``).

    Raises:
        ValueError: an argument is out of range.
    """

    learning_rate: float = 0.01
    sgd_momentum: float = 0.0
    batch_size: int = 64
    max_steps: int = 500
    eval_every: int = 50
    target: object = None
    stop_at_target: bool = False
    train_accuracy: bool = True

    def __post_init__(self):
        checks.positive(self.learning_rate, "learning_rate")
        if not checks.is_real(self.sgd_momentum) or not 0.0 <= self.sgd_momentum < 1.0:
            raise ValueError(f"sgd_momentum must be in [0, 1), got {self.sgd_momentum!r}")
        for name in ("batch_size", "max_steps", "eval_every"):
            value = getattr(self, name)
            checks.integer(value, name, minimum=1)
        if self.target is not None and (
            not checks.is_real(self.target) or not 0.0 < self.target <= 1.0
        ):
            raise ValueError(
                f"target must be a validation accuracy in (0, 1] or None, got {self.target!r}"
            )
        if not isinstance(self.stop_at_target, bool) or not isinstance(self.train_accuracy, bool):
            raise ValueError("stop_at_target and train_accuracy must be True or False")
        if self.stop_at_target and self.target is None:
            raise ValueError(
                "stop_at_target=True needs a target accuracy; set target=0.8 for example"
            )


def first_step_reaching(steps, accuracies, target):
    """The first evaluated step whose accuracy is at least `target`, or None.

    Args:
        steps: increasing step numbers at which the model was evaluated.
        accuracies: the accuracy measured at each of those steps (NaN never counts).
        target: the accuracy to reach.

    Returns:
        An int step, or None when no evaluation reached `target`.

    Raises:
        ValueError: the two sequences differ in length, or `steps` is not increasing.
    """
    steps = list(steps)
    accuracies = list(accuracies)
    if len(steps) != len(accuracies):
        raise ValueError(
            f"steps and accuracies must have the same length, got {len(steps)} and "
            f"{len(accuracies)}"
        )
    if any(b <= a for a, b in zip(steps, steps[1:])):
        raise ValueError(
            "steps must be strictly increasing (they are evaluation checkpoints in order)"
        )
    for step, acc in zip(steps, accuracies):
        if acc >= target:  # False for NaN
            return int(step)
    return None


@dataclasses.dataclass
class RunResult:
    """Everything one training run produced.

    Attributes:
        name: a label for tables and plots.
        spec: the `MLPSpec`.
        config: the `TrainConfig`.
        seed: the seed of the run.
        history: pandas DataFrame, one row per evaluation: ``step``, ``epoch``,
            ``train_loss`` (mean training-mode loss over the steps since the previous row),
            ``val_loss``, ``val_acc``, ``train_acc`` (inference mode, on a fixed training slice
            the size of the validation slice; NaN unless ``config.train_accuracy``),
            ``seconds`` (training time of those steps).
        steps_per_epoch: batches per epoch.
        diverged_at: the first evaluated step whose loss was NaN or infinite, else None.
        step_to_target: first evaluated step with ``val_acc >= config.target``, else None.
        n_params: number of weights of the model.
    """

    name: str
    spec: MLPSpec
    config: TrainConfig
    seed: int
    history: object
    steps_per_epoch: int
    diverged_at: object
    step_to_target: object
    n_params: int

    @property
    def diverged(self):
        """True when the loss became NaN or infinite."""
        return self.diverged_at is not None

    @property
    def seconds_per_step(self):
        """Median training seconds per step over the evaluation intervals (robust to hiccups)."""
        h = self.history.iloc[1:]
        steps = np.diff(self.history["step"].to_numpy())
        return float(np.median(h["seconds"].to_numpy() / steps)) if len(h) else float("nan")

    @property
    def seconds_per_epoch(self):
        """`seconds_per_step` times the number of steps in an epoch."""
        return self.seconds_per_step * self.steps_per_epoch

    @property
    def seconds_to_target(self):
        """Measured training seconds until the step that reached the target, or None."""
        if self.step_to_target is None:
            return None
        h = self.history
        return float(h.loc[h["step"] <= self.step_to_target, "seconds"].sum())

    def row(self):
        """One tidy row (a dict) for `results_table`."""
        last = self.history.iloc[-1]
        s, c = self.spec, self.config
        return {
            "name": self.name,
            "depth": s.depth,
            "width": s.width,
            "activation": s.activation,
            "initializer": s.init_name,
            "batch_norm": s.batch_norm or "none",
            "dropout": s.dropout,
            "residual": s.residual,
            "fixup": s.fixup,
            "learning_rate": c.learning_rate,
            "batch_size": c.batch_size,
            "seed": self.seed,
            "params": self.n_params,
            "steps": int(last["step"]),
            "epochs": float(last["step"]) / self.steps_per_epoch,
            "diverged": self.diverged,
            "final_val_acc": float("nan") if self.diverged else float(last["val_acc"]),
            "final_train_acc": float("nan") if self.diverged else float(last["train_acc"]),
            "best_val_acc": float(self.history["val_acc"].max()),
            "gap": float("nan") if self.diverged else float(last["train_acc"] - last["val_acc"]),
            "target": c.target,
            "step_to_target": self.step_to_target,
            "epochs_to_target": None
            if self.step_to_target is None
            else self.step_to_target / self.steps_per_epoch,
            "sec_per_epoch": self.seconds_per_epoch,
            "sec_to_target": self.seconds_to_target,
        }


def _flat(X, name):
    X = np.asarray(X, dtype=np.float32)
    if X.ndim < 2 or len(X) == 0:
        raise ValueError(
            f"{name} must be a non-empty array of examples (shape (n, ...)), got shape {X.shape}"
        )
    return X.reshape(len(X), -1)


class _Compiled:
    """A model plus its compiled training and evaluation functions; `reset` starts a new run."""

    def __init__(self, spec, arrays, batch_size, sgd_momentum, seed):
        import keras
        import tensorflow as tf

        X_tr, y_tr, X_va, y_va = arrays
        n_classes = int(max(y_tr.max(), y_va.max())) + 1
        self.model = model = build_mlp(spec, X_tr.shape[1], n_classes, seed=seed)
        self.optimizer = optimizer = keras.optimizers.SGD(
            learning_rate=0.01, momentum=sgd_momentum
        )
        optimizer.build(model.trainable_variables)
        X_t, y_t = tf.constant(X_tr), tf.constant(y_tr)
        n_eval = min(len(X_va), len(X_tr))
        self.evals = {
            "val": (tf.constant(X_va), tf.constant(y_va)),
            "train": (X_t[:n_eval], y_t[:n_eval]),
        }

        def loss_fn(y, logits):
            return tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
            )

        @tf.function(input_signature=[tf.TensorSpec([None, batch_size], tf.int32)])
        def train_steps(batches):
            total = tf.constant(0.0)
            for i in tf.range(tf.shape(batches)[0]):
                xb, yb = tf.gather(X_t, batches[i]), tf.gather(y_t, batches[i])
                with tf.GradientTape() as tape:
                    loss = loss_fn(yb, model(xb, training=True))
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply(grads, model.trainable_variables)
                total += loss
            return total

        @tf.function
        def evaluate(X, y):
            logits = model(X, training=False)
            hits = tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), y)
            return loss_fn(y, logits), tf.reduce_mean(tf.cast(hits, tf.float32))

        self.train_steps, self.evaluate = train_steps, evaluate
        train_steps(tf.zeros([0, batch_size], tf.int32))  # trace and optimize; runs no step
        evaluate(*self.evals["val"])

    def reset(self, spec, seed, learning_rate):
        initialize_weights(self.model, spec, seed)
        for var in self.optimizer.variables:
            var.assign(np.zeros(var.shape, dtype=var.dtype))
        self.optimizer.learning_rate = learning_rate


class Runner:
    r"""Trains networks on one dataset with plain mini-batch SGD, and records how each run went.

    Each step minimizes the mean softmax cross-entropy of a mini-batch of $B$ examples,

    $$\theta \leftarrow \theta - \eta\,\nabla_\theta \frac{1}{B}\sum_{i=1}^{B}
    -\log \operatorname{softmax}(f_\theta(x_i))_{y_i},$$

    with BN in training mode (batch statistics, moving averages updated). At step 0 and every
    ``config.eval_every`` steps the model is evaluated in inference mode on the whole
    validation set and on an equally large fixed slice of the training set. The steps between
    two evaluations run inside one compiled `tf.function`, traced before the clock starts, so
    ``seconds`` measures training only (no tracing, no evaluation).

    Tracing and optimizing the graph of a deep network costs more than a short run itself, so
    the runner keeps the compiled model of its last run and reuses it when the next run has the
    same architecture, batch size and SGD momentum: it re-initializes the weights and the optimizer
    and keeps the compiled functions. Results are identical to a fresh model's (see `train`).

    Args:
        data: ``(X_train, y_train, X_valid, y_valid)``; images are flattened; labels are
            integers in ``[0, n_classes)``. The runner keeps float32 copies.

    Raises:
        ValueError: `data` is malformed (wrong number of arrays, mismatched lengths, labels
            that are not 0, 1, ..., n_classes - 1).
    """

    def __init__(self, data):
        if not isinstance(data, (tuple, list)) or len(data) != 4:
            raise ValueError("data must be a tuple (X_train, y_train, X_valid, y_valid)")
        X_tr, X_va = _flat(data[0], "X_train"), _flat(data[2], "X_valid")
        y_tr, y_va = np.asarray(data[1]).astype(np.int32), np.asarray(data[3]).astype(np.int32)
        if len(y_tr) != len(X_tr) or len(y_va) != len(X_va):
            raise ValueError(
                f"X and y must have the same length: X_train {len(X_tr)} vs y_train "
                f"{len(y_tr)}, X_valid {len(X_va)} vs y_valid {len(y_va)}"
            )
        if X_tr.shape[1] != X_va.shape[1]:
            raise ValueError(
                "X_train and X_valid must have the same number of features, got "
                f"{X_tr.shape[1]} and {X_va.shape[1]}"
            )
        if min(y_tr.min(), y_va.min()) < 0 or max(y_tr.max(), y_va.max()) < 1:
            raise ValueError(
                "labels must be integers 0, 1, ..., n_classes - 1 with at least two classes"
            )
        self.arrays = (X_tr, y_tr, X_va, y_va)
        self._key, self._compiled = None, None

    def train(self, spec, config, seed=42, name=None):
        """Train the network `spec` describes with the settings of `config`.

        Weights, shuffles and dropout masks depend on `seed` only (see `initialize_weights`,
        `helpers.training.steps.make_batches`), and TensorFlow's op determinism is on, so a
        run is repeatable. When the mean loss of an interval, or the validation loss, is NaN
        or infinite, the run stops and is recorded as diverged.

        Args:
            spec: an `MLPSpec`.
            config: a `TrainConfig`.
            seed: non-negative integer for the weights, the shuffles and dropout.
            name: label of the run; defaults to ``spec.label`` plus the learning rate.

        Returns:
            A `RunResult`.

        Raises:
            ValueError: `spec`/`config` have the wrong type, the seed is invalid, or the
                training set is smaller than one batch.
        """
        if not isinstance(config, TrainConfig):
            raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
        if not isinstance(spec, MLPSpec):
            raise ValueError(f"spec must be an MLPSpec, got {type(spec).__name__}")
        seed = checks.seed(seed)
        X_tr = self.arrays[0]
        if len(X_tr) < config.batch_size:
            raise ValueError(
                f"X_train has {len(X_tr)} examples, fewer than batch_size={config.batch_size}; "
                "use more data or a smaller batch"
            )

        import pandas as pd
        import tensorflow as tf

        key = (
            (
                spec.depth,
                spec.width,
                spec.activation,
                spec.batch_norm,
                spec.dropout,
                spec.residual,
                spec.bn_epsilon,
            ),
            config.batch_size,
            config.sgd_momentum,
        )
        if self._key != key:
            self._key, self._compiled = None, None  # free the old model before building
            setup(seed)
            self._compiled = _Compiled(
                spec, self.arrays, config.batch_size, config.sgd_momentum, seed
            )
            self._key = key
        compiled = self._compiled
        compiled.reset(spec, seed, config.learning_rate)

        batches = make_batches(len(X_tr), config.batch_size, config.max_steps, seed)
        steps_per_epoch = len(X_tr) // config.batch_size
        rows, diverged_at, step_to_target = [], None, None

        def record(step, train_loss, seconds):
            vl, va = compiled.evaluate(*compiled.evals["val"])
            ta = (
                compiled.evaluate(*compiled.evals["train"])[1]
                if config.train_accuracy
                else float("nan")
            )
            row = {
                "step": step,
                "epoch": step / steps_per_epoch,
                "train_loss": train_loss,
                "val_loss": float(vl),
                "val_acc": float(va),
                "train_acc": float(ta),
                "seconds": seconds,
            }
            rows.append(row)
            return row

        record(0, float("nan"), 0.0)
        step = 0
        while step < config.max_steps:
            chunk = batches[step : step + config.eval_every]
            start = time.perf_counter()
            total = float(compiled.train_steps(tf.constant(chunk)))
            seconds = time.perf_counter() - start
            step += len(chunk)
            row = record(step, total / len(chunk), seconds)
            if not (math.isfinite(row["train_loss"]) and math.isfinite(row["val_loss"])):
                diverged_at = step
                break
            if (
                config.target is not None
                and step_to_target is None
                and row["val_acc"] >= config.target
            ):
                step_to_target = step
                if config.stop_at_target:
                    break
        return RunResult(
            name=name or f"{spec.label} lr={config.learning_rate:g}",
            spec=spec,
            config=config,
            seed=seed,
            history=pd.DataFrame(rows),
            steps_per_epoch=steps_per_epoch,
            diverged_at=diverged_at,
            step_to_target=step_to_target,
            n_params=int(compiled.model.count_params()),
        )


def train(spec, data, config, seed=42, name=None):
    """One run on a fresh `Runner`: ``Runner(data).train(spec, config, seed, name)``.

    It compiles a new model every time; a chapter that trains many networks on the same data
    holds one `Runner` instead. Both give identical results.
    """
    return Runner(data).train(spec, config, seed=seed, name=name)


#: Graph operations that cost nothing at run time and are left out of `step_operations`.
FREE_OPS = frozenset({"Placeholder", "ReadVariableOp", "Identity", "NoOp", "Const"})


def step_operations(spec, input_dim, batch_size, n_classes=10):
    """The TensorFlow operations of one training step of the network `spec` describes, by type.

    The step is the one `train` runs: forward pass in training mode, softmax cross-entropy,
    gradients, and the SGD update of every trainable weight (for BN, also the two
    moving-average updates), traced as a graph. Counting its operations is a deterministic
    measure of the work a step does, unlike its time, which depends on the machine and on what
    else it runs; operations in `FREE_OPS` are left out.

    Args:
        spec: an `MLPSpec`.
        input_dim: number of input features, >= 1.
        batch_size: examples per step, >= 1.
        n_classes: number of output logits, >= 2.

    Returns:
        A pandas Series: operation type -> count, largest first.

    Raises:
        ValueError: `spec` is not an `MLPSpec` or a size is invalid.
    """
    import keras
    import pandas as pd
    import tensorflow as tf

    checks.integer(batch_size, "batch_size", minimum=1)
    model = build_mlp(spec, input_dim, n_classes)
    optimizer = keras.optimizers.SGD(learning_rate=0.01)
    optimizer.build(model.trainable_variables)

    def step(x, y):
        return gradient_step(model, optimizer, x, y)

    graph = (
        tf.function(step)
        .get_concrete_function(
            tf.TensorSpec([batch_size, input_dim], tf.float32),
            tf.TensorSpec([batch_size], tf.int32),
        )
        .graph
    )
    kinds = [op.type for op in graph.get_operations() if op.type not in FREE_OPS]
    return pd.Series(kinds, dtype=object).value_counts()


def results_table(results):
    """One row per run, ready to print, filter and plot.

    Args:
        results: an iterable of `RunResult`.

    Returns:
        A pandas DataFrame with the columns of `RunResult.row` (learning rate, BN, final and
        best validation accuracy, train/validation gap, steps and epochs to target, seconds per
        epoch, whether it diverged, ...).

    Raises:
        ValueError: `results` is empty or holds something that is not a `RunResult`.
    """
    import pandas as pd

    results = list(results)
    if not results:
        raise ValueError("results is empty; pass the RunResult objects returned by train()")
    bad = [type(r).__name__ for r in results if not isinstance(r, RunResult)]
    if bad:
        raise ValueError(f"results must hold RunResult objects (from train()), got {bad[0]}")
    table = pd.DataFrame([r.row() for r in results])
    for col in ("step_to_target",):
        table[col] = table[col].astype("Int64")
    return table

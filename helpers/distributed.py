"""Batch Normalization across replicas: logical CPUs in one process, and worker processes.

The book trains on one device (pp. 339-345). Under `tf.distribute`, each replica receives a
slice of the global batch, and a BN layer normalizes it with the statistics of that slice
unless it is built with ``synchronized=True``, which all-reduces the sums over the replicas.
This module runs one custom training step (the same code in a notebook kernel, where
`tf.distribute.MirroredStrategy` spreads it over logical CPU devices, and in worker processes
under `tf.distribute.MultiWorkerMirroredStrategy`), trains small networks for the accuracy
comparison, derives the float32 tolerance that two synchronized runs must agree within, and
starts and stops the worker processes.

The worker processes run ``python -m helpers.distributed worker ...`` (see `main`). They die
with their parent: each one asks Linux to send it SIGKILL when its parent dies
(``prctl(PR_SET_PDEATHSIG)``), and a watchdog thread also exits when the parent's pid changes.
The prctl call is made by the worker itself, first thing, rather than in `subprocess`'s
``preexec_fn``: a notebook kernel running TensorFlow has many threads, and Python documents
``preexec_fn`` as unsafe (it can deadlock the child before ``exec``) in a threaded parent.
The worker compares its parent's pid with the one it was given right after the call, which
closes the window in which the parent could die before the request was made.
"""

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from helpers import checks
from helpers.training import gradient_step

import numpy as np

__all__ = [
    "WorkerError",
    "accuracy_run",
    "configure_cpu_devices",
    "free_ports",
    "mirrored_strategy",
    "one_step_stats",
    "run_workers",
    "sync_tolerance",
]

#: float32's unit roundoff, 2**-24: the largest relative error of one rounding.
U32 = 2.0**-24

#: Where the worker tells its parent's pid (so the worker can notice that the parent died).
_PARENT_VAR = "BN_COMPANION_PARENT_PID"

_RESTART = (
    "restart the kernel and call helpers.setup(seed, cpu_devices=N) before anything else "
    "runs TensorFlow"
)


# --- logical CPU devices ---------------------------------------------------------------------


def configure_cpu_devices(n):
    """Split the physical CPU into `n` logical CPU devices, before TensorFlow initializes.

    Calling it again with the same `n` does nothing. TensorFlow fixes its devices when its
    runtime starts (the first operation, or listing the logical devices), so a different `n`
    afterwards cannot take effect.

    Args:
        n: number of logical CPU devices, an integer from 1 to 64.

    Returns:
        `n`, as an ``int``.

    Raises:
        ValueError: `n` is not an integer from 1 to 64.
        RuntimeError: TensorFlow already runs with another number of CPU devices.
    """
    n = checks.integer(n, "cpu_devices", minimum=1, maximum=64)
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]  # does not start the runtime
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == n:
        return n
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
        )
    except RuntimeError:  # the runtime has started: its device list is final
        have = len(tf.config.list_logical_devices("CPU"))
        if have != n:
            raise RuntimeError(
                f"TensorFlow already runs with {have} CPU device(s), so cpu_devices={n} "
                f"cannot take effect; {_RESTART}"
            ) from None
    return n


_STRATEGIES = {}


def mirrored_strategy(n_replicas):
    """One `tf.distribute.MirroredStrategy` over the first `n_replicas` logical CPUs.

    The same object is returned for the same `n_replicas` for the life of the process. Two
    strategies in one process number their collective operations from the same start, and
    under TensorFlow 2.21 a synchronized BN layer of the second one then fails: with "Shape
    mismatch in the collective instance" when both span the same devices (its all-reduce
    meets another model's gradient all-reduce under the same key), with "joining a group
    with size 2, but that group has size 4" when the second spans fewer. So each strategy is
    created once, with its own range of collective keys.

    Args:
        n_replicas: an integer >= 1, at most the number of logical CPU devices.

    Returns:
        The strategy.

    Raises:
        ValueError: `n_replicas` is not an integer >= 1, or exceeds the logical CPUs.
    """
    n_replicas = checks.integer(n_replicas, "n_replicas", minimum=1)
    import tensorflow as tf

    if n_replicas not in _STRATEGIES:
        have = len(tf.config.list_logical_devices("CPU"))
        if n_replicas > have:
            raise ValueError(
                f"n_replicas must be at most the {have} logical CPU device(s) of this process, "
                f"got {n_replicas}; {_RESTART}"
            )
        devices = [f"/cpu:{i}" for i in range(n_replicas)]
        # Each strategy numbers its collective groups from 1 + _collective_key_base, a class
        # attribute that TensorFlow's own tests set; a distinct base per strategy keeps two
        # strategies' groups apart.
        base = {"_collective_key_base": 10_000 * (1 + len(_STRATEGIES))}
        cls = type("MirroredStrategy", (tf.distribute.MirroredStrategy,), base)
        _STRATEGIES[n_replicas] = cls(devices)
    return _STRATEGIES[n_replicas]


# --- one training step ------------------------------------------------------------------------


def _batch(x, y, n_replicas, name="x"):
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(f"{name} must be a non-empty batch of examples, got shape {x.shape}")
    if y.shape != (len(x),):
        raise ValueError(
            f"y must hold one label per example of {name} ({len(x)}), got shape {y.shape}"
        )
    if len(x) % n_replicas:
        raise ValueError(
            f"the batch size ({len(x)}) must be a multiple of n_replicas ({n_replicas}), so "
            "that every replica gets the same number of examples"
        )
    return x.reshape(len(x), -1).astype(np.float32), y.astype(np.int32)


def _replica_slice(xg, yg, b):
    """This replica's `b` examples of the global batch ``(xg, yg)`` (inside `strategy.run`)."""
    import tensorflow as tf

    i = tf.distribute.get_replica_context().replica_id_in_sync_group
    return xg[i * b : (i + 1) * b], yg[i * b : (i + 1) * b]


def _one_step_model(n_features, synchronized):
    import keras

    return keras.Sequential(
        [
            keras.Input((n_features,)),
            keras.layers.BatchNormalization(momentum=0.0, synchronized=synchronized),
            keras.layers.Dense(10),
        ]
    )


def one_step_stats(x, y, n_replicas=4, synchronized=False, seed=42, strategy=None):
    r"""One SGD step of BN(momentum=0) + Dense(10) under a strategy, and what BN recorded.

    With momentum 0, the moving statistics after one step are the statistics the layer
    used in that step: $\hat\mu \leftarrow 0 \cdot \hat\mu + 1 \cdot \mu_B$, exactly.
    Replica $r$ receives examples $r b, \dots, (r + 1) b - 1$ of the global batch, with
    $b = B / R$.

    Args:
        x: the global batch, shape ``(B, ...)`` (flattened to ``(B, d)``).
        y: its integer labels, shape ``(B,)``.
        n_replicas: number of replicas R; ``B`` must be a multiple of it.
        synchronized: the BN layer's ``synchronized`` argument.
        seed: seed for `helpers.setup` before the model is built.
        strategy: a `tf.distribute` strategy with `n_replicas` replicas in sync (default:
            `mirrored_strategy(n_replicas)`); workers pass a MultiWorkerMirroredStrategy.

    Returns:
        A dict of float64 NumPy arrays: ``moving_mean`` and ``moving_variance`` (d,), as the
        variable reads after the step; ``local_moving_mean`` (local replicas, d), each local
        copy of the variable; ``outputs_mean`` (local replicas, d), the mean of each local
        replica's BN output over its own examples; ``replica_means`` (R, d) and
        ``global_mean`` (d,), computed by NumPy in float64 from `x`; and ``local_replicas``,
        the global ids of this process's replicas.

    Raises:
        ValueError: bad shapes, or the batch does not split evenly over the replicas.
    """
    n_replicas = checks.integer(n_replicas, "n_replicas", minimum=1)
    seed = checks.seed(seed)
    if not isinstance(synchronized, bool):
        raise TypeError(f"synchronized must be True or False, got {synchronized!r}")
    x, y = _batch(x, y, n_replicas)
    import keras
    import tensorflow as tf

    strategy = mirrored_strategy(n_replicas) if strategy is None else strategy
    if strategy.num_replicas_in_sync != n_replicas:
        raise ValueError(
            f"strategy has {strategy.num_replicas_in_sync} replicas in sync, but "
            f"n_replicas is {n_replicas}"
        )
    b = len(x) // n_replicas
    from helpers import repro

    repro.setup(seed)  # before the scope: clearing the session inside it breaks the scope
    with strategy.scope():
        model = _one_step_model(x.shape[1], synchronized)
        optimizer = keras.optimizers.SGD(learning_rate=0.01)
        optimizer.build(model.trainable_variables)
    bn = model.layers[0]
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")

    def replica_step(xg, yg):
        i = tf.distribute.get_replica_context().replica_id_in_sync_group
        xb, yb = _replica_slice(xg, yg, b)
        with tf.GradientTape() as tape:
            z = bn(xb, training=True)
            loss = tf.reduce_sum(loss_fn(yb, model.layers[1](z))) / len(x)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return tf.reduce_mean(z, axis=0), tf.reshape(i, [1])

    @tf.function
    def step(xg, yg):
        return strategy.run(replica_step, args=(xg, yg))

    out_means, ids = step(tf.constant(x), tf.constant(y))
    local = strategy.experimental_local_results
    replica_ids = [int(t.numpy()[0]) for t in local(ids)]
    x64 = x.astype(np.float64)
    return {
        "moving_mean": bn.moving_mean.numpy().astype(np.float64),
        "moving_variance": bn.moving_variance.numpy().astype(np.float64),
        "local_moving_mean": np.stack(
            [np.asarray(v, np.float64) for v in local(bn.moving_mean.value)]
        ),
        "outputs_mean": np.stack([t.numpy().astype(np.float64) for t in local(out_means)]),
        "replica_means": x64.reshape(n_replicas, b, -1).mean(axis=1),
        "global_mean": x64.mean(axis=0),
        "local_replicas": replica_ids,
    }


# --- accuracy with small per-replica batches --------------------------------------------------


def _mlp(n_features, hidden, synchronized, momentum=0.9):
    import keras

    return keras.Sequential(
        [
            keras.Input((n_features,)),
            keras.layers.BatchNormalization(momentum=momentum, synchronized=synchronized),
            keras.layers.Dense(hidden, activation="relu", kernel_initializer="he_normal"),
            keras.layers.BatchNormalization(momentum=momentum, synchronized=synchronized),
            keras.layers.Dense(10),
        ]
    )


class _Trainer:
    """A model under a strategy with its traced step; `run` re-initializes it for a seed."""

    def __init__(self, strategy, n_features, hidden, synchronized, global_batch, learning_rate):
        import keras
        import tensorflow as tf

        self.strategy, self.n_features, self.hidden = strategy, n_features, hidden
        self.synchronized = synchronized
        with strategy.scope():
            self.model = model = _mlp(n_features, hidden, synchronized)
            self.optimizer = optimizer = keras.optimizers.SGD(learning_rate=learning_rate)
            optimizer.build(model.trainable_variables)
        b = global_batch // strategy.num_replicas_in_sync
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")

        def replica_step(xg, yg):
            xb, yb = _replica_slice(xg, yg, b)
            gradient_step(
                model,
                optimizer,
                xb,
                yb,
                loss=lambda t, logits: tf.reduce_sum(loss_fn(t, logits)) / global_batch,
            )

        @tf.function
        def steps(xs, ys):
            for k in tf.range(tf.shape(xs)[0]):
                strategy.run(replica_step, args=(xs[k], ys[k]))

        self.steps = steps

    def run(self, x, y, x_test, y_test, epochs, global_batch, seed):
        from helpers import repro

        import tensorflow as tf

        repro.setup(seed)
        fresh = _mlp(self.n_features, self.hidden, self.synchronized)  # seeded initial weights
        for var, value in zip(self.model.weights, fresh.weights):
            var.assign(value.numpy())
        self.optimizer.iterations.assign(0)  # plain SGD keeps no other state
        rng = np.random.default_rng(seed)
        n_steps = len(x) // global_batch
        for _ in range(epochs):
            idx = rng.permutation(len(x))[: n_steps * global_batch].reshape(n_steps, -1)
            self.steps(tf.constant(x[idx]), tf.constant(y[idx]))
        predicted = np.argmax(self.model(x_test, training=False).numpy(), axis=1)
        return float(np.mean(predicted == y_test)), predicted


def accuracy_run(
    data,
    seeds,
    n_replicas=4,
    per_replica_batch=8,
    epochs=2,
    hidden=100,
    learning_rate=0.05,
    predictions=False,
):
    """Test accuracy of a small BN network trained three ways, for each seed.

    The three ways see the same global batches in the same order: R replicas with
    ``synchronized=False`` (each BN normalizes with its replica's `per_replica_batch`
    examples), R replicas with ``synchronized=True`` (statistics of the whole global batch),
    and one device with the global batch. The network is Dense input → BN → Dense(`hidden`,
    ReLU) → BN → Dense(10), trained with plain SGD from initial weights set by
    `helpers.setup(seed)`; each configuration is traced once and re-initialized per seed.

    Args:
        data: ``(x_train, y_train, x_test, y_test)``, images of any shape (flattened).
        seeds: a non-empty list of seeds.
        n_replicas: replicas R, an integer >= 2.
        per_replica_batch: examples per replica and step, an integer >= 2.
        epochs: passes over `x_train`, an integer >= 1.
        hidden: units of the hidden layer, an integer >= 1.
        learning_rate: SGD's learning rate, a number > 0.
        predictions: also return each trained network's predicted classes.

    Returns:
        A dict ``{configuration: {seed: accuracy}}`` with configurations ``"unsynchronized"``,
        ``"synchronized"`` and ``"one device"``; with ``predictions=True``, the pair of that
        dict and ``{configuration: {seed: predicted class of each test image}}``.

    Raises:
        ValueError: a bad argument, or fewer training examples than one global batch.
    """
    n_replicas = checks.integer(n_replicas, "n_replicas", minimum=2)
    per_replica_batch = checks.integer(per_replica_batch, "per_replica_batch", minimum=2)
    epochs = checks.integer(epochs, "epochs", minimum=1)
    hidden = checks.integer(hidden, "hidden", minimum=1)
    learning_rate = checks.positive(learning_rate, "learning_rate")
    if not isinstance(seeds, (list, tuple)) or not seeds:
        raise ValueError(f"seeds must be a non-empty list of seeds, got {seeds!r}")
    if not isinstance(predictions, bool):
        raise ValueError(f"predictions must be True or False, got {predictions!r}")
    seeds = [checks.seed(s, "seeds[]") for s in seeds]
    if not isinstance(data, (list, tuple)) or len(data) != 4:
        raise ValueError("data must be (x_train, y_train, x_test, y_test)")
    global_batch = n_replicas * per_replica_batch
    x, y = _batch(data[0], data[1], 1, "x_train")
    x_test, y_test = _batch(data[2], data[3], 1, "x_test")
    if len(x) < global_batch:
        raise ValueError(
            f"x_train must hold at least one global batch ({global_batch} examples), got {len(x)}"
        )
    from helpers import repro

    import tensorflow as tf

    configs = {
        "unsynchronized": (mirrored_strategy(n_replicas), False),
        "synchronized": (mirrored_strategy(n_replicas), True),
        "one device": (tf.distribute.get_strategy(), False),
    }
    results, predicted = {}, {}
    for name, (strategy, synchronized) in configs.items():
        repro.setup(seeds[0])
        trainer = _Trainer(strategy, x.shape[1], hidden, synchronized, global_batch, learning_rate)
        runs = {s: trainer.run(x, y, x_test, y_test, epochs, global_batch, s) for s in seeds}
        results[name] = {s: acc for s, (acc, _) in runs.items()}
        predicted[name] = {s: labels for s, (_, labels) in runs.items()}
    return (results, predicted) if predictions else results


# --- the tolerance two synchronized runs must agree within -------------------------------------


def _gamma(k):
    """Higham's gamma_k = k u / (1 - k u): the relative error bound of k float32 roundings."""
    return k * U32 / (1.0 - k * U32)


def sync_tolerance(x):
    r"""Per-feature bounds on how far two synchronized BN runs on batch `x` can differ.

    Keras's synchronized BN (TensorFlow backend) all-reduces per-replica sums in float32 and
    computes $\mu = S_1 / B$ and $\sigma^2 = S_2 / B - \mu^2$ with $S_1 = \sum_i x_i$,
    $S_2 = \sum_i x_i^2$. Any order of summing $B$ terms (replicas' local sums, then the
    all-reduce, in whatever tree) makes at most $B - 1$ roundings on the way to each result,
    so (Higham, *Accuracy and Stability of Numerical Algorithms*, §4.2) with
    $\gamma_k = k u / (1 - k u)$, $u = 2^{-24}$:

    $$|\hat\mu - \mu| \le \delta_\mu = \gamma_B \, \overline{|x|}$$

    (B − 1 additions and one division), and, with $\overline{x^2} = S_2 / B$,

    $$|\hat\sigma^2 - \sigma^2| \le \delta_{\sigma^2} =
        \gamma_{B+1} \overline{x^2} + (2 |\mu| \delta_\mu + \delta_\mu^2)(1 + u)
        + u \mu^2 + u (\overline{x^2} + \mu^2)$$

    (squares, sum and division for $\overline{x^2}$; the square of an inexact mean; the
    subtraction). The cancellation in $\overline{x^2} - \mu^2$ is why the variance's bound is
    set by $\overline{x^2}$, not by $\sigma^2$. Two runs that each obey a bound differ by at
    most twice it; a run and the exact value by at most once.

    Args:
        x: the global batch, shape ``(B, ...)``; statistics are per feature of the flattened
            examples.

    Returns:
        ``(delta_mean, delta_variance)``: float64 arrays of shape ``(d,)``, the bound for one
        run against the exact statistics.

    Raises:
        ValueError: `x` is empty, not finite, or its batch is too large for the bound
            (``B u >= 1``).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2 or len(x) == 0 or x.size == 0:
        raise ValueError(f"x must be a non-empty batch of examples, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x must hold finite numbers only")
    n = len(x)
    if (n + 1) * U32 >= 0.5:
        raise ValueError(f"x's batch ({n} examples) is too large for a float32 bound")
    x = x.reshape(n, -1)
    mean_abs = np.abs(x).mean(axis=0)
    mean_sq = (x**2).mean(axis=0)
    mu = x.mean(axis=0)
    d_mean = _gamma(n) * mean_abs
    d_var = (
        _gamma(n + 1) * mean_sq
        + (2 * np.abs(mu) * d_mean + d_mean**2) * (1 + U32)
        + U32 * mu**2
        + U32 * (mean_sq + mu**2)
    )
    return d_mean, d_var


# --- worker processes ---------------------------------------------------------------------------


class WorkerError(RuntimeError):
    """A worker failed or the workers ran out of time; every worker has been stopped.

    Attributes:
        pids: the process ids of the workers (all ended when this is raised).
    """

    def __init__(self, message, pids=()):
        super().__init__(message)
        self.pids = list(pids)


def free_ports(n, host="127.0.0.1"):
    """`n` distinct TCP ports that were free on `host` a moment ago.

    Each port is found by binding to port 0; all the sockets stay open until every port is
    chosen (so the n are distinct), then close. Another program could take one before a worker
    binds it, which then fails to start with a clear error.

    Args:
        n: number of ports, an integer from 1 to 64.
        host: the address to bind.

    Returns:
        A list of `n` port numbers.

    Raises:
        ValueError: `n` is not an integer from 1 to 64.
    """
    n = checks.integer(n, "n", minimum=1, maximum=64)
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(n):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(sock.getsockname()[1])
    return ports


def _last_line(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError:
        return "(no output)"
    return lines[-1] if lines else "(no output)"


def _kill(procs):
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)  # its own group: children go too
    for p in procs:
        with contextlib.suppress(Exception):
            p.wait(timeout=10)


def run_workers(task, n_workers=2, timeout=120.0, options=None, arrays=None, seed=42):
    """Run `task` in `n_workers` worker processes on 127.0.0.1 under one TF_CONFIG cluster.

    Every worker runs ``python -m helpers.distributed worker`` with this process's
    environment (so the numerics pins hold there too) plus its own ``TF_CONFIG``, with no GPU
    visible (``CUDA_VISIBLE_DEVICES=-1``: on a machine with one GPU, two workers would
    otherwise share GPU 0, and the chapter compares them with logical CPU devices), in its own
    process group, with stdout and stderr in files. When the call returns or raises (a
    KeyboardInterrupt included), every worker has ended: they are killed if still running.
    A worker that exits with an error stops the others at once.

    Args:
        task: ``"one_step"`` (one synchronized step, see `one_step_stats`; with
            ``options={"try_fit": True}`` it then tries `model.fit` too), ``"fit"`` (try
            `model.fit` once; the result's ``fit_error`` is the error as one line, or None)
            or ``"sleep"`` (wait until stopped; for tests).
        n_workers: number of workers, an integer from 1 to 8.
        timeout: seconds to wait for all workers, a number > 0.
        options: a JSON-friendly dict passed to the task.
        arrays: a dict of NumPy arrays passed to the task (``x`` and ``y``: the global batch).
        seed: the seed every worker passes to `helpers.setup`.

    Returns:
        A list with each worker's JSON result, in worker order.

    Raises:
        ValueError: a bad argument.
        WorkerError: a worker failed (the message ends with its last line of stderr), or the
            workers did not finish within `timeout`.
    """
    if task not in ("one_step", "fit", "sleep"):
        raise ValueError(f"task must be 'one_step', 'fit' or 'sleep', got {task!r}")
    n_workers = checks.integer(n_workers, "n_workers", minimum=1, maximum=8)
    timeout = checks.positive(timeout, "timeout")
    seed = checks.seed(seed)
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise ValueError(f"options must be a dict, got {options!r}")
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(n_workers)]}
    with tempfile.TemporaryDirectory(prefix="bn_workers_") as tmp:
        np.savez(os.path.join(tmp, "arrays.npz"), **(arrays or {}))
        with open(os.path.join(tmp, "options.json"), "w", encoding="utf-8") as f:
            json.dump({"task": task, "seed": seed, **options}, f)
        procs, logs = [], []
        try:
            for i in range(n_workers):
                env = dict(os.environ)
                env["TF_CONFIG"] = json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": i}}
                )
                env[_PARENT_VAR] = str(os.getpid())
                env["CUDA_VISIBLE_DEVICES"] = "-1"
                env["PYTHONPATH"] = os.pathsep.join(
                    [package_root] + [p for p in [env.get("PYTHONPATH")] if p]
                )
                log = os.path.join(tmp, f"worker{i}.err")
                logs.append(log)
                with (
                    open(os.path.join(tmp, f"worker{i}.out"), "wb") as out,
                    open(log, "wb") as err,
                ):
                    procs.append(
                        subprocess.Popen(
                            [sys.executable, "-m", "helpers.distributed", "worker", tmp],
                            env=env,
                            stdin=subprocess.DEVNULL,
                            stdout=out,
                            stderr=err,
                            start_new_session=True,
                            cwd=tmp,
                        )
                    )
            pids = [p.pid for p in procs]
            deadline = time.monotonic() + timeout
            while True:
                codes = [p.poll() for p in procs]
                failed = [i for i, c in enumerate(codes) if c not in (None, 0)]
                if failed:
                    i = failed[0]
                    _kill(procs)
                    raise WorkerError(
                        f"worker {i} of {n_workers} exited with code {codes[i]} and every "
                        f"worker was stopped; its last error line: {_last_line(logs[i])}",
                        pids,
                    )
                if all(c == 0 for c in codes):
                    break
                if time.monotonic() > deadline:
                    _kill(procs)
                    raise WorkerError(
                        f"the {n_workers} workers did not finish within {timeout:g} s and were "
                        f"all stopped; worker 0's last error line: {_last_line(logs[0])}",
                        pids,
                    )
                time.sleep(0.05)
            results = []
            for i in range(n_workers):
                try:
                    with open(os.path.join(tmp, f"result{i}.json"), encoding="utf-8") as f:
                        results.append(json.load(f))
                except (OSError, ValueError) as err:
                    raise WorkerError(
                        f"worker {i} of {n_workers} exited without a readable result ({err}); "
                        f"its last error line: {_last_line(logs[i])}",
                        pids,
                    ) from None
            return results
        finally:
            _kill(procs)


def _die_with_parent():
    """Exit when the parent dies: SIGKILL from Linux, and a thread watching the parent's pid."""
    parent = int(os.environ.get(_PARENT_VAR, "0") or 0)
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    if parent and os.getppid() != parent:  # the parent died before the request was made
        os._exit(3)

    def watch():
        while True:
            if os.getppid() != parent:
                os._exit(3)
            time.sleep(0.2)

    if parent:
        threading.Thread(target=watch, daemon=True).start()


def _tf_config_index():
    config = json.loads(os.environ["TF_CONFIG"])
    return int(config["task"]["index"]), len(config["cluster"]["worker"])


def _worker(folder):
    """One worker: read the task, run it under MultiWorkerMirroredStrategy, write JSON."""
    with open(os.path.join(folder, "options.json"), encoding="utf-8") as f:
        options = json.load(f)
    index, n_workers = _tf_config_index()
    if options["task"] == "sleep":
        while True:
            time.sleep(1)
    with np.load(os.path.join(folder, "arrays.npz")) as data:
        arrays = {k: data[k] for k in data.files}
    if not {"x", "y"} <= set(arrays):
        raise ValueError(
            f"the {options['task']} task needs the arrays x and y, got {sorted(arrays)}"
        )
    import helpers

    import tensorflow as tf

    helpers.setup(options["seed"])
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    result = {}
    if options["task"] == "one_step":
        stats = one_step_stats(
            arrays["x"], arrays["y"], n_workers, True, options["seed"], strategy=strategy
        )
        result = {k: np.asarray(v).tolist() for k, v in stats.items()}
    if options["task"] == "fit" or options.get("try_fit"):
        result["fit_error"] = _try_fit(strategy, arrays["x"], arrays["y"], n_workers)
    path = os.path.join(folder, f"result{index}.json")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(result, f)
    os.replace(path + ".tmp", path)


def _try_fit(strategy, x, y, n_workers):
    """`model.fit` for one step under `strategy`: None if it ran, else the error's first line."""
    import keras

    x, y = _batch(x, y, n_workers)
    with strategy.scope():
        model = _one_step_model(x.shape[1], True)
        model.compile(
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), optimizer="sgd"
        )
    try:
        model.fit(x, y, batch_size=len(x), epochs=1, verbose=0, shuffle=False)
    except Exception as err:  # reported, not raised: the chapter shows it
        text = re.sub(r"\{.*\}", "{...}", str(err), flags=re.DOTALL)
        return f"{type(err).__name__}: {' '.join(text.split())}"[:300]
    return None


def main(argv=None):
    """``python -m helpers.distributed worker FOLDER``: the worker entry point."""
    parser = argparse.ArgumentParser(prog="python -m helpers.distributed")
    parser.add_argument("mode", choices=["worker"])
    parser.add_argument("folder")
    args = parser.parse_args(argv)
    _die_with_parent()
    if "TF_CONFIG" not in os.environ:
        parser.error("TF_CONFIG is not set: workers are started by run_workers")
    _worker(args.folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The supervisor of chapter 09's worker processes: start them, watch them, stop them all.

`run_workers` starts ``python -m helpers.replicas.worker FOLDER`` processes on 127.0.0.1 under
one ``TF_CONFIG`` cluster and collects their JSON results. The workers die with their parent:
each one asks Linux to send it SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``), and a
watchdog thread also exits when the parent's pid changes (`die_with_parent`). The prctl call is
made by the worker itself, first thing, rather than in `subprocess`'s ``preexec_fn``: a
notebook kernel running TensorFlow has many threads, and Python documents ``preexec_fn`` as
unsafe (it can deadlock the child before ``exec``) in a threaded parent. The worker compares
its parent's pid with the one it was given right after the call, which closes the window in
which the parent could die before the request was made.

This module imports no TensorFlow: what a worker runs is `helpers.replicas.worker`'s.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from helpers import checks

import numpy as np

__all__ = ["WorkerError", "die_with_parent", "free_ports", "run_workers"]

#: Where the worker tells its parent's pid (so the worker can notice that the parent died).
PARENT_VAR = "BN_COMPANION_PARENT_PID"


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

    Every worker runs ``python -m helpers.replicas.worker`` with this process's
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
    # The folder that holds the helpers package: helpers/replicas/experiments.py, three levels up.
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
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
                env[PARENT_VAR] = str(os.getpid())
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
                            [sys.executable, "-m", "helpers.replicas.worker", tmp],
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


def die_with_parent():
    """Exit when the parent dies: SIGKILL from Linux, and a thread watching the parent's pid."""
    parent = int(os.environ.get(PARENT_VAR, "0") or 0)
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

"""helpers.replicas.supervisor and .worker: argument checks and the worker processes' lifetime
(started, failed, timed out, orphaned)."""

import os
import signal
import socket
import subprocess
import sys
import time

from helpers.replicas.supervisor import WorkerError, free_ports, run_workers

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _alive(pid):
    """True while `pid` runs (a zombie waiting to be reaped counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pids, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(map(_alive, pids)):
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


# --- argument checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: free_ports(0), "n must be an integer from 1 to 64, got 0"),
        (lambda: free_ports(65), "n must be an integer from 1 to 64"),
        (lambda: run_workers("train"), "task must be"),
        (lambda: run_workers("sleep", n_workers=0), "n_workers must be an integer from 1 to 8"),
        (lambda: run_workers("sleep", timeout=-1), "timeout must be a finite number > 0"),
        (lambda: run_workers("sleep", options=[1]), "options must be a dict"),
    ],
)
def test_bad_arguments_get_one_sentence(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_free_ports_are_distinct_and_bindable():
    ports = free_ports(3)
    assert len(set(ports)) == 3 and all(1024 <= p < 65536 for p in ports)
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


# --- worker processes -------------------------------------------------------------------------


@pytest.mark.integration
def test_a_worker_that_fails_to_start_is_reported_and_nothing_is_left():
    with pytest.raises(WorkerError, match=r"^worker \d of 2 exited with code 1") as info:
        run_workers("one_step", 2, timeout=60, arrays={})
    message = str(info.value)
    assert message.endswith("needs the arrays x and y, got []") and "\n" not in message
    assert len(info.value.pids) == 2 and not _wait_gone(info.value.pids, 0.5)


@pytest.mark.integration
def test_a_timeout_stops_every_worker_and_workers_see_no_gpu(monkeypatch):
    envs, popen = [], subprocess.Popen

    def recording_popen(*args, **kwargs):
        envs.append(kwargs["env"])
        return popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    start = time.monotonic()
    with pytest.raises(WorkerError, match="did not finish within 1.5 s and were all stopped"):
        run_workers("sleep", 2, timeout=1.5)
    assert time.monotonic() - start < 10
    assert [env["CUDA_VISIBLE_DEVICES"] for env in envs] == ["-1", "-1"]


PARENT = """
import sys
from helpers.replicas.supervisor import run_workers
run_workers("sleep", 2, timeout=120)
"""


@pytest.mark.integration
def test_workers_exit_when_their_parent_is_killed():
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}
    )
    try:
        deadline, workers = time.monotonic() + 20, []
        while time.monotonic() < deadline and len(workers) < 2:
            time.sleep(0.1)
            workers = [
                int(pid)
                for pid in os.listdir("/proc")
                if pid.isdigit() and _ppid(int(pid)) == parent.pid
            ]
        assert len(workers) == 2, "the parent did not start its two workers"
        time.sleep(1.0)  # let them reach their watchdogs
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        assert not _wait_gone(workers, 5.0), "workers outlived their parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def _ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None

"""helpers.replicas.experiments and .strategy: argument checks, the float32 tolerance, and one
step under MirroredStrategy (in a subprocess, so that its logical CPUs do not depend on which
tests ran first)."""

import os
import subprocess
import sys

from helpers.replicas import experiments
from helpers.replicas.experiments import sync_tolerance

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- argument checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: sync_tolerance(np.zeros(3)), "x must be a non-empty batch"),
        (lambda: sync_tolerance(np.full((2, 2), np.nan)), "x must hold finite numbers"),
        (lambda: experiments.one_step_stats(np.zeros((10, 3)), np.zeros(10)), "multiple of"),
        (lambda: experiments.one_step_stats(np.zeros((8, 3)), np.zeros(7)), "one label per"),
        (lambda: experiments.one_step_stats(np.zeros((8, 3)), np.zeros(8), 0), "n_replicas"),
        (
            lambda: experiments.accuracy_run((np.zeros((8, 3)),) * 3, [1]),
            "data must be",
        ),
        (
            lambda: experiments.accuracy_run(
                (np.zeros((8, 3)), np.zeros(8), np.zeros((8, 3)), np.zeros(8)), [1]
            ),
            "at least one global batch",
        ),
        (lambda: experiments.accuracy_run(None, []), "seeds must be a non-empty list"),
        (lambda: experiments.accuracy_run(None, [1], per_replica_batch=1), "per_replica_batch"),
    ],
)
def test_bad_arguments_get_one_sentence(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_setup_checks_cpu_devices_before_touching_tensorflow():
    import helpers

    with pytest.raises(ValueError, match="cpu_devices must be an integer from 1 to 64, got 0"):
        helpers.setup(1, cpu_devices=0)
    with pytest.raises(TypeError, match="synchronized must be True or False"):
        experiments.one_step_stats(np.zeros((8, 3)), np.zeros(8), 4, synchronized=1)


# --- the tolerance ------------------------------------------------------------------------------


def _float32_moments(x, order):
    """Synchronized BN's float32 arithmetic, summing the examples in the given order."""
    x32 = x.astype(np.float32)[order]
    s1, s2 = np.float32(0), np.float32(0)
    for row in x32:  # one rounding per addition, as in the worst case
        s1 = np.float32(s1 + row)
        s2 = np.float32(s2 + np.float32(row * row))
    n = np.float32(len(x))
    mean = np.float32(s1 / n)
    return mean, np.float32(np.float32(s2 / n) - np.float32(mean * mean))


@pytest.mark.parametrize("offset", [0.0, 100.0])
def test_float32_moments_stay_within_the_derived_bound(offset):
    rng = np.random.default_rng(0)
    x = (offset + rng.random((64, 50))).astype(np.float32).astype(np.float64)
    d_mean, d_var = sync_tolerance(x)
    for order in [np.arange(64), np.arange(64)[::-1], rng.permutation(64)]:
        mean, var = _float32_moments(x, order)
        assert np.all(np.abs(mean - x.mean(axis=0)) <= d_mean)
        assert np.all(np.abs(var - x.var(axis=0)) <= d_var)
    if offset:  # the cancellation: the bound is set by E[x²], not by the variance (~1/12)
        assert d_var.min() > 1e-4 * x.var(axis=0).max()
        assert np.abs(var - x.var(axis=0)).max() > 1e-6  # float32 really loses digits here


def test_the_bound_grows_with_the_batch():
    x = np.ones((10, 1))
    assert sync_tolerance(np.ones((1000, 1)))[0][0] > sync_tolerance(x)[0][0] > 0


# --- one step under MirroredStrategy, and setup's logical devices -----------------------------

ONE_STEP = """
import helpers
from helpers.replicas import experiments as D, strategy
import numpy as np

helpers.setup(0)  # enable_op_determinism, clear_session and seeding start no runtime
helpers.setup(0, cpu_devices=4)
helpers.setup(0, cpu_devices=4)  # again, same number: fine
rng = np.random.default_rng(0)
x = rng.random((64, 20)).astype(np.float32)
y = rng.integers(0, 10, 64)
unsync = D.one_step_stats(x, y, 4, False, seed=0)
sync = D.one_step_stats(x, y, 4, True, seed=0)
tol_global = D.sync_tolerance(x)[0]
tol_replica = np.max([D.sync_tolerance(x[r * 16 : (r + 1) * 16])[0] for r in range(4)], axis=0)
assert np.all(np.abs(sync["moving_mean"] - sync["global_mean"]) <= tol_global)
assert np.all(np.abs(unsync["moving_mean"] - unsync["replica_means"][0]) <= tol_replica)
assert np.all(np.abs(unsync["local_moving_mean"] - unsync["replica_means"]) <= tol_replica)
assert np.abs(unsync["moving_mean"] - unsync["global_mean"]).max() > 0.01
assert np.abs(unsync["outputs_mean"]).max() < 1e-5  # each replica centred its own slice
assert np.abs(sync["outputs_mean"]).max() > 0.01  # ...not with global statistics
assert unsync["local_replicas"] == [0, 1, 2, 3]
try:
    strategy.mirrored_strategy(5)
except ValueError as err:
    assert "at most the 4 logical CPU device(s)" in str(err), err
else:
    raise AssertionError("5 replicas on 4 devices")
try:
    helpers.setup(0, cpu_devices=2)
except RuntimeError as err:
    assert str(err).endswith("before anything else runs TensorFlow"), err
else:
    raise AssertionError("another device count was accepted after TensorFlow started")
print("ok")
"""


@pytest.mark.integration
def test_one_step_statistics_and_logical_devices():
    run = subprocess.run(
        [sys.executable, "-c", ONE_STEP],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]


def test_accuracy_run_checks_predictions_flag():
    with pytest.raises(ValueError, match="predictions must be True or False"):
        experiments.accuracy_run(None, [1], predictions="yes")


# --- the checks and tables of chapter 09 ---------------------------------------------------------


def test_slice_tolerance_is_the_largest_bound_of_the_slices():
    x = np.arange(24, dtype=np.float32).reshape(8, 3)
    bound = experiments.slice_tolerance(x, 2)
    np.testing.assert_array_equal(
        bound, np.maximum(sync_tolerance(x[:4])[0], sync_tolerance(x[4:])[0])
    )
    with pytest.raises(ValueError, match="multiple of n_replicas"):
        experiments.slice_tolerance(x, 3)


def test_within_and_bound_ratio():
    assert experiments.within([1.0, 2.0], [1.1, 2.0], 0.1 + 1e-12)
    assert not experiments.within([[1.0], [2.0]], [1.0], [0.5])
    assert experiments.bound_ratio([1.0, 2.0], [1.5, 2.0], [1.0, 0.0]) == 0.5
    assert experiments.bound_ratio([1.0, 2.0], [1.0, 2.5], [1.0, 0.0]) == np.inf
    with pytest.raises(ValueError, match="one shape"):
        experiments.bound_ratio([1.0], [1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match=">= 0"):
        experiments.bound_ratio([1.0], [1.0], [-1.0])
    with pytest.raises(ValueError, match="matching shapes"):
        experiments.within([1.0, 2.0], [1.0, 2.0, 3.0], 1.0)


def test_worker_ratios_names_each_worker_and_statistic():
    kernel = {"moving_mean": np.zeros(2), "moving_variance": np.ones(2)}
    workers = [kernel, {"moving_mean": np.array([0.5, 0.0]), "moving_variance": np.ones(2)}]
    ratios = experiments.worker_ratios(
        workers, kernel, {"mean": np.ones(2), "variance": np.ones(2)}
    )
    assert ratios == {
        "worker 0, mean": 0.0,
        "worker 0, variance": 0.0,
        "worker 1, mean": 0.5,
        "worker 1, variance": 0.0,
    }
    with pytest.raises(ValueError, match="at least one worker"):
        experiments.worker_ratios([], kernel, {"mean": np.ones(2)})
    with pytest.raises(ValueError, match="bounds must be keyed"):
        experiments.worker_ratios(workers, kernel, {"std": np.ones(2)})


def test_replica_table_and_prediction_differences():
    two = np.array([[1.0, 3.0], [5.0, 7.0]])
    unsync = {
        "replica_means": two,
        "global_mean": two.mean(0),
        "local_moving_mean": two,
        "moving_mean": two[0],
    }
    sync = {"local_moving_mean": np.full((2, 2), 4.0), "moving_mean": np.full(2, 4.0)}
    table = experiments.replica_table(unsync, sync)
    assert list(table.index) == ["replica 0", "replica 1", "whole batch / variable read"]
    assert table["unsynchronized: each copy"].tolist() == [2.0, 6.0, 2.0]
    assert table["synchronized: each copy"].tolist() == [4.0, 4.0, 4.0]
    with pytest.raises(ValueError, match="same replicas"):
        experiments.replica_table(unsync, {**sync, "local_moving_mean": np.zeros((3, 2))})
    predicted = {
        "one device": {1: [0, 1, 2, 3]},
        "synchronized": {1: [0, 1, 2, 3]},
        "unsynchronized": {1: [0, 1, 0, 0]},
    }
    differ = experiments.prediction_differences(predicted)
    assert differ.index.name == "seed"
    assert differ.loc[1].to_dict() == {"synchronized": 0.0, "unsynchronized": 0.5}
    with pytest.raises(ValueError, match="reference must be one of"):
        experiments.prediction_differences(predicted, "two devices")

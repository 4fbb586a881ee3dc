"""helpers.fusion.timing: interleaved timing, the benchmarks' timed groups, and the traced
inference function."""

from helpers.fusion import timing

import keras
import numpy as np
import pytest

L = keras.layers

pytestmark = pytest.mark.usefixtures("seeded")


def test_time_interleaved_rotates_the_order_and_repeats_each_call():
    calls = []
    res = timing.time_interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, reps=3, inner=2, warmup=1
    )
    assert set(res) == {"a", "b"} and all(v.shape == (3,) and (v >= 0).all() for v in res.values())
    assert calls[:2] == ["a", "b"] and calls.count("a") == 1 + 3 * 2
    # the order rotates from one repetition to the next
    assert calls[2:6] == ["a", "a", "b", "b"] and calls[6:10] == ["b", "b", "a", "a"]


def test_time_interleaved_errors_name_the_argument():
    with pytest.raises(ValueError, match="fns"):
        timing.time_interleaved({})
    with pytest.raises(ValueError, match="reps"):
        timing.time_interleaved({"a": lambda: None}, reps=0)
    with pytest.raises(ValueError, match="inner"):
        timing.time_interleaved({"a": lambda: None}, inner=1.5)


def test_keras_inference_fn_runs_the_model_in_inference_mode():
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.BatchNormalization(), keras.layers.Dense(2)]
    )
    model.layers[0].moving_mean.assign([1.0, 2.0, 3.0])
    x = np.arange(12, dtype="float32").reshape(4, 3)
    call = timing.keras_inference_fn(model, x)
    np.testing.assert_array_equal(call(), model(x, training=False).numpy())
    assert not np.allclose(call(), model(x, training=True).numpy())


class FakeClock:
    """`time.perf_counter` for callables that each take a fixed time: exact timings."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def takes(self, seconds):
        def call():
            self.now += seconds

        return call


def test_time_group_sets_the_calls_and_stores_medians_iqrs_and_paired_ratios(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr("time.perf_counter", clock)
    fns = {"a": clock.takes(1e-3), "b": clock.takes(2e-3), "c": clock.takes(4e-3)}
    entry = {"inner_calls": {}, "reps": 5, "variants": {}, "ratios": {}}
    ratios = (("a", "b"), ("b", "c"), ("a", "missing"))
    timing.time_group(fns, entry, reps=5, target_ms=20.0, ratios=ratios)
    assert entry["inner_calls"] == {"a": 5, "b": 5, "c": 5}  # the slowest takes 20 ms
    assert {k: round(v["median_us"]) for k, v in entry["variants"].items()} == {
        "a": 1000,
        "b": 2000,
        "c": 4000,
    }
    assert all(abs(v["iqr_us"]) < 1e-6 for v in entry["variants"].values())
    assert list(entry["ratios"]) == ["a/b", "b/c"]
    assert all(abs(r[q] - 0.5) < 1e-9 for r in entry["ratios"].values() for q in r)


def test_time_group_counts_probe_and_warm_up_calls():
    calls = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    entry = {"inner_calls": {}, "variants": {}, "ratios": {}}
    timing.time_group(fns, entry, reps=4, target_ms=1e-9, probe_reps=2, probe_warmup=1, warmup=3)
    # probe: 1 warm-up + 2 reps of one call; then 3 warm-ups + 4 reps of one call (inner >= 1)
    assert calls.count("a") == calls.count("b") == 1 + 2 + 3 + 4
    assert entry["inner_calls"] == {"a": 1, "b": 1} and entry["ratios"] == {}

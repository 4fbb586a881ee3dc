"""helpers.fusion.timing: interleaved timing, and the traced inference function."""

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


def test_stored_bench_names_what_it_knows():
    with pytest.raises(ValueError, match="latency, networks, wall_time"):
        timing.stored_bench("speed")
    results, table = timing.stored_bench("latency")
    assert "models" in results and table.strip()


def test_stored_wall_time_has_a_ratio_per_seed():
    try:
        results, table = timing.stored_bench("wall_time")
    except FileNotFoundError as err:  # a clear sentence, not a traceback from importlib
        assert "make bench" in str(err)
        return
    for entry in results["seeds"].values():
        assert entry["time_ratio"]["q25"] <= entry["time_ratio"]["median"]
        assert entry["no_bn"]["steps"] > 0 and entry["bn"]["steps"] > 0
    assert "| seed |" in table

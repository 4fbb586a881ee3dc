"""The helpers behind issue 20's experiments: BN's ε in MLPSpec, stored bench results, and
training steps that keep BN in inference mode."""

from helpers import distributed, timing
from helpers.models import MLPSpec, build_mlp
from helpers.training import gradient_step

import numpy as np
import pytest


def test_bn_epsilon_reaches_every_bn_layer():
    spec = MLPSpec(depth=2, width=4, batch_norm="before", bn_epsilon=1e-5)
    model = build_mlp(spec, 3)
    eps = [layer.epsilon for layer in model.layers if "bn_" in layer.name]
    assert eps == [1e-5, 1e-5]
    assert "ε=1e-05" in spec.label
    default = build_mlp(MLPSpec(depth=1, width=4, batch_norm="after"), 3)
    assert [layer.epsilon for layer in default.layers if "bn_" in layer.name] == [1e-3]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(batch_norm="before", bn_epsilon=0), "bn_epsilon"),
        (dict(batch_norm="before", bn_epsilon="small"), "bn_epsilon"),
        (dict(bn_epsilon=1e-5), "batch_norm is None"),
    ],
)
def test_bn_epsilon_is_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MLPSpec(depth=1, width=4, **kwargs)


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


def test_accuracy_run_checks_predictions_flag():
    with pytest.raises(ValueError, match="predictions must be True or False"):
        distributed.accuracy_run(None, [1], predictions="yes")


def test_gradient_step_in_inference_mode_leaves_moving_statistics():
    import keras

    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(2),
        ]
    )
    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    optimizer.build(model.trainable_variables)
    bn = model.layers[0]
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = np.array([0, 1, 0, 1], dtype=np.int32)
    gamma = bn.gamma.numpy().copy()
    gradient_step(model, optimizer, x, y, training=False)
    assert np.array_equal(bn.moving_mean.numpy(), np.zeros(3))  # not updated
    assert not np.array_equal(bn.gamma.numpy(), gamma)  # but γ trained
    gradient_step(model, optimizer, x, y)  # training mode: the statistics move
    assert not np.array_equal(bn.moving_mean.numpy(), np.zeros(3))

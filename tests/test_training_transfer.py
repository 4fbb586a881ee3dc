"""helpers.training.transfer: the class split, frozen BN inside fit, drift of the moving
statistics, and a transfer run on tiny data."""

from helpers.training import small_batches, transfer

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("seeded")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 4, 4)).astype(np.float32) + 1.0
Y = np.arange(64) % 4


def test_class_split_relabels_in_the_given_order():
    Xs, ys = transfer.class_split(X, Y, [3, 1])
    assert len(Xs) == 32 and set(ys) == {0, 1}
    np.testing.assert_array_equal(ys, np.where(Y[np.isin(Y, [1, 3])] == 3, 0, 1))
    for bad, message in [
        ([], "non-empty list of distinct"),
        ([1, 1], "non-empty list of distinct"),
        ([7], r"classes \[7\] have no image"),
        ("01", "classes must be a list"),
        ([-1], "each class must be an integer >= 0"),
    ]:
        with pytest.raises(ValueError, match=message):
            transfer.class_split(X, Y, bad)


def _fit_one_epoch(model):
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(X, Y, epochs=1, batch_size=16, verbose=0)


def test_frozen_bn_runs_in_inference_mode_inside_fit():
    base = transfer.build_base((4, 4), hidden=[8])
    base.trainable = False
    model = transfer.transfer_model(base, 4)
    before = transfer.moving_stats(base)
    _fit_one_epoch(model)
    assert transfer.stats_drift(before, transfer.moving_stats(base)) == 0.0
    np.testing.assert_array_equal(model(X, training=True), model(X, training=False))


def test_training_false_does_not_protect_an_unfrozen_base_in_keras_3():
    """The Keras guide's base(inputs, training=False): fit's training=True overrides it."""
    base = transfer.build_base((4, 4), hidden=[8])
    model = transfer.transfer_model(base, 4, training=False)
    before = transfer.moving_stats(base)
    _fit_one_epoch(model)
    assert transfer.stats_drift(before, transfer.moving_stats(base)) > 0


def test_stats_drift_and_bn_layers_errors():
    base = transfer.build_base((4, 4), hidden=[8, 4])
    assert len(transfer.bn_layers(transfer.transfer_model(base, 2))) == 2
    with pytest.raises(ValueError, match="same model"):
        transfer.stats_drift(transfer.moving_stats(base), transfer.moving_stats(base)[:1])
    with pytest.raises(ValueError, match="no BatchNormalization layer"):
        transfer.moving_stats(small_batches.build_normalized_mlp("layer", 4, hidden=[2]))
    with pytest.raises(ValueError, match="training must be None or False"):
        transfer.transfer_model(base, 2, training=True)


def test_transfer_run_on_tiny_data():
    split = transfer.class_split(X, Y, [0, 1]), transfer.class_split(X, Y, [2, 3])
    out = transfer.transfer_run(
        split[0], split[1], split[1], seed=1, hidden=[8], epochs=(1, 1, 1), batch_size=8
    )
    assert out["drift_frozen"] == 0.0 and out["drift_bn_frozen"] == 0.0
    assert out["drift_unfrozen_bn"] > 0 and out["drift_default"] > 0
    with pytest.raises(ValueError, match=r"epochs must be \(pretraining, head, fine-tuning\)"):
        transfer.transfer_run(split[0], split[1], split[1], seed=1, epochs=(1, 1))
    with pytest.raises(ValueError, match=r"new must be a pair \(X, y\)"):
        transfer.transfer_run(split[0], X, split[1], seed=1)

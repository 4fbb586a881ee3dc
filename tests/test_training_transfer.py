"""helpers.training.transfer: the class split, frozen BN inside fit, drift of the moving
statistics, and a transfer run on tiny data."""

from helpers.training import small_batches, transfer

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


def test_frozen_bn_runs_in_inference_mode_inside_fit():
    base = transfer.build_base((4, 4), hidden=[8])
    base.trainable = False
    model = transfer.transfer_model(base, 4)
    assert transfer.fit_drift(model, base, X, Y, batch_size=16) == 0.0
    np.testing.assert_array_equal(model(X, training=True), model(X, training=False))


def test_training_false_does_not_protect_an_unfrozen_base_in_keras_3():
    """The Keras guide's base(inputs, training=False): fit's training=True overrides it."""
    base = transfer.build_base((4, 4), hidden=[8])
    model = transfer.transfer_model(base, 4, training=False)
    assert transfer.fit_drift(model, base, X, Y, batch_size=16) > 0


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


def test_fit_drift_errors():
    base = transfer.build_base((4, 4), hidden=[8])
    model = transfer.transfer_model(base, 4)
    with pytest.raises(ValueError, match="epochs"):
        transfer.fit_drift(model, base, X, Y, epochs=0)
    with pytest.raises(ValueError, match="batch_size"):
        transfer.fit_drift(model, base, X, Y, batch_size=0)


def test_task_split_takes_each_task_from_its_own_half():
    pre, new, valid = transfer.task_split((X, Y), (X[:16], Y[:16]), 5, old=[0, 1], new=[2, 3])
    assert len(pre[0]) == len(new[0]) == 5 and set(pre[1]) == set(new[1]) == {0, 1}
    np.testing.assert_array_equal(pre[0], X[:32][np.isin(Y[:32], [0, 1])][:5])
    np.testing.assert_array_equal(new[0], X[32:][np.isin(Y[32:], [2, 3])][:5])
    assert len(valid[0]) == 8 and pre[0].shape[1:] == (4, 4)
    with pytest.raises(ValueError, match="n_per_task"):
        transfer.task_split((X, Y), (X, Y), 0)
    with pytest.raises(ValueError, match="valid must be a pair"):
        transfer.task_split((X, Y), X, 5)


def test_draw_transfer_draws_one_dot_per_seed_and_column():
    import matplotlib.pyplot as plt
    import pandas as pd

    runs = pd.DataFrame({col: [0.5, 0.6] for col in transfer.SHOWN}, index=[1, 2])
    fig, ax = plt.subplots()
    transfer.draw_transfer(ax, runs)
    assert len(ax.collections) == len(transfer.SHOWN)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(transfer.SHOWN.values())
    with pytest.raises(ValueError, match="lacks"):
        transfer.draw_transfer(ax, runs.drop(columns="acc_frozen"))
    with pytest.raises(ValueError, match="ax must be"):
        transfer.draw_transfer(None, runs)
    plt.close(fig)

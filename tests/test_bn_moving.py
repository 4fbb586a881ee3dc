"""helpers.bn.moving: the update rule replayed against Keras, the momentum experiment, and moving
against exact statistics, on small cases."""

from helpers.bn import moving
from helpers.bn.reference import batch_moments

import keras
import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.usefixtures("seeded")


def images(n, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, 28, 28)).astype("float32")


def check_model():
    model = keras.Sequential(
        [
            keras.Input((28, 28)),
            keras.layers.Flatten(),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(8, activation="elu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.SGD(0.1))
    return model


def test_the_replay_matches_keras_and_the_unbiased_variant_does_not():
    x, y = images(24), np.arange(24) % 10
    model = check_model()
    before, after = moving.fit_with_snapshots(model, x, y, batch_size=8)
    assert len(before) == len(after) == 3 and len(before[0]) == 12
    bn = model.layers[1]
    errors, ours = moving.replay_update_rule(before, after, x.reshape(3, 8, 784), bn.momentum,
                                             bn.epsilon)  # fmt: skip
    assert list(errors.columns) == ["step", "layer", "mean", "variance (÷N)", "variance (÷(N−1))"]
    assert len(errors) == 6
    assert errors["mean"].max() < 1e-5 and errors["variance (÷N)"].max() < 1e-5
    assert errors["variance (÷(N−1))"].max() > 1e-4
    np.testing.assert_allclose(ours["BN 2"][1], after[-1][9], atol=1e-5)


def test_the_replay_refuses_snapshots_that_do_not_fit():
    with pytest.raises(ValueError, match="one snapshot per batch"):
        moving.replay_update_rule([[0] * 12], [], np.zeros((1, 2, 784)), 0.99, 1e-3)
    with pytest.raises(ValueError, match="12 weight arrays"):
        moving.replay_update_rule([[0] * 4], [[0] * 4], np.zeros((1, 2, 784)), 0.99, 1e-3)
    with pytest.raises(ValueError, match="steps"):
        snapshot = [np.zeros(784)] * 12
        moving.replay_update_rule([snapshot], [snapshot], np.zeros((2, 784)), 0.99, 1e-3)
    with pytest.raises(ValueError, match="batch_size"):
        moving.fit_with_snapshots(check_model(), images(8), np.zeros(8), batch_size=0)


def test_rms_error_and_noise_floor_by_hand():
    np.testing.assert_allclose(moving.rms_error([[1.0, 3.0], [0.0, 0.0]], [0.0, 0.0]),
                               [np.sqrt(5.0), 0.0])  # fmt: skip
    assert moving.noise_floor(0.9, [4.0, 4.0], 4) == pytest.approx(np.sqrt(0.1 / 1.9))
    with pytest.raises(ValueError, match="target"):
        moving.rms_error(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="momentum"):
        moving.noise_floor(1.0, [1.0], 4)
    with pytest.raises(ValueError, match="batch_size"):
        moving.noise_floor(0.9, [1.0], 0)


def test_ema_replay_settles_near_its_noise_floor_and_keras_follows_it():
    x = np.random.default_rng(1).uniform(0, 1, (2_000, 6)).astype("float32")
    target = batch_moments(x)
    runs, orders = moving.ema_replay(x, target, [8, 32], [0.9, 0.99], steps=400, seed=0)
    assert set(runs) == {(8, 0.9), (8, 0.99), (32, 0.9), (32, 0.99)}
    assert len(orders[8]) == 400 * 8 and len(runs[8, 0.9][0]) == 400
    table = moving.settling_table(runs, target[1], steps=400)
    fast = table.set_index(["batch size", "momentum"]).loc[(8, 0.9)]
    assert 0.5 < fast["settled / floor"] < 1.5
    assert abs(fast["moving var / true var"] - 7 / 8) < 0.05  # (B − 1)/B, not 1
    shown = moving.shown_settling(table)
    assert shown.index.names == ["batch size", "momentum"]
    means = moving.keras_moving_means(x[orders[8][:80]], batch_size=8, momentum=0.9)
    np.testing.assert_allclose(moving.rms_error(means, target[0]), runs[8, 0.9][0][:10],
                               atol=1e-5)  # fmt: skip


def test_ema_replay_and_tables_refuse_bad_input():
    x = np.zeros((100, 2))
    with pytest.raises(ValueError, match="multiple of 100"):
        moving.ema_replay(x, (x[0], x[0]), [2], [0.9], steps=150, seed=0)
    with pytest.raises(ValueError, match="batch size"):
        moving.ema_replay(x, (x[0], x[0]), [0], [0.9], steps=100, seed=0)
    with pytest.raises(ValueError, match="runs is empty"):
        moving.settling_table({}, [1.0], 100)
    with pytest.raises(ValueError, match="columns"):
        moving.shown_settling(pd.DataFrame({"batch size": [8]}))


def test_exact_statistics_and_their_gap():
    x, y = images(64, seed=2), np.arange(64) % 10
    model = check_model()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    exact = moving.with_exact_statistics(model, x)
    first = exact.layers[1]
    np.testing.assert_allclose(first.moving_mean.numpy(), x.reshape(64, -1).mean(axis=0),
                               atol=1e-5)  # fmt: skip
    rows = moving.statistics_gap(model, exact)
    assert [r[0] for r in rows] == ["BN 1 (784 features)", "BN 2 (8 features)"]
    assert moving.statistics_gap(exact, exact)[0][1:] == (0.0, 0.0)
    gaps, acc = moving.compare_statistics({("run", 0): (model, exact)}, x, y)
    assert len(gaps) == 2 and list(acc["seed"]) == [0]
    assert acc["exact − moving"][0] == pytest.approx(
        acc["exact statistics"][0] - acc["moving averages"][0]
    )
    assert 0.0 <= moving.accuracy(model, x, y) <= 1.0


def test_exact_statistics_refuse_what_they_cannot_compare():
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no BatchNormalization"):
        moving.with_exact_statistics(plain, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="same BN layers"):
        moving.statistics_gap(plain, plain)
    with pytest.raises(ValueError, match="labels"):
        moving.accuracy(plain, np.zeros((4, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="trained is empty"):
        moving.compare_statistics({}, np.zeros((4, 3)), np.zeros(4))

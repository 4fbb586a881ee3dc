"""helpers.clipping.seeds: one traced model over several seeds, runs equal to fresh ones."""

import helpers
from helpers.clipping import recording, seeds, tensorboard

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("seeded_module")


# --- fit_seeds: one traced model, runs identical to fresh ones ------------------------------


def _tiny_rnn():
    return keras.Sequential(
        [
            keras.Input((5, 3)),
            keras.layers.SimpleRNN(4, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )


def _tiny_data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(48, 5, 3)).astype(np.float32), rng.integers(0, 3, 48)


def test_fit_seeds_runs_equal_fresh_runs_bit_for_bit(tmp_path):
    x, y = _tiny_data()

    def sgd():
        return keras.optimizers.SGD(learning_rate=0.5, clipnorm=1.0, momentum=0.5)

    runs = seeds.fit_seeds(
        _tiny_rnn,
        sgd,
        [3, 4],
        lambda s: tmp_path / f"reused_{s}",
        x=x,
        y=y,
        epochs=2,
        batch_size=16,
    )
    for seed in (3, 4):
        helpers.setup(seed)
        fresh = recording.GradientNormModel(_tiny_rnn())
        fresh.compile(
            loss="sparse_categorical_crossentropy", metrics=["accuracy"], optimizer=sgd()
        )
        history = fresh.fit(
            x,
            y,
            epochs=2,
            batch_size=16,
            verbose=0,
            callbacks=[tensorboard.TensorBoardScalars(tmp_path / f"fresh_{seed}")],
        )
        for a, b in zip(fresh.get_weights(), runs[seed][1]):
            np.testing.assert_array_equal(a, b)
        assert history.history["loss"] == runs[seed][0]["loss"]
        reused = tensorboard.read_scalars(tmp_path / f"reused_{seed}")["batch/grad_norm"]
        np.testing.assert_array_equal(
            reused[1], tensorboard.read_scalars(tmp_path / f"fresh_{seed}")["batch/grad_norm"][1]
        )
    assert not np.array_equal(runs[3][1][0], runs[4][1][0])


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"seeds": []}, "seeds"),
        ({"seeds": [1, -1]}, "seeds"),
        ({"seeds": [True]}, "seeds"),
        ({"build": None}, "build"),
        ({"logdir": "folder"}, "logdir"),
    ],
)
def test_fit_seeds_errors(kwargs, word):
    args = {
        "build": _tiny_rnn,
        "optimizer": keras.optimizers.SGD,
        "seeds": [0],
        "logdir": str,
        **kwargs,
    }
    with pytest.raises(ValueError, match=word):
        seeds.fit_seeds(args["build"], args["optimizer"], args["seeds"], args["logdir"])

"""helpers.clipping.tensorboard: per-step scalars written during fit and read back."""

import os

from helpers.clipping import recording, tensorboard

import keras
import numpy as np
import pytest
import tensorflow as tf
from tiny_clipping import Keep, tiny_model, tiny_problem

pytestmark = pytest.mark.usefixtures("seeded_module")


def test_tensorboard_round_trip(tmp_path):
    X, y = tiny_problem()
    model = recording.GradientNormModel(tiny_model())
    model.compile(
        loss="mse", optimizer=keras.optimizers.SGD(learning_rate=0.01, global_clipnorm=1.0)
    )
    keep = Keep()
    history = model.fit(
        X,
        y,
        batch_size=4,
        epochs=2,
        validation_data=(X, y),
        verbose=0,
        callbacks=[keep, tensorboard.TensorBoardScalars(tmp_path / "run")],
    )
    scalars = tensorboard.read_scalars(tmp_path)
    for key in recording.STEP_KEYS:
        steps, values = scalars[f"batch/{key}"]
        np.testing.assert_array_equal(steps, np.arange(8))
        # Written as float32 by tf.summary.scalar.
        np.testing.assert_allclose(values, [log[key] for log in keep.logs], rtol=1e-6)
    steps, values = scalars["epoch/val_loss"]
    np.testing.assert_array_equal(steps, [0, 1])
    np.testing.assert_allclose(values, history.history["val_loss"], rtol=1e-6)


def test_read_scalars_reads_nan_and_simple_values(tmp_path):
    from tensorflow.core.util import event_pb2

    writer = tf.summary.create_file_writer(str(tmp_path / "tf2"))
    with writer.as_default():
        for step, value in enumerate([1.5, float("nan"), float("inf")]):
            tf.summary.scalar("x", value, step=step)
    writer.close()
    with tf.io.TFRecordWriter(str(tmp_path / "events.out.tfevents.0.v1")) as f:
        event = event_pb2.Event(step=7)
        event.summary.value.add(tag="old", simple_value=2.5)
        f.write(event.SerializeToString())
    scalars = tensorboard.read_scalars(tmp_path)
    np.testing.assert_array_equal(scalars["x"][0], [0, 1, 2])
    np.testing.assert_array_equal(scalars["x"][1], [1.5, np.nan, np.inf])
    assert scalars["old"][0].tolist() == [7] and scalars["old"][1].tolist() == [2.5]


def test_read_scalars_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no TensorBoard event file"):
        tensorboard.read_scalars(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        tensorboard.read_scalars(os.path.join(tmp_path, "missing"))
    with pytest.raises(ValueError, match="logdir"):
        tensorboard.read_scalars("")
    with pytest.raises(ValueError, match="logdir"):
        tensorboard.read_scalars(3)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"logdir": ""}, "logdir"),
        ({"logdir": None}, "logdir"),
        ({"logdir": "x", "batch_keys": "grad_norm"}, "batch_keys"),
        ({"logdir": "x", "batch_keys": ()}, "batch_keys"),
    ],
)
def test_tensorboard_scalars_rejects_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        tensorboard.TensorBoardScalars(**kwargs)

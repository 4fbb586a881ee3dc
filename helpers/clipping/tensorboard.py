"""Per-step values as TensorBoard scalars: `TensorBoardScalars` writes them with `tf.summary`
during ``fit``, and `read_scalars` reads the event files back for plotting."""

import glob
import os

from helpers.clipping.recording import STEP_KEYS

import keras
import numpy as np
import tensorflow as tf


class TensorBoardScalars(keras.callbacks.Callback):
    """A Keras callback that writes per-step and per-epoch scalars to TensorBoard.

    At the end of every training batch it writes each of `batch_keys` found in the logs as
    ``batch/<key>`` at step 0, 1, 2, ... (counted across epochs); at the end of every epoch
    it writes every other log entry (``loss``, ``val_loss``, ``val_accuracy``, ...) as
    ``epoch/<key>`` at the epoch number. It uses `tf.summary.create_file_writer`, so
    ``tensorboard --logdir <logdir>`` shows the curves, and `read_scalars` reads them back.
    NaN and inf values are written as they are.

    Args:
        logdir: the folder for the event files (created if needed); the caller chooses it,
            e.g. a `tempfile.TemporaryDirectory`.
        batch_keys: which per-step log entries to write, by default `STEP_KEYS` (what
            `GradientNormModel` adds).

    Raises:
        ValueError: `logdir` is not a non-empty string or path, or `batch_keys` is a string
            or empty.
    """

    def __init__(self, logdir, batch_keys=STEP_KEYS):
        if not isinstance(logdir, (str, os.PathLike)) or not os.fspath(logdir):
            raise ValueError(f"logdir must be a non-empty folder path, got {logdir!r}.")
        if isinstance(batch_keys, str) or not batch_keys:
            raise ValueError(
                f"batch_keys must be a non-empty list of log names such as {STEP_KEYS}, got "
                f"{batch_keys!r}."
            )
        super().__init__()
        self.logdir = os.fspath(logdir)
        self.batch_keys = tuple(batch_keys)
        self.step = 0
        self._writer = None

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(self.logdir)

    def on_train_batch_end(self, batch, logs=None):
        with self._writer.as_default():
            for key in self.batch_keys:
                if logs and key in logs:
                    tf.summary.scalar(f"batch/{key}", float(logs[key]), step=self.step)
        self.step += 1

    def on_epoch_end(self, epoch, logs=None):
        with self._writer.as_default():
            for key, value in (logs or {}).items():
                if key not in self.batch_keys:
                    tf.summary.scalar(f"epoch/{key}", float(value), step=epoch)
        self._writer.flush()

    def on_train_end(self, logs=None):
        self._writer.flush()
        self._writer.close()


def read_scalars(logdir):
    """Read every scalar from the TensorBoard event files under a folder.

    Works for scalars written by TF2's `tf.summary.scalar` (stored as tensors) and for the
    older ``simple_value`` form. Event files are read in name order (their names start with
    the creation time); a step written twice keeps the value read last.

    Args:
        logdir: a folder holding ``events.out.tfevents.*`` files, directly or in subfolders.

    Returns:
        A dict ``{tag: (steps, values)}`` with two NumPy arrays per tag: int64 steps and
        float64 values, sorted by step.

    Raises:
        ValueError: `logdir` is not a non-empty path.
        FileNotFoundError: `logdir` is not a folder, or holds no event file.
    """
    from tensorflow.core.util import event_pb2

    if not isinstance(logdir, (str, os.PathLike)) or not os.fspath(logdir):
        raise ValueError(f"logdir must be a non-empty folder path, got {logdir!r}.")
    logdir = os.fspath(logdir)
    if not os.path.isdir(logdir):
        raise FileNotFoundError(
            f"logdir {logdir!r} is not a folder; pass the folder given to TensorBoardScalars."
        )
    files = sorted(glob.glob(os.path.join(logdir, "**", "events.out.tfevents.*"), recursive=True))
    if not files:
        raise FileNotFoundError(
            f"no TensorBoard event file (events.out.tfevents.*) under {logdir!r}; was the "
            "callback passed to fit()?"
        )
    scalars = {}
    for path in files:
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    number = float(value.simple_value)
                elif value.HasField("tensor"):
                    array = tf.make_ndarray(value.tensor)
                    if array.size != 1 or not np.issubdtype(array.dtype, np.number):
                        continue
                    number = float(array.reshape(()))
                else:
                    continue
                scalars.setdefault(value.tag, {})[int(event.step)] = number
    return {
        tag: (
            np.array(sorted(d), dtype=np.int64),
            np.array([d[s] for s in sorted(d)], dtype=np.float64),
        )
        for tag, d in scalars.items()
    }

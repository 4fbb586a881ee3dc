"""A tiny regression problem and network whose gradients clipping changes, and a callback
that keeps each step's logged norms: shared by the tests of helpers.clipping."""

import helpers
from helpers.clipping import recording

import keras
import numpy as np


class Keep(keras.callbacks.Callback):
    """Keeps, for every training step, the values of `recording.STEP_KEYS` in the logs."""

    def on_train_begin(self, logs=None):
        self.logs = []

    def on_train_batch_end(self, batch, logs=None):
        self.logs.append({k: float(logs[k]) for k in recording.STEP_KEYS})


def tiny_problem():
    """16 examples of 4 features and targets large enough for clipping to act."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(16, 4)).astype(np.float32)
    y = (X @ np.array([30.0, -20.0, 10.0, 5.0], np.float32))[:, None]
    return X, y


def tiny_model(seed=0):
    """A 4-3-1 network, built after seeding Keras with `seed`."""
    helpers.setup(seed)
    return keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(1)]
    )

"""A tiny classification problem for the training tests: two well separated Gaussian blobs."""

import numpy as np


def blobs(n_train=256, n_valid=128, n_features=8, seed=0):
    """Two well separated Gaussian blobs: a problem any small MLP solves in a few steps.

    Returns ``(X_train, y_train, X_valid, y_valid)``.
    """
    rng = np.random.default_rng(seed)

    def draw(n):
        y = rng.integers(0, 2, n)
        X = rng.normal(size=(n, n_features)).astype(np.float32) + 2.0 * (2 * y[:, None] - 1)
        return X, y

    return (*draw(n_train), *draw(n_valid))

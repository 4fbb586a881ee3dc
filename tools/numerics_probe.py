"""Print short hashes of float results that depend on the numerics settings.

Run it under different settings to see which of them change results, for example:

    for isa in AVX AVX2; do ONEDNN_MAX_CPU_ISA=$isa .venv/bin/python -m tools.numerics_probe; done
    BN_COMPANION_NUMERICS=alternate .venv/bin/python -m tools.numerics_probe

Equal hashes mean bit-identical results. `helpers` is imported first, so the pins of
`helpers.runtime.numerics` fill in whatever the environment leaves unset.
"""

import hashlib

import helpers
from helpers.runtime import numerics

import keras
import numpy as np
import tensorflow as tf


def digest(array):
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:12]


def main():
    helpers.setup(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 784)).astype(np.float32)
    y = rng.integers(0, 10, 512)
    model = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(300, activation="elu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    results = {
        "keras fit": np.concatenate([w.ravel() for w in model.get_weights()]),
        "tf matmul": tf.matmul(x, np.full((784, 300), 0.37, np.float32)).numpy(),
        "numpy float32 matmul": x @ x[:300].T,
        "numpy float64 exp": np.exp(x.astype(np.float64)),
    }
    for var, value, source in numerics.status_rows():
        print(f"{var:<26}{value:<38}{source}")
    for name, value in results.items():
        print(f"{name:<26}{digest(value)}")


if __name__ == "__main__":
    main()

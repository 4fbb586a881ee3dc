"""Reproducibility: one call that every chapter makes before it builds a model."""

import logging
import platform
import warnings

from helpers import checks
from helpers.runtime import devices, supported

import numpy as np

#: What the book itself printed (Chapter 10, ``tf.__version__`` and ``keras.__version__``).
#: The book does not print its Python or NumPy versions, so none is invented here.
BOOK_VERSIONS = {
    "Python": "not stated",
    "TensorFlow": "2.0.0",
    "Keras": "2.2.4-tf (tf.keras)",
    "NumPy": "not stated",
}

_determinism_enabled = False


def setup(seed=42, cpu_devices=None):
    """Seed everything, make TensorFlow ops deterministic and start a fresh Keras session.

    Call it at the top of a chapter and again before building each model: clearing the
    session resets Keras's layer-name counters (so names do not drift to ``dense_212``) and
    re-seeding makes every model's initial weights and every shuffle repeatable.

    `tf.random.set_seed` alone no longer makes Keras 3 repeatable: Keras 3 draws from its own
    seed generator, which `keras.utils.set_random_seed` seeds together with Python's `random`,
    NumPy and TensorFlow.

    With `cpu_devices`, the physical CPU is first split into that many logical CPU devices
    (for `tf.distribute.MirroredStrategy`, see `helpers.replicas`). TensorFlow fixes its
    devices when its runtime starts, so the first call with `cpu_devices` must come before
    anything runs TensorFlow; nothing in this function starts the runtime before the devices
    are set (op determinism, clearing the session and seeding only set flags). Later calls
    with the same number are fine. Op determinism stays on: synchronized BN under
    MirroredStrategy runs with it.

    On a GPU (Colab's runtimes often have one) two more settings keep the chapters' claims:
    TensorFloat-32 is turned off, since it rounds the inputs of matrix products to 10 bits
    of mantissa (errors near 1e-3, where several claims are checked below 1e-4), and op
    determinism stays on; an operation with no deterministic GPU kernel then fails with
    TensorFlow's own UnimplementedError naming it, rather than giving different results on
    every run. Neither setting changes anything on a CPU. Under Keras's JAX backend only the
    seeding and the fresh session apply (JAX's CPU operations are deterministic).

    Args:
        seed: non-negative integer used for every random number generator.
        cpu_devices: None (leave the devices alone) or the number of logical CPU devices,
            an integer from 1 to 64.

    Returns:
        The seed, so a chapter can print what it ran with.

    Raises:
        ValueError: a bad `seed` or `cpu_devices`.
        RuntimeError: TensorFlow already runs with another number of CPU devices (restart
            the kernel and call ``helpers.setup(seed, cpu_devices=N)`` first).
    """
    seed = checks.seed(seed)
    if cpu_devices is not None:
        devices.configure_cpu_devices(cpu_devices)
    import keras

    global _determinism_enabled
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if not _determinism_enabled:
            tf.config.experimental.enable_op_determinism()
            tf.config.experimental.enable_tensor_float_32_execution(False)
            _determinism_enabled = True
        tf.get_logger().setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    # Keras 3 warns about `input_shape=` with a stack trace path; chapters that discuss it
    # capture it on purpose with `warnings.catch_warnings(record=True)`.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"keras(\.|$)")
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    return seed


def versions_table():
    """The versions that ran this chapter next to the ones the book printed.

    Under a Keras backend other than TensorFlow, one more row names it and its version.

    Returns:
        A list of ``(package, this run, the book)`` tuples.
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tensorflow = tf.__version__
    else:
        tensorflow = supported.installed_tensorflow() or "not installed"
    today = {
        "Python": platform.python_version(),
        "TensorFlow": tensorflow,
        "Keras": keras.__version__,
        "NumPy": np.__version__,
    }
    rows = [(name, today[name], BOOK_VERSIONS[name]) for name in today]
    if backend != "tensorflow":
        rows.append((f"Keras backend: {backend}", _backend_version(backend), "TensorFlow"))
    return rows


def _backend_version(backend):
    from importlib import metadata

    try:
        return metadata.version(backend)
    except metadata.PackageNotFoundError:
        return "unknown"


def versions_frame():
    """`versions_table` as a pandas DataFrame, ready to display at the end of a chapter."""
    import pandas as pd

    return pd.DataFrame(versions_table(), columns=["package", "this run", "the book (TF 2.0)"])

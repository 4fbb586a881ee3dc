"""The supported range, and the one-sentence answer when TensorFlow is missing or too old.

The chapters run on Keras's TensorFlow backend (the default) or, where their subject is Keras
rather than TensorFlow, on its JAX backend: ``KERAS_BACKEND=jax`` (``make ... BACKEND=jax``).
`check` verifies the backend that Keras will load.

`pyproject.toml` declares Python and the other dependencies; TensorFlow is not among them
(a reader has ``tensorflow`` or ``tensorflow-cpu``, two distributions that write the same
files, and installing one over the other breaks both), so ``import helpers`` checks it here,
from the installed distributions' metadata, without importing TensorFlow.

This module must not import NumPy or TensorFlow (``import helpers`` runs it before the
numerics pins take effect).
"""

import os
from importlib import metadata, util

#: The oldest TensorFlow the chapters are run on (``make execute-check``: Colab's 2.19).
OLDEST_TENSORFLOW = (2, 19)

#: The distributions that provide the ``tensorflow`` module.
TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tf-nightly")

INSTALL_HINT = (
    'pip install "bn-companion-helpers[tensorflow]" (or pip install tensorflow), '
    "then restart the kernel"
)


#: The Keras backends the companion runs on; the first is Keras's default.
BACKENDS = ("tensorflow", "jax")

JAX_HINT = 'pip install "bn-companion-helpers[jax]" (or pip install jax), then restart the kernel'


class MissingTensorFlow(ImportError):
    """TensorFlow is not installed, or is older than the supported range."""


class UnsupportedBackend(ImportError):
    """``KERAS_BACKEND`` names a backend the companion does not run on, or one not installed."""


def backend(environ=os.environ):
    """The Keras backend this process will load: ``KERAS_BACKEND``, else ``"tensorflow"``.

    Keras also reads a backend from ``~/.keras/keras.json``; the companion's make targets and
    chapters set the variable, which wins over that file.

    Args:
        environ: the environment to read.

    Returns:
        The backend's name, lower-case.
    """
    return (environ.get("KERAS_BACKEND") or BACKENDS[0]).strip().lower()


def check(environ=os.environ, find_spec=util.find_spec, version=metadata.version):
    """Check that the backend Keras will load is supported and installed.

    Args:
        environ: the environment (``KERAS_BACKEND``).
        find_spec: finds a module (tests pass their own).
        version: an installed distribution's version (tests pass their own).

    Returns:
        ``(backend, version)``: its name and its version string (None when TensorFlow has no
        metadata).

    Raises:
        UnsupportedBackend: the backend is not one of `BACKENDS`, or JAX is not installed.
        MissingTensorFlow: the TensorFlow backend, and TensorFlow is missing or too old.
    """
    name = backend(environ)
    if name not in BACKENDS:
        raise UnsupportedBackend(
            f"KERAS_BACKEND={name} is not a backend the companion runs on: use "
            f"{' or '.join(BACKENDS)}."
        )
    if name == "jax":
        if find_spec("jax") is None:
            raise UnsupportedBackend(f"KERAS_BACKEND=jax, and JAX is not installed: {JAX_HINT}.")
        return name, version("jax")
    return name, tensorflow_version(find_spec, version)


def release(version):
    """``(major, minor)`` of a version string: ``"2.1.0rc1"`` -> ``(2, 1)``."""
    return tuple(int("".join(c for c in p if c.isdigit()) or 0) for p in version.split(".")[:2])


def tensorflow_version(find_spec=util.find_spec, version=metadata.version):
    """The installed TensorFlow's version string, or None when its metadata is not found.

    Raises:
        MissingTensorFlow: no ``tensorflow`` module can be imported, or it is too old.
    """
    if find_spec("tensorflow") is None:
        raise MissingTensorFlow(
            f"The companion needs TensorFlow {'.'.join(map(str, OLDEST_TENSORFLOW))} or "
            f"newer, and none is installed: {INSTALL_HINT}."
        )
    for name in TENSORFLOW_DISTRIBUTIONS:
        try:
            found = version(name)
        except metadata.PackageNotFoundError:
            continue
        if release(found) < OLDEST_TENSORFLOW:
            raise MissingTensorFlow(
                f"TensorFlow {found} is older than the oldest this companion supports "
                f"({'.'.join(map(str, OLDEST_TENSORFLOW))}): pip install --upgrade {name}, "
                "then restart the kernel."
            )
        return found
    return None


def installed_tensorflow(version=metadata.version):
    """The installed TensorFlow distribution's version string, or None when there is none.

    Unlike `tensorflow_version` it checks no range: under another backend TensorFlow is optional.
    """
    for name in TENSORFLOW_DISTRIBUTIONS:
        try:
            return version(name)
        except metadata.PackageNotFoundError:
            continue
    return None

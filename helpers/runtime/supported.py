"""The supported range, and the one-sentence answer when TensorFlow is missing or too old.

`pyproject.toml` declares Python and the other dependencies; TensorFlow is not among them
(a reader has ``tensorflow`` or ``tensorflow-cpu``, two distributions that write the same
files, and installing one over the other breaks both), so ``import helpers`` checks it here,
from the installed distributions' metadata, without importing TensorFlow.

This module must not import NumPy or TensorFlow (``import helpers`` runs it before the
numerics pins take effect).
"""

from importlib import metadata, util

#: The oldest TensorFlow the chapters are run on (``make execute-check``: Colab's 2.19).
OLDEST_TENSORFLOW = (2, 19)

#: The distributions that provide the ``tensorflow`` module.
TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tf-nightly")

INSTALL_HINT = (
    'pip install "bn-companion-helpers[tensorflow]" (or pip install tensorflow), '
    "then restart the kernel"
)


class MissingTensorFlow(ImportError):
    """TensorFlow is not installed, or is older than the supported range."""


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

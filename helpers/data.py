"""Fashion-MNIST through Keras's own loader, from a verified local copy when there is one.

`keras.datasets.fashion_mnist.load_data()` looks for its four ``.gz`` files in Keras's cache
(``$KERAS_HOME/datasets/fashion-mnist``, by default ``~/.keras/datasets/fashion-mnist``) and
downloads only the ones missing there. This module first places a local copy in that cache
(Debian's package ``dataset-fashion-mnist``, or a folder named by ``$FASHION_MNIST_DIR``), and
verifies every file against the SHA-256 of its decompressed contents before Keras reads it, so
a truncated or corrupt file is reported by name instead of silently becoming a wrong array.
"""

import gzip
import hashlib
import os
import shutil
import zlib

from helpers import internals

import numpy as np

#: Environment variable naming a folder that holds the four original ``.gz`` files.
ENV_VAR = "FASHION_MNIST_DIR"

#: Where Debian's ``dataset-fashion-mnist`` package installs the files.
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"

#: file name -> (size in bytes, SHA-256) of the *decompressed* IDX contents. A file that was
#: recompressed still verifies; one whose pixels or labels differ does not.
EXPECTED = {
    "train-labels-idx1-ubyte.gz": (
        60_008,
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    "train-images-idx3-ubyte.gz": (
        47_040_016,
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    "t10k-labels-idx1-ubyte.gz": (
        10_008,
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
    "t10k-images-idx3-ubyte.gz": (
        7_840_016,
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
}

#: The ten labels, in label order (0 = T-shirt/top ... 9 = Ankle boot).
CLASS_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

_FIX = (
    "To fix it: on Debian or Ubuntu run `apt-get install --reinstall dataset-fashion-mnist` "
    f"(or `make data`), or set {ENV_VAR} to a folder holding the four original Fashion-MNIST "
    "files, then delete the bad file so that it is copied again."
)


class DataError(RuntimeError):
    """A Fashion-MNIST file is missing, truncated or corrupt; the message names it."""


def keras_cache_dir():
    """The folder where `keras.datasets.fashion_mnist.load_data()` looks for its files.

    Returns:
        ``<keras home>/datasets/fashion-mnist``, with Keras's own fallback to
        ``/tmp/.keras`` when the Keras home is not writable.
    """
    # Keras's own answer, so that we and its loader agree even if KERAS_HOME changed.
    base = os.path.expanduser(internals.keras_home())
    if not os.access(base, os.W_OK):
        base = os.path.join("/tmp", ".keras")
    return os.path.join(base, "datasets", "fashion-mnist")


def local_source_dir():
    """The folder to copy the data from, or None when there is none.

    ``$FASHION_MNIST_DIR`` wins when it is set (and must then hold the files); otherwise
    Debian's package folder is used when it exists.
    """
    named = os.environ.get(ENV_VAR)
    if named:
        if not os.path.isdir(named):
            raise DataError(f"{ENV_VAR}={named!r} is not a folder. {_FIX}")
        return named
    return DEBIAN_DIR if os.path.isdir(DEBIAN_DIR) else None


def verify_file(path, expected=None):
    """Check one ``.gz`` file against the size and SHA-256 of its decompressed contents.

    Args:
        path: the file to check.
        expected: ``(size, sha256)``; defaults to the entry of `EXPECTED` for the file name.

    Raises:
        DataError: the file is missing, not gzip, truncated, or its contents differ.
    """
    name = os.path.basename(path)
    if expected is None:
        if name not in EXPECTED:
            raise DataError(f"{path}: not one of the Fashion-MNIST files {sorted(EXPECTED)}.")
        expected = EXPECTED[name]
    size, digest = expected
    if not os.path.isfile(path):
        raise DataError(f"{path}: file is missing. {_FIX}")
    sha = hashlib.sha256()
    n = 0
    try:
        with gzip.open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                sha.update(chunk)
                n += len(chunk)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(
            f"{path}: cannot be decompressed ({err}); it is truncated or not gzip. {_FIX}"
        ) from err
    if n != size:
        raise DataError(
            f"{path}: decompresses to {n:,} bytes, expected {size:,}; the file is truncated or "
            f"wrong. {_FIX}"
        )
    if sha.hexdigest() != digest:
        raise DataError(
            f"{path}: contents do not match the Fashion-MNIST checksum (SHA-256 "
            f"{sha.hexdigest()[:12]}..., expected {digest[:12]}...). {_FIX}"
        )


def stage_local_copy(source_dir=None, cache_dir=None):
    """Place verified copies of the four files in Keras's cache, so nothing is downloaded.

    A cached file that already verifies is kept; a cached file that does not is replaced by
    the local copy. Every source file is verified before it is copied, and copied under a
    temporary name first, so an interrupted copy never leaves a truncated file behind.

    Args:
        source_dir: folder with the original files; defaults to `local_source_dir()`.
        cache_dir: Keras's cache folder; defaults to `keras_cache_dir()`.

    Returns:
        The cache folder, or None when there is no local copy to stage.

    Raises:
        DataError: a source file is missing or corrupt, or the cache cannot be written (a full
            disk, a file-size limit); the message names the file and what to do.
    """
    source_dir = source_dir or local_source_dir()
    if source_dir is None:
        return None
    cache_dir = cache_dir or keras_cache_dir()
    os.makedirs(cache_dir, exist_ok=True)
    for name in EXPECTED:
        target = os.path.join(cache_dir, name)
        if os.path.exists(target):
            try:
                verify_file(target)
                continue
            except DataError:
                os.remove(target)
        source = os.path.join(source_dir, name)
        verify_file(source)
        partial = target + ".partial"
        try:  # copy, then rename: an interrupted copy never leaves a half file under the real name
            shutil.copyfile(source, partial)
            os.replace(partial, target)
        except OSError as err:
            if os.path.exists(partial):
                os.remove(partial)
            raise DataError(
                f"{target}: cannot copy the local Fashion-MNIST file into Keras's cache "
                f"({err.strerror or err}); free some space in {cache_dir} (or set KERAS_HOME "
                "to another folder) and run again."
            ) from err
    return cache_dir


def load_fashion_mnist(n_valid=5000):
    """Fashion-MNIST split as the book does, through `keras.datasets.fashion_mnist.load_data()`.

    The first `n_valid` training images become the validation set (the book's
    ``X_train_full[:5000]``), pixels are scaled to float32 in [0, 1], labels stay integers.

    Args:
        n_valid: number of validation images taken from the start of the training set.

    Returns:
        ``(X_train, y_train), (X_valid, y_valid), (X_test, y_test)``: by default
        55,000 / 5,000 / 10,000 images of shape (28, 28).

    Raises:
        DataError: a file is missing, truncated or corrupt, or there is no local copy under CI
            (where downloading is not allowed).
    """
    if not 0 < n_valid < 60_000:
        raise ValueError(f"n_valid must be between 1 and 59,999, got {n_valid}")
    cache_dir = stage_local_copy()
    staged = cache_dir is not None
    if not staged:
        cache_dir = keras_cache_dir()
        missing = [n for n in EXPECTED if not os.path.exists(os.path.join(cache_dir, n))]
        if missing and os.environ.get("CI"):
            raise DataError(
                f"No local Fashion-MNIST copy and CI must not download: missing {missing} in "
                f"{cache_dir}. {_FIX}"
            )
    import keras

    (X_full, y_full), (X_test, y_test) = keras.datasets.fashion_mnist.load_data()
    if not staged:  # files Keras found in its cache or has just downloaded
        for name in EXPECTED:
            verify_file(os.path.join(cache_dir, name))
    X_full = X_full.astype(np.float32) / 255.0
    X_test = X_test.astype(np.float32) / 255.0
    y_full = y_full.astype(np.int64)
    y_test = y_test.astype(np.int64)
    return (
        (X_full[n_valid:], y_full[n_valid:]),
        (X_full[:n_valid], y_full[:n_valid]),
        (X_test, y_test),
    )

"""helpers.data: verified local copies, clear errors, and the book's split.

Most tests build small IDX files of their own (with matching checksums patched into
`EXPECTED`), so every failure mode is exercised without touching the real data.
"""

import gzip
import hashlib
import os
import struct

from helpers import data
from helpers.data import DataError

import numpy as np
import pytest

N_TRAIN, N_TEST = 60, 20


def _idx_bytes(name, rng):
    if "labels" in name:
        n = N_TRAIN if name.startswith("train") else N_TEST
        return struct.pack(">II", 2049, n) + rng.integers(0, 10, n, dtype=np.uint8).tobytes()
    n = N_TRAIN if name.startswith("train") else N_TEST
    return (
        struct.pack(">IIII", 2051, n, 28, 28)
        + rng.integers(0, 256, n * 784, dtype=np.uint8).tobytes()
    )


@pytest.fixture
def fake_source(tmp_path, monkeypatch):
    """A folder of four small, valid files, with EXPECTED patched to their checksums."""
    rng = np.random.default_rng(0)
    source = tmp_path / "source"
    source.mkdir()
    expected = {}
    for name in data.EXPECTED:
        raw = _idx_bytes(name, rng)
        (source / name).write_bytes(gzip.compress(raw))
        expected[name] = (len(raw), hashlib.sha256(raw).hexdigest())
    monkeypatch.setattr(data, "EXPECTED", expected)
    return source


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """Point Keras's cache (and so ours) at an empty temporary folder."""
    from keras.src.backend import config

    home = tmp_path / "keras-home"
    home.mkdir()
    monkeypatch.setattr(config, "_KERAS_DIR", str(home))
    return home


def test_verify_accepts_a_good_file(fake_source):
    data.verify_file(str(fake_source / "train-labels-idx1-ubyte.gz"))


def test_verify_accepts_a_recompressed_file(fake_source):
    path = fake_source / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()), compresslevel=1))
    data.verify_file(str(path))


def test_missing_file_is_named(fake_source):
    path = fake_source / "train-images-idx3-ubyte.gz"
    path.unlink()
    with pytest.raises(
        DataError, match="train-images-idx3-ubyte.gz: file is missing.*apt-get install"
    ):
        data.verify_file(str(path))


def test_truncated_file_is_named(fake_source):
    path = fake_source / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(
        DataError, match="train-images-idx3-ubyte.gz: cannot be decompressed.*truncated"
    ):
        data.verify_file(str(path))


def test_not_gzip_is_named(fake_source):
    path = fake_source / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(b"<html>Not Found</html>")
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: cannot be decompressed"):
        data.verify_file(str(path))


def test_corrupt_contents_of_the_right_size(fake_source):
    path = fake_source / "train-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[-1] ^= 0xFF  # one label changed: same size, wrong data
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: contents do not match"):
        data.verify_file(str(path))


def test_short_contents(fake_source):
    path = fake_source / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-3]))
    with pytest.raises(DataError, match="decompresses to .* bytes, expected"):
        data.verify_file(str(path))


def test_unknown_file_name(tmp_path):
    with pytest.raises(DataError, match="not one of the Fashion-MNIST files"):
        data.verify_file(str(tmp_path / "mnist.npz"))


def test_stage_copies_and_repairs_the_cache(fake_source, tmp_path):
    cache = tmp_path / "cache"
    data.stage_local_copy(str(fake_source), str(cache))
    assert sorted(os.listdir(cache)) == sorted(data.EXPECTED)
    # A corrupt cached file is replaced by the verified local copy.
    bad = cache / "train-images-idx3-ubyte.gz"
    bad.write_bytes(b"garbage")
    data.stage_local_copy(str(fake_source), str(cache))
    data.verify_file(str(bad))


@pytest.mark.integration
def test_a_full_disk_while_staging_is_one_clear_error_and_the_next_run_repairs(
    fake_source, tmp_path
):
    import json
    import resource
    import signal
    import subprocess
    import sys

    cache = tmp_path / "cache"
    code = (
        "import json, resource, signal, sys; from helpers import data; "
        "data.EXPECTED = {k: tuple(v) for k, v in json.loads(sys.argv[3]).items()}; "
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        "resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000)); "
        "data.stage_local_copy(sys.argv[1], sys.argv[2])"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(fake_source), str(cache), json.dumps(data.EXPECTED)],
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert (
        last.startswith("helpers.data.DataError: ")
        and "cannot copy the local Fashion-MNIST file" in last
    )
    assert "File too large" in last
    assert not any(name.endswith(".partial") for name in os.listdir(cache))
    for name in os.listdir(cache):  # whatever was copied is complete
        data.verify_file(str(cache / name))
    assert resource.getrlimit(resource.RLIMIT_FSIZE)[0] == resource.RLIM_INFINITY and signal
    data.stage_local_copy(
        str(fake_source), str(cache)
    )  # with space again, the next run completes it
    assert sorted(os.listdir(cache)) == sorted(data.EXPECTED)


def test_stage_refuses_a_corrupt_source(fake_source, tmp_path):
    (fake_source / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b\x08broken")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        data.stage_local_copy(str(fake_source), str(tmp_path / "cache"))


def test_env_var_must_name_a_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="is not a folder"):
        data.local_source_dir()


def test_load_goes_through_keras_with_the_book_split(fake_source, keras_home, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(fake_source))
    (X_train, y_train), (X_valid, y_valid), (X_test, y_test) = data.load_fashion_mnist(n_valid=10)
    assert (
        X_train.shape == (50, 28, 28)
        and X_valid.shape == (10, 28, 28)
        and X_test.shape == (20, 28, 28)
    )
    assert X_train.dtype == np.float32 and 0.0 <= X_train.min() and X_train.max() <= 1.0
    # Keras read the staged files: the values are ours, scaled by 1/255, validation first.
    with gzip.open(fake_source / "train-images-idx3-ubyte.gz") as f:
        pixels = np.frombuffer(f.read(), np.uint8, offset=16).reshape(N_TRAIN, 28, 28)
    np.testing.assert_array_equal(X_valid, pixels[:10] / np.float32(255))
    np.testing.assert_array_equal(X_train, pixels[10:] / np.float32(255))
    assert os.path.isdir(keras_home / "datasets" / "fashion-mnist")


def test_load_never_returns_arrays_from_a_corrupt_source(fake_source, keras_home, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(fake_source))
    path = fake_source / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        data.load_fashion_mnist()


def test_ci_never_downloads(keras_home, monkeypatch):
    monkeypatch.setattr(data, "local_source_dir", lambda: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(DataError, match="CI must not download"):
        data.load_fashion_mnist()


def test_bad_validation_size():
    with pytest.raises(ValueError, match="n_valid"):
        data.load_fashion_mnist(n_valid=0)


@pytest.mark.skipif(
    not os.path.isdir(data.DEBIAN_DIR), reason="Debian's dataset-fashion-mnist is not installed"
)
def test_the_real_files_verify():
    for name in data.EXPECTED:
        data.verify_file(os.path.join(data.DEBIAN_DIR, name))

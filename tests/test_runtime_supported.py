"""helpers.runtime.supported: what `import helpers` says when TensorFlow is missing or too old."""

import os
import subprocess
import sys
from importlib import metadata

from helpers.runtime import supported

import pytest


def _versions(**installed):
    def version(name):
        if name not in installed:
            raise metadata.PackageNotFoundError(name)
        return installed[name]

    return version


def test_missing_tensorflow_is_one_sentence_with_the_install_command():
    with pytest.raises(supported.MissingTensorFlow) as err:
        supported.tensorflow_version(find_spec=lambda name: None)
    message = str(err.value)
    assert message.count(". ") == 0 and message.endswith(".")
    assert 'pip install "bn-companion-helpers[tensorflow]"' in message


@pytest.mark.parametrize("name", ["tensorflow", "tensorflow-cpu"])
def test_either_distribution_is_accepted_from_the_oldest_supported(name):
    spec = object()
    found = supported.tensorflow_version(lambda _: spec, _versions(**{name: "2.19.0"}))
    assert found == "2.19.0"
    with pytest.raises(supported.MissingTensorFlow, match=f"2.18.1 is older.*upgrade {name}"):
        supported.tensorflow_version(lambda _: spec, _versions(**{name: "2.18.1"}))


def test_a_tensorflow_without_metadata_is_left_alone():
    assert supported.tensorflow_version(lambda _: object(), _versions()) is None


@pytest.mark.integration
def test_import_helpers_without_tensorflow_says_so_in_one_line(tmp_path):
    # A `tensorflow` that cannot be imported: None in sys.modules, set before `helpers` loads.
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['tensorflow'] = None\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-c", "import helpers"], env=env, capture_output=True, text=True
    )
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "helpers.runtime.supported.MissingTensorFlow: The companion needs TensorFlow"
    )


def test_the_backend_is_keras_backend_else_tensorflow():
    assert supported.backend({}) == "tensorflow"
    assert supported.backend({"KERAS_BACKEND": ""}) == "tensorflow"
    assert supported.backend({"KERAS_BACKEND": " JAX "}) == "jax"


def test_check_verifies_the_backend_keras_will_load():
    spec = object()
    versions = _versions(**{"tensorflow-cpu": "2.21.0", "jax": "0.10.2"})
    assert supported.check({}, lambda _: spec, versions) == ("tensorflow", "2.21.0")
    assert supported.check({"KERAS_BACKEND": "jax"}, lambda _: spec, versions) == (
        "jax",
        "0.10.2",
    )
    # Under JAX, TensorFlow may be missing.
    found = {"jax": spec}
    jax_only = supported.check({"KERAS_BACKEND": "jax"}, found.get, _versions(jax="0.6.1"))
    assert jax_only == ("jax", "0.6.1")


@pytest.mark.parametrize(
    "environ, match",
    [
        (
            {"KERAS_BACKEND": "torch"},
            "KERAS_BACKEND=torch is not a backend .*: use tensorflow or jax",
        ),
        (
            {"KERAS_BACKEND": "jax"},
            r'JAX is not installed: pip install "bn-companion-helpers\[jax\]"',
        ),
    ],
)
def test_an_unsupported_or_missing_backend_is_one_sentence(environ, match):
    with pytest.raises(supported.UnsupportedBackend, match=match) as err:
        supported.check(environ, lambda name: None, _versions())
    assert str(err.value).count(". ") == 0 and str(err.value).endswith(".")


def test_installed_tensorflow_checks_no_range():
    assert supported.installed_tensorflow(_versions(tensorflow="2.18.1")) == "2.18.1"
    assert supported.installed_tensorflow(_versions()) is None

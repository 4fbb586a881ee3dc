"""The cases of `tests/jax_backend_cases.py`, run in a pytest subprocess under KERAS_BACKEND=jax.

Keras picks its backend once per process, so they cannot run in this one.
"""

import os
import pathlib
import subprocess
import sys

import pytest

CASES = pathlib.Path(__file__).with_name("jax_backend_cases.py")


@pytest.mark.integration
def test_the_jax_backend_cases_pass_under_keras_backend_jax():
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(CASES)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=CASES.parent.parent,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "skipped" not in run.stdout

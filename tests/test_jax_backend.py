"""The cases of `tests/jax_backend_cases.py`, run in a pytest subprocess under KERAS_BACKEND=jax.

Keras picks its backend once per process, so they cannot run in this one.
"""

import os
import pathlib
import re
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
    # Every case ran (none skipped, as they would be if the backend were not JAX).
    assert re.match(r"\d+ passed in ", run.stdout.strip().splitlines()[-1]), run.stdout[-500:]

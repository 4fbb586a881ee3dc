"""Each numerics profile's pins, applied to the installed NumPy, on the chapters' matrix sizes.

A pin that forces an OpenBLAS kernel can crash a NumPy that runs fine without it (NumPy 2.5's
OpenBLAS with the Haswell kernel on an AMD EPYC with AVX-512, unless its L2 size is pinned
too), or compute wrong results (older OpenBLAS builds on some processors). So every profile's
pins run here in a fresh process, exactly as a chapter's kernel gets them, on the products the
chapters compute, and their results are compared with those of OpenBLAS's own choice of
kernel (profile ``none``) in another process.

`make test` runs this on the lock's NumPy; `make test-extended` on the newest NumPy
(locks/py313.lock) and on the oldest (locks/oldest.lock).
"""

import json
import os
import subprocess
import sys

from helpers.runtime import numerics

import numpy as np
import pytest

pytestmark = pytest.mark.integration

#: (rows, inner, columns) of the products the chapters compute: the 784 pixels of a
#: Fashion-MNIST image into the book's hidden layers of 300 and 100 units, for a batch of 32
#: and a block of 1,000 images, the gradient of a weight matrix (pixels x batch x units), and a
#: square 784 x 784 product (the one that crashed).
SHAPES = [(784, 784, 784), (32, 784, 300), (1000, 784, 300), (1000, 300, 100), (784, 1000, 300)]

#: The child: pins itself through `import helpers` (as every chapter does), then multiplies.
CHILD = """
import json, os, sys
import helpers
import numpy as np
rng = np.random.default_rng(0)
results = []
for m, k, n in json.loads(sys.argv[1]):
    for dtype in ("float64", "float32"):
        a = rng.normal(size=(m, k)).astype(dtype)
        b = rng.normal(size=(k, n)).astype(dtype)
        c = a @ b
        corner = c[:3, :3].ravel().tolist()
        results.append([float(c.sum(dtype="float64")), float(np.abs(c).max()), corner])
names = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")
pins = {v: os.environ.get(v) for v in names}
print(json.dumps({"numpy": np.__version__, "pins": pins, "results": results}))
"""

PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")


def _machine_own():
    """The OpenBLAS variables that this machine set itself (a few do, for older OpenBLAS
    builds), told apart from a profile's values that `python -m helpers --` filled in."""
    ours = {var: {p.get(var) for p in numerics.PROFILES.values()} for var in PINS}
    own = {var: os.environ[var] for var in PINS if os.environ.get(var, None) not in ours[var]}
    return own if "OPENBLAS_CORETYPE" in own else {}


def _multiply(profile):
    """The products under `profile`, in a fresh process that pins itself as a chapter does."""
    profiles = set().union(*numerics.PROFILES.values())
    env = {k: v for k, v in os.environ.items() if k not in profiles}
    env.update({numerics.PROFILE_VARIABLE: profile, **_machine_own()})
    return subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(SHAPES)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def unpinned():
    run = _multiply("none")
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout)


@pytest.mark.parametrize("profile", ["pinned", "alternate"])
def test_each_profile_pins_a_kernel_that_runs_and_computes_right(profile, unpinned):
    run = _multiply(profile)
    assert run.returncode == 0, (
        f"NumPy under the {profile!r} numerics profile died (exit {run.returncode}) on the "
        f"chapters' matrix products: {run.stderr[-2000:]}"
    )
    got = json.loads(run.stdout)
    planned = numerics.plan({numerics.PROFILE_VARIABLE: profile, **_machine_own()})
    for var in PINS:  # the child really ran with the profile's pins
        assert got["pins"][var] == planned[var][0], (var, got["pins"], planned[var])
    assert len(got["results"]) == len(unpinned["results"]) == 2 * len(SHAPES)
    for i, (mine, theirs) in enumerate(zip(got["results"], unpinned["results"])):
        shape, dtype = SHAPES[i // 2], ("float64", "float32")[i % 2]
        # Another kernel sums in another order: the results may differ in their last bits
        # (float32: 2**-24 relative per addition, over at most 1,000 terms), never more.
        rtol = 1e-12 if dtype == "float64" else 1e-4
        scale = max(theirs[1], 1.0)
        assert abs(mine[0] - theirs[0]) <= rtol * scale * shape[0] * shape[2], (shape, dtype)
        assert mine[1] == pytest.approx(theirs[1], rel=rtol), (shape, dtype)
        np.testing.assert_allclose(mine[2], theirs[2], rtol=0, atol=rtol * scale)

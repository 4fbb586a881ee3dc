"""helpers.checks: the argument checks every helper shares."""

import helpers  # noqa: F401
from helpers import checks

import numpy as np
import pytest


def test_types():
    assert (
        checks.is_int(3)
        and checks.is_int(np.int64(3))
        and not checks.is_int(True)
        and not checks.is_int(3.0)
    )
    assert checks.is_real(2.5) and checks.is_real(np.float32(1)) and checks.is_real(float("nan"))
    assert not checks.is_real(False) and not checks.is_real("1")


def test_values_come_back_in_their_canonical_type():
    assert checks.seed(np.int64(7)) == 7 and type(checks.seed(np.int64(7))) is int
    assert checks.integer(np.int32(2), "n", minimum=1) == 2
    assert (
        checks.positive(np.float32(0.5), "rate") == 0.5
        and type(checks.positive(1, "rate")) is float
    )
    assert checks.unit_interval(1, "momentum") == 1.0


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: checks.seed(-1), "seed must be a non-negative integer, got -1"),
        (lambda: checks.seed("42"), "seed must be a non-negative integer, got '42'"),
        (
            lambda: checks.integer(0, "depth", minimum=1, hint="it is the number of blocks"),
            "depth must be an integer >= 1, got 0; it is the number of blocks",
        ),
        (
            lambda: checks.integer(9, "n_workers", minimum=1, maximum=8),
            "n_workers must be an integer from 1 to 8, got 9",
        ),
        (lambda: checks.integer(3, "k", maximum=2), "k must be an integer <= 2, got 3"),
        (
            lambda: checks.positive(float("inf"), "limit"),
            "limit must be a finite number > 0, got inf",
        ),
        (lambda: checks.positive(True, "limit"), "limit must be a finite number > 0, got True"),
        (
            lambda: checks.unit_interval(1.0, "dropout", closed_high=False),
            "dropout must be a number in [0, 1), got 1.0",
        ),
    ],
)
def test_one_sentence_naming_the_argument(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert str(err.value) == message

"""Argument checks shared by every helper: each written once, each failure one clear sentence.

A public helper validates its arguments at the boundary with these functions, which return the
value in its canonical type (``int`` or ``float``) or raise `ValueError` with a message that
names the argument, shows the value and says what is allowed. `hint` adds what to do, or why.

This module imports nothing heavy, so any helper (and the parameter checks that run before a
chapter loads TensorFlow) can use it.
"""

import math
import numbers

__all__ = ["is_int", "is_real", "integer", "positive", "seed", "unit_interval"]


def is_int(x):
    """True for an integer (Python or NumPy), False for bool and everything else."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def is_real(x):
    """True for a real number (Python or NumPy, finite or not), False for bool and the rest."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _fail(name, allowed, value, hint):
    raise ValueError(f"{name} must be {allowed}, got {value!r}" + (f"; {hint}" if hint else ""))


def seed(value, name="seed"):
    """A non-negative integer seed, as an ``int``.

    Raises:
        ValueError: `value` is not a non-negative integer.
    """
    if not is_int(value) or value < 0:
        _fail(name, "a non-negative integer", value, "")
    return int(value)


def integer(value, name, minimum=None, hint="", maximum=None):
    """An integer >= `minimum` and <= `maximum` (each when given), as an ``int``.

    Raises:
        ValueError: `value` is not an integer, or lies outside the bounds.
    """
    if minimum is not None and maximum is not None:
        allowed = f"an integer from {minimum} to {maximum}"
    elif minimum is not None or maximum is not None:
        allowed = f"an integer >= {minimum}" if minimum is not None else f"an integer <= {maximum}"
    else:
        allowed = "an integer"
    if (
        not is_int(value)
        or (minimum is not None and value < minimum)
        or (maximum is not None and value > maximum)
    ):
        _fail(name, allowed, value, hint)
    return int(value)


def positive(value, name, hint=""):
    """A finite number > 0, as a ``float``.

    Raises:
        ValueError: `value` is not a number, not finite, or not > 0.
    """
    if not is_real(value) or not math.isfinite(value) or value <= 0:
        _fail(name, "a finite number > 0", value, hint)
    return float(value)


def unit_interval(value, name, closed_high=True, hint=""):
    """A number in [0, 1] (or [0, 1) with ``closed_high=False``), as a ``float``.

    Raises:
        ValueError: `value` is not a number in the interval.
    """
    if not is_real(value) or not (0.0 <= value <= 1.0) or (not closed_high and value == 1.0):
        _fail(name, f"a number in [0, 1{']' if closed_high else ')'}", value, hint)
    return float(value)

"""Printing results at the precision a claim needs, and verdicts that several seeds agree on.

A chapter's checked outputs must read the same on every CPU. Two kinds of number cannot:

* **rounding noise**, such as the 1e-6 by which Keras's float32 result differs from a float64
  formula: its digits change with the instruction set and the thread count. `below` shows such
  a number only as "below the limit the claim needs", and asserts it.
* **results of training**, such as an accuracy after three epochs: the noise of the first step
  grows into the second decimal by the end. `verdict` turns one yes/no finding per seed into
  the statement the chapter makes, which every seed must support; `seed_table` and `spread`
  give the per-seed figures for cells whose output is not compared.

The verdict words are the companion's one vocabulary, `VERDICTS`: `verdict` here and
`helpers.chapter.claims.verdict` (a claim of several parts) both use them.
"""

import math

from helpers import checks

import numpy as np

#: Every part holds in every seed.
HELD = "held"
#: Every part about the learning method holds; a part about what TensorFlow/Keras does (as the
#: book or the Keras guide describes it) was not observed today.
API_DIFFERS = "held, API not as described"
#: Every part about the method holds, but at least one part only by a margin within its noise
#: (`helpers.chapter.claims.verdict` gives the precedence of the words).
FRAGILE = "fragile"
#: Some seeds or some parts hold and others do not.
PARTLY = "partly"
#: No part holds in any seed.
NOT_HELD = "not held"
#: The verdict words, from best to worst: the one vocabulary of the companion.
VERDICTS = (HELD, API_DIFFERS, FRAGILE, PARTLY, NOT_HELD)


def below(value, limit):
    """Check that a rounding-level error is below the limit its claim needs, and say so.

    The text depends on `limit` only, never on `value`, so it reads the same on every CPU.

    Args:
        value: the measured error, a finite number >= 0.
        limit: the limit the claim needs, a number > 0.

    Returns:
        Text such as ``"< 1e-05"``.

    Raises:
        ValueError: `value` is negative or not finite, or `limit` is not > 0.
        AssertionError: `value` is not below `limit` (the claim failed).
    """
    limit = checks.positive(limit, "limit")
    if not checks.is_real(value) or not math.isfinite(value) or value < 0:
        raise ValueError(f"value must be a finite error >= 0, got {value!r}")
    assert value < limit, f"error {value:.3g} is not below the limit {limit:g}"
    return f"< {limit:.0e}"


def _flags(held):
    if not isinstance(held, dict) or not held:
        raise ValueError("held must be a non-empty dict {seed: True or False}")
    bad = {seed: flag for seed, flag in held.items() if not isinstance(flag, (bool, np.bool_))}
    if bad:
        seed, flag = next(iter(bad.items()))
        raise ValueError(f"held[{seed!r}] must be True or False, got {flag!r}")
    return [bool(flag) for flag in held.values()]


def verdict(held):
    """The verdict on one claim from its per-seed findings.

    Args:
        held: dict ``{seed: bool}``, whether the claim held in the run with that seed.

    Returns:
        `HELD` (``"held"``: in every seed), `NOT_HELD` (``"not held"``: in no seed), or
        `PARTLY` (``"partly"``) when some seeds support the claim and others do not.

    Raises:
        ValueError: `held` is empty or a finding is not a bool.
    """
    flags = _flags(held)
    return HELD if all(flags) else NOT_HELD if not any(flags) else PARTLY


def seed_table(values, digits):
    """Per-seed figures with their mean, standard deviation, minimum and maximum.

    Args:
        values: a pandas DataFrame (or a dict ``{column: {seed: value}}``) of numbers, one row
            per seed.
        digits: decimals to round to.

    Returns:
        A DataFrame: the seeds' rows, then ``mean``, ``std`` (with n - 1), ``min`` and ``max``.

    Raises:
        ValueError: no seeds, or `digits` is not a non-negative integer.
    """
    import pandas as pd

    frame = pd.DataFrame(values)
    if frame.empty:
        raise ValueError("values must hold at least one seed")
    checks.integer(digits, "digits", minimum=0)
    stats = ["mean", "std", "min", "max"] if len(frame) > 1 else ["mean"]
    summary = frame.apply(pd.to_numeric, errors="coerce").agg(stats)
    table = pd.concat([frame, summary]).map(
        lambda v: v if isinstance(v, str) or v is None else round(float(v), digits) + 0.0
    )
    return table.rename_axis(frame.index.name or "seed")


def spread(values, digits=2):
    """``"mean (min-max) over n seeds"`` as text, for a per-seed figure.

    Args:
        values: the per-seed numbers (NaN allowed, ignored).
        digits: decimals.

    Returns:
        Text such as ``"1.75 (1.40-2.00) over 3 seeds"``.

    Raises:
        ValueError: no finite value.
    """
    arr = np.asarray(list(values), dtype=float)
    arr = arr[np.isfinite(arr)]
    if not arr.size:
        raise ValueError("values must hold at least one finite number")
    low, mean, high = (f"{v:.{digits}f}" for v in (arr.min(), arr.mean(), arr.max()))
    return f"{mean} ({low}-{high}) over {arr.size} seeds"


def verdict_frame(findings, title=None):
    """The verdict of each finding over the seeds, as a one-column table.

    Args:
        findings: ``{finding: per-seed results}``, each a dict ``{seed: bool}`` or a pandas
            Series of bools indexed by seed; every finding over the same number of seeds.
        title: the name of the table's index; None gives ``"finding (<n> seeds)"``.

    Returns:
        A DataFrame with one column, ``"verdict"`` (`verdict` of each finding), indexed by
        the findings, its index named `title`.

    Raises:
        ValueError: `findings` is empty, a finding's results are not ``{seed: bool}``, or
            the findings are not over the same number of seeds.
    """
    import pandas as pd

    if not isinstance(findings, dict) or not findings:
        raise ValueError("findings must be a non-empty dict {finding: {seed: bool}}")
    held = {k: dict(v.items()) if hasattr(v, "items") else v for k, v in findings.items()}
    counts = {len(v) if isinstance(v, dict) else -1 for v in held.values()}
    if len(counts) != 1 or -1 in counts:
        raise ValueError("every finding must be over the same seeds, as a dict {seed: bool}")
    words = {k: verdict(v) for k, v in held.items()}
    title = f"finding ({counts.pop()} seeds)" if title is None else title
    return pd.DataFrame({"verdict": words}).rename_axis(title)

"""Digits of the book's printed numbers against computed ones (chapter 08).

The book prints clipped vectors as NumPy prints them (p. 345). `as_numpy_prints` writes a
float64 value the same way, `printed_halves` measures how far an exact value lies from printed
text in half-units of its last digit (below 1: the text is the exact value correctly rounded),
`half_units` is that half-unit, `float32_ulps` how far a float32 result lies from an exact
value in float32's own spacing, and `digits_table` shows columns of numbers at a fixed
number of decimals.
"""

import numpy as np

#: The decimals NumPy prints by default (``np.get_printoptions()["precision"]``).
NUMPY_PRECISION = 8


def _floats(values, name):
    """`values` as a 1-D float64 array of finite numbers."""
    try:
        arr = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numbers, got {values!r}") from err
    if not arr.size or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be a non-empty list of finite numbers, got {values!r}")
    return arr


def as_numpy_prints(values, precision=NUMPY_PRECISION):
    """Each value as NumPy prints it: at most `precision` decimals, trailing zeros dropped.

    ``np.format_float_positional(v, precision, unique=False, trim="-")``: 0.99995950 is
    printed 0.9999595, as in the book.

    Args:
        values: finite numbers (any array-like).
        precision: decimals, an integer >= 1.

    Returns:
        A list of strings, one per value.

    Raises:
        ValueError: a value is not a finite number, or `precision` is not an integer >= 1.
    """
    if not isinstance(precision, int) or isinstance(precision, bool) or precision < 1:
        raise ValueError(f"precision must be an integer >= 1, got {precision!r}")
    return [
        np.format_float_positional(v, precision=precision, unique=False, trim="-")
        for v in _floats(values, "values")
    ]


def _decimals(text):
    return len(text.split(".")[1]) if "." in text else 0


def half_units(printed):
    """Half a unit of each printed text's last digit: ``0.5 * 10 ** -decimals``.

    Args:
        printed: number texts, such as ``["0.00899964", "0.9999595"]``.

    Returns:
        A float64 array, one half-unit per text.

    Raises:
        ValueError: `printed` is a single string or holds something other than number texts.
    """
    if isinstance(printed, str) or not all(isinstance(t, str) for t in printed):
        raise ValueError(f"printed must be a list of number texts, got {printed!r}")
    try:
        [float(t) for t in printed]
    except ValueError as err:
        raise ValueError(f"printed must hold number texts, got {printed!r}") from err
    return 0.5 * 10.0 ** -np.array([_decimals(t) for t in printed], dtype=np.float64)


def printed_halves(exact, printed):
    """How far exact values lie from printed text, in half-units of each text's last digit.

        max_i |exact_i - float(printed_i)| / (0.5 * 10 ** -decimals(printed_i))

    Below 1, each printed text is its exact value correctly rounded to the digits shown.

    Args:
        exact: the exact values, finite numbers.
        printed: the printed texts, one per value (such as ``"0.9999595"``).

    Returns:
        The largest ratio, a float >= 0.

    Raises:
        ValueError: the lengths differ, or a text is not a number.
    """
    exact = _floats(exact, "exact")
    if isinstance(printed, str) or len(printed) != exact.size:
        raise ValueError(
            f"printed must be a list of {exact.size} number texts (one per value), got {printed!r}"
        )
    half = half_units(printed)
    value = np.array([float(t) for t in printed])
    return float((np.abs(exact - value) / half).max())


def float32_ulps(got, exact):
    """How far float32 results lie from exact values, in float32 ulps at each value.

        |got_i - exact_i| / spacing(float32(exact_i))

    Correct rounding to float32 gives at most 0.5.

    Args:
        got: the float32 results.
        exact: the exact values (float64), as many.

    Returns:
        A float64 array of the distances, one per value.

    Raises:
        ValueError: the sizes differ or a value is not finite.
    """
    got, exact = _floats(got, "got"), _floats(exact, "exact")
    if got.size != exact.size:
        raise ValueError(f"got and exact must have the same size, got {got.size} and {exact.size}")
    spacing = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    return np.abs(got - exact) / spacing


def digits_table(columns, index, digits=10):
    """A table of number columns at `digits` decimals; text columns are shown as they are.

    Args:
        columns: ``{column name: values}``; each a list of numbers or of strings, as long as
            `index`.
        index: the row labels.
        digits: decimals of the numbers, an integer >= 0.

    Returns:
        A pandas DataFrame of strings.

    Raises:
        ValueError: a column's length is not that of `index`, or `digits` is not an
            integer >= 0.
    """
    import pandas as pd

    if not isinstance(digits, int) or isinstance(digits, bool) or digits < 0:
        raise ValueError(f"digits must be an integer >= 0, got {digits!r}")
    index = list(index)
    shown = {}
    for name, values in columns.items():
        values = list(np.ravel(values)) if not isinstance(values, list) else values
        if len(values) != len(index):
            raise ValueError(
                f"column {name!r} has {len(values)} values for {len(index)} rows of index"
            )
        shown[name] = [v if isinstance(v, str) else f"{float(v):.{digits}f}" for v in values]
    return pd.DataFrame(shown, index=index)

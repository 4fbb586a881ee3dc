"""helpers.clipping.digits: printed digits, half-units, float32 ulps and fixed-decimal tables."""

from helpers.clipping import digits

import numpy as np
import pytest


def test_as_numpy_prints_prints_as_numpy_does():
    values = np.array([0.9, 100.0]) / np.linalg.norm([0.9, 100.0])
    assert digits.as_numpy_prints(values) == ["0.00899964", "0.9999595"]
    assert np.array2string(values, precision=8) == "[0.00899964 0.9999595 ]"
    assert digits.as_numpy_prints([0.5, 2.0], precision=3) == ["0.5", "2"]


def test_half_units_and_printed_halves():
    np.testing.assert_array_equal(digits.half_units(["0.25", "1.5", "3"]), [0.005, 0.05, 0.5])
    # 0.249 is 0.2 half-units of 0.01 from "0.25"; 1.5 exactly is 0
    assert digits.printed_halves([0.249, 1.5], ["0.25", "1.5"]) == pytest.approx(0.2)
    assert digits.printed_halves([0.26], ["0.25"]) == pytest.approx(2.0)


def test_float32_ulps_counts_float32_spacings():
    exact = np.array([1.0, 0.1])
    got = np.float32(exact) + np.spacing(np.float32(exact)) * np.array([2, 0], np.float32)
    ulps = digits.float32_ulps(got, exact)
    assert ulps[0] == 2.0 and ulps[1] <= 0.5


def test_digits_table_formats_numbers_and_keeps_text():
    table = digits.digits_table(
        {"a": np.float32([0.9, 1.0]), "b": ["x", "y"]}, ["one", "two"], digits=3
    )
    assert table.to_dict() == {
        "a": {"one": "0.900", "two": "1.000"},
        "b": {"one": "x", "two": "y"},
    }


@pytest.mark.parametrize(
    ("call", "word"),
    [
        (lambda: digits.as_numpy_prints([1.0], precision=0), "precision"),
        (lambda: digits.as_numpy_prints([np.nan]), "values"),
        (lambda: digits.half_units("0.5"), "printed"),
        (lambda: digits.half_units(["a"]), "printed"),
        (lambda: digits.printed_halves([1.0, 2.0], ["1.0"]), "printed"),
        (lambda: digits.float32_ulps([1.0], [1.0, 2.0]), "same size"),
        (lambda: digits.digits_table({"a": [1.0]}, ["x", "y"]), "column 'a'"),
        (lambda: digits.digits_table({"a": [1.0]}, ["x"], digits=-1), "digits"),
    ],
)
def test_digits_errors(call, word):
    with pytest.raises(ValueError, match=word):
        call()

"""helpers.chapter.verdicts: noise shown as a limit, verdicts over seeds, per-seed tables."""

import helpers  # noqa: F401
from helpers.chapter import verdicts

import numpy as np
import pandas as pd
import pytest


@pytest.mark.parametrize("value", [0.0, 9.8e-7, 1.02e-6, 9.99e-6])
def test_below_depends_on_the_limit_only(value):
    assert verdicts.below(value, 1e-5) == "< 1e-05"


def test_below_asserts_the_claim():
    with pytest.raises(AssertionError, match="2e-05 is not below the limit 1e-05"):
        verdicts.below(2e-5, 1e-5)


@pytest.mark.parametrize(
    "value, limit, word",
    [
        (-1e-9, 1e-5, "value"),
        (float("nan"), 1e-5, "value"),
        ("0.1", 1e-5, "value"),
        (1e-7, 0, "limit"),
        (1e-7, float("inf"), "limit"),
        (1e-7, None, "limit"),
    ],
)
def test_below_rejects_bad_input(value, limit, word):
    with pytest.raises(ValueError, match=word):
        verdicts.below(value, limit)


def test_verdicts_use_the_one_vocabulary():
    assert verdicts.verdict({1: True, 2: np.bool_(True)}) == verdicts.HELD == "held"
    assert verdicts.verdict({1: False, 2: False, 3: False}) == verdicts.NOT_HELD == "not held"
    assert verdicts.verdict({1: True, 2: False}) == verdicts.PARTLY == "partly"
    assert set(verdicts.VERDICTS) >= {verdicts.HELD, verdicts.NOT_HELD, verdicts.PARTLY}


@pytest.mark.parametrize("held", [{}, [True], {1: 1}, {1: True, 2: None}])
def test_verdict_rejects_what_is_not_a_finding_per_seed(held):
    with pytest.raises(ValueError, match="held"):
        verdicts.verdict(held)


def test_seed_table_adds_the_spread_under_the_seeds():
    table = verdicts.seed_table(
        {"ratio": {42: 1.75, 43: 1.5, 44: 2.0}, "lr": {42: 0.1, 43: 0.1, 44: 0.3}}, 3
    )
    assert (
        list(table.index) == [42, 43, 44, "mean", "std", "min", "max"]
        and table.index.name == "seed"
    )
    assert table.loc["mean", "ratio"] == 1.75 and table.loc["max", "lr"] == 0.3
    assert table.loc["std", "ratio"] == round(float(np.std([1.75, 1.5, 2.0], ddof=1)), 3)
    assert list(verdicts.seed_table(pd.DataFrame({"a": [1.0]}, index=[7]), 1).index) == [7, "mean"]


def test_seed_table_errors():
    with pytest.raises(ValueError, match="at least one seed"):
        verdicts.seed_table({}, 2)
    with pytest.raises(ValueError, match="digits"):
        verdicts.seed_table({"a": {1: 1.0}}, -1)


def test_spread():
    assert verdicts.spread([1.75, 1.5, 2.0, float("nan")]) == "1.75 (1.50-2.00) over 3 seeds"
    with pytest.raises(ValueError, match="finite"):
        verdicts.spread([float("nan")])


def test_verdict_frame_gives_one_verdict_per_finding_over_the_seeds():
    frame = verdicts.verdict_frame(
        {
            "all": {1: True, 2: True},
            "some": pd.Series([True, False], index=[1, 2]),
            "none": {1: np.False_, 2: False},
        }
    )
    assert list(frame.columns) == ["verdict"] and frame.index.name == "finding (2 seeds)"
    assert frame["verdict"].to_dict() == {"all": "held", "some": "partly", "none": "not held"}


@pytest.mark.parametrize(
    "findings", [{}, [], {"a": {1: True}, "b": {1: True, 2: True}}, {"a": [True]}]
)
def test_verdict_frame_errors(findings):
    with pytest.raises(ValueError, match="finding"):
        verdicts.verdict_frame(findings)

"""helpers.chapter.parameters: one sentence for each wrong chapter parameter, before it runs."""

import helpers  # noqa: F401
from helpers.chapter.parameters import (
    AnyOf,
    Choice,
    Float,
    Int,
    ListOf,
    ParameterError,
    Text,
    check,
    table,
)

import pytest

SPEC = dict(
    seed=Int(0),
    batch_size=Int(1),
    n_train=Int("batch_size", 55_000),
    rate=Float(0, 1, min_open=True),
    steps=Int(100, multiple_of=100),
    kind=Choice("a", "b"),
    inits=ListOf(AnyOf(Float(0, min_open=True), Choice("he_normal"))),
    logdir=Text(),
)
GOOD = dict(
    seed=42,
    batch_size=32,
    n_train=10_000,
    rate=0.5,
    steps=400,
    kind="a",
    inits=[0.01, "he_normal"],
    logdir="",
)


def test_good_values_pass_and_are_left_alone():
    values = dict(GOOD)
    assert check(values, **SPEC) is None and values == GOOD


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("seed", "abc", "seed must be an integer >= 0, got 'abc'"),
        ("seed", -1, "seed must be an integer >= 0, got -1"),
        ("seed", True, "seed must be an integer >= 0, got True"),
        ("n_train", 0, "n_train must be an integer from 32 (batch_size) to 55,000, got 0"),
        (
            "n_train",
            100_000,
            "n_train must be an integer from 32 (batch_size) to 55,000, got 100000",
        ),
        ("n_train", 10.0, "n_train must be an integer from 32 (batch_size) to 55,000, got 10.0"),
        ("rate", 0, "rate must be a number above 0, up to 1, got 0"),
        ("rate", float("nan"), "rate must be a number above 0, up to 1, got nan"),
        ("steps", 450, "steps must be an integer >= 100, a multiple of 100, got 450"),
        ("kind", "c", "kind must be one of 'a', 'b', got 'c'"),
        (
            "inits",
            [],
            "inits must be a non-empty list of a number > 0 or one of 'he_normal', got []",
        ),
        (
            "inits",
            [0.01, -1],
            "inits must be a non-empty list of a number > 0 or one of 'he_normal', got [0.01, -1]",
        ),
        ("logdir", None, "logdir must be a string, got None"),
    ],
)
def test_a_wrong_value_is_one_sentence_naming_it(name, value, message):
    with pytest.raises(ParameterError) as err:
        check({**GOOD, name: value}, **SPEC)
    assert str(err.value) == message


def test_list_length_and_required_items():
    rule = dict(momenta=ListOf(Float(0, 1, max_open=True), min_len=2, including=(0.9, 0.99)))
    check({"momenta": [0.9, 0.99, 0.999]}, **rule)
    for bad in ([0.9], [0.9, 0.999], [0.9, 0.99, 1.0]):
        with pytest.raises(
            ParameterError,
            match="^momenta must be a list of at least 2 of a number from 0, "
            "below 1 that includes 0.9, 0.99, got ",
        ):
            check({"momenta": bad}, **rule)


def test_a_bound_from_a_wrong_parameter_reports_that_parameter():
    with pytest.raises(ParameterError, match="^batch_size must be an integer >= 1, got 0$"):
        check({**GOOD, "batch_size": 0}, **SPEC)


def test_an_unknown_name_is_a_misspelt_parameter():
    with pytest.raises(
        ParameterError,
        match="^n_trian is not a parameter of this chapter; its parameters are seed, ",
    ):
        check({**GOOD, "n_trian": 5}, **SPEC)
    namespace = {
        **GOOD,
        "_": 1,
        "In": [],
        "Out": {},
        "check": check,
        "pytest": pytest,
        "positive": Float(0),
    }
    check(namespace, **SPEC)  # the kernel's own names, functions and modules are not parameters


def test_missing_parameter_and_malformed_spec():
    with pytest.raises(ParameterError, match="parameter logdir is not defined"):
        check({k: v for k, v in GOOD.items() if k != "logdir"}, **SPEC)
    with pytest.raises(TypeError, match="refers to 'n'"):
        check({"a": 1}, a=Int("n"))
    with pytest.raises(TypeError, match="must be Int"):
        check({"a": 1}, a=int)


def test_table_states_every_rule():
    t = table(GOOD, **SPEC)
    assert list(t.index) == list(SPEC)
    assert t.loc["n_train", "allowed"] == "an integer from batch_size to 55,000"
    assert t.loc["inits", "value"] == "[0.01, 'he_normal']"
    assert list(table(**SPEC).columns) == ["allowed"]

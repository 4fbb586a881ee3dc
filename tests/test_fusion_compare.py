"""helpers.fusion.compare: a model beside its fused version, and the keras.applications survey."""

from helpers import fusion
from helpers.fusion import compare, examples
from helpers.fusion.report import FoldRecord

import keras
import numpy as np
import pytest

L = keras.layers

pytestmark = pytest.mark.usefixtures("seeded")


def book_like(use_bias=False):
    """A small model in the shape of the book's p. 343 model: BN before each activation."""
    return examples.small_model(
        L.Flatten(),
        L.BatchNormalization(),
        L.Dense(5, use_bias=use_bias),
        L.BatchNormalization(),
        L.Activation("elu"),
        L.Dense(3, activation="softmax"),
        shape=(2, 3),
    )


@pytest.fixture
def pair():
    model = book_like()
    fused, _ = fusion.fuse(model)
    return model, fused


def test_side_by_side_shows_both_layer_tables(pair):
    model, fused = pair
    table = compare.side_by_side(model, fused)
    assert list(table.columns.get_level_values(0).unique()) == ["original", "fused"]
    assert len(table) == len(model.layers)
    assert (table["fused", "layer"] == "").sum() == len(model.layers) - len(fused.layers)


def test_parameter_change_accounts_for_the_difference(pair):
    model, fused = pair
    n = compare.parameter_change(model, fused)
    assert n["BN"] == 4 * 6 + 4 * 5 and n["new biases"] == 5
    assert n["after"] == n["before"] - n["BN"] + n["new biases"]


def test_prediction_gap_is_rounding_for_a_fused_model(pair):
    model, fused = pair
    x = np.random.default_rng(0).normal(size=(50, 2, 3)).astype(np.float32)
    gap, same = compare.prediction_gap(model, fused, x, batch_size=16)
    assert gap < 1e-5 and same == 1.0
    with pytest.raises(ValueError, match="batch_size"):
        compare.prediction_gap(model, fused, x, batch_size=0)
    with pytest.raises(ValueError, match="model"):
        compare.prediction_gap("model", fused, x)


def test_without_epsilon_sets_every_bn_epsilon_to_zero_and_keeps_the_weights(pair):
    model, _ = pair
    copy = compare.without_epsilon(model)
    bns = [layer for layer in copy.layers if isinstance(layer, L.BatchNormalization)]
    assert bns and all(bn.epsilon == 0 for bn in bns)
    assert all(np.array_equal(a, b) for a, b in zip(copy.get_weights(), model.get_weights()))


def test_epsilon_dropped_reports_the_smallest_variance_and_the_shift(pair):
    model, _ = pair
    x = np.random.default_rng(0).normal(size=(20, 2, 3)).astype(np.float32)
    smallest, shift, changed = compare.epsilon_dropped(model, x)
    bns = [layer for layer in model.layers if isinstance(layer, L.BatchNormalization)]
    assert smallest == min(float(bn.moving_variance.numpy().min()) for bn in bns)
    assert shift > 0 and 0 <= changed <= len(x)
    with pytest.raises(ValueError, match="BatchNormalization"):
        compare.epsilon_dropped(keras.Sequential([keras.Input((3,)), L.Dense(2)]), x)


def test_fused_graph_has_the_operations_of_the_no_bn_twin(pair):
    model, fused = pair
    twin = compare.no_bn_twin(model, fused)
    assert not any(isinstance(layer, L.BatchNormalization) for layer in twin.layers)
    counts = {m: compare.op_counts(x) for m, x in (("model", model), ("fused", fused))}
    assert counts["fused"].equals(compare.op_counts(twin))
    assert counts["model"].sum() > counts["fused"].sum()
    assert not set(counts["model"].index) & compare.FREE_OPS


def test_why_left_names_the_two_neighbours_or_keeps_the_reason():
    reason = (
        "before: 'add' (Add) before is not a linear layer; "
        "after: 're_lu' (ReLU) after is not a linear layer"
    )
    assert compare.why_left(FoldRecord("bn", "left in place", reason=reason)) == (
        "Add before, ReLU after"
    )
    assert compare.why_left(FoldRecord("bn", "left in place", reason="shared")) == "shared"


def test_new_input_gap_and_latency_ratio(pair):
    model, fused = pair
    assert compare.new_input_gap(model, fused, n=3, seed=1) < 1e-5
    with pytest.raises(ValueError, match="n"):
        compare.new_input_gap(model, fused, n=0)
    assert compare.latency_ratio(model, fused, reps=2) > 0


def test_survey_refuses_an_unknown_family():
    with pytest.raises(ValueError, match="MobileNetV2"):
        compare.survey("LeNet")


@pytest.mark.integration
def test_survey_counts_what_fuse_left_and_why():
    net, fused, report, row = compare.survey("MobileNetV3Small", seed=0)
    assert dict(zip(compare.SURVEY_COLUMNS, row))["BN layers"] == len(report.records)
    assert row[3] == len(report.left) and row[-1] == "not converted"
    assert len(fused.layers) < len(net.layers)

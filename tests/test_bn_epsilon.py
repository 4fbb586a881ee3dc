"""helpers.bn.epsilon: BN layers found in nested models, ε in keras.applications, NaN without ε."""

from helpers.bn import epsilon

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("seeded")


def test_bn_layers_looks_inside_nested_models():
    inner = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(epsilon=0.5)])
    outer = keras.Sequential([keras.Input((4,)), inner, keras.layers.BatchNormalization()])
    assert [layer.epsilon for layer in epsilon.bn_layers(outer)] == [0.5, 1e-3]
    with pytest.raises(ValueError, match="keras.Model"):
        epsilon.bn_layers(keras.layers.Dense(2))


def test_nonfinite_outputs_only_without_epsilon():
    constant = np.ones((8, 1), dtype="float32")
    assert epsilon.nonfinite_outputs(constant, 1e-3) == 0
    assert epsilon.nonfinite_outputs(constant, 0.0) == 8
    with pytest.raises(ValueError, match="epsilon"):
        epsilon.nonfinite_outputs(constant, -1.0)


def test_family_epsilons_refuses_bad_input():
    with pytest.raises(ValueError, match="low must be <= high"):
        epsilon.family_epsilons({"ResNet50": 32}, low=1e-4, high=1e-5)
    with pytest.raises(ValueError, match="families is empty"):
        epsilon.family_epsilons({}, low=1e-6, high=1e-5)
    with pytest.raises(ValueError, match="not a keras.applications constructor"):
        epsilon.family_epsilons({"NoSuchNet": 32}, low=1e-6, high=1e-5)


@pytest.mark.integration
def test_family_epsilons_of_a_real_family():
    table, eps = epsilon.family_epsilons({"MobileNetV3Small": 32}, low=5e-6, high=2e-5)
    assert list(table.columns) == ["BN layers", "ε", "ε about 1e-5"]
    assert table.loc["MobileNetV3Small", "BN layers"] > 10
    assert eps["MobileNetV3Small"] == [pytest.approx(1e-3)]
    assert not table.loc["MobileNetV3Small", "ε about 1e-5"]

"""helpers.fusion.applications: keras.applications families with calibrated BN, fused down to
the floor of BN layers that cannot fold (integration: each builds a real network)."""

from helpers import fusion
from helpers.fusion import applications

import keras
import pytest

L = keras.layers

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("seeded")]


def count_bn(model):
    return sum(isinstance(layer, L.BatchNormalization) for layer in model.layers)


# --- keras.applications: the floor of issue 10 -----------------------------------------------

#: Family -> BN layers left by fuse (those between an Add, Concatenate or pooling and a ReLU).
FLOOR = {
    "MobileNetV2": 0,
    "EfficientNetB0": 0,
    "MobileNetV3Large": 0,
    "ResNet50V2": 17,
    "DenseNet121": 62,
    # Slow: the same layer patterns as the families above (convolution, BN and ReLU chains,
    # Add and Concatenate, depthwise and squeeze-excitation blocks); separable convolutions
    # have their own fold tests, and chapter 06 fuses MobileNetV3Small and Xception.
    "MobileNetV3Small": 0,
    "Xception": 0,
    "ResNet50": 0,
    "InceptionV3": 0,
}
SLOW_FAMILIES = {"MobileNetV3Small", "Xception", "ResNet50", "InceptionV3"}


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_FAMILIES else n for n in FLOOR],
)
def test_fuse_applications_floor(name):
    model = applications.application(name)
    fused, report = fusion.fuse(model, n_random=8)
    assert len(report.left) == FLOOR[name] == count_bn(fused)
    for r in report.left:
        assert "(Add)" in r.reason or "(Concatenate)" in r.reason or "Pooling2D)" in r.reason
        assert "(ReLU)" in r.reason or "(Activation)" in r.reason
    assert report.max_abs_diff <= report.tolerance


def test_fuse_transfer_learning_application_base():
    base = applications.application("MobileNetV3Small")
    base = keras.Model(base.inputs, base.get_layer("global_average_pooling2d").output)
    model = keras.Sequential([keras.Input((32, 32, 3)), base, L.Dense(2, activation="softmax")])
    fused, report = fusion.fuse(model, n_random=8)
    assert len(report.records) == 34 and not report.left
    assert all(r.bn.startswith(f"{base.name}/") for r in report.records)

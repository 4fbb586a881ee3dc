"""helpers.fusion.engine on models that compute in float16 or bfloat16 (mixed precision)."""

import helpers
from helpers import fusion
from helpers.fusion import engine, plan
from helpers.fusion.__main__ import main

import keras
import numpy as np
import pytest
from bn_stats import stats

L = keras.layers

MIXED = ["mixed_float16", "mixed_bfloat16"]
PURE = ["float16", "bfloat16"]


@pytest.fixture
def policy(request):
    """Build the test's models under `request.param`; the global policy is float32 after."""
    helpers.setup(0)
    try:
        keras.mixed_precision.set_dtype_policy(request.param)
        yield request.param
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def compute_dtype(name):
    return name.removeprefix("mixed_")


def randomize_bn(model, seed=0):
    """BN statistics far from the identity, stored in each BN's variable dtype."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            values = stats(rng, layer.moving_mean.shape[0])
            layer.set_weights([v.astype(w.dtype) for v, w in zip(values, layer.get_weights())])
    return model


def issue_model(policy):
    """The model of the report: Dense, BN, ReLU and a float32 head (mixed) or not (pure)."""
    head = L.Dense(4, dtype="float32") if policy in MIXED else L.Dense(4)
    return randomize_bn(
        keras.Sequential([keras.Input((8,)), L.Dense(16), L.BatchNormalization(), L.ReLU(), head])
    )


def conv_model():
    return randomize_bn(
        keras.Sequential(
            [
                keras.Input((10, 10, 3)),
                L.Conv2D(6, 3, use_bias=False),
                L.BatchNormalization(),
                L.ReLU(),
                L.BatchNormalization(),
                L.Conv2D(6, 3),
                L.DepthwiseConv2D(3, padding="same"),
                L.BatchNormalization(),
                L.ReLU(),
                L.GlobalAveragePooling2D(),
                L.Dense(3),
            ]
        )
    )


def policies(model):
    """The dtype policy of each layer other than BN."""
    return [
        layer.dtype_policy.name
        for layer in model.layers
        if not isinstance(layer, L.BatchNormalization)
    ]


def break_previous_folds(monkeypatch, by):
    real = plan.fold_into_previous
    monkeypatch.setattr(
        plan, "fold_into_previous", lambda *a, **k: (lambda w, b: (w, b + by))(*real(*a, **k))
    )


@pytest.mark.parametrize("policy", MIXED + PURE, indirect=True)
@pytest.mark.parametrize(
    "build", [issue_model, lambda policy: conv_model()], ids=["dense", "conv"]
)
def test_fuse_folds_low_precision_models(policy, build):
    model = build(policy)
    before = [layer.dtype_policy.name for layer in model.layers]
    fused, report = fusion.fuse(model)
    assert not report.left and not any(isinstance(la, L.BatchNormalization) for la in fused.layers)
    assert [layer.dtype_policy.name for layer in model.layers] == before  # restored
    assert policies(fused) == policies(model)  # kept by the copy
    stored = "float32" if policy in MIXED else policy
    assert {w.dtype for w in fused.layers[0].weights} == {stored}
    assert report.compute_dtypes == (compute_dtype(policy),)
    assert report.max_abs_diff <= report.tolerance
    assert report.compute_diff <= report.compute_tolerance
    # The float32 check is as sharp as a float32 model's when the weights are float32.
    if policy in MIXED:
        assert report.noise < 1e-4 < report.compute_noise
    x = np.random.default_rng(1).normal(size=(16, *model.input_shape[1:])).astype(np.float32)
    got = np.asarray(fused(x), np.float64)
    assert np.abs(got - np.asarray(model(x), np.float64)).max() <= report.compute_tolerance
    assert f"computing in {compute_dtype(policy)}" in str(report)


@pytest.mark.parametrize("policy", MIXED + PURE, indirect=True)
def test_fuse_never_changes_the_model_it_checks(policy, monkeypatch):
    model = conv_model()
    weights, own = model.get_weights(), [layer.dtype_policy for layer in model.layers]
    seen = []
    real = engine.compare

    def spying(*args):
        seen.append([layer.dtype_policy for layer in model.layers])
        return real(*args)

    monkeypatch.setattr(engine, "compare", spying)
    fusion.fuse(model)
    assert len(seen) == 2 and all(all(a is b for a, b in zip(s, own)) for s in seen)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), weights))


def nested_model():
    """A model two levels deep, with a Lambda and a wrapped layer: all rebuilt in float32."""
    inner_in = keras.Input((6, 6, 2))
    y = L.BatchNormalization()(L.Conv2D(3, 3, name="inner_conv")(inner_in))
    inner = keras.Model(inner_in, L.ReLU()(y), name="inner")
    middle = keras.Sequential(
        [keras.Input((6, 6, 2)), inner, L.Reshape((4, 12)), L.Lambda(lambda x: x * 2)],
        name="middle",
    )
    x = keras.Input((6, 6, 2))
    out = L.TimeDistributed(L.Dense(5))(L.BatchNormalization()(middle(x)))
    model = keras.Model(x, L.Dense(2, dtype="float32")(L.Flatten()(out)))
    for m in (model, middle, inner):
        randomize_bn(m)
    return model


@pytest.mark.parametrize("policy", MIXED, indirect=True)
def test_fuse_checks_nested_mixed_models_in_float32_throughout(policy):
    model = nested_model()
    fused, report = fusion.fuse(model)
    assert [r.action for r in report.records] == ["left in place", "folded into previous"]
    # float32 weights, every layer of the copies computing in float32: a float32 noise
    assert report.noise < 1e-4 < report.compute_noise


class Sub(keras.Model):
    """A subclassed model: its layers cannot be rebuilt from a config."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = L.Dense(3)

    def call(self, x):
        return self.dense(x)


@pytest.mark.parametrize("policy", ["mixed_float16"], indirect=True)
def test_fuse_refuses_a_low_precision_model_it_cannot_copy_in_float32(policy):
    model = randomize_bn(
        keras.Sequential([keras.Input((4,)), L.Dense(3), L.BatchNormalization(), Sub()])
    )
    with pytest.raises(ValueError, match="cannot build: 'sub' \\(Sub\\) is a model") as err:
        fusion.fuse(model)
    assert len(str(err.value).splitlines()) == 1 and str(err.value).count(". ") == 0


@pytest.mark.parametrize("policy", MIXED + PURE, indirect=True)
def test_fuse_catches_a_wrong_fold_in_low_precision(policy, monkeypatch):
    model = issue_model(policy)
    break_previous_folds(monkeypatch, 1.0)
    with pytest.raises(fusion.FusionError, match="differs from .* computing in float32"):
        fusion.fuse(model)
    assert policies(model)[0] == policy


@pytest.mark.parametrize("policy", MIXED, indirect=True)
def test_fuse_checks_mixed_models_as_sharply_as_float32(policy, monkeypatch):
    model = issue_model(policy)
    _, report = fusion.fuse(model)
    # An error in the bias far below what float16/bfloat16 rounding moves the outputs by.
    assert report.compute_diff > 1e-3
    break_previous_folds(monkeypatch, 1e-3)
    with pytest.raises(fusion.FusionError, match="this is a bug in fuse"):
        fusion.fuse(model)


@pytest.mark.parametrize("policy", ["mixed_float16", "float16"], indirect=True)
def test_fuse_leaves_a_fold_that_would_overflow_float16(policy):
    model = keras.Sequential(
        [keras.Input((4,)), L.Dense(3), L.BatchNormalization(epsilon=1e-3), L.ReLU()]
    )
    bn = model.layers[1]
    bn.set_weights(
        [np.full(3, 3000.0, w.dtype) if i == 0 else w for i, w in enumerate(bn.get_weights())]
    )  # s = 3000 / sqrt(1 + 1e-3), W' > 65504
    model.layers[0].set_weights([np.full((4, 3), 30.0), np.zeros(3)])
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32) * 1e-3
    fused, report = fusion.fuse(model, x, n_random=0)
    rec = report.records[0]
    assert rec.action == "left in place"
    assert "would reach" in rec.reason and "float16's largest value 65504" in rec.reason
    assert fused.layers[0].use_bias and report.max_abs_diff == 0.0
    # On standard-normal inputs the original's own float16 outputs overflow.
    with pytest.raises(ValueError, match="itself outputs infinite or NaN"):
        fusion.fuse(model)


def cancelling_model():
    """Two equal halves that the head subtracts: outputs near 0 from activations near 300."""
    model = randomize_bn(
        keras.Sequential([keras.Input((4,)), L.Dense(8), L.BatchNormalization(), L.Dense(1)])
    )
    w = np.random.default_rng(2).normal(size=(4, 4)) * 300
    model.layers[0].set_weights([np.concatenate([w, w], 1), np.zeros(8)])
    bn = model.layers[1]
    bn.set_weights([np.tile(v[:4], 2).astype(v.dtype) for v in bn.get_weights()])
    model.layers[2].set_weights([np.repeat([[1.0], [-1.0]], 4, 0), np.zeros(1)])
    return model


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16", "bfloat16"], indirect=True)
def test_fuse_refuses_when_rounding_hides_a_wrong_fold(policy):
    model = cancelling_model()
    if policy != "bfloat16":
        fusion.fuse(model)  # float32 weights: the check resolves a wrong fold
        return
    with pytest.raises(ValueError, match=r"in bfloat16 \(dtype policy 'bfloat16'\)") as err:
        fusion.fuse(model)
    message = str(err.value)
    assert "too much for fuse's check" in message and len(message.splitlines()) == 1
    assert message.count(". ") == 0 and not isinstance(err.value, fusion.FusionError)


@pytest.mark.parametrize("policy", MIXED + PURE, indirect=True)
def test_cli_fuses_a_saved_low_precision_model(policy, tmp_path, capsys):
    model = issue_model(policy)
    src, out = tmp_path / "model.keras", tmp_path / "fused.keras"
    model.save(src)
    _, report = fusion.fuse(model)
    keras.mixed_precision.set_dtype_policy("float32")  # as in a fresh process
    assert main([str(src), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1 folded, 0 left" in printed and f"computing in {compute_dtype(policy)}" in printed
    fused = keras.models.load_model(out)
    assert policies(fused) == policies(model)
    x = np.random.default_rng(0).normal(size=(6, 8)).astype(np.float32)
    got, want = np.asarray(fused(x), np.float64), np.asarray(model(x), np.float64)
    assert np.abs(got - want).max() <= report.compute_tolerance


@pytest.mark.parametrize("policy", ["mixed_float16"], indirect=True)
def test_fuse_fails_when_only_the_low_precision_run_differs(policy, monkeypatch):
    """A fused model that overflows float16 where the original does not (not seen on CPU,
    whose float16 products accumulate in float32: simulated) is refused, not returned."""
    model = issue_model(policy)
    real = engine.compare

    def overflowing(views, fused, xs, ulp_dtypes, seed):
        diff, noise, scale, finite = real(views, fused, xs, ulp_dtypes, seed)
        return (np.inf if "float16" in ulp_dtypes else diff), noise, scale, finite

    monkeypatch.setattr(engine, "compare", overflowing)
    with pytest.raises(fusion.FusionError, match="computing in float16, .* overflows float16"):
        fusion.fuse(model)

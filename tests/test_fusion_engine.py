"""helpers.fusion.engine: `fuse` on Sequential, functional and nested models, its errors and
report, `layer_table`, and the command ``python -m helpers.fusion``."""

from helpers import fusion
from helpers.fusion import plan
from helpers.fusion.__main__ import main

import keras
import numpy as np
import pytest
from bn_stats import stats

L = keras.layers

pytestmark = pytest.mark.usefixtures("seeded")


# --- fuse ----------------------------------------------------------------------------------


def randomize_bn(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            g, b, m, v = stats(rng, layer.moving_mean.shape[0], layer.scale, layer.center)
            layer.set_weights([w for w in (g, b, m, v) if w is not None])
    return model


def book_model_1():
    return keras.Sequential(
        [
            keras.Input((28, 28)),
            L.Flatten(),
            L.BatchNormalization(),
            L.Dense(30, activation="elu"),
            L.BatchNormalization(),
            L.Dense(10, activation="elu"),
            L.BatchNormalization(),
            L.Dense(4, activation="softmax"),
        ]
    )


def book_model_2():
    return keras.Sequential(
        [
            keras.Input((28, 28)),
            L.Flatten(),
            L.BatchNormalization(),
            L.Dense(30, use_bias=False),
            L.BatchNormalization(),
            L.Activation("elu"),
            L.Dense(10, use_bias=False),
            L.BatchNormalization(),
            L.Activation("elu"),
            L.Dense(4, activation="softmax"),
        ]
    )


def count_bn(model):
    return sum(isinstance(layer, L.BatchNormalization) for layer in model.layers)


def test_fuse_book_model_1_folds_forward_and_leaves_original():
    model = randomize_bn(book_model_1())
    before = [w.copy() for w in model.get_weights()]
    fused, report = fusion.fuse(model)
    assert isinstance(fused, keras.Sequential) and count_bn(fused) == 0
    assert [r.action for r in report.records] == ["folded into next"] * 3
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert count_bn(model) == 3
    x = np.random.default_rng(1).uniform(size=(50, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(fused(x), model(x, training=False), atol=1e-5)
    assert report.max_abs_diff <= report.tolerance and report.n_checked == 64
    assert "3 folded, 0 left" in str(report)


def test_fuse_book_model_2_needs_bias_and_folds_both_ways():
    model = randomize_bn(book_model_2())
    fused, report = fusion.fuse(model)
    assert [r.action for r in report.records] == [
        "folded into next",
        "folded into previous",
        "folded into previous",
    ]
    dense = [layer for layer in fused.layers if isinstance(layer, L.Dense)]
    assert all(layer.use_bias for layer in dense)
    assert [r[1] for r in fusion.layer_table(fused)] == [
        "Flatten",
        "Dense",
        "Activation",
        "Dense",
        "Activation",
        "Dense",
    ]


def test_fuse_bn_before_flatten_maps_per_column_stats():
    model = randomize_bn(
        keras.Sequential([keras.Input((5, 4)), L.BatchNormalization(), L.Flatten(), L.Dense(3)])
    )
    fused, report = fusion.fuse(model)
    assert report.records[0].action == "folded into next" and report.records[0].via == "flatten"
    x = np.random.default_rng(2).normal(size=(20, 5, 4)).astype(np.float32)
    np.testing.assert_allclose(fused(x), model(x), atol=1e-5)


def test_fuse_conv2d_cases():
    model = randomize_bn(
        keras.Sequential(
            [
                keras.Input((9, 9, 2)),
                L.BatchNormalization(),
                L.Conv2D(3, 3),  # forward, valid
                L.BatchNormalization(),  # backward
                L.Conv2D(4, 3, padding="same", use_bias=False),
                L.BatchNormalization(center=False),  # backward
                L.ReLU(),
                L.BatchNormalization(scale=False),
                L.Conv2D(2, 3, padding="same"),  # same: left
                L.GlobalAveragePooling2D(),
            ]
        )
    )
    fused, report = fusion.fuse(model)
    assert [r.action for r in report.records] == [
        "folded into next",
        "folded into previous",
        "folded into previous",
        "left in place",
    ]
    assert "padding='same'" in report.records[3].reason
    assert count_bn(fused) == 1


def test_fuse_conv1d_both_ways():
    model = randomize_bn(
        keras.Sequential(
            [
                keras.Input((10, 3)),
                L.BatchNormalization(),
                L.Conv1D(4, 3),
                L.BatchNormalization(),
            ]
        )
    )
    _, report = fusion.fuse(model)
    assert [r.action for r in report.records] == ["folded into next", "folded into previous"]


def test_fuse_leaves_bn_with_wrong_axis():
    model = randomize_bn(
        keras.Sequential(
            [keras.Input((6, 5)), L.Dense(5), L.BatchNormalization(axis=1), L.Dense(3)]
        )
    )
    fused, report = fusion.fuse(model)
    assert report.records[0].action == "left in place"
    assert (
        "not the channel axis" in report.records[0].reason
        and "does not map onto" in report.records[0].reason
    )
    assert count_bn(fused) == 1


def test_fuse_activation_before_bn_folds_forward_only():
    model = randomize_bn(
        keras.Sequential(
            [keras.Input((6,)), L.Dense(5, activation="elu"), L.BatchNormalization(), L.ReLU()]
        )
    )
    _, report = fusion.fuse(model)
    rec = report.records[0]
    assert (
        rec.action == "left in place"
        and "applies elu" in rec.reason
        and "'re_lu' (ReLU)" in rec.reason
    )


def test_fuse_functional_shared_input_and_output():
    inp = keras.Input((8,))
    d = L.Dense(6)(inp)
    bn = L.BatchNormalization()(d)
    side = L.Dense(3)(d)  # the BN's input feeds a second layer
    out = L.Concatenate()([L.ReLU()(bn), side])
    model = randomize_bn(keras.Model(inp, out))
    fused, report = fusion.fuse(model)
    assert report.records[0].action == "left in place" and "feeds 2" in report.records[0].reason
    assert not isinstance(fused, keras.Sequential)
    # the BN's output feeds two layers, its input has only the BN: backward fold is fine
    inp = keras.Input((8,))
    bn = L.BatchNormalization()(L.Dense(6)(inp))
    model = randomize_bn(keras.Model(inp, L.Add()([L.Dense(6)(bn), bn])))
    _, report = fusion.fuse(model)
    assert report.records[0].action == "folded into previous"
    # output feeding two layers and no linear layer before it: left
    inp = keras.Input((8,))
    bn = L.BatchNormalization()(inp)
    model = randomize_bn(keras.Model(inp, [L.Dense(2)(bn), L.Dense(3)(bn)]))
    fused, report = fusion.fuse(model, x=np.ones((4, 8)))
    assert (
        report.records[0].action == "left in place"
        and "BN output feeds 2 layers" in report.records[0].reason
    )
    assert report.n_checked == 68 and len(fused.outputs) == 2


def test_fuse_shared_linear_layer_is_not_modified():
    dense = L.Dense(4)
    a, b = keras.Input((4,)), keras.Input((4,))
    model = randomize_bn(keras.Model([a, b], [L.BatchNormalization()(dense(a)), dense(b)]))
    _, report = fusion.fuse(model)
    assert report.records[0].action == "left in place" and "shared" in report.records[0].reason


def test_fuse_two_bns_in_a_row_and_dropout_chain():
    model = randomize_bn(
        keras.Sequential(
            [
                keras.Input((7,)),
                L.BatchNormalization(),
                L.BatchNormalization(),
                L.Dropout(0.5),
                L.Dense(3),
            ]
        )
    )
    fused, report = fusion.fuse(model)
    assert all(r.action == "folded into next" for r in report.records) and count_bn(fused) == 0
    assert report.records[1].via == "dropout"


def test_fuse_errors():
    with pytest.raises(ValueError, match="keras.Model"):
        fusion.fuse(np.ones(3))
    with pytest.raises(ValueError, match="built Sequential"):
        fusion.fuse(keras.Sequential([L.Dense(3)]))
    model = keras.Sequential([keras.Input((4,)), L.BatchNormalization(), L.Dense(2)])
    with pytest.raises(ValueError, match="nothing to check"):
        fusion.fuse(model, n_random=0)
    with pytest.raises(ValueError, match="n_random"):
        fusion.fuse(model, n_random=-1)
    with pytest.raises(ValueError, match="rtol"):
        fusion.fuse(model, rtol=0)


def test_fuse_raises_when_check_fails(monkeypatch):
    model = randomize_bn(keras.Sequential([keras.Input((4,)), L.Dense(3), L.BatchNormalization()]))
    real = plan.fold_into_previous
    monkeypatch.setattr(
        plan, "fold_into_previous", lambda *a, **k: (lambda w, b: (w, b + 1.0))(*real(*a, **k))
    )
    with pytest.raises(fusion.FusionError, match="differs"):
        fusion.fuse(model)


def test_fuse_raises_when_the_fused_model_outputs_nan(monkeypatch):
    model = randomize_bn(keras.Sequential([keras.Input((4,)), L.Dense(3), L.BatchNormalization()]))
    real = plan.fold_into_previous
    monkeypatch.setattr(
        plan, "fold_into_previous", lambda *a, **k: (lambda w, b: (w, b * np.nan))(*real(*a, **k))
    )
    with pytest.raises(fusion.FusionError, match="differs .* by up to inf"):
        fusion.fuse(model)


def test_fuse_checks_logits_not_saturated_probabilities(monkeypatch):
    model = randomize_bn(
        keras.Sequential(
            [
                keras.Input((4,)),
                L.Dense(3),
                L.BatchNormalization(),
                L.Dense(5, activation="softmax"),
            ]
        )
    )
    dense = model.layers[-1]
    dense.set_weights([dense.kernel.numpy() * 0.05, np.array([0, 0, 0, 0, 40], "float32")])
    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    assert model(x).numpy()[:, 4].min() > 1 - 1e-6  # saturated: probabilities hide errors
    real = plan.fold_into_previous
    monkeypatch.setattr(
        plan, "fold_into_previous", lambda *a, **k: (lambda w, b: (w, b + 1.0))(*real(*a, **k))
    )
    with pytest.raises(fusion.FusionError, match="differs"):
        fusion.fuse(model)


def test_fuse_depthwise_separable_transpose_grouped():
    model = randomize_bn(
        keras.Sequential(
            [
                keras.Input((9, 9, 4)),
                L.BatchNormalization(),
                L.DepthwiseConv2D(3, depth_multiplier=2),  # forward (valid)
                L.BatchNormalization(),  # backward into the depthwise conv
                L.ReLU(),
                L.BatchNormalization(),
                L.SeparableConv2D(4, 3),  # forward (valid)
                L.BatchNormalization(),  # backward into the pointwise kernel
                L.ReLU(),
                L.BatchNormalization(),
                L.Conv2D(4, 1, groups=2),  # forward, grouped
                L.BatchNormalization(),  # backward, grouped
                L.ReLU(),
                L.Conv2DTranspose(3, 3, strides=2, use_bias=False),
                L.BatchNormalization(),  # backward, kernel axis -2
                L.ReLU(),
                L.BatchNormalization(),
                L.Conv2DTranspose(2, 3),  # forward into a transposed conv: left
                L.DepthwiseConv2D(3, padding="same"),
                L.BatchNormalization(),
            ]
        )
    )
    fused, report = fusion.fuse(model)
    actions = [r.action.split()[-1] for r in report.records]
    assert actions == ["next", "previous", "next", "previous", "next", "previous", "previous"] + [
        "place",
        "previous",
    ]
    assert "transposed convolution" in report.records[7].reason
    assert count_bn(fused) == 1


def hard_sigmoid_block(x):
    """MobileNetV3's activation: operators on tensors, which are not layers."""
    return x * (L.ReLU(6.0)(x + 3.0) * (1.0 / 6.0))


def test_fuse_graph_with_operations_that_are_not_layers():
    inp = keras.Input((8, 8, 3))
    x = L.BatchNormalization()(L.Conv2D(4, 3, use_bias=False)(inp))
    x = hard_sigmoid_block(x)
    x = L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same")(x))
    out = L.GlobalAveragePooling2D()(hard_sigmoid_block(x) + x)
    model = randomize_bn(keras.Model(inp, out))
    fused, report = fusion.fuse(model)
    assert not report.left and count_bn(fused) == 0


def test_fuse_nested_model_shared_layers_several_inputs_and_outputs():
    base_in = keras.Input((6, 6, 2))
    y = L.BatchNormalization(name="inner_bn")(L.Conv2D(3, 3, name="inner_conv")(base_in))
    base = keras.Model(base_in, L.ReLU()(y), name="base")
    head = keras.Sequential(
        [keras.Input((6, 6, 2)), base, L.GlobalAveragePooling2D(), L.BatchNormalization()]
    )
    a, b = keras.Input((6, 6, 2), name="a"), keras.Input((6, 6, 2), name="b")
    shared = L.Dense(3, name="shared")
    out1 = L.BatchNormalization(name="after_shared")(shared(head(a)))
    out2 = L.Dense(2, activation="sigmoid")(shared(head(b)))
    model = keras.Model({"a": a, "b": b}, {"one": out1, "two": out2})
    for layer in (model, head, base):
        randomize_bn(layer)
    fused, report = fusion.fuse(model)
    rec = {r.bn: r for r in report.records}
    assert rec["sequential/base/inner_bn"].action == "folded into previous"
    assert rec["after_shared"].action == "left in place" and "shared" in rec["after_shared"].reason
    assert set(fused.output) == {"one", "two"}
    x = {k: np.random.default_rng(3).normal(size=(5, 6, 6, 2)).astype(np.float32) for k in "ab"}
    want, got = model(x), fused(x)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], atol=1e-4)


@keras.saving.register_keras_serializable(package="test_fusion")
class Apply(L.Layer):
    """A layer with a weight and a Python function, which Keras cannot put in its config."""

    def __init__(self, fn, **kwargs):
        super().__init__(**kwargs)
        self.fn = fn

    def build(self, input_shape):
        self.w = self.add_weight(shape=(), initializer="ones")

    def call(self, x):
        return self.fn(x) * self.w


class Sub(keras.Model):
    """A subclassed model: its layer graph cannot be read."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense, self.bn = L.Dense(3), L.BatchNormalization()

    def call(self, x):
        return self.bn(self.dense(x))


def test_fuse_names_the_layer_it_cannot_rebuild():
    model = randomize_bn(
        keras.Sequential(
            [keras.Input((4,)), L.Dense(3), L.BatchNormalization(), Apply(lambda x: 2 * x)]
        )
    )
    with pytest.raises(fusion.FusionError, match="'apply' \\(Apply\\)"):
        fusion.fuse(model)


def test_fuse_shares_stateless_layers_and_reports_subclassed_ones():
    lam = L.Lambda(lambda x: keras.ops.relu(x) * 2)  # a lambda cannot be rebuilt from config
    model = randomize_bn(
        keras.Sequential([keras.Input((4,)), L.Dense(3), L.BatchNormalization(), lam, Sub()])
    )
    fused, report = fusion.fuse(model)
    assert fused.layers[1] is lam
    assert [r.action for r in report.records] == ["folded into previous", "left in place"]
    assert report.records[1].bn == "sub/batch_normalization_1"
    assert "subclassed" in report.records[1].reason


def test_fuse_leaves_bn_called_in_training_mode():
    inp = keras.Input((4,))
    model = randomize_bn(keras.Model(inp, L.BatchNormalization()(L.Dense(3)(inp), training=True)))
    _, report = fusion.fuse(model)
    assert "training=True" in report.records[0].reason


# --- python -m helpers.fusion ----------------------------------------------------------------


def test_cli_fuses_a_saved_model(tmp_path, capsys):
    model = randomize_bn(book_model_2())
    src, out = tmp_path / "model.keras", tmp_path / "fused.keras"
    model.save(src)
    assert main([str(src), "-o", str(out)]) == 0
    assert "3 folded, 0 left" in capsys.readouterr().out
    fused = keras.models.load_model(out)
    x = np.random.default_rng(0).normal(size=(6, 28, 28)).astype(np.float32)
    assert count_bn(fused) == 0
    np.testing.assert_allclose(fused(x), model(x), atol=1e-5)


def test_cli_fails_cleanly(tmp_path, capsys, monkeypatch):
    out = tmp_path / "fused.keras"
    text = tmp_path / "notes.keras"
    text.write_text("not a model")
    src = tmp_path / "model.keras"
    randomize_bn(book_model_2()).save(src)
    real = plan.fold_into_previous
    broken = lambda *a, **k: (lambda w, b: (w, b + 1.0))(*real(*a, **k))  # noqa: E731
    cases = [
        ([str(tmp_path / "missing.keras"), "-o", str(out)], "no such file"),
        ([str(text), "-o", str(out)], "is not a Keras model"),
        ([str(src), "-o", str(tmp_path / "fused.h5")], "must be a .keras file"),
        ([str(src), "-o", str(out)], "differs from"),
    ]
    for i, (argv, message) in enumerate(cases):
        if i == 3:
            monkeypatch.setattr(plan, "fold_into_previous", broken)
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
        assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [
            "model.keras",
            "notes.keras",
        ]


# --- looking at models ----------------------------------------------------------------------


def test_layer_table_lists_name_type_shape_and_parameters():
    model = keras.Sequential([keras.Input((4,)), L.Dense(3), L.BatchNormalization()])
    assert fusion.layer_table(model) == [
        ("dense", "Dense", (3,), 15),
        ("batch_normalization", "BatchNormalization", (3,), 12),
    ]


def test_layer_table_refuses_what_is_not_a_built_model():
    with pytest.raises(ValueError, match="built keras.Model"):
        fusion.layer_table("model")


def small_bn_model():
    return randomize_bn(
        keras.Sequential([keras.Input((6,)), L.Dense(4), L.BatchNormalization(), L.Dense(2)])
    )

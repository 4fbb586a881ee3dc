"""Unit tests for helpers.experiments: spec validation, batches, target detection, models, runs."""

import math

import helpers  # noqa: F401  (sets TensorFlow's environment before it loads)
from helpers import experiments as E

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

FAST = settings(max_examples=30, deadline=None)


def blobs(n_train=256, n_valid=128, n_features=8, seed=0):
    """Two well separated Gaussian blobs: a problem any small MLP solves in a few steps."""
    rng = np.random.default_rng(seed)

    def draw(n):
        y = rng.integers(0, 2, n)
        X = rng.normal(size=(n, n_features)).astype(np.float32) + 2.0 * (2 * y[:, None] - 1)
        return X, y

    X_tr, y_tr = draw(n_train)
    X_va, y_va = draw(n_valid)
    return X_tr, y_tr, X_va, y_va


DATA = blobs()


# --- MLPSpec and TrainConfig ----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"depth": 0}, "depth"),
        ({"depth": 2.5}, "depth"),
        ({"width": 0}, "width"),
        ({"width": True}, "width"),
        ({"activation": "no_such_activation"}, "activation"),
        ({"activation": 3}, "activation"),
        ({"initializer": "no_such_init"}, "initializer"),
        ({"initializer": -0.1}, "initializer"),
        ({"initializer": float("nan")}, "initializer"),
        ({"initializer": None}, "initializer"),
        ({"batch_norm": "middle"}, "batch_norm"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"fixup": True}, "residual=True"),
        ({"residual": True, "fixup": True, "batch_norm": "before"}, "replaces BN"),
        ({"residual": True, "batch_norm": "after"}, "before"),
        ({"residual": True, "dropout": 0.2}, "dropout"),
        ({"residual": 1}, "residual"),
    ],
)
def test_spec_rejects_bad_values_with_a_message_naming_them(kwargs, word):
    with pytest.raises(ValueError, match=word):
        E.MLPSpec(**kwargs)


def test_spec_labels_and_init_names():
    assert (
        E.MLPSpec(depth=3, width=16, activation="tanh", initializer=0.01).label
        == "3x16 tanh N(0,0.01) no BN"
    )
    assert (
        E.MLPSpec(batch_norm="before", dropout=0.2).label
        == "10x64 relu he_normal BN-before dropout 0.2"
    )
    assert E.MLPSpec(residual=True, fixup=True).init_name == "Fixup"


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"learning_rate": 0}, "learning_rate"),
        ({"learning_rate": float("inf")}, "learning_rate"),
        ({"momentum": 1.0}, "momentum"),
        ({"batch_size": 0}, "batch_size"),
        ({"max_steps": 1.5}, "max_steps"),
        ({"eval_every": 0}, "eval_every"),
        ({"target": 1.5}, "target"),
        ({"target": 0.0}, "target"),
        ({"stop_at_target": True}, "target"),
        ({"train_accuracy": 1}, "train_accuracy"),
    ],
)
def test_config_rejects_bad_values(kwargs, word):
    with pytest.raises(ValueError, match=word):
        E.TrainConfig(**kwargs)


# --- pure functions -------------------------------------------------------------------------


@FAST
@given(st.integers(1, 10_000), st.integers(2, 6))
def test_fixup_scale_is_the_papers_power(L, m):
    c = E.fixup_scale(L, m)
    assert 0 < c <= 1
    assert math.isclose(c ** (2 * m - 2) * L, 1.0, rel_tol=1e-9)


@pytest.mark.parametrize(
    "args, word", [((0,), "n_branches"), ((4, 1), "layers_per_branch"), ((2.0,), "n_branches")]
)
def test_fixup_scale_errors(args, word):
    with pytest.raises(ValueError, match=word):
        E.fixup_scale(*args)


@FAST
@given(st.integers(1, 50), st.integers(1, 8), st.integers(0, 40), st.integers(0, 2**31))
def test_make_batches_shuffles_each_epoch_without_repeats(extra, batch, steps, seed):
    n = batch + extra
    b = E.make_batches(n, batch, steps, seed)
    assert b.shape == (steps, batch) and b.dtype == np.int32
    assert b.min(initial=0) >= 0 and b.max(initial=0) < n
    per_epoch = n // batch
    for start in range(0, steps, per_epoch):  # within an epoch, no example twice
        epoch = b[start : start + per_epoch].ravel()
        assert len(np.unique(epoch)) == len(epoch)
    np.testing.assert_array_equal(b, E.make_batches(n, batch, steps, seed))


@pytest.mark.parametrize(
    "args, word",
    [
        ((3, 4, 1, 0), "n_examples"),
        ((10, 0, 1, 0), "batch_size"),
        ((10, 2, -1, 0), "n_steps"),
        ((10, 2, 1, -3), "seed"),
    ],
)
def test_make_batches_errors(args, word):
    with pytest.raises(ValueError, match=word):
        E.make_batches(*args)


@FAST
@given(
    st.lists(st.one_of(st.floats(0, 1), st.just(float("nan"))), min_size=0, max_size=30),
    st.floats(0.01, 1),
)
def test_first_step_reaching_matches_a_brute_force_scan(accs, target):
    steps = [10 * i for i in range(len(accs))]
    expected = next((s for s, a in zip(steps, accs) if not math.isnan(a) and a >= target), None)
    assert E.first_step_reaching(steps, accs, target) == expected


def test_first_step_reaching_examples_and_errors():
    assert E.first_step_reaching([0, 50, 100], [0.1, 0.8, 0.9], 0.8) == 50
    assert E.first_step_reaching([0, 50], [0.1, 0.7], 0.8) is None
    with pytest.raises(ValueError, match="same length"):
        E.first_step_reaching([0, 1], [0.5], 0.4)
    with pytest.raises(ValueError, match="increasing"):
        E.first_step_reaching([0, 0], [0.5, 0.6], 0.4)


# --- models ---------------------------------------------------------------------------------


def dense_params(i, o, bias=True):
    return i * o + (o if bias else 0)


@pytest.mark.parametrize("bn", [None, "before", "after"])
def test_build_mlp_parameter_counts(bn):
    spec = E.MLPSpec(depth=3, width=5, batch_norm=bn)
    model = E.build_mlp(spec, 7, 4)
    expected = (
        dense_params(7, 5, bn != "before")
        + 2 * dense_params(5, 5, bn != "before")
        + dense_params(5, 4)
    )
    expected += 3 * 4 * 5 if bn else 0  # gamma, beta, moving mean, moving variance
    assert model.count_params() == expected
    assert model.output_shape == (None, 4)


def test_build_mlp_is_deterministic_per_seed_and_uses_the_initializer():
    spec = E.MLPSpec(depth=2, width=300, initializer=0.01)
    a, b, c = (E.build_mlp(spec, 400, seed=s) for s in (1, 1, 2))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])
    assert (
        abs(float(np.std(a.get_layer("dense_1").kernel.numpy())) - 0.01) < 0.0005
    )  # 120,000 draws
    he = E.build_mlp(E.MLPSpec(depth=1, width=300), 400)
    assert abs(float(np.std(he.get_layer("dense_1").kernel.numpy())) - math.sqrt(2 / 400)) < 0.003


def test_fixup_init_zeroes_each_branch_end_and_scales_inner_layers():
    depth, width = 9, 200
    spec = E.MLPSpec(depth=depth, width=width, residual=True, fixup=True)
    model = E.build_mlp(spec, 30, 3)
    plain = E.build_mlp(E.MLPSpec(depth=depth, width=width, residual=True), 30, 3)
    assert not np.any(model.get_layer("logits").kernel.numpy())
    for i in range(1, depth + 1):
        assert not np.any(model.get_layer(f"block{i}_dense_b").kernel.numpy())
        assert np.any(plain.get_layer(f"block{i}_dense_b").kernel.numpy())
        inner = model.get_layer(f"block{i}_dense_a").kernel.numpy()
        he = plain.get_layer(f"block{i}_dense_a").kernel.numpy()
        # same seeds, so Fixup's inner weights are exactly He's times L^(-1/2)
        np.testing.assert_allclose(inner, he * E.fixup_scale(depth), rtol=1e-5, atol=1e-7)
    # at initialization every residual branch adds zero, so each block passes the (already
    # ReLU-activated) stem output through unchanged, however deep the network is
    import keras

    x = np.random.default_rng(0).normal(size=(4, 30)).astype(np.float32)
    stem = keras.Model(model.input, model.get_layer("stem").output)(x).numpy()
    last = keras.Model(model.input, model.get_layer(f"block{depth}_act_out").output)(x).numpy()
    assert np.any(stem)
    np.testing.assert_allclose(last, stem, rtol=1e-6)
    np.testing.assert_allclose(model(x).numpy(), 0.0)  # the zero output layer: uniform softmax


def test_build_mlp_errors():
    with pytest.raises(ValueError, match="spec"):
        E.build_mlp({"depth": 2}, 4)
    with pytest.raises(ValueError, match="input_dim"):
        E.build_mlp(E.MLPSpec(depth=1), 0)
    with pytest.raises(ValueError, match="n_classes"):
        E.build_mlp(E.MLPSpec(depth=1), 4, n_classes=1)
    with pytest.raises(ValueError, match="seed"):
        E.build_mlp(E.MLPSpec(depth=1), 4, seed=-1)


def test_initialize_weights_restores_a_fresh_model_and_checks_the_architecture():
    spec = E.MLPSpec(depth=2, width=6, batch_norm="after")
    model = E.build_mlp(spec, 5, seed=3)
    fresh = [w.copy() for w in model.get_weights()]
    model.set_weights([w + 1.0 for w in fresh])
    E.initialize_weights(model, spec, 3)
    for a, b in zip(model.get_weights(), fresh):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="Dense layers"):
        E.initialize_weights(model, E.MLPSpec(depth=4, width=6), 3)
    with pytest.raises(ValueError, match="seed"):
        E.initialize_weights(model, spec, -2)


# --- training runs --------------------------------------------------------------------------


def test_tiny_run_reaches_its_target_and_records_the_first_step():
    cfg = E.TrainConfig(learning_rate=0.1, batch_size=32, max_steps=60, eval_every=4, target=0.95)
    run = E.train(E.MLPSpec(depth=2, width=8, batch_norm="before"), DATA, cfg, seed=1)
    h = run.history
    assert h["step"].tolist() == list(range(0, 61, 4)) and h["step"].iloc[0] == 0
    assert not run.diverged and run.step_to_target is not None
    assert run.step_to_target == E.first_step_reaching(h["step"], h["val_acc"], 0.95)
    assert (h.loc[h["step"] < run.step_to_target, "val_acc"] < 0.95).all()
    assert run.steps_per_epoch == 256 // 32
    assert run.seconds_per_epoch > 0 and run.seconds_to_target > 0
    row = run.row()
    assert (
        row["step_to_target"] == run.step_to_target
        and row["epochs_to_target"] == run.step_to_target / 8
    )
    assert math.isclose(row["gap"], row["final_train_acc"] - row["final_val_acc"])


def test_dropout_runs_repeat_exactly_with_or_without_reuse():
    spec = E.MLPSpec(depth=2, width=8, dropout=0.3)
    cfg = E.TrainConfig(learning_rate=0.1, batch_size=32, max_steps=30, eval_every=10)
    first = E.train(spec, DATA, cfg, seed=4)
    other = E.train(spec, DATA, cfg, seed=5)  # shares the graph, other masks
    again = E.train(spec, DATA, cfg, seed=4)
    fresh = E.train(spec, DATA, cfg, seed=4, reuse=False)
    for run in (again, fresh):
        np.testing.assert_array_equal(run.history["train_loss"], first.history["train_loss"])
    assert not np.array_equal(other.history["train_loss"][1:], first.history["train_loss"][1:])


def test_without_train_accuracy_only_the_validation_set_is_evaluated_and_runs_are_unchanged():
    spec = E.MLPSpec(depth=2, width=8, batch_norm="before")
    both = E.train(
        spec,
        DATA,
        E.TrainConfig(learning_rate=0.1, batch_size=32, max_steps=40, eval_every=8),
        seed=2,
    )
    val_only = E.train(
        spec,
        DATA,
        E.TrainConfig(
            learning_rate=0.1, batch_size=32, max_steps=40, eval_every=8, train_accuracy=False
        ),
        seed=2,
    )
    assert val_only.history["train_acc"].isna().all() and both.history["train_acc"].notna().all()
    for column in ("step", "train_loss", "val_loss", "val_acc"):
        np.testing.assert_array_equal(val_only.history[column], both.history[column])
    assert (
        math.isnan(val_only.row()["gap"])
        and val_only.row()["final_val_acc"] == both.row()["final_val_acc"]
    )


def test_stop_at_target_stops_and_runs_repeat_exactly_with_or_without_reuse():
    spec = E.MLPSpec(depth=2, width=8, activation="tanh")
    cfg = E.TrainConfig(
        learning_rate=0.1,
        batch_size=32,
        max_steps=200,
        eval_every=5,
        target=0.95,
        stop_at_target=True,
    )
    first = E.train(spec, DATA, cfg, seed=4)
    E.train(
        E.MLPSpec(depth=2, width=8, activation="tanh", initializer=0.5), DATA, cfg, seed=9
    )  # shares the graph
    again = E.train(spec, DATA, cfg, seed=4)
    fresh = E.train(spec, DATA, cfg, seed=4, reuse=False)
    assert first.history["step"].iloc[-1] == first.step_to_target < 200
    for other in (again, fresh):
        assert first.history.drop(columns="seconds").equals(other.history.drop(columns="seconds"))


def test_divergence_is_recorded_not_raised():
    cfg = E.TrainConfig(learning_rate=1e12, batch_size=32, max_steps=100, eval_every=5)
    run = E.train(E.MLPSpec(depth=4, width=16), DATA, cfg, seed=0)
    assert run.diverged and run.diverged_at <= 20
    assert run.history["step"].iloc[-1] == run.diverged_at  # stopped early
    row = E.results_table([run]).iloc[0]
    assert bool(row["diverged"]) and math.isnan(row["final_val_acc"]) and math.isnan(row["gap"])


def test_dropout_and_residual_runs_and_the_results_table():
    cfg = E.TrainConfig(learning_rate=0.05, batch_size=32, max_steps=8, eval_every=4)
    runs = [
        E.train(E.MLPSpec(depth=2, width=8, dropout=0.3), DATA, cfg, seed=0, name="dropout"),
        E.train(
            E.MLPSpec(depth=2, width=8, residual=True, fixup=True), DATA, cfg, seed=0, name="fixup"
        ),
    ]
    table = E.results_table(runs)
    assert table["name"].tolist() == ["dropout", "fixup"]
    assert table["steps"].tolist() == [8, 8] and not table["diverged"].any()
    assert table["initializer"].tolist() == ["he_normal", "Fixup"]
    assert table["step_to_target"].isna().all()


@pytest.mark.parametrize(
    "data, word",
    [
        (DATA[:3], "tuple"),
        ((DATA[0], DATA[1][:-1], DATA[2], DATA[3]), "same length"),
        ((DATA[0], DATA[1], DATA[2][:, :3], DATA[3]), "features"),
        ((DATA[0][:10], DATA[1][:10], DATA[2], DATA[3]), "batch_size"),
        ((np.zeros((0, 8)), DATA[1][:0], DATA[2], DATA[3]), "X_train"),
        ((DATA[0], -DATA[1], DATA[2], DATA[3]), "labels"),
    ],
)
def test_train_rejects_bad_data(data, word):
    with pytest.raises(ValueError, match=word):
        E.train(E.MLPSpec(depth=1, width=4), data, E.TrainConfig(batch_size=32, max_steps=1))


def test_train_and_table_reject_wrong_types():
    with pytest.raises(ValueError, match="config"):
        E.train(E.MLPSpec(depth=1), DATA, {"learning_rate": 0.1})
    with pytest.raises(ValueError, match="spec"):
        E.train("mlp", DATA, E.TrainConfig())
    with pytest.raises(ValueError, match="seed"):
        E.train(E.MLPSpec(depth=1), DATA, E.TrainConfig(), seed=-1)
    with pytest.raises(ValueError, match="empty"):
        E.results_table([])
    with pytest.raises(ValueError, match="RunResult"):
        E.results_table([{"name": "x"}])


def test_step_operations_count_the_work_of_a_step_deterministically():
    plain = E.step_operations(E.MLPSpec(depth=3, width=8), 5, 4, n_classes=3)
    bn = E.step_operations(E.MLPSpec(depth=3, width=8, batch_norm="before"), 5, 4, n_classes=3)
    assert plain.equals(E.step_operations(E.MLPSpec(depth=3, width=8), 5, 4, n_classes=3))
    assert bn["MatMul"] == plain["MatMul"] and bn.sum() > 2 * plain.sum()
    assert bn["AssignVariableOp"] >= 2 * 3  # two moving averages per BN layer
    assert not set(bn.index) & E.FREE_OPS
    with pytest.raises(ValueError, match="batch_size"):
        E.step_operations(E.MLPSpec(depth=1), 5, 0)

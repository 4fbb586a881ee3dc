"""helpers.training.runner: run settings, target detection, runs and the results table."""

import math

from helpers.training import models
from helpers.training import runner as training

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_blobs import blobs

FAST = settings(max_examples=30, deadline=None)


DATA = blobs()


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"learning_rate": 0}, "learning_rate"),
        ({"learning_rate": float("inf")}, "learning_rate"),
        ({"sgd_momentum": 1.0}, "sgd_momentum"),
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
        training.TrainConfig(**kwargs)


@FAST
@given(
    st.lists(st.one_of(st.floats(0, 1), st.just(float("nan"))), min_size=0, max_size=30),
    st.floats(0.01, 1),
)
def test_first_step_reaching_matches_a_brute_force_scan(accs, target):
    steps = [10 * i for i in range(len(accs))]
    expected = next((s for s, a in zip(steps, accs) if not math.isnan(a) and a >= target), None)
    assert training.first_step_reaching(steps, accs, target) == expected


def test_first_step_reaching_examples_and_errors():
    assert training.first_step_reaching([0, 50, 100], [0.1, 0.8, 0.9], 0.8) == 50
    assert training.first_step_reaching([0, 50], [0.1, 0.7], 0.8) is None
    with pytest.raises(ValueError, match="same length"):
        training.first_step_reaching([0, 1], [0.5], 0.4)
    with pytest.raises(ValueError, match="increasing"):
        training.first_step_reaching([0, 0], [0.5, 0.6], 0.4)


def test_tiny_run_reaches_its_target_and_records_the_first_step():
    cfg = training.TrainConfig(
        learning_rate=0.1, batch_size=32, max_steps=60, eval_every=4, target=0.95
    )
    run = training.train(models.MLPSpec(depth=2, width=8, batch_norm="before"), DATA, cfg, seed=1)
    h = run.history
    assert h["step"].tolist() == list(range(0, 61, 4)) and h["step"].iloc[0] == 0
    assert not run.diverged and run.step_to_target is not None
    assert run.step_to_target == training.first_step_reaching(h["step"], h["val_acc"], 0.95)
    assert (h.loc[h["step"] < run.step_to_target, "val_acc"] < 0.95).all()
    assert run.steps_per_epoch == 256 // 32
    assert run.seconds_per_epoch > 0 and run.seconds_to_target > 0
    row = run.row()
    assert (
        row["step_to_target"] == run.step_to_target
        and row["epochs_to_target"] == run.step_to_target / 8
    )
    assert math.isclose(row["gap"], row["final_train_acc"] - row["final_val_acc"])


def test_dropout_runs_repeat_exactly_on_a_reused_or_a_fresh_model():
    spec = models.MLPSpec(depth=2, width=8, dropout=0.3)
    cfg = training.TrainConfig(learning_rate=0.1, batch_size=32, max_steps=30, eval_every=10)
    runner = training.Runner(DATA)
    first = runner.train(spec, cfg, seed=4)
    other = runner.train(spec, cfg, seed=5)  # shares the graph, other masks
    again = runner.train(spec, cfg, seed=4)
    fresh = training.train(spec, DATA, cfg, seed=4)
    for run in (again, fresh):
        np.testing.assert_array_equal(run.history["train_loss"], first.history["train_loss"])
    assert not np.array_equal(other.history["train_loss"][1:], first.history["train_loss"][1:])


def test_without_train_accuracy_only_the_validation_set_is_evaluated_and_runs_are_unchanged():
    spec = models.MLPSpec(depth=2, width=8, batch_norm="before")
    both = training.train(
        spec,
        DATA,
        training.TrainConfig(learning_rate=0.1, batch_size=32, max_steps=40, eval_every=8),
        seed=2,
    )
    val_only = training.train(
        spec,
        DATA,
        training.TrainConfig(
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


def test_stop_at_target_stops_and_runs_repeat_exactly_on_a_reused_or_a_fresh_model():
    spec = models.MLPSpec(depth=2, width=8, activation="tanh")
    cfg = training.TrainConfig(
        learning_rate=0.1,
        batch_size=32,
        max_steps=200,
        eval_every=5,
        target=0.95,
        stop_at_target=True,
    )
    runner = training.Runner(DATA)
    first = runner.train(spec, cfg, seed=4)
    runner.train(
        models.MLPSpec(depth=2, width=8, activation="tanh", initializer=0.5), cfg, seed=9
    )  # shares the graph
    again = runner.train(spec, cfg, seed=4)
    fresh = training.train(spec, DATA, cfg, seed=4)
    assert first.history["step"].iloc[-1] == first.step_to_target < 200
    for other in (again, fresh):
        assert first.history.drop(columns="seconds").equals(other.history.drop(columns="seconds"))


def test_divergence_is_recorded_not_raised():
    cfg = training.TrainConfig(learning_rate=1e12, batch_size=32, max_steps=100, eval_every=5)
    run = training.train(models.MLPSpec(depth=4, width=16), DATA, cfg, seed=0)
    assert run.diverged and run.diverged_at <= 20
    assert run.history["step"].iloc[-1] == run.diverged_at  # stopped early
    row = training.results_table([run]).iloc[0]
    assert bool(row["diverged"]) and math.isnan(row["final_val_acc"]) and math.isnan(row["gap"])


def test_dropout_and_residual_runs_and_the_results_table():
    cfg = training.TrainConfig(learning_rate=0.05, batch_size=32, max_steps=8, eval_every=4)
    runs = [
        training.train(
            models.MLPSpec(depth=2, width=8, dropout=0.3), DATA, cfg, seed=0, name="dropout"
        ),
        training.train(
            models.MLPSpec(depth=2, width=8, residual=True, fixup=True),
            DATA,
            cfg,
            seed=0,
            name="fixup",
        ),
    ]
    table = training.results_table(runs)
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
        training.train(
            models.MLPSpec(depth=1, width=4),
            data,
            training.TrainConfig(batch_size=32, max_steps=1),
        )


def test_train_and_table_reject_wrong_types():
    with pytest.raises(ValueError, match="config"):
        training.train(models.MLPSpec(depth=1), DATA, {"learning_rate": 0.1})
    with pytest.raises(ValueError, match="spec"):
        training.train("mlp", DATA, training.TrainConfig())
    with pytest.raises(ValueError, match="seed"):
        training.train(models.MLPSpec(depth=1), DATA, training.TrainConfig(), seed=-1)
    with pytest.raises(ValueError, match="empty"):
        training.results_table([])
    with pytest.raises(ValueError, match="RunResult"):
        training.results_table([{"name": "x"}])


def test_step_operations_count_the_work_of_a_step_deterministically():
    plain = training.step_operations(models.MLPSpec(depth=3, width=8), 5, 4, n_classes=3)
    bn = training.step_operations(
        models.MLPSpec(depth=3, width=8, batch_norm="before"), 5, 4, n_classes=3
    )
    assert plain.equals(
        training.step_operations(models.MLPSpec(depth=3, width=8), 5, 4, n_classes=3)
    )
    assert bn["MatMul"] == plain["MatMul"] and bn.sum() > 2 * plain.sum()
    assert bn["AssignVariableOp"] >= 2 * 3  # two moving averages per BN layer
    assert not set(bn.index) & training.FREE_OPS
    with pytest.raises(ValueError, match="batch_size"):
        training.step_operations(models.MLPSpec(depth=1), 5, 0)


def test_a_runner_reuses_its_compiled_model_only_for_the_same_architecture_and_batch():
    runner = training.Runner(DATA)
    cfg = training.TrainConfig(learning_rate=0.1, batch_size=32, max_steps=4, eval_every=4)
    runner.train(models.MLPSpec(depth=2, width=8), cfg, seed=0)
    compiled = runner._compiled
    runner.train(models.MLPSpec(depth=2, width=8, initializer=0.1), cfg, seed=1)
    assert runner._compiled is compiled  # another initialization: same graph
    wider = models.MLPSpec(depth=2, width=9)
    runner.train(wider, cfg, seed=0)
    assert runner._compiled is not compiled
    compiled = runner._compiled
    runner.train(wider, training.TrainConfig(batch_size=16, max_steps=4, eval_every=4), seed=0)
    assert runner._compiled is not compiled

"""helpers.clipping.experiment: settings, training over settings and seeds, and the tables
read back from the event files."""

from helpers.clipping import experiment
from helpers.clipping.tensorboard import read_scalars

import keras
import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.usefixtures("seeded_module")


def test_settings_names_every_kind_at_every_threshold_in_order():
    assert experiment.settings([0.5], [1.0, 2.0]) == {
        "no clipping": {},
        "clipvalue=0.5": {"clipvalue": 0.5},
        "clipnorm=1.0": {"clipnorm": 1.0},
        "clipnorm=2.0": {"clipnorm": 2.0},
        "global_clipnorm=1.0": {"global_clipnorm": 1.0},
        "global_clipnorm=2.0": {"global_clipnorm": 2.0},
    }


def test_irnn_is_a_relu_rnn_with_identity_recurrent_weights():
    model = experiment.irnn(4, steps=3, features=2, n_classes=3)
    rnn = model.layers[0]
    assert isinstance(rnn, keras.layers.SimpleRNN) and rnn.activation.__name__ == "relu"
    np.testing.assert_array_equal(rnn.cell.recurrent_kernel.numpy(), np.eye(4))
    assert model.output_shape == (None, 3)


def _tiny():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(32, 3, 2)) * 20).astype(np.float32)
    return x, rng.integers(0, 3, 32)


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    train = _tiny()
    configs = experiment.settings([0.01], [0.01])
    runs = experiment.train_settings(
        lambda: experiment.irnn(4, steps=3, features=2, n_classes=3),
        configs,
        [1, 2],
        root,
        0.1,
        train,
        train,
        epochs=2,
        batch_size=16,
    )
    scalars = {k: read_scalars(experiment.run_dir(root, *k)) for k in runs}
    return configs, runs, scalars


def test_train_settings_logs_one_folder_per_run_that_matches_its_history(tiny_runs):
    configs, runs, scalars = tiny_runs
    assert set(runs) == {(n, s) for n in configs for s in (1, 2)}
    histories = {k: h for k, (h, _) in runs.items()}
    assert all(experiment.matches_history(scalars[k], histories[k], 4) for k in runs)
    key = ("no clipping", 1)
    assert not experiment.matches_history(scalars[key], histories[key], 5)
    wrong = {**histories[key], "val_loss": [h + 1 for h in histories[key]["val_loss"]]}
    assert not experiment.matches_history(scalars[key], wrong, 4)


def test_results_and_angle_tables(tiny_runs):
    configs, runs, scalars = tiny_runs
    histories = {k: h for k, (h, _) in runs.items()}
    results = experiment.results_table(scalars, histories, 0.1)
    assert list(results.index.names) == ["setting", "seed"] and len(results) == len(runs)
    # thresholds of 0.01 clip every step; without clipping none is
    assert (results["steps clipped (%)"].drop("no clipping", level="setting") == 100).all()
    assert (results.loc["no clipping", "steps clipped (%)"] == 0).all()
    figures, best, at_chance = experiment.setting_figures(results)
    assert list(figures.index) == list(configs) and best.startswith("seed 1: ")
    assert isinstance(at_chance, str)
    norms = {k: float(np.sqrt(sum((w**2).sum() for w in ws))) for k, (_, ws) in runs.items()}
    angles, table = experiment.angle_table(scalars, norms, 0.1)
    assert len(angles[("no clipping", 1)]) == 0 and len(angles[("clipvalue=0.01", 1)]) == 4
    assert "no clipping" not in table.index.unique("setting")
    # global clipping only rescales: every clipped step is within the rounding bound
    assert (table.loc["global_clipnorm=0.01", "within rounding (%)"] == 100).all()
    held = experiment.each_setting(table, "global_clipnorm", lambda r: r["clipped steps"] == 4)
    assert held == {1: True, 2: True}


def test_each_setting_needs_every_threshold():
    table = pd.DataFrame(
        {"x": [1, 5, 5, 5]},
        index=pd.MultiIndex.from_tuples(
            [("clipnorm=1", 1), ("clipnorm=2", 1), ("clipnorm=1", 2), ("clipnorm=2", 2)],
            names=["setting", "seed"],
        ),
    )
    assert experiment.each_setting(table, "clipnorm", lambda r: r["x"] > 2) == {
        1: False,
        2: True,
    }
    with pytest.raises(ValueError, match="no setting of kind 'clipvalue'"):
        experiment.each_setting(table, "clipvalue", bool)
    with pytest.raises(ValueError, match="kind must be"):
        experiment.each_setting(table, "clip", bool)


@pytest.mark.parametrize(
    ("call", "word"),
    [
        (lambda: experiment.settings([0.0], [1.0]), "value_limits"),
        (lambda: experiment.settings([1.0], "1"), "norm_limits"),
        (lambda: experiment.irnn(0), "units"),
        (lambda: experiment.run_dir("", "x", 1), "root"),
        (lambda: experiment.run_dir("r", "x", -1), "seed"),
        (lambda: experiment.train_settings(list, {}, [1], "r", 0.1, (1, 2), (1, 2)), "configs"),
        (lambda: experiment.train_settings(list, {"a": {}}, [1], "r", 0.1, (1,), (1, 2)), "train"),
        (
            lambda: experiment.train_settings(list, {"a": {}}, [1], "r", 0, (1, 2), (1, 2)),
            "learning",
        ),
        (lambda: experiment.matches_history({}, {}, 0), "n_steps"),
        (lambda: experiment.results_table({1: {}}, {}, 0.1), "same"),
        (lambda: experiment.setting_figures(None, chance=1.5), "chance"),
    ],
)
def test_experiment_errors(call, word):
    with pytest.raises(ValueError, match=word):
        call()

"""helpers.training.small_batches: argument checks, group counts, normalizations, mode gaps and
the small-batch runner."""

from helpers.training import small_batches, transfer

import keras
import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.usefixtures("seeded")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 4, 4)).astype(np.float32) + 1.0
Y = np.arange(64) % 4


@pytest.mark.parametrize(
    "units, groups, message",
    [
        (64, 5, "groups must divide the 64 units"),
        (64, 64, "groups must be below units"),
        (64, 0, "groups must be an integer >= 1"),
        (0, 1, "units must be an integer >= 1"),
        (64, 2.0, "groups must be an integer"),
    ],
)
def test_check_groups_rejects(units, groups, message):
    with pytest.raises(ValueError, match=message):
        small_batches.check_groups(units, groups)


def test_check_groups_accepts_divisors_and_one_unit():
    assert small_batches.check_groups(64, 8) == 8
    assert small_batches.check_groups(1, 1) == 1


def test_group_norm_with_one_feature_per_group_outputs_beta():
    """Why check_groups refuses groups == units: each group's value minus its own mean is 0."""
    layer = keras.layers.GroupNormalization(groups=8)
    out = layer(RNG.normal(size=(5, 8)).astype(np.float32)).numpy()
    np.testing.assert_array_equal(out, np.zeros_like(out))  # beta starts at 0


def test_normalization_kinds_and_errors():
    assert isinstance(small_batches.normalization("batch", 8), keras.layers.BatchNormalization)
    assert isinstance(small_batches.normalization("layer", 8), keras.layers.LayerNormalization)
    assert small_batches.normalization("group", 8, groups=2).groups == 2
    with pytest.raises(ValueError, match="kind must be one of batch, group, layer"):
        small_batches.normalization("instance", 8)
    with pytest.raises(ValueError, match="groups must be given"):
        small_batches.normalization("group", 8)
    with pytest.raises(ValueError, match=r"momentum must be a number in \[0, 1\)"):
        small_batches.normalization("batch", 8, momentum=1.0)


def test_build_normalized_mlp_checks_every_width():
    model = small_batches.build_normalized_mlp("group", 16, hidden=[16, 8], groups=4, n_classes=3)
    assert model.output_shape == (None, 3)
    with pytest.raises(ValueError, match="groups must divide the 6 units"):
        small_batches.build_normalized_mlp("group", 16, hidden=[8, 6], groups=4)
    with pytest.raises(ValueError, match="hidden must be a non-empty list"):
        small_batches.build_normalized_mlp("batch", 16, hidden=[])


def test_mode_gap_is_zero_without_bn_and_restores_moving_stats():
    ln = small_batches.build_normalized_mlp("layer", 16, hidden=[8], n_classes=4)
    assert small_batches.mode_gap(ln, X, Y, 4)["gap"] == 0.0
    bn = small_batches.build_normalized_mlp("batch", 16, hidden=[8], n_classes=4)
    before = transfer.moving_stats(bn)
    gap = small_batches.mode_gap(bn, X, Y, 2)
    assert gap["gap"] > 0
    assert transfer.stats_drift(before, transfer.moving_stats(bn)) == 0.0
    with pytest.raises(ValueError, match="batch_size must be at most the number of examples"):
        small_batches.mode_gap(bn, X, Y, 65)
    with pytest.raises(ValueError, match="model must be a Keras model"):
        small_batches.mode_gap("model", X, Y, 2)


def test_mode_gap_compiled_loop_agrees_with_eager_on_a_nested_flatten():
    # More than 64 batches take the compiled loop; the transfer model nests a base that
    # starts with Flatten, which Keras 3.10 could not trace with an unknown feature size.
    rng = np.random.default_rng(0)
    Xn, yn = rng.random((130, 784)).astype("float32"), rng.integers(0, 2, 130)
    model = transfer.transfer_model(transfer.build_base((784,), hidden=[8]), 2)
    compiled = small_batches.mode_gap(model, Xn, yn, 2)  # 65 batches
    eager = small_batches.mode_gap(model, Xn[:128], yn[:128], 2)  # 64 batches
    # Both passes see the first 64 batches in the same order, so the sums of the gaps differ
    # by the last batch's two examples alone, each a total-variation distance in [0, 1].
    last_two = compiled["gap"] * 130 - eager["gap"] * 128
    assert compiled["gap"] > 0 and -1e-4 <= last_two <= 2 + 1e-4


def test_small_batch_runner_same_seed_same_result():
    runner = small_batches.SmallBatchRunner((X, Y, X[:16], Y[:16]), hidden=[8], groups=2, n_gap=16)
    first = runner.run("batch", 4, 1, seed=3)
    assert runner.run("batch", 4, 1, seed=3) == first
    assert first["steps"] == 16 and 0.0 <= first["gap"] <= 1.0
    assert runner.run("group", 4, 1, seed=3)["gap"] == 0.0
    with pytest.raises(ValueError, match="batch_size must be at most"):
        runner.run("batch", 17, 1, seed=3)
    with pytest.raises(ValueError, match="groups must divide the 8 units"):
        small_batches.SmallBatchRunner((X, Y, X, Y), hidden=[8], groups=3)
    with pytest.raises(ValueError, match="data must be a tuple"):
        small_batches.SmallBatchRunner((X, Y))


def test_run_grid_and_compare_small_batches():
    data = (X, Y, X[:16], Y[:16])
    kw = dict(epochs=1, hidden=[8], groups=2, n_gap=16)
    runs = small_batches.run_grid(data, small_batches.NORMS, [2, 4], [3], momentum=0.9, **kw)
    assert len(runs) == 6 and list(runs["kind"]) == ["batch"] * 2 + ["group"] * 2 + ["layer"] * 2
    assert (runs["momentum"] == 0.9).all()
    runner = small_batches.SmallBatchRunner(data, hidden=[8], groups=2, n_gap=16, momentum=0.9)
    assert runs.iloc[0].drop("momentum").to_dict() == runner.run("batch", 2, 1, 3)
    more = small_batches.run_grid(data, ["batch"], [2], [3], momentum=0.5, **kw)
    bn_runs = pd.concat([runs[runs["kind"] == "batch"], more])
    minus_best, gap, best_momentum, train_mode = small_batches.compare_small_batches(runs, bn_runs)
    acc = runs.set_index(["kind", "batch_size"])["val_acc"]
    best = max(acc["group", 4], acc["layer", 4])
    assert minus_best.loc[3, 4] == pytest.approx(acc["batch", 4] - best)
    assert gap.loc[3, 2] == runs.set_index(["kind", "batch_size"]).loc[("batch", 2), "gap"]
    at_2 = bn_runs[bn_runs["batch_size"] == 2]["val_acc"].max()
    assert best_momentum[3] == pytest.approx(at_2 - max(acc["group", 2], acc["layer", 2]))
    assert list(train_mode.index) == [3]
    with pytest.raises(ValueError, match="three normalizations"):
        small_batches.compare_small_batches(runs[runs["kind"] != "layer"], bn_runs)
    with pytest.raises(ValueError, match="seeds must be a non-empty"):
        small_batches.run_grid(data, ["batch"], [2], [], 1)


def test_draw_small_batches_one_line_per_kind_and_seed():
    import matplotlib.pyplot as plt

    runs = pd.DataFrame(
        [
            {"kind": k, "seed": s, "batch_size": b, "val_acc": 0.5, "gap": 0.1}
            for s in (1, 2)
            for k in small_batches.NORMS
            for b in (2, 8)
        ]
    )
    fig, axes = plt.subplots(1, 2)
    small_batches.draw_small_batches(axes, runs, [2, 8])
    assert len(axes[0].lines) == len(axes[1].lines) == 6
    assert axes[0].get_legend_handles_labels()[1] == list(small_batches.NORMS)
    with pytest.raises(ValueError, match="axes must be 2"):
        small_batches.draw_small_batches(axes[:1], runs, [2, 8])
    plt.close(fig)

"""helpers.training.evidence (chapter 07's experiments) and helpers.training.evidence_figures."""

from helpers.chapter.verdicts import HELD, NOT_HELD, PARTLY, verdict_frame
from helpers.training import evidence, evidence_figures
from helpers.training.models import MLPSpec
from helpers.training.runner import Runner, TrainConfig, results_table

import numpy as np
import pandas as pd
import pytest
from tiny_blobs import blobs

SPEC = MLPSpec(depth=2, width=8)
CONFIG = TrainConfig(batch_size=32, max_steps=16, eval_every=4, target=0.9)


@pytest.fixture(scope="module")
def speed_runs():
    runner = Runner(blobs())
    specs = {"no BN": SPEC, "BN": MLPSpec(depth=2, width=8, batch_norm="before")}
    return evidence.sweep(runner, specs, CONFIG, seeds=[0, 1], learning_rates=[0.05, 0.5])


def test_sweep_runs_every_network_rate_and_seed_in_order(speed_runs):
    keys = [(r.name, r.config.learning_rate, r.seed) for r in speed_runs]
    assert keys == [(n, lr, s) for n in ("no BN", "BN") for lr in (0.05, 0.5) for s in (0, 1)]
    runner = Runner(blobs())
    unnamed = evidence.sweep(runner, [SPEC], CONFIG, seeds=[3])
    assert unnamed[0].config.learning_rate == CONFIG.learning_rate and unnamed[0].seed == 3
    with pytest.raises(ValueError, match="runner"):
        evidence.sweep(None, [SPEC], CONFIG, [0])
    with pytest.raises(ValueError, match="config"):
        evidence.sweep(runner, [SPEC], {}, [0])
    with pytest.raises(ValueError, match="specs"):
        evidence.sweep(runner, [], CONFIG, [0])
    with pytest.raises(ValueError, match="seeds"):
        evidence.sweep(runner, [SPEC], CONFIG, [])


def test_accuracy_table_counts_a_diverged_run_as_chance(speed_runs):
    table = evidence.accuracy_table(speed_runs, chance=0.25)
    assert (table.accuracy == table.final_val_acc.fillna(0.25)).all()
    with pytest.raises(ValueError, match="chance"):
        evidence.accuracy_table(speed_runs, chance=2)


def test_speed_figures_pick_the_fewest_steps_per_network(speed_runs):
    table = results_table(speed_runs)
    per_seed = evidence.per_seed(table, evidence.speed_figures)
    assert list(per_seed.index) == [0, 1]
    for s, row in per_seed.iterrows():
        reached = table[(table.seed == s) & table.step_to_target.notna()]
        for name in ("no BN", "BN"):
            steps = reached[reached.name == name].step_to_target
            assert row[f"steps, {name}"] == (steps.min() if len(steps) else np.nan) or (
                np.isnan(row[f"steps, {name}"]) and steps.empty
            )
    with pytest.raises(ValueError, match="one seed"):
        evidence.speed_figures(table)


def test_clock_step_slowdown_and_the_stored_bench(speed_runs):
    table = results_table(speed_runs)
    clock = evidence.clock_table(table)
    assert list(clock.columns[:2]) == ["epochs to target, no BN", "epochs to target, BN"]
    assert evidence.step_slowdown(speed_runs) > 0
    with pytest.raises(ValueError, match="named"):
        evidence.step_slowdown(speed_runs, slow="dropout")
    per_seed = evidence.per_seed(table, evidence.speed_figures)
    wall = {
        "seeds": {
            str(s): {
                key: {
                    "steps": row[f"steps, {name}"],
                    "learning_rate": row[f"best η, {name}"],
                }
                for key, name in (("no_bn", "no BN"), ("bn", "BN"))
            }
            for s, row in per_seed.iterrows()
        }
    }
    assert evidence.bench_timed(wall, per_seed) == per_seed.notna().all().all()
    wall["seeds"].pop("1")
    assert not evidence.bench_timed(wall, per_seed)
    wall = {"seeds": {"7": {"no_bn": {"steps": 300}, "bn": {"steps": 100}}}}
    assert evidence.stored_steps_ratio(wall) == {7: 3.0}


def test_verdict_frame_takes_dicts_series_and_a_title():
    table = verdict_frame(
        {
            "a": {1: True, 2: True},
            "b": pd.Series([True, False], index=[1, 2]),
            "c": pd.Series([False, False], index=[1, 2]),
        },
        "finding (2 seeds)",
    )
    assert table.verdict.to_dict() == {"a": HELD, "b": PARTLY, "c": NOT_HELD}
    assert table.index.name == "finding (2 seeds)"
    with pytest.raises(ValueError, match="findings"):
        verdict_frame({}, "x")


def grid_table():
    """A made-up grid: BN trains everything but the small sigmoid; the plain net only tanh."""
    rows = []
    for act in ("sigmoid", "tanh"):
        for init in ("0.01", "he_normal"):
            for lr in (0.1, 1.0):
                for bn in ("none", "before"):
                    trains = act == "tanh" if bn == "none" else (act, init) != ("sigmoid", "0.01")
                    rows.append((act, init, lr, bn, 0, 0.8 if trains else 0.1))
    columns = ["activation", "initializer", "learning_rate", "batch_norm", "seed", "accuracy"]
    return pd.DataFrame(rows, columns=columns)


def test_grid_findings_gains_and_verdicts():
    found = evidence.grid_findings(grid_table(), top=1.0, trains=0.5)
    assert found["mean accuracy, sigmoid"] == pytest.approx((0.45, 0.1))
    assert found["mean accuracy, tanh"] == pytest.approx((0.8, 0.8))
    assert found["mean accuracy, worse initialization"] == pytest.approx((0.45, 0.45))
    assert found["settings that train (≥ 0.5), rescued vs broken"] == (2, 0)
    by_seed = {0: found}
    gain = evidence.grid_gain(by_seed, "mean accuracy, sigmoid")
    assert gain[0] == pytest.approx(0.35)
    verdicts = evidence.grid_verdicts(by_seed, margin=0.1)
    assert verdicts["mean accuracy, sigmoid"] == HELD
    assert verdicts["mean accuracy, tanh"] == NOT_HELD
    assert verdicts["settings that train (≥ 0.5), rescued vs broken"] == HELD
    panel = evidence.accuracy_panel(grid_table(), "before")
    assert panel.shape == (4, 2) and panel.loc[("sigmoid", "0.01"), 1.0] == 0.1
    with pytest.raises(ValueError, match="bn"):
        evidence.accuracy_panel(grid_table(), "after")
    with pytest.raises(ValueError, match="grid_by_seed"):
        evidence.grid_verdicts({}, 0.1)


def test_pre_bn_spread_shrinks_with_small_weights_and_spread_table():
    images = np.random.default_rng(0).normal(size=(64, 10)).astype(np.float32)
    small = MLPSpec(depth=4, width=16, activation="sigmoid", initializer=0.01, batch_norm="before")
    spread = evidence.pre_bn_spread(small, images, seed=0)
    he = evidence.pre_bn_spread(
        MLPSpec(depth=4, width=16, activation="sigmoid", batch_norm="before"), images, seed=0
    )
    assert spread.shape == (4,) and (spread[1:] < he[1:]).all()
    table = evidence.spread_table({"small": spread, "He": he}, root_eps=0.03)
    assert table.loc["He", "hidden layers with spread < √ε"].endswith("of 4")
    with pytest.raises(ValueError, match="batch_norm"):
        evidence.pre_bn_spread(SPEC, images)
    with pytest.raises(ValueError, match="images"):
        evidence.pre_bn_spread(small, images[:0])


def test_gaps_at_equal_progress_read_each_run_at_a_common_level():
    runner = Runner(blobs())
    config = TrainConfig(learning_rate=0.1, batch_size=32, max_steps=16, eval_every=4)
    specs = {"plain": SPEC, "BN": MLPSpec(depth=2, width=8, batch_norm="before")}
    runs = evidence.sweep(runner, specs, config, seeds=[0])
    gaps = evidence.gaps_at_equal_progress(runs)
    assert list(gaps.index) == [("plain", 0), ("BN", 0)]
    level = gaps.level.iloc[0]
    assert level <= min(r.history.train_acc.iloc[-1] for r in runs)
    assert gaps.gap_at_equal_train_acc.abs().max() <= 1


def test_the_figures_draw_one_figure_each(speed_runs):
    import matplotlib

    matplotlib.use("Agg")
    from helpers.chapter.figures import SMALLEST_PT

    import matplotlib.pyplot as plt

    table = results_table(speed_runs)
    fig = evidence_figures.speed_runs(plt.figure(), speed_runs, table, 0, target=0.9, depth=2)
    assert len(fig.axes) == 3
    panels = {"no BN": evidence.accuracy_panel(grid_table(), "none")}
    fig = evidence_figures.heatmaps(plt.figure(), panels, "grid", n_seeds=1)
    assert fig.axes[0].get_title() == "no BN"
    assert min(t.get_fontsize() for t in fig.axes[0].texts) >= SMALLEST_PT
    fig = evidence_figures.accuracy_gap(plt.figure(), speed_runs, seed=0)
    assert len(fig.axes) == 2
    fig = evidence_figures.residual_runs(plt.figure(), speed_runs, seed=0, title="runs")
    assert fig.axes[0].get_title() == "runs"
    with pytest.raises(ValueError, match="fig"):
        evidence_figures.residual_runs(fig, speed_runs, seed=0, title="again")
    with pytest.raises(ValueError, match="runs"):
        evidence_figures.residual_runs(plt.figure(), [], seed=0, title="none")
    with pytest.raises(ValueError, match="panels"):
        evidence_figures.heatmaps(plt.figure(), {}, "grid", 1)
    plt.close("all")

"""The figures of chapter 07: the runs behind each experiment of `helpers.training.evidence`.

Each function draws into a matplotlib Figure that the chapter makes, at a size no wider than the
book's column (``plt.figure(figsize=...)``, see `helpers.chapter.figures`), and returns it; the
chapter shows it with ``plt.show()``. No text is set below `figures.SMALLEST_PT` points.
"""

from helpers.training.runner import RunResult

import numpy as np


def _figure(fig):
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure) or fig.axes:
        raise ValueError("fig must be an empty matplotlib Figure, e.g. plt.figure(figsize=(7, 4))")
    return fig


def _runs(runs):
    runs = list(runs)
    if not runs or not all(isinstance(r, RunResult) for r in runs):
        raise ValueError("runs must be a non-empty list of RunResult (from Runner.train)")
    return runs


def speed_runs(fig, runs, table, seed, target, depth):
    """The runs behind the ratio of steps: accuracy curves of one seed, steps of every seed.

    Args:
        fig: the empty Figure to draw in.
        runs: the speed experiment's `RunResult` objects, named ``"no BN"`` and ``"BN"``.
        table: their `results_table`.
        seed: the seed whose curves are drawn.
        target: the target validation accuracy (a dashed line).
        depth: the number of hidden layers, for the titles.

    Returns:
        The matplotlib Figure: two panels of curves on top, the steps to the target below.
    """
    runs = _runs(runs)
    panels = _figure(fig).subplot_mosaic([["no BN", "BN"], ["steps", "steps"]])
    for name in ("no BN", "BN"):
        ax = panels[name]
        for run in (r for r in runs if r.name == name and r.seed == seed):
            diverged = " (diverged)" if run.diverged else ""
            label = f"η = {run.config.learning_rate:g}{diverged}"
            ax.plot(run.history["step"], run.history["val_acc"], marker=".", label=label)
        ax.axhline(target, color="k", ls="--", lw=1, label=f"target {target}")
        ax.set(
            title=f"{depth} ELU layers, {name}, seed {seed}",
            xlabel="training step",
            ylabel="validation accuracy (fraction)",
            ylim=(0, 1),
        )
        ax.legend()
    seeds = list(dict.fromkeys(table.seed))
    for name, color in [("no BN", "tab:gray"), ("BN", "tab:blue")]:
        for i, s in enumerate(seeds):
            sub = table[(table.name == name) & (table.seed == s)]
            panels["steps"].plot(
                sub.learning_rate,
                sub.step_to_target.astype(float),
                marker="o",
                color=color,
                alpha=0.8,
                label=name if i == 0 else None,
            )
    panels["steps"].set(
        xscale="log",
        title=f"Steps to reach {target}, {len(seeds)} seeds",
        xlabel="learning rate η",
        ylabel="training steps (mini-batches)",
    )
    panels["steps"].legend()
    fig.tight_layout()
    return fig


def heatmaps(fig, panels, title, n_seeds):
    """Heat-maps of mean final accuracy, one per panel, each square labelled with its value.

    Args:
        fig: the empty Figure to draw in (made with ``layout="constrained"`` for the colour
            bar to fit).
        panels: ``{title: evidence.accuracy_panel(...)}``, the panels sharing their rows.
        title: the figure's title.
        n_seeds: the number of seeds averaged, for the colour bar's label.

    Returns:
        The matplotlib Figure.
    """
    if not panels:
        raise ValueError("panels must hold at least one accuracy panel")
    axes = _figure(fig).subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, (name, panel) in zip(axes, panels.items()):
        values = panel.to_numpy(dtype=float)
        im = ax.imshow(values, cmap="viridis", vmin=0.1, vmax=0.9, aspect="auto")
        for (i, j), v in np.ndenumerate(values):
            color = "w" if v < 0.6 else "k"
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", color=color, fontsize=8)
        ax.set(
            title=name,
            xlabel="learning rate η",
            xticks=range(panel.shape[1]),
            xticklabels=[f"{c:g}" for c in panel.columns],
        )
    rows = next(iter(panels.values())).index
    axes[0].set(yticks=range(len(rows)), yticklabels=[f"{a}, {i}" for a, i in rows])
    fig.colorbar(im, ax=axes, label=f"final validation accuracy, mean of {n_seeds} seeds")
    fig.suptitle(title)
    return fig


def accuracy_gap(fig, runs, seed):
    """Training and validation accuracy of one seed, and the gap between them for every seed.

    Args:
        fig: the empty Figure to draw in.
        runs: the regularization experiment's `RunResult` objects (trained with
            ``train_accuracy=True``), up to four names.
        seed: the seed whose accuracies are drawn on the left.

    Returns:
        The matplotlib Figure.
    """
    runs = _runs(runs)
    names = list(dict.fromkeys(r.name for r in runs))
    colors = dict(zip(names, ["tab:gray", "tab:blue", "tab:orange", "tab:green"]))
    n_seeds = len({r.seed for r in runs})
    axes = _figure(fig).subplots(1, 2)
    for run in runs:
        h, color, first = run.history, colors.get(run.name), run.seed == seed
        if first:
            axes[0].plot(h["epoch"], h["train_acc"], color=color, label=f"{run.name}, train")
            axes[0].plot(
                h["epoch"], h["val_acc"], ls="--", color=color, label=f"{run.name}, valid"
            )
        gap = h["train_acc"] - h["val_acc"]
        label = run.name if first else None
        axes[1].plot(h["epoch"], gap, color=color, alpha=0.7, label=label)
    axes[0].set(
        title=f"accuracy, seed {seed} (solid: training, dashed: validation)",
        xlabel="epoch",
        ylabel="accuracy (fraction)",
        ylim=(0.6, 1.0),
    )
    axes[1].set(
        title=f"gap, eq. (gap), {n_seeds} seeds",
        xlabel="epoch",
        ylabel="train − validation accuracy",
    )
    axes[1].axhline(0, color="k", lw=0.8)
    axes[0].legend(ncol=2, loc="lower right")  # below the curves
    axes[1].legend()
    fig.tight_layout()
    return fig


def residual_runs(fig, runs, seed, title):
    """Validation accuracy against the step of every run, one colour per network.

    Args:
        fig: the empty Figure to draw in.
        runs: the residual networks' `RunResult` objects, up to three names.
        seed: the seed whose lines carry the legend.
        title: the figure's title.

    Returns:
        The matplotlib Figure.
    """
    runs = _runs(runs)
    names = list(dict.fromkeys(r.name for r in runs))
    colors = dict(zip(names, ["tab:gray", "tab:green", "tab:blue"]))
    ax = _figure(fig).subplots()
    for run in runs:
        h = run.history
        label = run.name if run.seed == seed else None
        ax.plot(
            h["step"], h["val_acc"], marker=".", color=colors[run.name], alpha=0.7, label=label
        )
    ax.set(title=title, xlabel="training step", ylabel="validation accuracy (fraction)")
    ax.legend()
    return fig

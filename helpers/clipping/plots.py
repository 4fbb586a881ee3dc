"""The figures of chapter 08, drawn on axes the chapter creates.

`draw_book_arrows` draws the book's gradient and its clipped versions, `draw_curves` the loss
and gradient norm of training runs read from TensorBoard, `draw_angles` the angles of the
clipped steps. Each draws on the axes it is given and sets their labels; the chapter makes
the figure (at most `helpers.chapter.figures.WIDTH` inches wide) and shows it. Text sizes come
from the book's style (`helpers.chapter.figures.RC`), never below its smallest.
"""

import numpy as np


def _axes(axes, n, name="axes"):
    axes = list(np.ravel(axes))
    if len(axes) != n or not all(hasattr(ax, "plot") for ax in axes):
        raise ValueError(f"{name} must be {n} matplotlib axes, got {len(axes)} object(s)")
    return axes


def draw_book_arrows(axes, raw, clipped, angles):
    """The raw gradient and its clipped versions as arrows, in full and zoomed on norm 1,
    under a title that says what the book's example shows.

    Args:
        axes: two matplotlib axes (full scale, zoomed).
        raw: the raw 2-D gradient.
        clipped: ``{label: clipped 2-D vector}``, such as ``{"clipvalue=1.0": ...}``.
        angles: ``{label: angle to the raw gradient, in degrees}``, the same labels.

    Raises:
        ValueError: not two axes, a vector is not 2-D, or the labels differ.
    """
    ax_full, ax_zoom = _axes(axes, 2)
    raw = np.asarray(raw, dtype=np.float64)
    if raw.shape != (2,) or any(np.shape(v) != (2,) for v in clipped.values()):
        raise ValueError("raw and every clipped vector must have two components")
    if set(angles) != set(clipped):
        raise ValueError(f"angles must have the labels of clipped, {sorted(clipped)}")
    raw_label = "raw gradient [" + ", ".join(f"{v:g}" for v in raw) + "]"
    arrows = [(raw_label, raw, "tab:gray")]
    arrows += [
        (k, np.asarray(v), c) for (k, v), c in zip(clipped.items(), ("tab:red", "tab:blue"))
    ]
    for ax, scale in [(ax_full, 1.0), (ax_zoom, 1 / np.linalg.norm(raw))]:
        for i, (label, vec, color) in enumerate(arrows):
            v = vec * (scale if i == 0 else 1.0)
            lw = 6 if i == 0 and ax is ax_zoom else 2  # wide: shows under clipnorm's
            props = dict(arrowstyle="-|>", color=color, lw=lw, alpha=0.8)
            ax.annotate("", xy=v, xytext=(0, 0), arrowprops=props)
            ax.plot([], [], color=color, lw=lw, label=label if ax is ax_zoom else None)
        ax.set_aspect("equal")
        ax.set_xlabel("gradient component 1 (loss units per weight unit)")
        ax.set_ylabel("gradient component 2")
    top = 1.02 * raw[1]
    ax_full.set(xlim=(-0.35 * top, 0.35 * top), ylim=(-0.02 * top, top), title="At full scale")
    t = np.linspace(0, np.pi / 2, 100)
    ax_zoom.plot(np.cos(t), np.sin(t), ":", color="k", lw=1, label="norm 1")
    shown = ", ".join(
        f"{k.split('=')[0].replace('clip', 'by ')} {a:.1f}°" for k, a in angles.items()
    )
    ax_zoom.set(
        xlim=(-0.05, 1.2),
        ylim=(-0.05, 1.15),
        title=f"Zoomed in (raw gradient drawn at length 1)\nangle to raw: {shown}",
    )
    ax_zoom.legend(loc="lower right")
    ax_full.figure.suptitle(
        "The book's example (p. 345): clipping by value turns the gradient, clipping by "
        "norm shortens it"
    )


def draw_curves(axes, scalars, names, seed, batch_size, threshold):
    """Batch loss and raw gradient norm against the training step, for a few runs of one seed.

    The first run (the unclipped one) is drawn with markers, and a dotted line marks its
    first non-finite loss, if any; a dashed line marks `threshold` on the norm panel.

    Args:
        axes: two matplotlib axes (loss, gradient norm).
        scalars: ``{(setting, seed): read_scalars(...)}``.
        names: the settings to draw, the unclipped one first; one to three.
        seed: the seed of the runs to draw.
        batch_size: images per step, for the axis label.
        threshold: the norm threshold to mark.

    Raises:
        ValueError: not two axes, `names` does not hold one to three settings, or a run of
            them is missing.
    """
    ax_loss, ax_norm = _axes(axes, 2)
    names = list(names)
    if not names or len(names) > 3:
        raise ValueError(f"names must hold one to three settings, got {names!r}")
    missing = [n for n in names if (n, seed) not in scalars]
    if missing:
        raise ValueError(f"scalars holds no run of {missing} at seed {seed}")
    runs = {n: scalars[n, seed] for n in names}
    colors = dict(zip(names, ("tab:gray", "tab:red", "tab:blue")))
    for name in names:
        for ax, tag in [(ax_loss, "batch/batch_loss"), (ax_norm, "batch/grad_norm")]:
            marker = "o" if name == names[0] else None
            ax.plot(*runs[name][tag], label=name, color=colors[name], lw=1, marker=marker, ms=4)
    bad = np.flatnonzero(~np.isfinite(runs[names[0]]["batch/batch_loss"][1]))
    for ax in (ax_loss, ax_norm):
        ax.set_yscale("log")
        ax.set_xlabel(f"training step (batch of {batch_size} images)")
        if len(bad):
            label = f"first non-finite loss, {names[0]}"
            ax.axvline(bad[0], color="k", ls=":", lw=1, label=label)
    ax_loss.set(
        ylabel="cross-entropy loss of the batch (nats)",
        title=f"Training loss, read from TensorBoard (seed {seed})",
    )
    ax_norm.set(
        ylabel="global gradient norm before clipping",
        title=f"Gradient norm, read from TensorBoard (seed {seed})",
    )
    ax_norm.axhline(threshold, color="tab:blue", ls="--", lw=1, label=f"threshold {threshold}")
    ax_norm.legend()


def draw_angles(ax, angles, names, seeds, floor=1e-5):
    """Box plots of the angles of the clipped steps, pooled over the seeds, per setting.

    Args:
        ax: one matplotlib axes.
        angles: ``{(setting, seed): angles in degrees}``.
        names: the settings to draw, in order; those without clipped steps are left out.
        seeds: the seeds to pool.
        floor: angles below it are drawn at it (the axis is logarithmic), a number > 0.

    Raises:
        ValueError: `ax` is not an axes, or no setting has a clipped step.
    """
    (ax,) = _axes(ax, 1, "ax")
    pooled = {n: np.concatenate([angles[n, s] for s in seeds]) for n in names}
    names = [n for n in names if len(pooled[n])]
    if not names:
        raise ValueError("no setting has a clipped step to draw")
    ax.boxplot([np.maximum(pooled[n], floor) for n in names], whis=(0, 100))
    ticks = [f"{n}\n({len(pooled[n])} steps)" for n in names]
    ax.set_xticks(range(1, len(names) + 1), ticks, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("angle between raw gradient and step (degrees)")
    ax.set_title(
        f"Direction change at the steps where clipping acted, {len(seeds)} seeds "
        f"(values below {floor:g}° drawn at {floor:g}°)"
    )

"""The book's figures: the style of `helpers.chapter.figures`, and every chapter's plotting
cells checked on their sources (nothing is executed).

A figure cell (`mystnb: figure:` in its metadata) has its caption and text alternative, draws
one figure and shows nothing else: MyST-NB wraps every display output of such a cell in a
figure of its own, numbered, with the cell's caption, so a table shown there became "Fig. 3"
of chapter 01 with the caption of Fig. 2. Each figure is at most `figures.WIDTH` inches wide
and none of its text is set below `figures.SMALLEST_PT` points, so that it is shown at its
natural width with text of 10 px or more (the browser test measures the built book).
"""

import ast
import glob
import os

from helpers.chapter import figures

import jupytext
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHAPTERS = sorted(
    glob.glob(os.path.join(ROOT, "chapters", "[0-9][0-9]_*.md"))
    + glob.glob(os.path.join(ROOT, "chapters", "A[0-9]_*.md"))
)
#: The calls that make a new figure, and the one that shows it.
MAKERS = {"subplots", "figure", "subplot_mosaic"}


def _calls(tree):
    """``(name, node)`` of every call in `tree`, by the called attribute's or function's name."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            yield name, node


def _plotting_cells(md):
    """``(index, cell, tree)`` of each code cell of `md` that draws a figure."""
    for i, cell in enumerate(jupytext.read(md).cells):
        if cell.cell_type != "code":
            continue
        tree = ast.parse(cell.source)
        if any(name in MAKERS | {"show"} for name, _ in _calls(tree)) and "plt." in cell.source:
            yield i, cell, tree


def _where(md, i):
    return f"{os.path.basename(md)}, cell {i}"


def test_there_are_figures():
    assert sum(len(list(_plotting_cells(md))) for md in CHAPTERS) >= 15


def test_the_style_sets_no_text_below_the_smallest_size():
    sizes = {k: figures.RC[k] for k in figures.FONT_KEYS}
    assert {"font.size", "legend.fontsize", "xtick.labelsize", "ytick.labelsize"} <= set(sizes)
    assert all(isinstance(v, float) for v in sizes.values()), "sizes in points, not names"
    assert min(sizes.values()) == figures.SMALLEST_PT
    assert figures.RC["figure.figsize"][0] == figures.WIDTH
    # at full width the smallest text is 10 px or more on screen
    natural = figures.WIDTH * figures.DPI
    assert figures.on_screen_px(figures.SMALLEST_PT, natural, natural) >= 10


def test_on_screen_px_scales_with_the_width_shown():
    # the figure that issue 29 measured: 7-point legend, 1,390 px shown at 792 px
    assert figures.on_screen_px(7, 1390, 792) == pytest.approx(5.54, abs=0.01)
    assert figures.on_screen_px(8, 780, 780) == pytest.approx(11.11, abs=0.01)
    with pytest.raises(ValueError, match="natural_px"):
        figures.on_screen_px(8, 0, 780)
    with pytest.raises(ValueError, match="rendered_px"):
        figures.on_screen_px(8, 780, -1)


def test_register_sets_the_style_in_a_mapping_and_nothing_outside_ipython():
    params = {"figure.dpi": 72}
    assert figures.register(params) is True
    assert params == figures.RC
    assert figures.register() is False  # pytest is not IPython: matplotlib keeps its defaults


@pytest.mark.parametrize("md", CHAPTERS, ids=os.path.basename)
def test_every_figure_cell_has_a_caption_and_a_text_alternative(md):
    for i, cell, _ in _plotting_cells(md):
        options = cell.metadata.get("mystnb", {})
        caption = (options.get("figure") or {}).get("caption", "")
        alt = (options.get("image") or {}).get("alt", "")
        assert caption.strip(), f"{_where(md, i)}: a figure without a caption"
        assert alt.strip(), f"{_where(md, i)}: a figure without a text alternative"


@pytest.mark.parametrize("md", CHAPTERS, ids=os.path.basename)
def test_a_figure_cell_shows_its_one_figure_and_nothing_else(md):
    """A table, a displayed object or a second figure in the cell would become a figure of its
    own, numbered, with this cell's caption."""
    for i, _, tree in _plotting_cells(md):
        names = [name for name, _ in _calls(tree)]
        assert sum(n in MAKERS for n in names) == 1, f"{_where(md, i)}: not one figure"
        assert names.count("show") == 1, f"{_where(md, i)}: not one plt.show()"
        assert "display" not in names, f"{_where(md, i)}: displays more than its figure"
        last = tree.body[-1]
        shown = (
            isinstance(last, ast.Expr)
            and isinstance(last.value, ast.Call)
            and ast.unparse(last.value.func) in ("plt.show", "print")
        )
        assert shown or not isinstance(last, ast.Expr), (
            f"{_where(md, i)}: ends with a value ({ast.unparse(last)[:40]}...), which would be "
            "shown as another figure: move it to a cell of its own"
        )
    for i, cell in enumerate(jupytext.read(md).cells):
        if cell.cell_type == "code" and "figure" in cell.metadata.get("mystnb", {}):
            assert "plt." in cell.source, f"{_where(md, i)}: a caption without a figure"


def _number(node):
    return node.value if isinstance(node, ast.Constant) else None


@pytest.mark.parametrize("md", CHAPTERS, ids=os.path.basename)
def test_figures_are_at_most_the_column_wide_and_their_text_readable(md):
    from matplotlib import font_manager

    for i, _, tree in _plotting_cells(md):
        for name, call in _calls(tree):
            for keyword in call.keywords:
                if keyword.arg == "figsize":
                    assert isinstance(keyword.value, ast.Tuple), (
                        f"{_where(md, i)}: figsize as a literal (width, height) in inches"
                    )
                    width = _number(keyword.value.elts[0])
                    assert width is not None and width <= figures.WIDTH, (
                        f"{_where(md, i)}: {width} inches is wider than the book's column "
                        f"(figures.WIDTH = {figures.WIDTH}): the page would shrink its text"
                    )
                if keyword.arg in ("fontsize", "size", "labelsize") and name != "normal":
                    size = _number(keyword.value)
                    if isinstance(size, str):
                        size = font_manager.font_scalings[size] * figures.RC["font.size"]
                    assert size is None or size >= figures.SMALLEST_PT, (
                        f"{_where(md, i)}: text at {size} pt, below the book's smallest "
                        f"({figures.SMALLEST_PT} pt, figures.SMALLEST_PT)"
                    )

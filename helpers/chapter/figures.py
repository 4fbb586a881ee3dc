"""The book's figures: drawn at the width the book shows them, with text a reader can read.

The rendered book shows a figure's PNG at its natural width, up to the text column: about
790 px at a window of 1280 px (measured in headless Chromium, ``tests/test_rendered_book.py``).
A wider PNG is shrunk to fit, and its text with it: a 14-inch figure saved at 100 dpi
(1,390 px) was shown at 57 %, its 7-point legend about 5 px tall. So every figure is drawn at
most `WIDTH` inches wide at `DPI`, which is the column's width in pixels, and its smallest text
is `SMALLEST_PT` points, ``SMALLEST_PT * DPI / 72`` = 11 px on screen at full width.

Importing ``helpers`` in IPython (a Jupyter kernel) calls `register`, which sets `RC` in
matplotlib's rcParams: the default size (`WIDTH` wide) and the font sizes. A chapter that
needs another height passes ``figsize=(width, height)`` with a width of at most `WIDTH`;
``tests/test_chapters.py`` checks every chapter's figure sizes and font sizes against this
module, and the browser test measures the figures of the built book.
"""

#: Pixels per inch of a saved figure (matplotlib's own default).
DPI = 100
#: The widest figure, in inches: at `DPI`, the book's text column at 1280 px (about 790 px).
WIDTH = 7.8
#: The smallest text of any figure, in points: tick labels, legends, annotations.
SMALLEST_PT = 8.0
#: What `register` sets in matplotlib's rcParams. Font sizes in points, none below
#: `SMALLEST_PT` (named sizes such as "small" would scale ``font.size`` down: every size is
#: given in points instead).
RC = {
    "figure.dpi": DPI,
    "savefig.dpi": "figure",
    "figure.figsize": (WIDTH, 3.6),
    "font.size": 9.0,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9.0,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "legend.fontsize": 8.0,
    "legend.title_fontsize": 8.5,
    "figure.titlesize": 10.5,
}
#: The rcParams of `RC` that are font sizes.
FONT_KEYS = tuple(k for k in RC if k.endswith("size") and k != "figure.figsize")


def on_screen_px(points, natural_px, rendered_px, dpi=DPI):
    """The height in CSS pixels of text of `points` in a figure saved at `dpi` and shown at
    `rendered_px` of its `natural_px` width.

    ``points * dpi / 72 * rendered_px / natural_px``

    Args:
        points: the font size in points (1/72 inch).
        natural_px: the PNG's width in pixels.
        rendered_px: the width the page shows it at, in CSS pixels.
        dpi: the pixels per inch it was saved at.

    Returns:
        The font size on screen, in CSS pixels.

    Raises:
        ValueError: a size or width that is not positive.
    """
    for name, value in (("points", points), ("natural_px", natural_px), ("dpi", dpi)):
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value!r}")
    if not rendered_px >= 0:
        raise ValueError(f"rendered_px must be zero or more, got {rendered_px!r}")
    return points * dpi / 72 * rendered_px / natural_px


def register(rc_params=None):
    """Set `RC` in matplotlib's rcParams when running in IPython (a Jupyter kernel).

    Args:
        rc_params: the mapping to update (default: ``matplotlib.rcParams``, only in IPython).

    Returns:
        True if set, False outside IPython (a script or a test keeps matplotlib's defaults).
    """
    if rc_params is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        if get_ipython() is None:
            return False
        import matplotlib

        rc_params = matplotlib.rcParams
    rc_params.update(RC)
    return True


register()

"""pandas tables as LaTeX tables, for the book's PDF edition.

A notebook keeps a DataFrame's output as HTML (``text/html``) and plain text. Jupyter Book's
LaTeX builder cannot use the HTML, so without more the PDF shows the plain text. Importing
``helpers`` in IPython (a Jupyter kernel) calls `register`, which adds a ``text/latex``
representation to every DataFrame the chapter displays: the same cells as its HTML, parsed
from pandas' own HTML representation, so the PDF shows the very strings the HTML page shows
(and nbval, which compares ``text/latex`` too, compares nothing new).

The LaTeX is one ``tabular`` in a ``center`` environment, shrunk to the text width when it is
wider, and it starts with `MARK`: the book's LaTeX build (``tools/latex_outputs.py``) passes
outputs that start with it to LaTeX as they are, where MyST-NB would otherwise typeset
``text/latex`` as mathematics.
"""

import html.parser

#: The first line of every table this module writes.
MARK = "% bn-companion: a pandas table"

_SPECIAL = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "^": r"\textasciicircum{}",
    "_": r"\_",
    "%": r"\%",
    "~": r"\textasciitilde{}",
}


def escape(text):
    """`text` with LaTeX's special characters escaped and its whitespace collapsed."""
    return "".join(_SPECIAL.get(ch, ch) for ch in " ".join(str(text).split()))


class _Cells(html.parser.HTMLParser):
    """The rows of an HTML table: lists of ``(is_header, text, colspan, rowspan, in_body)``."""

    def __init__(self):
        super().__init__()
        self.rows, self._cell, self._body, self._skip = [], None, False, 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("style", "script"):
            self._skip += 1
        elif tag == "tbody":
            self._body = True
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("th", "td") and self.rows:
            span = [int(attrs.get(k) or 1) for k in ("colspan", "rowspan")]
            self._cell = [tag == "th", "", span[0], span[1], self._body]

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self._skip -= 1
        elif tag in ("th", "td") and self._cell is not None:
            self.rows[-1].append(tuple(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None and not self._skip:
            self._cell[1] += data


def _grid(rows):
    """Each row as a list of ``(text, colspan, is_header)``, rowspans filled with blanks."""
    pending = {}  # column -> rows still covered by a cell above
    grid = []
    for row in rows:
        out, col, cells = [], 0, list(row)
        while cells or pending.get(col, 0) > 0:
            if pending.get(col, 0) > 0:
                pending[col] -= 1
                out.append(("", 1, True))
                col += 1
                continue
            header, text, colspan, rowspan, _ = cells.pop(0)
            if rowspan > 1:
                pending[col] = rowspan - 1
            out.append((text, colspan, header))
            col += colspan
        grid.append(out)
    return grid


def latex_table(frame):
    """A DataFrame as a LaTeX table with the cells of its HTML representation.

    Args:
        frame: a pandas DataFrame.

    Returns:
        The LaTeX text (starting with `MARK`), or None when pandas gives the frame no HTML
        representation (``display.notebook_repr_html`` off).
    """
    source = frame._repr_html_()
    if source is None:
        return None
    parser = _Cells()
    parser.feed(source)
    body = [r for r in parser.rows if r and r[0][4]]
    head = [r for r in parser.rows if r and not r[0][4]]
    grid = _grid(head + body)
    width = max((sum(c[1] for c in row) for row in grid), default=0)
    if not width:
        return None
    index_cols = sum(c[1] for c in grid[len(head)] if c[2]) if body else 0
    spec = "l" * index_cols + "r" * (width - index_cols)
    lines = [MARK, r"\begin{center}\small", r"\setbox0=\hbox{\begin{tabular}{" + spec + "}"]
    lines.append(r"\hline")
    for i, row in enumerate(grid):
        cells = []
        for text, colspan, header in row:
            text = escape(text)
            if header and text and i < len(head):
                text = r"\textbf{" + text + "}"
            cells.append(text if colspan == 1 else rf"\multicolumn{{{colspan}}}{{c}}{{{text}}}")
        cells += [""] * (width - sum(c[1] for c in row))
        lines.append(" & ".join(cells) + r" \\")
        if i == len(head) - 1:
            lines.append(r"\hline")
    lines += [
        r"\hline",
        r"\end{tabular}}%",
        r"\leavevmode\ifdim\wd0>\linewidth\resizebox{\linewidth}{!}{\box0}\else\box0\fi",
        r"\end{center}",
    ]
    return "\n".join(lines)


def register(shell=None):
    """Add `latex_table` as the ``text/latex`` formatter of DataFrames in an IPython shell.

    Args:
        shell: the IPython shell (default: the running one).

    Returns:
        True if registered, False outside IPython (nothing to do there).
    """
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return False
    import pandas as pd

    shell.display_formatter.formatters["text/latex"].for_type(pd.DataFrame, latex_table)
    return True


register()

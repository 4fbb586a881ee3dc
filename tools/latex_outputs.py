"""Sphinx extension of the PDF build: LaTeX tables of notebook outputs reach LaTeX as written.

MyST-NB typesets every ``text/latex`` output as a displayed equation. The tables that
``helpers.book.display`` writes for pandas DataFrames are not mathematics: a ``tabular`` inside an
``equation*`` would not compile. This extension hands those outputs (they start with
``helpers.book.display.MARK``) to the LaTeX writer as raw LaTeX, once MyST-NB has chosen
``text/latex`` as the output to show; any other ``text/latex`` output stays an equation.

It also shapes the wide tables of the pages (the claims index): Sphinx's LaTeX writer sizes
the columns of a table itself and cuts a word wider than its column ("partl" for "partly"),
and keeps a table on one page, past the page's foot. A table of four or more columns gets
widths from its text instead (each at least its longest word, the rest shared by the length of
its cells), and one of more than `LONG` rows may break across pages.

``tools/build_book.py --pdf`` loads it; the html build does not.
"""

from docutils import nodes
from sphinx import addnodes

#: helpers.book.display.MARK (not imported: Sphinx loads this file without the repository
#: on the path).
MARK = "% bn-companion: a pandas table"
#: A table of more rows than this may break across pages.
LONG = 8
#: About how many characters of a table's text fit in one line of the page.
LINE = 110


def _raw_tables(app, doctree, docname):
    if app.builder.format != "latex":
        return
    for node in list(doctree.findall(nodes.math_block)):
        text = node.astext()
        if "text_latex" in node["classes"] and text.lstrip().startswith(MARK):
            node.replace_self(nodes.raw("", text + "\n", format="latex"))


def widths(columns, line=LINE):
    """Relative column widths (integers) from the cells' texts, one list of texts per column.

    Each column gets at least its longest word (and its header's, set in bold: a fifth wider),
    plus room for the space between columns; what is left of `line` is shared in proportion to
    the mean length of the column's cells beyond that minimum.
    """
    least = [
        round(1.2 * max((len(w) for t in col for w in t.split()), default=1)) + 3
        for col in columns
    ]
    mean = [sum(map(len, col)) / max(len(col), 1) for col in columns]
    extra = [max(m - n, 0) for m, n in zip(mean, least)]
    room = max(line - sum(least), 0)
    total = sum(extra) or 1
    return [round(n + room * e / total) for n, e in zip(least, extra)]


def _shape_tables(app, doctree, docname):
    if app.builder.format != "latex":
        return
    for table in list(doctree.findall(nodes.table)):
        groups = list(table.findall(nodes.tgroup))
        if len(groups) != 1:
            continue
        specs = [c for c in groups[0].children if isinstance(c, nodes.colspec)]
        rows = list(groups[0].findall(nodes.row))
        if len(specs) < 4 or any(len(r.children) != len(specs) for r in rows):
            continue  # small tables, and cells spanning columns: Sphinx's own layout
        columns = [[r.children[i].astext() for r in rows] for i in range(len(specs))]
        sizes = widths(columns)
        # Ragged right: justified text in a narrow column leaves wide gaps between words.
        spec = "".join(
            rf">{{\raggedright\arraybackslash}}\X{{{w}}}{{{sum(sizes)}}}" for w in sizes
        )
        table.parent.insert(table.parent.index(table), addnodes.tabular_col_spec(spec=spec))
        if len(rows) > LONG + 1:
            table["classes"].append("longtable")


def setup(app):
    app.connect("doctree-resolved", _raw_tables)
    app.connect("doctree-resolved", _shape_tables)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

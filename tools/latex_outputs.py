"""Sphinx extension of the PDF build: LaTeX tables of notebook outputs reach LaTeX as written.

MyST-NB typesets every ``text/latex`` output as a displayed equation. The tables that
``helpers.chapter.display`` writes for pandas DataFrames are not mathematics: a ``tabular``
inside an ``equation*`` would not compile. This extension hands those outputs (they start with
``helpers.chapter.display.MARK``) to the LaTeX writer as raw LaTeX, once MyST-NB has chosen
``text/latex`` as the output to show; any other ``text/latex`` output stays an equation.

It also shapes the wide tables of the pages (the claims index): Sphinx's LaTeX writer sizes
the columns of a table itself and cuts a word wider than its column ("partl" for "partly"),
and keeps a table on one page, past the page's foot. A table of four or more columns gets
widths from its text instead (each at least its longest word, the rest shared by the length of
its cells), in smaller type when its words need it, and one of more than `LONG` rows may break
across pages.

``tools/build_book.py --pdf`` loads it; the html build does not.
"""

from docutils import nodes
from sphinx import addnodes

#: helpers.chapter.display.MARK (not imported: Sphinx loads this file without the repository
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


#: Smaller type for tables whose words do not fit at the text's size: (command, its size).
SIZES = (("", 1.0), (r"\small", 0.9), (r"\footnotesize", 0.8), (r"\scriptsize", 0.7))


def _least(columns):
    """Each column's longest word (its header's is set in bold: a fifth wider), plus room for
    the space between columns."""
    return [
        round(1.2 * max((len(w) for t in col for w in t.split()), default=1)) + 3
        for col in columns
    ]


def widths(columns, line=LINE):
    """Relative column widths (integers) from the cells' texts, one list of texts per column.

    Each column gets at least its longest word (see `_least`); what is left of `line` is shared
    in proportion to the mean length of the column's cells beyond that minimum.
    """
    least = _least(columns)
    mean = [sum(map(len, col)) / max(len(col), 1) for col in columns]
    extra = [max(m - n, 0) for m, n in zip(mean, least)]
    room = max(line - sum(least), 0)
    total = sum(extra) or 1
    return [round(n + room * e / total) for n, e in zip(least, extra)]


def font_size(columns, line=LINE):
    """The first of `SIZES` at which every column's longest word fits: ``(command, line)``."""
    need = sum(_least(columns))
    for command, scale in SIZES:
        if need <= line / scale:
            return command, line / scale
    return SIZES[-1][0], line / SIZES[-1][1]


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
        command, line = font_size(columns)
        sizes = widths(columns, line)
        # Ragged right: justified text in a narrow column leaves wide gaps between words.
        spec = "".join(
            rf">{{\raggedright\arraybackslash}}\X{{{w}}}{{{sum(sizes)}}}" for w in sizes
        )
        parent, at = table.parent, table.parent.index(table)
        parent.insert(at, addnodes.tabular_col_spec(spec=spec))
        if command:  # the smaller type for this table only
            parent.insert(at, nodes.raw("", r"\begingroup" + command + "\n", format="latex"))
            parent.insert(parent.index(table) + 1, nodes.raw("", "\\endgroup\n", format="latex"))
        if len(rows) > LONG + 1:
            table["classes"].append("longtable")


def setup(app):
    app.connect("doctree-resolved", _raw_tables)
    app.connect("doctree-resolved", _shape_tables)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

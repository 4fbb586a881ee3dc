r"""The book's code listings of pp. 339-345, and the cells of the chapters that reproduce them.

A chapter cell that reproduces one of these listings carries the tag ``book-listing`` and holds
that listing alone, as the book prints it: a line that today's Keras requires changed carries a
trailing comment saying why (``# Keras 3: ...``), and a comment line may explain; nothing else
(no asserts, no imports, no prints; those go in the next cell). The book's code that fails today
is a listing too, shown with its error (tags ``book-listing`` and ``raises-exception``).

- `LISTINGS` is the catalogue: each listing's page and code, from the book's pages.
- `match` says which listing a tagged cell holds, or why it holds something else;
  `reproduces` finds the listings an untagged cell reproduces (most of a listing's lines, in
  order, comments left out: a comment that only cites a page is no listing).
  ``tests/test_book_listings.py`` checks every chapter with both.
- As a Sphinx extension (``tools/build_book.py`` loads it for the html and the PDF), it frames
  each tagged cell's code and puts its label above it: "Géron, p. 342". The frame is
  book/_static/companion.css's ``div.book-listing`` in html, and the LaTeX environment
  ``sphinxclassbooklisting`` (a coloured border and background for the code) in the PDF.

Sphinx loads this file without the repository on the path: it imports neither ``helpers`` nor
``tools``.
"""

import math
import re
from dataclasses import dataclass

from docutils import nodes

TAG = "book-listing"
#: The class of a listing's framed code, in html and as a LaTeX environment.
FRAME = "book-listing"
LABEL = "book-listing-label"


@dataclass(frozen=True)
class Listing:
    """One listing: its short name, the book's page, and its code as printed."""

    name: str
    page: int
    code: str

    @property
    def label(self):
        return f"Géron, p. {self.page}"

    @property
    def lines(self):
        return [n for n in (normalize(line) for line in self.code.splitlines()) if n]


LISTINGS = (
    Listing(
        "model, BN after the activation",
        342,
        """model = keras.models.Sequential([
    keras.layers.Flatten(input_shape=[28, 28]),
    keras.layers.BatchNormalization(),
    keras.layers.Dense(300, activation="elu", kernel_initializer="he_normal"),
    keras.layers.BatchNormalization(),
    keras.layers.Dense(100, activation="elu", kernel_initializer="he_normal"),
    keras.layers.BatchNormalization(),
    keras.layers.Dense(10, activation="softmax")
])""",
    ),
    Listing("model summary", 342, "model.summary()"),
    Listing(
        "the first BN layer's variables",
        343,
        "[(var.name, var.trainable) for var in model.layers[1].variables]",
    ),
    Listing("the update operations", 343, "model.layers[1].updates"),
    Listing(
        "model, BN before the activation",
        343,
        """model = keras.models.Sequential([
    keras.layers.Flatten(input_shape=[28, 28]),
    keras.layers.BatchNormalization(),
    keras.layers.Dense(300, kernel_initializer="he_normal", use_bias=False),
    keras.layers.BatchNormalization(),
    keras.layers.Activation("elu"),
    keras.layers.Dense(100, kernel_initializer="he_normal", use_bias=False),
    keras.layers.BatchNormalization(),
    keras.layers.Activation("elu"),
    keras.layers.Dense(10, activation="softmax")
])""",
    ),
    # The book gives the argument in its text ("set axis=[1, 2]"); this is the layer it names.
    Listing("a BN layer per pixel", 344, "keras.layers.BatchNormalization(axis=[1, 2])"),
    Listing(
        "clipping by value",
        345,
        """optimizer = keras.optimizers.SGD(clipvalue=1.0)
model.compile(loss="mse", optimizer=optimizer)""",
    ),
)

#: Lines too common to show by themselves that a cell reproduces a listing.
COMMON = {"])", "keras.layers.BatchNormalization()", 'keras.layers.Activation("elu")'}
#: A comment that starts a line, or ends one (the listings hold no ``#`` inside a string).
COMMENT = re.compile(r"\s*#.*$")


def normalize(line):
    """A line of code without its comment, its spaces and its trailing comma: the formatter's
    changes (a magic trailing comma, spacing) are not changes of the listing."""
    code = COMMENT.sub("", line)
    return re.sub(r"\s+", "", code).rstrip(",")


def _code_lines(source):
    """``(normalized line, has a trailing comment, the line)`` for each line of code (not blank,
    not only a comment)."""
    out = []
    for line in source.splitlines():
        code = normalize(line)
        if code:
            out.append((code, bool(COMMENT.search(line)), line.strip()))
    return out


def _in_order(cell_lines, listing_lines):
    """How many of the listing's lines the cell holds, in the listing's order (the longest
    common subsequence), and which of the cell's lines those are."""
    n, m = len(cell_lines), len(listing_lines)
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            if cell_lines[i] == listing_lines[j]:
                best[i][j] = best[i + 1][j + 1] + 1
            else:
                best[i][j] = max(best[i + 1][j], best[i][j + 1])
    used, i, j = set(), 0, 0
    while i < n and j < m:
        if cell_lines[i] == listing_lines[j]:
            used.add(i)
            i, j = i + 1, j + 1
        elif best[i + 1][j] >= best[i][j + 1]:
            i += 1
        else:
            j += 1
    return best[0][0], used


def distinctive(listing):
    """The lines of a listing that tell it from the others: in no other listing, and not lines
    that any model may hold (`COMMON`)."""
    others = {line for other in LISTINGS if other is not listing for line in other.lines}
    return [line for line in listing.lines if line not in others and line not in COMMON]


def _half(lines):
    return max(1, math.ceil(len(lines) / 2))


def reproduces(source):
    """The listings that a cell's code reproduces: at least half of a listing's lines (all of a
    one-line listing), in order, and at least half of the lines that tell it from the other
    listings (`distinctive`)."""
    lines = [code for code, _, _ in _code_lines(source)]
    found = []
    for listing in LISTINGS:
        count, _ = _in_order(lines, listing.lines)
        own = distinctive(listing)
        if count >= _half(listing.lines) and _in_order(lines, own)[0] >= _half(own):
            found.append(listing)
    return found


class NotAListing(ValueError):
    """A cell tagged as a listing that holds something else: the message says what."""


def match(source):
    """The listing that a tagged cell holds alone.

    Every line of code is a line of the listing, in the listing's order, or carries a trailing
    comment that says what today's Keras required; every line of the listing is there or
    replaced by such a line.

    Raises:
        NotAListing: the cell holds no listing, more than one, or code that is not the listing's.
    """
    lines = _code_lines(source)
    if not lines:
        raise NotAListing("the cell holds no code")
    candidates = reproduces(source)
    if not candidates:
        raise NotAListing("the cell holds none of the book's listings of pp. 339-345")
    if len(candidates) > 1:
        names = ", ".join(repr(c.name) for c in candidates)
        raise NotAListing(f"the cell holds more than one listing ({names}); give each its cell")
    listing = candidates[0]
    codes = [code for code, _, _ in lines]
    count, used = _in_order(codes, listing.lines)
    extra = [
        line for i, (_, commented, line) in enumerate(lines) if i not in used and not commented
    ]
    if extra:
        raise NotAListing(
            f"beside the listing {listing.name!r} (p. {listing.page}) the cell holds "
            f"{extra[0]!r}, which is not the book's and carries no comment saying what today's "
            "Keras required; move it to the next cell"
        )
    adapted = sum(1 for i, (_, commented, _) in enumerate(lines) if i not in used and commented)
    missing = len(listing.lines) - count
    if missing > adapted:
        raise NotAListing(
            f"the cell leaves out {missing - adapted} line(s) of the listing {listing.name!r} "
            f"(p. {listing.page}) without a commented line in their place"
        )
    return listing


# --- Sphinx: the frame and its label --------------------------------------------------------


def _source(cell):
    """The code of a MyST-NB cell container (its ``cell_input`` literal block)."""
    for block in cell.findall(nodes.literal_block):
        return block.astext()
    return ""


def _is_listing(cell):
    tags = (cell.get("cell_metadata") or {}).get("tags", [])
    return TAG in tags or f"tag_{TAG}" in cell.get("classes", [])


def _frame(app, doctree, docname):
    """Frame and label each listing's code. MyST-NB's cell holds its code in a ``cell_input``
    container, which the PDF build's own transform (sphinx-jupyterbook-latex) wraps in a node
    of its own first: the code is looked for at any depth."""
    for cell in list(doctree.findall(nodes.container)):
        if "cell" not in cell.get("classes", []) or not _is_listing(cell):
            continue
        try:
            listing = match(_source(cell))
        except NotAListing as err:
            raise NotAListing(f"{docname}: a cell tagged {TAG!r} is no listing: {err}") from None
        source = next(
            (c for c in cell.findall(nodes.container) if "cell_input" in c.get("classes", [])),
            None,
        )
        if source is None or FRAME in source["classes"]:
            continue
        source["classes"].append(FRAME)
        text = nodes.paragraph(listing.label, listing.label)
        source.insert(0, nodes.container("", text, classes=[LABEL]))


#: The PDF's frame, which tools/build_book.py adds to the preamble: the code of a listing on a
#: warm background inside a darker border (Sphinx's own keys for code blocks, set for this
#: environment only).
LATEX = r"""
\newenvironment{sphinxclassbook-listing}{%
  \sphinxsetup{pre_border-width=1.2pt, pre_border-TeXcolor={RGB}{176,112,0},
    pre_background-TeXcolor={RGB}{255,248,231}}%
}{}
\newenvironment{sphinxclassbook-listing-label}{\small\bfseries}{}
"""


def setup(app):
    app.connect("doctree-resolved", _frame)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

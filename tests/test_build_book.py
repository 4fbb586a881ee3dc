"""tools/build_book.py: which printed outputs are tables, and how the built pages mark them."""

import json

from tools import build_book
from tools.common import CHAPTERS

SUMMARY = """Model: "sequential"
┏━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━┓
┃ Layer (type)     ┃ Output Shape ┃
┡━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━┩
│ dense (Dense)    │ (None, 300)  │
└──────────────────┴──────────────┘
"""
FRAME = """                 layer   type  params
0              flatten  Flatten       0
1  batch_normalization  BatchNormalization  3,136
2                dense  Dense  235,500
"""
PROSE = """C7 (p. 342): held
  - parameters, per layer == [0, 3136, 235500]: [0, 3136, 235500] (held)
Do not pass an `input_shape`/`input_dim` argument to a layer.  When using Sequential models,
prefer using an `Input(shape)` object as the first layer in the model instead.
10,000 training images, 2,000 validation images, 156 steps of 64 per epoch, seeds [42, 43]
"""


def test_box_drawn_and_column_tables_are_tabular_and_prose_is_not():
    assert build_book.is_tabular(SUMMARY)
    assert build_book.is_tabular(FRAME)
    assert not build_book.is_tabular(PROSE)
    assert not build_book.is_tabular(FRAME.splitlines(keepends=True)[1] * 2)  # two rows only


def _div(kind, text):
    return (
        f'<div class="output {kind} highlight-myst-ansi notranslate"><div class="highlight">'
        f"<pre><span></span>{text}</pre></div>\n</div>"
    )


def test_only_printed_tables_get_the_class_and_warnings_never():
    summary = SUMMARY.replace('"', "&quot;")
    page = "\n".join(
        [
            _div("stream", summary),
            _div("text_plain", FRAME),
            _div("stream", PROSE),
            _div("stderr", summary),
        ]
    )
    marked = build_book.mark_tabular(page)
    assert marked.count('"output stream tabular highlight-myst-ansi notranslate"') == 1
    assert marked.count('"output text_plain tabular highlight-myst-ansi notranslate"') == 1
    assert marked.count("tabular") == 2  # neither the prose nor the warning (stderr)
    assert build_book.mark_tabular(marked) == marked


def test_the_books_printed_tables_are_the_summary_and_the_printed_frames():
    """Which of the stored outputs the rule takes for tables: the frames printed in 06 and 07
    (a new one shows up here, to be looked at). 03's `model.summary()`, the book's listing,
    shows the html table that rich draws, which the page keeps whole by itself."""
    found = []
    for name in ("03_keras_model", "06_fusion", "07_evidence", "08_clipping"):
        with open(f"{CHAPTERS}/{name}.ipynb", encoding="utf-8") as f:
            cells = json.load(f)["cells"]
        for cell in cells:
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if output.get("name") == "stderr" or {"text/html", "image/png"} & set(data):
                    continue  # warnings, and outputs the book shows as HTML or an image
                text = "".join(output.get("text", data.get("text/plain", "")))
                if build_book.is_tabular(text):
                    found.append((name, text.splitlines()[0][:20]))
    assert [n for n, _ in found] == ["06_fusion", "07_evidence"]


def _cell(outputs, figure=True):
    meta = {"mystnb": {"figure": {"caption": "A caption."}}} if figure else {}
    return {"cell_type": "code", "metadata": meta, "outputs": outputs, "source": ""}


PNG = {"output_type": "display_data", "data": {"image/png": "", "text/plain": ""}}
TABLE = {"output_type": "execute_result", "data": {"text/html": "", "text/plain": ""}}
PRINTED = {"output_type": "stream", "name": "stdout", "text": "a line"}


def test_a_figure_cell_shows_one_image_and_nothing_else():
    """A table after the figure in a cell with a caption was numbered "Fig. 3" with the
    caption of Fig. 2 (issue 29); printed text is no figure and may follow."""
    good = {"cells": [_cell([PNG, PRINTED]), _cell([TABLE], figure=False)]}
    assert build_book.figure_problems(good, "good.ipynb") == []
    bad = {"cells": [_cell([PNG, TABLE]), _cell([TABLE]), _cell([PNG, PNG]), _cell([])]}
    problems = build_book.figure_problems(bad, "bad.ipynb")
    assert [p.split(":")[0] for p in problems] == [f"bad.ipynb, cell {i}" for i in range(4)]
    assert "image/png, text/html" in problems[0] and "shows nothing" in problems[3]

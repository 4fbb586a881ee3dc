"""The cells that reproduce the book's listings (tools/book_listings.py): tagged, and the listing
alone. Read from the chapters' sources; nothing is executed."""

import os

import jupytext
import pytest

from tools import book_listings as bl
from tools import code_lines

CHAPTERS = code_lines.chapter_sources()


def _cells(path):
    return [c for c in jupytext.read(path).cells if c.cell_type == "code"]


def _tagged(cell):
    return bl.TAG in cell.metadata.get("tags", [])


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: os.path.basename(p)[:2])
def test_tagged_cells_hold_a_listing_alone(path):
    for cell in filter(_tagged, _cells(path)):
        try:
            bl.match(cell.source)
        except bl.NotAListing as err:
            pytest.fail(f"{os.path.basename(path)}: a cell tagged {bl.TAG!r}: {err}")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: os.path.basename(p)[:2])
def test_every_cell_that_reproduces_a_listing_is_tagged(path):
    for cell in _cells(path):
        if _tagged(cell):
            continue
        found = bl.reproduces(cell.source)
        assert not found, (
            f"{os.path.basename(path)}: a cell reproduces the book's listing {found[0].name!r} "
            f"(p. {found[0].page}) without the tag {bl.TAG!r}; tag it and keep the listing "
            f"alone in it, or build the model through a helper:\n{cell.source}"
        )


def test_the_failing_listings_are_shown_with_their_error():
    """A listing that fails today is run for its error: the cell may raise."""
    for path in CHAPTERS:
        for cell in filter(_tagged, _cells(path)):
            listing = bl.match(cell.source)
            if listing.name in ("the update operations", "a BN layer per pixel"):
                assert "raises-exception" in cell.metadata["tags"], (path, listing.name)


BOOK_MODEL = bl.LISTINGS[0].code


def test_match_takes_the_listing_as_printed_or_formatted():
    formatted = BOOK_MODEL.replace('"softmax")\n', '"softmax"),\n')
    assert bl.match(formatted).page == 342
    assert bl.match(BOOK_MODEL).label == "Géron, p. 342"
    assert bl.match("model.layers[1].updates").page == 343
    assert bl.match("keras.layers.BatchNormalization(axis=[1, 2])").page == 344


def test_match_takes_a_line_changed_with_a_comment_and_comment_lines():
    adapted = BOOK_MODEL.replace(
        "keras.layers.Flatten(input_shape=[28, 28]),",
        "keras.Input(shape=[28, 28]),  # Keras 3: the input's shape on its own\n"
        "    keras.layers.Flatten(),  # Keras 3: no input_shape",
    )
    assert bl.match("# the book's model\n" + adapted).page == 342


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("print(1)", "none of the book's listings"),
        ("", "no code"),
        (BOOK_MODEL + "\nassert len(model.layers) == 7", "assert len(model.layers) == 7"),
        (BOOK_MODEL + "\nmodel.summary()", "more than one listing"),
        (
            BOOK_MODEL.replace("    keras.layers.Flatten(input_shape=[28, 28]),\n", ""),
            "leaves out 1 line",
        ),
        (BOOK_MODEL.replace("300", "30"), "carries no comment"),
    ],
)
def test_match_refuses_what_is_not_the_listing_alone(source, says):
    with pytest.raises(bl.NotAListing) as err:
        bl.match(source)
    assert says in str(err.value)


def test_reproduces_ignores_comments_and_common_lines():
    assert bl.reproduces("# book, p. 343: model.layers[1].updates") == []
    assert bl.reproduces("x = [\n    keras.layers.BatchNormalization(),\n])") == []
    spelled = BOOK_MODEL.replace(
        "keras.layers.Flatten(input_shape=[28, 28]),", "keras.Input(shape=[28, 28]),"
    )
    assert [x.page for x in bl.reproduces(spelled)] == [342]
    assert [x.page for x in bl.reproduces("try:\n    model.layers[1].updates\nexcept: pass")] == [
        343
    ]

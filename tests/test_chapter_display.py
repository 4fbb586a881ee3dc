"""helpers.chapter.display: DataFrames get LaTeX tables with their HTML's cells, for the PDF."""

import re

from helpers.chapter import display

import pandas as pd
import pytest
from IPython.core.formatters import DisplayFormatter

from tools import latex_outputs


def test_a_frame_becomes_a_tabular_with_its_html_cells():
    frame = pd.DataFrame(
        {"loss": [0.5, 0.25], "name_%": ["a&b", "{x}"]}, index=pd.Index([1, 2], name="seed")
    )
    text = display.latex_table(frame)
    assert text.startswith(display.MARK + "\n")
    assert r"\begin{tabular}{lrr}" in text
    assert r" & \textbf{loss} & \textbf{name\_\%} \\" in text
    assert r"\textbf{seed} &  &  \\" in text
    # The HTML's own formatting of the column (0.50, not 0.5), and escaped specials.
    assert r"1 & 0.50 & a\&b \\" in text
    assert r"2 & 0.25 & \{x\} \\" in text


def test_grouped_columns_span_and_grouped_rows_leave_blanks():
    columns = pd.MultiIndex.from_product([["A", "B"], ["m", "s"]])
    index = pd.MultiIndex.from_product([[1, 2], ["u", "v"]], names=["n", "k"])
    frame = pd.DataFrame([[0, 1, 2, 3]] * 4, index=index, columns=columns)
    text = display.latex_table(frame)
    assert r"\begin{tabular}{llrrrr}" in text
    assert r" &  & \multicolumn{2}{c}{\textbf{A}} & \multicolumn{2}{c}{\textbf{B}} \\" in text
    assert r"1 & u & 0 & 1 & 2 & 3 \\" in text
    assert r" & v & 0 & 1 & 2 & 3 \\" in text


def test_register_adds_text_latex_to_a_shells_dataframe_output():
    shell = type("Shell", (), {"display_formatter": DisplayFormatter()})()
    assert display.register(shell)
    data, _ = shell.display_formatter.format(pd.DataFrame({"a": [1]}))
    assert data["text/latex"] == display.latex_table(pd.DataFrame({"a": [1]}))
    assert "text/html" in data and "text/plain" in data


def test_register_outside_ipython_does_nothing():
    assert display.register(object()) is False


@pytest.mark.parametrize("text", ["a\\b", "x_1 ^ 2 ~ 3 # $ % & { }"])
def test_escape_leaves_no_special_character_bare(text):
    escaped = display.escape(text)
    bare = re.sub(r"\\(textbackslash|textasciicircum|textasciitilde)\{\}|\\[#$%&_{}]", "", escaped)
    assert not set(bare) & set("\\#$%&_{}^~"), escaped


def test_the_book_build_knows_the_tables_mark():
    assert latex_outputs.MARK == display.MARK


def test_column_widths_keep_every_word_whole():
    columns = [["C1", "C22"], ["held", "changed in Keras 3"], ["a long description " * 6] * 2]
    widths = latex_outputs.widths(columns, line=60)
    assert widths[0] >= len("C22") + 1
    assert widths[1] >= len("changed") + 1
    assert widths[2] > widths[1] > widths[0]


def test_a_table_whose_words_do_not_fit_gets_smaller_type():
    narrow = [["C1"], ["held"], ["341"], ["fewer steps"]]
    # Chapter 6's benchmark table: ten columns.
    heads = "batch original fused no_BN original fused original/fused fused/no orig./fused"
    wide = [["bn_after_activation (p. 342)"]] + [[h, "1.177"] for h in heads.split()]
    assert latex_outputs.font_size(narrow) == ("", latex_outputs.LINE)
    command, line = latex_outputs.font_size(wide)
    assert command and line > latex_outputs.LINE
    assert sum(latex_outputs.widths(wide, line)) <= line + len(wide)  # (rounding)

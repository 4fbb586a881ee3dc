r"""Sphinx extension of the book (html and PDF): a verdict shown as a badge that carries its word.

The generated pages (the claims index, the front page) write a verdict as the MyST role
``{verdict}`held` ``. The html book gets
``<span class="verdict"><span class="verdict-held">held</span></span>``: the word is the
badge's text, which a screen reader and a search read; book/_static/companion.css draws the
badge and gives each verdict its colours, which only repeat the word. LaTeX gets
``\DUrole{verdict}{\DUrole{verdict-held}{held}}``, of which only ``verdict`` is defined (the word
in bold) and the inner role leaves the word as it is, so the PDF reads the same word where the
html shows the badge. (Two nested roles rather than one with two classes: Sphinx's LaTeX writer
joins the classes of one node into one name, ``\DUrole{verdict,verdict-held}``, which no
definition matches.)

``tools/build_book.py`` loads it for both builds. Sphinx loads this file without the repository
on the path, so it does not import ``helpers``: the pages that write the role check the word
against ``helpers.chapter.verdicts.VERDICTS`` (`tools.claims_index.badge`).
"""

import re

from docutils import nodes

#: The LaTeX of a verdict: the word in bold (``\DUrole{verdict}{...}`` calls it).
LATEX = "\n" r"\providecommand*{\DUroleverdict}[1]{\textbf{#1}}" "\n"


def css_class(word):
    """The class of a verdict's colours: ``"held, API not as described"`` gives
    ``"verdict-held-api-not-as-described"``."""
    return "verdict-" + re.sub(r"[^a-z0-9]+", "-", word.lower()).strip("-")


def verdict_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``{verdict}`word` ``: the badge (class ``verdict``) holding the word in the class of its
    colours."""
    word = " ".join(text.split())
    inner = nodes.inline(word, word, classes=[css_class(word)])
    return [nodes.inline(rawtext, "", inner, classes=["verdict"])], []


def _latex(app, config):
    elements = dict(config.latex_elements or {})
    elements["preamble"] = elements.get("preamble", "") + LATEX
    config.latex_elements = elements


def setup(app):
    app.add_role("verdict", verdict_role)
    app.connect("config-inited", _latex)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

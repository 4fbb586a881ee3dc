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

It also draws the box that opens each chapter that checks claims, after its introduction:
"What this chapter finds", one line per claim, its id linking to the section that checks it,
the claim in our words, its verdict badge and its margin. ``tools/build_book.py`` computes the
lines with the claims index's own functions (`tools.claims_index.findings`) from the chapters
it renders, and hands them over in the configuration value ``companion_findings``; nothing of
it is in the notebooks (so nothing of it is compared with a fresh run), and the html and the PDF
show the same box (a docutils ``topic``: a framed box in both).

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


#: The box's title.
FINDINGS_TITLE = "What this chapter finds"


def _plain(title):
    """A heading's text as written, whether from its source (inline code in backticks) or as
    rendered (no backticks, typographic quotes)."""
    for typographic, plain in (("’", "'"), ("‘", "'"), ("“", '"'), ("”", '"'), ("`", "")):
        title = title.replace(typographic, plain)
    return " ".join(title.split())


def findings_box(entries, sections):
    """The box of a chapter's findings.

    Args:
        entries: the chapter's claims, from `tools.claims_index.findings`.
        sections: ``{heading text: node id}`` of the chapter's sections.

    Returns:
        A ``topic`` node.
    """
    items = nodes.bullet_list()
    for entry in entries:
        target = sections.get(_plain(entry["section"]))
        cid = nodes.strong(entry["id"], entry["id"])
        head = nodes.reference("", "", cid, refid=target) if target else cid
        where = f" (p. {entry['page']}): " if entry["page"] else " (beyond the book): "
        badge, _ = verdict_role("verdict", entry["verdict"], entry["verdict"], 0, None)
        para = nodes.paragraph(
            "",
            "",
            head,
            nodes.Text(where + entry["claim"] + " "),
            *badge,
            nodes.Text(f", margin {entry['margin']}."),
        )
        items += nodes.list_item("", para)
    return nodes.topic(
        "", nodes.title(FINDINGS_TITLE, FINDINGS_TITLE), items, classes=["findings"]
    )


def _findings(app, doctree):
    entries = app.config.companion_findings.get(app.env.docname)
    if not entries:
        return
    top = next(iter(doctree.findall(nodes.section)), None)
    if top is None:
        return
    sections = {}
    for section in top.findall(nodes.section):
        title = next(iter(section.findall(nodes.title)), None)
        if title is not None and section["ids"]:
            sections.setdefault(_plain(title.astext()), section["ids"][0])
    missing = [e["id"] for e in entries if _plain(e["section"]) not in sections]
    if missing:
        raise ValueError(
            f"{app.env.docname}: no section of the page has the heading that claims "
            f"{', '.join(missing)} name"
        )
    # After the introduction: before the first cell or section that follows the title.
    at = next(
        (
            i
            for i, child in enumerate(top.children)
            if isinstance(child, nodes.section)
            or (isinstance(child, nodes.container) and child.get("nb_element"))
        ),
        len(top.children),
    )
    top.insert(at, findings_box(entries, sections))


def _latex(app, config):
    elements = dict(config.latex_elements or {})
    elements["preamble"] = elements.get("preamble", "") + LATEX
    config.latex_elements = elements


def setup(app):
    app.add_role("verdict", verdict_role)
    app.add_config_value("companion_findings", {}, "env")
    app.connect("doctree-read", _findings)
    app.connect("config-inited", _latex)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

"""The PDF edition (make pdf, then make pdf-check): every chapter, claim and figure is in it.

Reads the PDF that ``tools/build_book.py --pdf`` built, its LaTeX log and the staged sources
it was built from, with poppler's pdftotext and pdfimages (make sysdeps installs them).
"""

import json
import os
import re
import shutil
import subprocess

from helpers.chapter import claims

import pytest
import yaml

from tool_modules import ROOT

# Reads the PDF that `make pdf` built (poppler's tools run as subprocesses); make pdf-check
# selects these (`-m pdf`), and the other test runs leave them out.
pytestmark = [pytest.mark.integration, pytest.mark.pdf]

BOOK = os.path.join(ROOT, "build", "book")
LATEX = os.path.join(BOOK, "_build", "latex")
PDF = os.path.join(LATEX, "bn-companion.pdf")
#: TeX commands that would mean some maths or a table reached the page as source text.
RAW_TEX = re.compile(
    r"\\(frac|gamma|beta|mu|sigma|epsilon|varepsilon|sqrt|hat|mathbf|mathrm|left|right|"
    r"begin|end|sum|cdot|times|textbf|hline|multicolumn|resizebox|mathbb)\b"
)


def _run(*cmd):
    if not shutil.which(cmd[0]):
        pytest.fail(f"{cmd[0]} is missing: run `make sysdeps` (Debian's poppler-utils)")
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def text():
    if not os.path.exists(PDF):
        pytest.fail(f"{os.path.relpath(PDF, ROOT)} is missing: run `make pdf` first")
    return " ".join(_run("pdftotext", "-enc", "UTF-8", PDF, "-").split())


def _pages():
    """The staged pages of the book, in the order of its table of contents."""
    with open(os.path.join(BOOK, "_toc.yml")) as f:
        toc = yaml.safe_load(f)
    names = [toc["root"]]
    for part in toc.get("parts", []):
        names += [c["file"] for c in part["chapters"]]
    return [os.path.join(BOOK, "src", n) for n in names]


def _title(page):
    """The first heading of a staged page (.ipynb or .md), as plain text."""
    if os.path.exists(page + ".ipynb"):
        with open(page + ".ipynb", encoding="utf-8") as f:
            cells = json.load(f)["cells"]
        source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    else:
        with open(page + ".md", encoding="utf-8") as f:
            source = f.read()
    heading = re.search(r"^# +(.+)$", source, re.M).group(1)
    return " ".join(re.sub(r"[`*]", "", heading).split())


def test_every_chapter_title_is_in_the_pdf(text):
    # The root page opens the PDF under the book's title, on the title page, without its own.
    with open(os.path.join(BOOK, "_config.yml")) as f:
        titles = [yaml.safe_load(f)["title"]]
    titles += [_title(p) for p in _pages()[1:]]
    assert len(titles) > 10
    missing = [t for t in titles if t.casefold() not in text.casefold()]
    assert not missing, f"chapter titles not found in the PDF's text: {missing}"


def test_every_claim_id_is_in_the_pdf(text):
    ids = list(claims.load())
    missing = [c for c in ids if not re.search(rf"\b{c}\b", text)]
    assert not missing, f"claims not found in the PDF's text: {missing}"


def test_no_tex_source_reaches_the_page(text):
    found = sorted({m.group(0) for m in RAW_TEX.finditer(text)})
    assert not found, f"TeX commands printed as text in the PDF: {found}"


def test_no_character_is_missing_from_the_fonts():
    with open(os.path.join(LATEX, "bn-companion.log"), encoding="utf-8", errors="replace") as f:
        missing = sorted({line.strip() for line in f if line.startswith("Missing character")})
    assert not missing, "characters the fonts lack:\n" + "\n".join(missing)


def test_every_figure_is_in_the_pdf():
    figures = 0
    for page in _pages():
        if os.path.exists(page + ".ipynb"):
            with open(page + ".ipynb", encoding="utf-8") as f:
                cells = json.load(f)["cells"]
            figures += sum(
                "image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", [])
            )
    listing = _run("pdfimages", "-list", PDF).splitlines()[2:]
    images = sum(line.split()[2] == "image" for line in listing)
    assert figures > 10
    assert images == figures, f"{images} images in the PDF, {figures} figures in the chapters"


def test_the_pdf_is_beside_the_html_pages_when_they_are_built():
    html = os.path.join(BOOK, "_build", "html")
    if not os.path.isdir(html):
        pytest.skip("the html pages are not built (make book-build)")
    copy = os.path.join(html, "bn-companion.pdf")
    assert os.path.exists(copy) and os.path.getmtime(copy) >= os.path.getmtime(PDF) - 1


def test_every_verdict_badge_reads_as_its_word(text):
    """The generated pages' verdict badges (tools/verdict_badges.py) reach the PDF as their
    words in bold, one for each role in the staged pages, never as markup."""
    assert "{verdict}" not in text and "DUrole" not in text
    with open(os.path.join(LATEX, "bn-companion.tex"), encoding="utf-8") as f:
        tex = f.read()
    assert r"\providecommand*{\DUroleverdict}[1]{\textbf{#1}}" in tex
    words = re.findall(r"\\DUrole\{verdict\}\{\\DUrole\{verdict-[a-z-]+\}\{([^{}]*)\}\}", tex)
    roles = []
    for page in ("index.md", "A1_claims_index.md"):
        with open(os.path.join(BOOK, "src", page), encoding="utf-8") as f:
            roles += re.findall(r"\{verdict\}`([^`]*)`", f.read())
    roles += [e["verdict"] for entries in _findings().values() for e in entries]
    assert sorted(words) == sorted(roles) and set(words) <= set(claims.VERDICTS)
    for word in set(words):
        assert word in text, f"the verdict {word!r} is not in the PDF's text"


def _findings():
    """The boxes of findings the build handed to Sphinx: ``{chapter: [entry]}``."""
    with open(os.path.join(BOOK, "_config.yml")) as f:
        return yaml.safe_load(f)["sphinx"]["config"]["companion_findings"]


def test_each_chapter_s_box_of_findings_is_in_the_pdf(text):
    from tools.verdict_badges import FINDINGS_TITLE

    boxes = _findings()
    assert boxes and text.count(FINDINGS_TITLE) == len(boxes)
    for entries in boxes.values():
        for entry in entries:
            assert f"{entry['id']} (p. {entry['page']})" in text or entry["page"] == ""


def test_each_listing_of_the_book_is_labelled_with_its_page():
    """The PDF labels each cell that reproduces a listing with the book's page, inside the frame
    of the listing environment (tools/book_listings.py)."""
    from tools import book_listings

    with open(os.path.join(LATEX, "bn-companion.tex"), encoding="utf-8") as f:
        tex = f.read()
    labels = re.findall(
        r"\\begin\{sphinxuseclass\}\{book-listing-label\}\s*(.+?)\s*\\end\{sphinxuseclass\}",
        tex,
        re.S,
    )
    tagged = 0
    for page in _pages():
        if os.path.exists(page + ".ipynb"):
            with open(page + ".ipynb", encoding="utf-8") as f:
                cells = json.load(f)["cells"]
            tagged += sum(book_listings.TAG in c["metadata"].get("tags", []) for c in cells)
    assert tagged > 0 and len(labels) == tagged, (len(labels), tagged)
    labels = [" ".join(x.replace(r"\sphinxAtStartPar", "").split()) for x in labels]
    assert all(re.fullmatch(r"Géron, p\. 34[2-5]", x) for x in labels), labels
    assert r"\newenvironment{sphinxclassbook-listing}" in tex

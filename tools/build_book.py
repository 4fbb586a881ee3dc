"""Build the static book from the executed chapters, offline, with warnings as errors.

- The table of contents is the front page (``tools/front_page.py`` fills book/index.md with the
  verdict totals and the chapter map), then one entry per ``chapters/NN_*.ipynb``, so adding a
  chapter needs no edit here, then the appendices: the claims index (generated here), each
  ``chapters/A<digit>_*.ipynb``, and the references (book/references.md lists the papers of
  book/references.bib that the chapters cite with ``{cite:p}``).
- book/_static holds the book's own stylesheet: the few layout rules the theme has no option
  for (code 88 columns wide at 1280 px, long outputs wrapped but printed tables kept whole:
  `mark_tabular`).
- A PDF edition built before the HTML (``build/pdf/bn-companion.pdf``) is copied next to the
  pages, and the front page links to it.
- The claims index is written by ``tools/claims_index.py`` from the claim reports stored in the
  executed chapters; a claim of ``helpers/chapter/claims.toml`` that its chapter did not report
  stops the build with a message naming both.
- Sphinx reads a staged copy of the notebooks (``build/book/src``) next to the generated index,
  so nothing is written into ``chapters/``. The notebooks are the stored ``chapters/*.ipynb``
  (``make book-build``), or those of the folder given with ``--from`` (``make book`` executes
  every chapter into ``build/executed`` and renders that).
- MathJax comes from the npm package installed under build/npm (never from a CDN, never
  committed); it is staged under the book's ``_static/mathjax`` and named by ``mathjax_path``.
- The rendered pages are the outputs of those .ipynb files; nothing is executed here.
- Each notebook page gets the theme's Colab launch button and a download button for its
  ``.ipynb``. The repository and the tag they point to come from ``pyproject.toml``
  (``tools/colab.py``, which also writes the badge at the top of each chapter): Jupyter Book
  would otherwise point them at its own repository and ``master``.
- A verdict on the generated pages is a badge that carries its word (the ``{verdict}`` role of
  ``tools/verdict_badges.py``, loaded for both builds; its colours are in book/_static).
- Each chapter that checks claims opens with the box of what it finds, drawn by the same
  extension from the claims index's own verdicts and margins (`claims_index.findings`), passed
  in the configuration: the notebooks themselves hold no such box.
- A cell tagged ``book-listing`` is framed and labelled with the book's page
  (``tools/book_listings.py``, both builds).
- A cell with a caption (``mystnb: figure:``) shows one image and nothing else: MyST-NB wraps
  every display output of such a cell in a numbered figure with that caption, so a table
  shown there would be numbered as a figure (`figure_problems`); the build stops, naming the
  cell.
- ``--pdf`` builds the same pages as one PDF instead (``make pdf``): Jupyter Book's LaTeX
  builder and XeLaTeX, from the same stored outputs, into ``build/book/_build/latex/`` as
  ``bn-companion.pdf``, copied beside the html pages when they are built, where the front page
  links to it. The LaTeX settings are in `latex_config`.
"""

import argparse
import glob
import html
import json
import os
import re
import shutil
import subprocess
import sys

from helpers.chapter import claims as claims_mod

import yaml

from tools import book_listings, claims_index, colab, front_page
from tools.common import CHAPTERS, ROOT

OUT = os.path.join(ROOT, "build", "book")
MATHJAX = os.path.join(ROOT, "build", "npm", "node_modules", "mathjax", "es5")
MATHJAX_ENTRY = "tex-chtml-full.js"
#: The PDF's file name, in ``build/book/_build/latex``, ``build/pdf`` and beside the html pages.
PDF_NAME = front_page.PDF_NAME

BOOK = os.path.join(ROOT, "book")
#: Where the PDF edition is expected when there is one; the HTML gets a copy next to its pages.
PDF = os.path.join(ROOT, "build", "pdf", PDF_NAME)


#: What the theme's markup tells screen readers wrongly. Two labels differ from what the reader
#: sees (WCAG 2.5.3, "label in name"): the fold of a hidden cell is named "Toggle hidden
#: content" while it shows "Show code cell source", and the colour-mode button is named "Color
#: mode" while its icon is titled "Light" or "Dark"; without the first label the fold is named
#: by its visible text, without the titles the icons are decorative. And the list of references
#: claims the role of a list, whose items it does not hold (ARIA "required children").
ACCESSIBLE_NAMES = [
    (re.compile(r'<summary aria-label="Toggle hidden content">'), "<summary>"),
    (re.compile(r'<div role="list" class="citation-list">'), '<div class="citation-list">'),
    (re.compile(r'(<i class="theme-switch [^"]*" data-mode="\w+")\s+title="[^"]*"'), r"\1"),
]


#: The outputs MyST-NB renders as rich data, each wrapped in a figure when the cell has one.
DISPLAY_OUTPUTS = ("display_data", "execute_result")

#: Box-drawing characters (U+2500 to U+257F): the tables that `model.summary()` draws.
BOX_DRAWING = re.compile("[\u2500-\u257f]")
#: A line of a text table: three cells at least, apart by two spaces or more.
COLUMNS = re.compile(r"\S {2,}\S.*? {2,}\S")
#: A printed output as MyST-NB renders it: stdout (``stream``) or a ``text/plain`` result.
#: Warnings (``stderr``) are never tables, and keep wrapping.
TEXT_OUTPUT = re.compile(
    r'<div class="output (stream|text_plain) ([^"]*)"><div class="highlight"><pre>(.*?)</pre>',
    re.S,
)


def is_tabular(text):
    """Whether printed text is a table, whose lines must not wrap: it holds box-drawing
    characters (``model.summary()``), or three lines in a row with columns (a printed
    DataFrame). Prose, warnings and the claims' reports are neither."""
    if BOX_DRAWING.search(text):
        return True
    run = 0
    for line in text.splitlines():
        run = run + 1 if COLUMNS.search(line.strip()) else 0
        if run >= 3:
            return True
    return False


def mark_tabular(page):
    """`page` (html) with each printed table's output div given the class ``tabular``
    (book/_static/companion.css keeps its lines whole, in a box that scrolls sideways)."""

    def mark(match):
        text = html.unescape(re.sub(r"<[^>]+>", "", match.group(3)))
        if "tabular" in match.group(2).split() or not is_tabular(text):
            return match.group(0)
        kind, rest = match.group(1), match.group(2)
        return match.group(0).replace(f'"output {kind} {rest}"', f'"output {kind} tabular {rest}"')

    return TEXT_OUTPUT.sub(mark, page)


def figure_problems(notebook, name):
    """What would number something other than one image as a figure in `notebook` (a dict
    read from an .ipynb named `name`): a cell with ``mystnb: figure:`` whose display outputs
    are not exactly one image. A list of sentences, empty when there is nothing wrong."""
    problems = []
    for i, cell in enumerate(notebook.get("cells", [])):
        if "figure" not in cell.get("metadata", {}).get("mystnb", {}):
            continue
        shown = [o for o in cell.get("outputs", []) if o["output_type"] in DISPLAY_OUTPUTS]
        images = [o for o in shown if any(k.startswith("image/") for k in o["data"])]
        if len(shown) != 1 or len(images) != 1:
            kinds = [sorted(o["data"])[0] for o in shown] or ["nothing"]
            problems.append(
                f"{name}, cell {i}: a figure cell must show one image and nothing else, and it "
                f"shows {', '.join(kinds)}: every display output there becomes a figure with "
                "the cell's caption (show a table in a cell of its own, then store the chapter)"
            )
    return problems


def check_figures(paths):
    """`figure_problems` of every notebook in `paths`, as one message (or None)."""
    problems = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            problems += figure_problems(json.load(f), os.path.basename(path))
    return "\n".join(problems) or None


def accessible_names(html_dir):
    """Apply ACCESSIBLE_NAMES and `mark_tabular` to every page of the built book; returns the
    pages changed."""
    changed = 0
    for path in glob.glob(os.path.join(html_dir, "*.html")):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        fixed = mark_tabular(text)
        for pattern, replacement in ACCESSIBLE_NAMES:
            fixed = pattern.sub(replacement, fixed)
        if fixed != text:
            with open(path, "w", encoding="utf-8") as f:
                f.write(fixed)
            changed += 1
    return changed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdf", action="store_true", help="build the PDF instead of html")
    parser.add_argument(
        "--from",
        dest="chapters",
        metavar="DIR",
        default=CHAPTERS,
        help="the executed notebooks to render (default: the stored chapters/*.ipynb)",
    )
    args = parser.parse_args(argv)
    pdf, chapters = args.pdf, args.chapters
    if not pdf and not os.path.exists(os.path.join(MATHJAX, MATHJAX_ENTRY)):
        sys.exit(
            f"MathJax is missing ({MATHJAX}); run `make book-build`, which installs it with npm."
        )
    notebooks = sorted(glob.glob(os.path.join(chapters, "[0-9][0-9]_*.ipynb")))
    if not notebooks:
        sys.exit(
            f"No executed chapters ({os.path.relpath(chapters, ROOT)}/NN_*.ipynb) to build from; "
            "run `make book`."
        )
    appendices = sorted(glob.glob(os.path.join(chapters, "A[0-9]_*.ipynb")))
    names = [os.path.splitext(os.path.basename(p))[0] for p in notebooks]
    wrong = check_figures(notebooks + appendices)
    if wrong:
        sys.exit(f"Something other than one image would be numbered as a figure:\n{wrong}")
    extra = [claims_index.PAGE] + [os.path.splitext(os.path.basename(p))[0] for p in appendices]
    has_pdf = os.path.exists(PDF)

    os.makedirs(OUT, exist_ok=True)
    source = os.path.join(OUT, "src")
    shutil.rmtree(source, ignore_errors=True)
    os.makedirs(source)
    for path in notebooks + appendices:
        shutil.copy2(path, source)
    try:
        claims_index.write(chapters, os.path.join(source, claims_index.PAGE + ".md"))
        claims = claims_mod.load()
        findings = claims_index.findings(claims, claims_index.collect(claims, chapters))
    except claims_index.ClaimsIndexError as err:
        sys.exit(f"The claims index cannot be built: {err}")
    # The HTML side: front page, references, stylesheet, and the PDF edition when built.
    shutil.copy2(os.path.join(BOOK, "references.md"), source)
    shutil.copy2(os.path.join(BOOK, "references.bib"), source)
    try:
        front_page.write(chapters, names + extra, os.path.join(source, "index.md"), has_pdf)
    except (front_page.FrontPageError, claims_index.ClaimsIndexError) as err:
        sys.exit(f"The front page cannot be built: {err}")
    static = os.path.join(OUT, "static")
    shutil.rmtree(static, ignore_errors=True)
    if not pdf:  # the PDF's maths is typeset by XeLaTeX
        shutil.copytree(MATHJAX, os.path.join(static, "mathjax"))
    os.makedirs(static, exist_ok=True)
    shutil.copytree(os.path.join(BOOK, "_static"), static, dirs_exist_ok=True)
    extra_files = os.path.join(OUT, "extra")
    shutil.rmtree(extra_files, ignore_errors=True)
    os.makedirs(extra_files)
    if has_pdf:
        shutil.copy2(PDF, extra_files)

    with open(os.path.join(ROOT, "book", "_config.yml")) as f:
        config = yaml.safe_load(f)
    url, _, tag = colab.project()
    config["repository"] = {"url": url, "branch": tag, "path_to_book": "chapters"}
    config.setdefault("launch_buttons", {})["colab_url"] = colab.COLAB.removesuffix("/github")
    sphinx = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx["html_static_path"] = [static]
    sphinx["html_css_files"] = sorted(os.listdir(os.path.join(BOOK, "_static")))
    sphinx["html_extra_path"] = [extra_files]
    config["bibtex_bibfiles"] = ["references.bib"]
    sphinx["bibtex_reference_style"] = "author_year"
    # The search is a form in the sidebar: the theme's search buttons (header and sidebar)
    # show "Ctrl+K" outside their accessible name, which screen readers then do not announce.
    config["sphinx"]["recursive_update"] = True
    sphinx["html_theme_options"] = {"navbar_persistent": []}
    sphinx["html_sidebars"] = {
        "**": ["navbar-logo.html", "icon-links.html", "search-field.html", "sbt-sidebar-nav.html"]
    }
    sphinx["mathjax_path"] = f"mathjax/{MATHJAX_ENTRY}"
    # The {verdict} role of the generated pages: a badge in html, the bold word in LaTeX.
    extensions = config["sphinx"].setdefault("local_extensions", {})
    extensions["verdict_badges"] = os.path.dirname(os.path.abspath(__file__))
    sphinx["companion_findings"] = findings
    # The frame and label of the cells that reproduce the book's listings.
    extensions["book_listings"] = os.path.dirname(os.path.abspath(__file__))
    latex_config(config, pdf)
    config_path = os.path.join(OUT, "_config.yml")
    with open(config_path, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False, allow_unicode=True)

    toc = {"format": "jb-book", "root": "index", "parts": []}
    toc["parts"].append({"caption": "Chapters", "chapters": [{"file": n} for n in names]})
    back = extra + ["references"]
    toc["parts"].append({"caption": "Appendices", "chapters": [{"file": n} for n in back]})
    toc_path = os.path.join(OUT, "_toc.yml")
    with open(toc_path, "w") as f:
        yaml.safe_dump(toc, f, sort_keys=False)

    if pdf:
        return build_pdf(source, config_path, toc_path)
    shutil.rmtree(os.path.join(OUT, "_build"), ignore_errors=True)
    result = subprocess.run(jupyter_book(source, config_path, toc_path))
    if result.returncode:
        sys.exit(f"The book build failed (warnings are errors): exit status {result.returncode}")
    accessible_names(os.path.join(OUT, "_build", "html"))
    print(
        f"Built {len(names)} chapters and {len(extra)} appendices into "
        f"{os.path.relpath(os.path.join(OUT, '_build', 'html'), ROOT)}/index.html"
    )


#: A stand-in for ``bbm.sty``. The LaTeX class of Jupyter Book (``jupyterBook.cls``, from
#: sphinx-jupyterbook-latex) loads the ``bbm`` package, which Debian ships only in the 600 MB
#: texlive-fonts-extra, to define shorthands such as ``\RR`` that no chapter uses. This file
#: gives its one command, ``\mathbbm``, the double-struck letters of amssymb instead.
BBM_STY = r"""\NeedsTeXFormat{LaTeX2e}
\ProvidesPackage{bbm}[2026/12/06 stand-in of the bn-companion book]
\RequirePackage{amssymb}
\providecommand{\mathbbm}{\mathbb}
"""
#: Sphinx's XeLaTeX fonts (FreeFont), except code in DejaVu Sans Mono: FreeMono's oblique face,
#: which Sphinx uses for comments, lacks maths symbols such as ⊗ that the code comments use.
FONTS = r"""
\setmainfont{FreeSerif}[Extension=.otf, UprightFont=*, ItalicFont=*Italic,
  BoldFont=*Bold, BoldItalicFont=*BoldItalic]
\setsansfont{FreeSans}[Extension=.otf, UprightFont=*, ItalicFont=*Oblique,
  BoldFont=*Bold, BoldItalicFont=*BoldOblique]
\setmonofont{DejaVu Sans Mono}[Scale=0.84]
"""


def latex_config(config, pdf):
    """Add the PDF's settings to the book's configuration (`pdf`: this is the PDF build)."""
    latex = config.setdefault("latex", {})
    latex["latex_engine"] = "xelatex"
    title, author = config["title"], config["author"]
    latex["latex_documents"] = {
        "targetname": PDF_NAME.replace(".pdf", ".tex"),
        # Sphinx sets the author in one line on the title page: break it after the first comma.
        "author": author.replace(", ", r"\\", 1),
        "title": title,
    }
    if not pdf:
        return
    extra = os.path.join(OUT, "latex")
    os.makedirs(extra, exist_ok=True)
    with open(os.path.join(extra, "bbm.sty"), "w") as f:
        f.write(BBM_STY)
    sphinx = config.setdefault("sphinx", {})
    sphinx.setdefault("local_extensions", {})["latex_outputs"] = os.path.dirname(__file__)
    sphinx["config"].update(
        {
            "latex_additional_files": [os.path.join(extra, "bbm.sty")],
            "latex_elements": {
                "fontpkg": FONTS,
                # The frame and label of the book's listings (tools/book_listings.py).
                "preamble": book_listings.LATEX,
                # Read on a screen: no blank pages to start chapters on the right.
                "extraclassoptions": "openany,oneside",
                # The root page follows the contents: without this, its pages' foot would
                # say "CONTENTS".
                "tableofcontents": r"\sphinxtableofcontents\markboth{}{}",
            },
            "latex_use_xindy": False,  # the book has no index of terms
            # Markdown outputs (such as chapter 6's benchmark table) with MyST's tables.
            "nb_render_markdown_format": "myst",
        }
    )


def jupyter_book(source, config_path, toc_path, *options):
    """The command that builds the staged book into `OUT`, warnings as errors."""
    return [
        os.path.join(os.path.dirname(sys.executable), "jupyter-book"),
        "build",
        source,
        "--config",
        config_path,
        "--toc",
        toc_path,
        "--path-output",
        OUT,
        *options,
        "--warningiserror",
        "--keep-going",
        "--quiet",
    ]


def build_pdf(source, config_path, toc_path):
    """Run the LaTeX builder and XeLaTeX; copy the PDF to `PDF` and beside the html pages."""
    latex_dir = os.path.join(OUT, "_build", "latex")
    shutil.rmtree(latex_dir, ignore_errors=True)
    cmd = jupyter_book(source, config_path, toc_path, "--builder", "pdflatex")
    # latexmk stops at the first TeX error instead of asking on the terminal.
    env = dict(os.environ, LATEXMKOPTS="-interaction=nonstopmode -halt-on-error")
    result = subprocess.run(cmd, env=env)
    built = os.path.join(latex_dir, PDF_NAME)
    if result.returncode or not os.path.exists(built):
        sys.exit(
            f"The PDF build failed (exit status {result.returncode}); "
            f"see {os.path.relpath(latex_dir, ROOT)}/*.log"
        )
    # The html build starts from an empty build/book/_build; it takes the PDF from here.
    os.makedirs(os.path.dirname(PDF), exist_ok=True)
    shutil.copy2(built, PDF)
    html = os.path.join(OUT, "_build", "html")
    if os.path.isdir(html):
        shutil.copy2(built, html)
    print(f"Built {os.path.relpath(built, ROOT)} (and {os.path.relpath(PDF, ROOT)})")


if __name__ == "__main__":
    main()

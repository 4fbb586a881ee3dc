"""The built book, as a reader's browser sees it: headless Chromium on a local web server.

Every page is opened once at 1280 px and once at 390 px (a phone), in one browser session:
- equations are typeset by MathJax (served by the book itself), every figure loads, and nothing
  (script, stylesheet, font, image) is requested from another host;
- nothing extends past the text column or scrolls sideways at 1280 px, code has room for the 88
  columns the chapters are formatted to, and at 390 px a wide table scrolls inside its own box;
  a printed table (model.summary()) is never wrapped: it scrolls in its own box at 390 px and
  fits the column at 1280 px; the contents sidebar stays in the window; every fold says what
  it holds;
- every figure has a text alternative that says what it shows (not its file name), unique in
  the book; every formula a reader sees is in the accessibility tree as MathML; no page shows
  the parameter checks; every link to an anchor finds it;
- axe-core finds no serious or critical accessibility violation, colour contrast included.
The browser sees only the fonts of a fresh Debian machine (tests/fonts.conf), whatever fonts
this machine has gained, so that a layout that passes here passes there.
Every notebook page links to its own notebook on Colab (the badge under its title and the
theme's launch button) and offers the .ipynb for download.
The same checks run with the theme in dark mode under BOOK_MODE=dark (`make book-dark`).
Needs `make book-build` first. Without Chromium the tests skip locally; under CI they fail.
Every test here is marked `browser`: `make book-check` selects them (`-m browser`), and the
other test runs leave them out.
"""

import functools
import glob
import html.parser
import http.server
import json
import os
import re
import threading
import urllib.parse

import jupytext
import pytest

from tools import colab

from tool_modules import chromium, foreign, require

# The built book in a browser: make book-check and make book-dark select these (`-m browser`).
pytestmark = pytest.mark.browser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HTML = os.path.join(ROOT, "build", "book", "_build", "html")
PAGES = sorted(
    os.path.basename(p)
    for pattern in ("index.html", "[0-9][0-9]_*.html", "A[0-9]_*.html", "references.html")
    for p in glob.glob(os.path.join(HTML, pattern))
)
AXE = os.path.join(ROOT, "build", "npm", "node_modules", "axe-core", "axe.min.js")
#: "light" (make test) or "dark" (make book-dark): the theme's mode every page is opened in.
MODE = os.environ.get("BOOK_MODE", "light")
WIDE, PHONE = 1280, 390


@pytest.fixture(scope="module")
def server():
    require(PAGES, f"no built book in {HTML}: run `make book-build`")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=HTML)
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = chromium(tmp_path_factory.mktemp("chromium"))
    yield driver
    driver.quit()


def _open(browser, url):
    browser.get(url)
    # Wait until MathJax (when the page loads it) has finished typesetting.
    return browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const report = () => done({
          math: document.querySelectorAll('.math').length,
          typeset: document.querySelectorAll('mjx-container').length,
          raw: [...document.querySelectorAll('.math')]
            .filter(e => !e.querySelector('mjx-container')).length,
          mathjax: !!(window.MathJax && window.MathJax.version),
          images: [...document.images]
            .map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0]),
          resources: performance.getEntriesByType('resource').map(r => r.name),
          links: [...document.querySelectorAll('script[src], link[href], img[src]')]
                   .map(e => e.src || e.href),
          anchors: [...document.querySelectorAll('a[href]')].map(a => ({
            href: a.href,
            text: a.textContent.trim(),
            download: a.classList.contains('btn-download-source-button'),
            img: a.querySelector('img') && {
              alt: a.querySelector('img').alt,
              loaded: a.querySelector('img').complete
                && a.querySelector('img').naturalWidth > 0,
            },
          })),
        });
        if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
          MathJax.startup.promise.then(report, report);
        } else { report(); }
        """
    )


#: What a page looks like at the window's width: what extends past the text column or scrolls
#: sideways inside it (MathJax's inner boxes aside: their container is measured), the tables
#: past the column, whether the page itself scrolls sideways, room for 88 columns of code, the
#: figures' text alternatives, the visible text, the theme's mode.
LAYOUT = """
const article = document.querySelector('article.bd-article');
const pad = parseFloat(getComputedStyle(article).paddingRight);
const edge = article.getBoundingClientRect().right - pad + 1;
const label = e => e.tagName.toLowerCase() + (e.className ? '.' + String(e.className)
  .trim().split(/\\s+/).join('.') : '') + ': ' + (e.innerText || '').trim().slice(0, 60);
const longest = e => Math.max(...e.textContent.split('\\n').map(l => l.length));
// A printed table (marked `tabular` by tools/build_book.py) wider than the 88 columns that the
// column holds scrolls in its own box at any width.
const wideTable = e => e.matches('.output.tabular pre') && longest(e) > 88;
const overflowing = [];
for (const e of article.querySelectorAll('*')) {
  const tag = e.tagName.toLowerCase();
  if ((tag.startsWith('mjx-') && tag !== 'mjx-container') || e.closest('mjx-assistive-mml')) {
    continue;
  }
  if (!e.getClientRects().length || getComputedStyle(e).visibility === 'hidden') continue;
  const scrolls = e.scrollWidth > e.clientWidth + 1
    && getComputedStyle(e).overflowX !== 'visible' && !wideTable(e);
  const r = e.getBoundingClientRect();
  const past = r.width > 0 && r.right > edge && !e.closest('.pst-scrollable-table-container,'
    + ' .output.text_html');
  if (scrolls || past) overflowing.push(label(e));
}
const boxed = t => t.closest('.pst-scrollable-table-container, .output.text_html');
const code = article.querySelector('div.cell_input pre');
let columns = null;
if (code) {
  const probe = document.createElement('span');
  probe.textContent = 'x'.repeat(88);
  code.appendChild(probe);
  const style = getComputedStyle(code);
  const room = code.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  columns = {fits: probe.getBoundingClientRect().width <= room, font: style.fontSize};
  probe.remove();
}
// Each printed table's lines (marked `tabular` by tools/build_book.py; box-drawn text counts
// as a table even where the page lacks the class): how many render on more than one row (a
// wrapped line), whether its box scrolls sideways, and its longest line in characters.
const tabular = [...article.querySelectorAll('div.cell_output pre')].filter(pre =>
  pre.closest('.output.tabular') || /[\u2500-\u257f]/.test(pre.textContent)).map(pre => {
  let wrapped = 0;
  const walker = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    let start = 0;
    for (const line of node.data.split('\\n')) {
      if (line.trim()) {
        const range = document.createRange();
        range.setStart(node, start);
        range.setEnd(node, start + line.length);
        wrapped += new Set([...range.getClientRects()].map(r => Math.round(r.top))).size > 1;
      }
      start += line.length + 1;
    }
  }
  return {first: pre.textContent.trim().split('\\n')[0].slice(0, 40), wrapped,
          scrolls: pre.scrollWidth > pre.clientWidth + 1, longest: longest(pre),
          boxes: pre.textContent.includes('\u2503')};
});
// The "Contents" sidebar (shown at 1280 px): whether it scrolls sideways, and what of it
// extends past the window.
const side = document.querySelector('.bd-sidebar-secondary');
const sidebar = side && side.getClientRects().length ? {
  scrolls: side.scrollWidth > side.clientWidth + 1,
  past: [...side.querySelectorAll('*')].filter(e => e.getClientRects().length
    && e.getBoundingClientRect().right > document.documentElement.clientWidth).map(label),
} : null;
return {
  overflowing,
  tabular,
  sidebar,
  folds: [...document.querySelectorAll('details summary, .toggle-button')]
    .map(e => e.textContent.replace(/\\s+/g, ' ').trim()),
  tables_past: [...article.querySelectorAll('table')]
    .filter(t => t.getBoundingClientRect().right > edge && !boxed(t)).map(label),
  tables_unboxed: [...article.querySelectorAll('table')]
    .filter(t => t.getBoundingClientRect().right > edge
      && !(boxed(t) && boxed(t).getBoundingClientRect().right <= edge
           && getComputedStyle(boxed(t)).overflowX === 'auto')).map(label),
  tables_scrolling: [...article.querySelectorAll('table')]
    .filter(t => boxed(t) && boxed(t).scrollWidth > boxed(t).clientWidth + 1).length,
  page_scrolls: document.documentElement.scrollWidth > window.innerWidth,
  columns,
  figures: [...article.querySelectorAll('img')]
    .filter(i => (i.getAttribute('src') || '').includes('_images/'))
    .map(i => ({src: i.getAttribute('src'), alt: i.getAttribute('alt'),
                natural: i.naturalWidth, rendered: i.getBoundingClientRect().width})),
  // Each numbered figure: its number as shown, and what it holds besides its caption.
  numbered: [...article.querySelectorAll('figure')].map(f => ({
    number: (f.querySelector('.caption-number') || {}).textContent || null,
    images: f.querySelectorAll('img').length,
    tables: f.querySelectorAll('table, pre, .output.text_html').length,
    caption: ((f.querySelector('figcaption') || {}).textContent || '').trim().slice(0, 60),
  })),
  text: article.innerText,
  badges: [...article.querySelectorAll('span.verdict')].map(e => ({
    text: e.innerText.trim(),
    classes: [...e.querySelectorAll('span')].map(s => s.className),
    colour: getComputedStyle(e.firstElementChild || e).backgroundColor,
  })),
  tables: [...article.querySelectorAll('table')].map(t => ({
    head: [...t.querySelectorAll('thead th')].map(th => th.innerText.trim()),
    rows: [...t.querySelectorAll('tbody tr')].map(tr =>
      [...tr.children].map(td => td.innerText.replace(/\\s+/g, ' ').trim())),
  })),
  ids: [...document.querySelectorAll('[id]')].map(e => e.id),
  mode: document.documentElement.dataset.theme,
  // The box of what the chapter finds: each line's text and link, and whether the box comes
  // before the page's first section.
  findings: [...article.querySelectorAll('.topic.findings')].map(box => ({
    title: (box.querySelector('.topic-title') || {}).textContent || '',
    items: [...box.querySelectorAll('li')].map(li => ({
      text: li.innerText.replace(/\\s+/g, ' ').trim(),
      href: li.querySelector('a') ? li.querySelector('a').getAttribute('href') : null,
    })),
    first: !article.querySelector('section section') || !!(box.compareDocumentPosition(
      article.querySelector('section section')) & Node.DOCUMENT_POSITION_FOLLOWING),
  })),
  // Each framed listing of the book: its label, its frame's width, and its code.
  listings: [...article.querySelectorAll('div.cell_input.book-listing')].map(e => ({
    label: (e.querySelector('.book-listing-label') || {}).innerText || '',
    border: parseFloat(getComputedStyle(e).borderTopWidth),
    code: (e.querySelector('pre') || {}).textContent || '',
  })),
};
"""

AXE_RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ['violations']}).then(
  r => done(r.violations.filter(v => ['serious', 'critical'].includes(v.impact)).map(v =>
    `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join('; ')}`)),
  e => done([`axe-core failed: ${e}`]));
"""


def _maths_read(browser):
    """``(formulas, formulas a screen reader gets)`` on the open page: MathJax's MathML copies
    outside collapsed blocks, and the MathML maths in Chromium's accessibility tree."""
    shown = browser.execute_script(
        "return [...document.querySelectorAll('mjx-assistive-mml math')]"
        ".filter(m => !m.closest('details:not([open]), .toggle-hidden')).length"
    )
    tree = browser.execute_cdp_cmd("Accessibility.getFullAXTree", {})["nodes"]
    read = sum(
        n.get("role", {}).get("value") in ("MathMLMath", "math") and not n.get("ignored")
        for n in tree
    )
    return shown, read


@pytest.fixture(scope="module")
def visits(server, browser):
    """Every page opened once at 1280 px (state, layout, axe-core) and once at 390 px (layout),
    in the theme's MODE."""
    require(os.path.exists(AXE), f"axe-core is missing ({AXE}): run `make book-build`")
    with open(AXE, encoding="utf-8") as f:
        axe = f.read()
    browser.get(f"{server}/{PAGES[0]}")
    # the theme's colour-mode switch keeps the reader's choice here
    browser.execute_script("localStorage.setItem('mode', arguments[0])", MODE)
    seen = {}
    browser.set_window_size(WIDE, 1024)
    for page in PAGES:
        state = _open(browser, f"{server}/{page}")
        state["wide"] = browser.execute_script(LAYOUT)
        browser.execute_script(axe)
        state["axe"] = browser.execute_async_script(AXE_RUN)
        seen[page] = state
    browser.set_window_size(PHONE, 844)
    for page in PAGES:
        _open(browser, f"{server}/{page}")
        seen[page]["phone"] = browser.execute_script(LAYOUT)
        seen[page]["maths_read"] = _maths_read(browser)
    browser.set_window_size(WIDE, 1024)
    return seen


@pytest.mark.parametrize("page", PAGES or ["<none>"])
def test_page_reads_offline(page, server, visits):
    state = visits[page]
    assert state["wide"]["mode"] == MODE, f"{page} is not in {MODE} mode"
    assert not foreign(state["resources"] + state["links"], server), "loads from another host"
    broken = [src for src, ok in state["images"] if not ok]
    assert not broken, f"{page}: figures that did not load: {broken}"
    if state["math"]:
        assert state["mathjax"], f"{page} has maths but MathJax did not load"
        assert state["raw"] == 0 and state["typeset"] >= state["math"], (
            f"{page}: {state['raw']} of {state['math']} maths elements left as raw TeX"
        )


#: The pages rendered from a chapter's notebook (the claims index is generated Markdown).
NOTEBOOK_PAGES = [
    p for p in PAGES if os.path.exists(os.path.join(ROOT, "chapters", p[:-5] + ".ipynb"))
]


@pytest.mark.parametrize("page", NOTEBOOK_PAGES or ["<none>"])
def test_notebook_page_opens_in_colab_and_downloads_its_notebook(page, visits):
    import urllib.request

    chapter = page[: -len(".html")]
    colab_url = colab.colab_url(chapter)
    state = visits[page]
    to_colab = [a for a in state["anchors"] if a["href"] == colab_url]
    badges = [a for a in to_colab if a["img"] and a["img"]["alt"] == "Open in Colab"]
    assert badges and all(a["img"]["loaded"] for a in badges), f"{page}: no Colab badge"
    assert any(a is not b for a in to_colab for b in badges), f"{page}: no Colab launch button"
    others = {a["href"] for a in state["anchors"] if "colab.research.google.com" in a["href"]}
    assert others == {colab_url}, f"{page}: Colab links elsewhere: {others - {colab_url}}"
    downloads = [
        a["href"] for a in state["anchors"] if a["download"] and a["href"].endswith(".ipynb")
    ]
    assert len(downloads) == 1, f"{page}: not one download button for the notebook"
    with urllib.request.urlopen(downloads[0]) as response:
        served = json.load(response)
    with open(os.path.join(ROOT, "chapters", chapter + ".ipynb"), encoding="utf-8") as f:
        stored = json.load(f)
    assert [c["source"] for c in served["cells"]] == [c["source"] for c in stored["cells"]]


def test_book_has_equations_and_figures(server, visits):
    """At least one page typesets equations and at least one shows a figure, so the checks
    above are not vacuous."""
    states = visits
    assert any(s["typeset"] > 0 for s in states.values()), "no page has typeset equations"
    assert any(
        ok for s in states.values() for src, ok in s["images"] if src and "_images" in src
    ), "no page shows a figure"
    # MathJax came from the book itself
    mathjax = {u for s in states.values() for u in s["resources"] if "mathjax" in u}
    assert mathjax and all(u.startswith(server) for u in mathjax)


# Words about how the project is built and tested. Readers get the chapters, not our tooling:
# that belongs in CONTRIBUTING.md and the commit messages.
TOOLING = re.compile(
    r"\bnbval\b|\bpytest\b|\btests/|\bCI\b|\bduring development\b|\bnot checked when re-run\b",
    re.IGNORECASE,
)


class _VisibleText(html.parser.HTMLParser):
    """The text a reader sees on a page: tag contents, without attributes, scripts or styles."""

    def __init__(self):
        super().__init__()
        self.parts, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag):
        self._skip -= tag in ("script", "style") and self._skip > 0

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


@pytest.mark.parametrize("page", PAGES)
def test_page_does_not_talk_about_tooling(page):
    require(PAGES, f"no built book in {HTML}: run `make book-build`")
    parser = _VisibleText()
    with open(os.path.join(HTML, page), encoding="utf-8") as f:
        parser.feed(f.read())
    text = " ".join(parser.parts)
    found = sorted({m.group(0) for m in TOOLING.finditer(text)})
    assert not found, f"{page} mentions {found}"


def test_tooling_check_is_not_vacuous():
    parser = _VisibleText()
    parser.feed('<div class="tag_nbval-ignore-output"><p>checked by nbval in CI</p></div>')
    text = " ".join(parser.parts)
    assert sorted({m.group(0) for m in TOOLING.finditer(text)}) == ["CI", "nbval"]


# --- layout: nothing cut off at 1280 px; tables scroll in their own box on a phone -----------


@pytest.mark.parametrize("page", PAGES or ["<none>"])
def test_nothing_extends_past_the_column_at_1280_px(page, visits):
    wide = visits[page]["wide"]
    assert not wide["overflowing"], f"{page}: past the column or scrolling: {wide['overflowing']}"
    assert not wide["tables_past"], f"{page}: tables past the column: {wide['tables_past']}"
    assert not wide["page_scrolls"], f"{page} scrolls sideways at {WIDE} px"
    if wide["columns"]:
        assert wide["columns"]["fits"], f"{page}: code has no room for 88 columns at {WIDE} px"
        # the theme's code font (0.875 rem), not a smaller one bought to make code fit
        assert float(wide["columns"]["font"].removesuffix("px")) >= 14, wide["columns"]


@pytest.mark.parametrize("page", PAGES or ["<none>"])
def test_on_a_phone_wide_tables_scroll_in_their_own_box(page, visits):
    phone = visits[page]["phone"]
    assert not phone["page_scrolls"], f"{page} scrolls sideways at {PHONE} px"
    assert not phone["tables_unboxed"], f"{page}: tables that push the page at {PHONE} px"


@pytest.mark.parametrize("page", PAGES or ["<none>"])
def test_printed_tables_keep_their_lines_whole(page, visits):
    """A printed table (model.summary()'s box drawing, a printed DataFrame) is never wrapped:
    at 390 px it scrolls in its own box, and at 1280 px one of 88 columns or fewer fits the
    column without scrolling."""
    for width, layout in ((WIDE, visits[page]["wide"]), (PHONE, visits[page]["phone"])):
        wrapped = [t["first"] for t in layout["tabular"] if t["wrapped"]]
        assert not wrapped, f"{page}: printed tables wrapped at {width} px: {wrapped}"
    scroll = [t["first"] for t in visits[page]["wide"]["tabular"] if t["scrolls"]]
    narrow = [t["first"] for t in visits[page]["wide"]["tabular"] if t["longest"] <= 88]
    assert not set(scroll) & set(narrow), f"{page}: tables that scroll at {WIDE} px: {scroll}"


@pytest.mark.parametrize("page", PAGES or ["<none>"])
def test_the_contents_sidebar_stays_in_the_window(page, visits):
    sidebar = visits[page]["wide"]["sidebar"]
    if sidebar:
        assert not sidebar["scrolls"], f"{page}: the contents sidebar scrolls sideways"
        assert not sidebar["past"], f"{page}: past the window's edge: {sidebar['past']}"


@pytest.mark.parametrize("page", NOTEBOOK_PAGES or ["<none>"])
def test_every_fold_says_what_it_holds(page, visits):
    """A folded cell is labelled by what it holds (mystnb's code_prompt_show), never by the
    default "Show code cell source"."""
    default = [f for f in visits[page]["wide"]["folds"] if "code cell" in f]
    assert not default, f"{page}: folds with the default label: {default}"


@pytest.mark.parametrize("page", PAGES or ["<none>"])
def test_axe_core_finds_no_serious_violation(page, visits):
    """axe-core, run on every page at 1280 px in the theme's MODE: no serious or critical
    violation, colour contrast included (the verdict badges' colours in light and dark mode)."""
    assert visits[page]["axe"] == [], f"{page}: {visits[page]['axe']}"


@pytest.mark.parametrize("page", PAGES or ["<none>"])
def test_every_formula_still_reaches_a_screen_reader(page, visits):
    """The MathML copy that the stylesheet shrinks to a 1 px box (so that it cannot widen the
    page) is still in the accessibility tree, for every formula a reader can see."""
    shown, read = visits[page]["maths_read"]
    assert read == shown, f"{page}: {shown} formulas, {read} of them read by a screen reader"


def test_the_layout_checks_are_not_vacuous(visits):
    """On a phone some tables are wider than the screen (and scroll in their box); at 1280 px
    the code of every notebook page was measured; formulas were found for the screen reader."""
    assert sum(s["phone"]["tables_scrolling"] for s in visits.values()) > 0
    summaries = [t for s in visits.values() for t in s["phone"]["tabular"] if t["boxes"]]
    assert summaries and any(t["scrolls"] for t in summaries), "no box-drawn table on a phone"
    assert all(s["wide"]["sidebar"] for p, s in visits.items() if p in NOTEBOOK_PAGES)
    assert sum(len(s["wide"]["folds"]) for s in visits.values()) > 0
    assert sum(s["maths_read"][0] for s in visits.values()) > 0
    assert all(visits[p]["wide"]["columns"] for p in NOTEBOOK_PAGES)


# --- figures: described, uniquely, in words from the chapter's code -----------------------


def _stored_figures():
    """The figures the executed chapters store, in cells the book shows."""
    count = 0
    for path in glob.glob(os.path.join(ROOT, "chapters", "*.ipynb")):
        with open(path, encoding="utf-8") as f:
            notebook = json.load(f)
        for cell in notebook["cells"]:
            if {"remove-cell", "remove-output"} & set(cell["metadata"].get("tags", [])):
                continue
            count += sum("image/png" in o.get("data", {}) for o in cell.get("outputs", []))
    return count


def test_every_figure_says_what_it_shows(visits):
    figures = [f for s in visits.values() for f in s["wide"]["figures"]]
    assert figures and len(figures) == _stored_figures(), "a stored figure is not on its page"
    problems = []
    for figure in figures:
        alt = (figure["alt"] or "").strip()
        name = os.path.basename(figure["src"])
        if len(alt.split()) < 8:
            problems.append(f"{name}: too short to say what it shows: {alt!r}")
        elif name.split(".")[0] in alt or re.search(r"\.(png|svg|jpe?g)\b", alt):
            problems.append(f"{name}: its text alternative is a file name: {alt!r}")
        elif re.search(r"\d", alt):  # numbers come from the code (glue), never typed
            problems.append(f"{name}: a typed number in its text alternative: {alt!r}")
    assert not problems, "\n".join(problems)
    alts = [f["alt"] for f in figures]
    assert len(set(alts)) == len(alts), "two figures share a text alternative"


def _png_dpi(path):
    """The pixels per inch a PNG was saved at (its pHYs chunk, which matplotlib writes)."""
    with open(path, "rb") as f:
        data = f.read()
    at = data.find(b"pHYs")
    assert at > 0, f"{path} does not say its resolution"
    x_per_metre = int.from_bytes(data[at + 4 : at + 8], "big")
    assert data[at + 12] == 1, f"{path}: its resolution is not in pixels per metre"
    return x_per_metre * 0.0254


def test_the_text_of_every_figure_is_10_px_or_more_at_1280_px(visits):
    """The smallest text of a figure, `figures.SMALLEST_PT` points (tests/test_chapter_figures.py
    checks the style and every chapter's sizes against it), is at least 10 px on screen: its
    size in the PNG (points at the PNG's dpi) times the width the page shows the PNG at over its
    natural width. Issue 29 measured a 7-point legend of 1,390 px shrunk to 792: 5.5 px."""
    from helpers.chapter import figures

    measured, small = [], []
    for page, state in visits.items():
        for figure in state["wide"]["figures"]:
            path = os.path.join(HTML, "_images", os.path.basename(figure["src"]))
            px = figures.on_screen_px(
                figures.SMALLEST_PT, figure["natural"], figure["rendered"], _png_dpi(path)
            )
            measured.append(px)
            if px < 10:
                small.append(
                    f"{page}: {os.path.basename(path)}, {figure['natural']} px shown at "
                    f"{figure['rendered']:.0f}: its {figures.SMALLEST_PT}-point text is "
                    f"{px:.1f} px"
                )
    assert measured, "no figure measured"
    assert not small, "figure text below 10 px at 1280 px:\n" + "\n".join(small)


def test_figures_are_numbered_in_order_and_only_images_are_figures(visits):
    """Figure numbers run 1, 2, ... N through the book's pages in their order (so on each page
    in order, with no gap), every numbered figure holds one image and no table or printed
    output, and no two figures share a caption (MyST-NB once numbered 01's table "Fig. 3",
    with the caption of Fig. 2)."""
    numbers, problems, captions = [], [], []
    for page in NOTEBOOK_PAGES:
        for figure in visits[page]["wide"]["numbered"]:
            match = re.fullmatch(r"Fig\. (\d+)\s*", figure["number"] or "")
            if not match:
                problems.append(f"{page}: a figure without a number: {figure['caption']!r}")
                continue
            numbers.append(int(match.group(1)))
            captions.append(figure["caption"])
            if figure["images"] != 1 or figure["tables"]:
                problems.append(
                    f"{page}: Fig. {match.group(1)} holds {figure['images']} image(s) and "
                    f"{figure['tables']} table(s) or printed output(s)"
                )
    assert numbers, "no numbered figure in the book"
    assert numbers == list(range(1, len(numbers) + 1)), f"figure numbers in page order: {numbers}"
    assert not problems, "\n".join(problems)
    assert len(set(captions)) == len(captions), "two figures share a caption"
    shown = sum(len(visits[p]["wide"]["figures"]) for p in NOTEBOOK_PAGES)
    assert shown == len(numbers), f"{shown} images on the chapters' pages, {len(numbers)} figures"


def test_every_figure_is_opaque():
    """A figure with a transparent background would show dark mode's background through."""
    from PIL import Image

    require(PAGES, f"no built book in {HTML}: run `make book-build`")
    images = glob.glob(os.path.join(HTML, "_images", "*.png"))
    assert images
    for path in images:
        with Image.open(path) as image:
            if "A" in image.getbands():
                assert image.getchannel("A").getextrema()[0] == 255, f"{path} is transparent"


# --- the notebook plumbing, links, versions, sources --------------------------------------


CHECK_CALL = re.compile(r"\bcheck\(\s*globals\(\)")


@pytest.mark.parametrize("page", NOTEBOOK_PAGES or ["<none>"])
def test_the_page_folds_the_plumbing_and_says_where_the_parameters_are(page, visits):
    text = visits[page]["wide"]["text"]
    assert not CHECK_CALL.search(text), f"{page} shows its parameter checks"
    assert "_SOURCE = " not in text, f"{page} shows its install cell"
    assert "parameters cell, folded here" in text, f"{page} does not say where its parameters are"


def test_the_plumbing_check_is_not_vacuous():
    assert CHECK_CALL.search("check(\n    globals(),\n    seed=Int(0),\n)")
    md = os.path.join(ROOT, "chapters", "01_equations.md")
    with open(md, encoding="utf-8") as f:
        assert CHECK_CALL.search(f.read()), "the notebooks keep their parameter checks"


@pytest.mark.parametrize("page", PAGES or ["<none>"])
def test_every_link_to_an_anchor_finds_it(page, visits):
    broken = []
    for anchor in visits[page]["anchors"]:
        url = urllib.parse.urlsplit(anchor["href"])
        target = os.path.basename(url.path) or "index.html"
        if not url.fragment or not url.netloc.startswith("127.0.0.1") or target not in visits:
            continue
        if urllib.parse.unquote(url.fragment) not in visits[target]["wide"]["ids"]:
            broken.append(f"{anchor['text']!r} -> {target}#{url.fragment}")
    assert not broken, f"{page}: links to anchors that do not exist: {broken}"


@pytest.mark.parametrize("page", NOTEBOOK_PAGES or ["<none>"])
def test_the_page_says_which_versions_produced_its_outputs(page, visits):
    text = visits[page]["wide"]["text"]
    assert re.search(r"package\s+this run\s+the book", text), f"{page} names no versions"
    assert re.search(r"TensorFlow\s+\d+\.\d+", text), f"{page} names no TensorFlow version"


#: The papers each chapter relies on, by the first author's name.
CITED = {
    "04_placement.html": ["Ioffe"],
    "07_evidence.html": ["Ioffe", "Zhang"],
    "09_beyond_one_batch.html": ["Wu", "Ba"],
}


def test_the_chapters_cite_their_sources_and_the_references_list_them(visits):
    require("references.html" in visits, "no references page")
    listed = visits["references.html"]["wide"]["text"]
    entries = set(visits["references.html"]["wide"]["ids"])
    for page, authors in CITED.items():
        cites = {
            a["href"].split("#")[1]
            for a in visits[page]["anchors"]
            if "references.html#" in a["href"]
        }
        assert len(cites) >= len(authors) and cites <= entries, f"{page}: citations {cites}"
        for author in authors:
            assert re.search(rf"\b{author}\b", visits[page]["wide"]["text"]), (page, author)
            assert re.search(rf"\b{author}\b", listed), f"the references lack {author}"


# --- the claims index and the front page at a glance -------------------------------------


#: The first screen at 1280 px: a laptop's 1280 × 800 display, the browser's bars aside. The
#: front page's map of the chapters starts within it.
FIRST_SCREEN = 800
#: A margin as the claims index's summary tables show it (tools/claims_index.worst_margin).
MARGIN = re.compile(
    r"−?[\d,.]+ × (seeds’ spread|seeds' spread|stated noise)(, within it)?|exact(, not met)?"
    r"|n/a(, not met)?"
)


@pytest.mark.parametrize("page", PAGES or ["<none>"])
def test_every_verdict_badge_holds_its_word(page, visits):
    """A verdict is never colour alone: each badge's text is its word, in the class of that
    word's colours, and each word has its own colour."""
    from helpers.chapter.claims import VERDICTS

    from tools.verdict_badges import css_class

    badges = visits[page]["wide"]["badges"]
    wrong = [
        b for b in badges if b["text"] not in VERDICTS or b["classes"] != [css_class(b["text"])]
    ]
    assert not wrong, f"{page}: badges without their word: {wrong}"
    colours = {}
    for badge in badges:
        colours.setdefault(badge["text"], set()).add(badge["colour"])
    assert all(len(c) == 1 for c in colours.values()), f"{page}: {colours}"
    assert len({c for v in colours.values() for c in v}) == len(colours), f"{page}: {colours}"


def _summary(visits):
    """The claims index's two summary tables (the book's claims, those beyond it), each as
    ``[{column: cell}]``."""
    require("A1_claims_index.html" in visits, "no claims index")
    tables = visits["A1_claims_index.html"]["wide"]["tables"]
    summaries = [t for t in tables if t["head"][:1] == ["claim"]]
    assert len(summaries) == 2, [t["head"] for t in tables]
    return [[dict(zip(t["head"], row)) for row in t["rows"]] for t in summaries]


def test_the_claims_index_shows_each_claim_s_verdict_badge_and_margin(visits):
    from helpers.chapter import claims

    from tools import claims_index

    book, beyond = _summary(visits)
    rows = book + beyond
    assert [r["claim"] for r in rows] == list(claims.load())
    assert all("margin" in r and MARGIN.fullmatch(r["margin"]) for r in rows), rows
    badges = [b["text"] for b in visits["A1_claims_index.html"]["wide"]["badges"]]
    # the rules, then each claim in its table and above its figures
    assert len(badges) == len(claims.VERDICTS) + 2 * len(rows)
    found = claims_index.collect(claims.load(), os.path.join(ROOT, "chapters"))
    assert [r["verdict"] for r in rows] == [claims.verdict(found[r["claim"]][0]) for r in rows]


def test_the_front_page_counts_the_verdicts_of_the_claims_index(visits):
    from helpers.chapter.claims import VERDICTS

    require("index.html" in visits, "no front page")
    (totals,) = [t for t in visits["index.html"]["wide"]["tables"] if t["head"][:1] == ["verdict"]]
    shown = {row[0]: (int(row[1]), int(row[2])) for row in totals["rows"]}
    book, beyond = _summary(visits)
    counted = {
        v: (sum(r["verdict"] == v for r in book), sum(r["verdict"] == v for r in beyond))
        for v in VERDICTS
    }
    assert shown == {v: c for v, c in counted.items() if c != (0, 0)}
    chapters = {a["href"].rsplit("/", 1)[-1] for a in visits["index.html"]["anchors"]}
    assert set(NOTEBOOK_PAGES) <= chapters, "the front page's map lacks a chapter"


#: The front page at 1280 px: where its map of the chapters starts, its start-here link, and
#: the links of the paragraph that names the claims not held.
FRONT = """
const article = document.querySelector('article.bd-article');
const heading = [...article.querySelectorAll('h2')]
  .find(h => h.innerText.trim() === 'The chapters');
const list = heading && heading.parentElement.querySelector('ul');
const first = list && list.querySelector('li');
const top = e => Math.round(e.getBoundingClientRect().top + window.scrollY);
const paragraphs = [...article.querySelectorAll('p')];
const start = paragraphs.find(p => p.innerText.trim().startsWith('Start here:'));
const held = paragraphs.find(p => p.querySelector('span.verdict-not-held'));
return {
  list_top: list && top(list),
  first_item_bottom: first && Math.round(first.getBoundingClientRect().bottom + window.scrollY),
  start: start && [...start.querySelectorAll('a')].map(a => a.href),
  start_above: start && list && top(start) < top(list),
  not_held: held && held.innerText,
  not_held_links: held && [...held.querySelectorAll('a')].map(a => [a.innerText.trim(), a.href]),
};
"""


@pytest.fixture(scope="module")
def front(server, browser, visits):
    require("index.html" in visits, "no front page")
    browser.set_window_size(WIDE, 1024)
    _open(browser, f"{server}/index.html")
    return browser.execute_script(FRONT)


def test_the_chapter_list_is_on_the_first_screen_at_1280_px(front):
    """The map of the chapters starts, with its first entry whole, within the first
    FIRST_SCREEN px of the front page at 1280 px."""
    assert front["list_top"] is not None, "the front page has no list under 'The chapters'"
    assert front["first_item_bottom"] <= FIRST_SCREEN, (
        f"the chapter list starts at {front['list_top']} px, its first entry ends at "
        f"{front['first_item_bottom']} px: below the first {FIRST_SCREEN} px at {WIDE} px"
    )


def test_the_front_page_says_where_to_start(front):
    assert front["start"], "the front page has no 'Start here:' paragraph with a link"
    first = front["start"][0].rsplit("/", 1)[-1]
    assert first in NOTEBOOK_PAGES, f"'Start here' links to {first}, not a chapter"
    assert front["start_above"], "'Start here' comes after the map of the chapters"


def test_the_front_page_names_the_claims_not_held(front):
    """The claims whose verdict, from the chapters' records, is not held: each named and linked
    to its figures in the claims index."""
    from helpers.chapter import claims

    from tools import claims_index

    found = claims_index.collect(claims.load(), os.path.join(ROOT, "chapters"))
    failing = [c for c, (checks, _) in found.items() if claims.verdict(checks) == claims.NOT_HELD]
    if not failing:
        return
    assert front["not_held"], "the front page does not name the claims not held"
    links = dict(front["not_held_links"])
    for cid in failing:
        assert links.get(cid, "").endswith(f"A1_claims_index.html#{claims_index.slug(cid)}"), (
            cid,
            links,
        )
    named = {text for text, _ in front["not_held_links"] if re.fullmatch(r"C\d+", text)}
    assert named == set(failing)


def test_each_chapter_opens_with_what_it_finds(visits):
    """After its introduction, each chapter that checks claims shows the box of its findings:
    one line per claim of claims.toml, with the verdict of the claims index and its margin,
    linking to the section that checks it."""
    from helpers.chapter import claims

    from tools import claims_index

    declared = claims.load()
    found = claims_index.collect(declared, os.path.join(ROOT, "chapters"))
    expected = claims_index.findings(declared, found)
    for page in NOTEBOOK_PAGES:
        boxes = visits[page]["wide"]["findings"]
        entries = expected.get(page[: -len(".html")], [])
        if not entries:
            assert not boxes, f"{page} checks no claim but shows a box of findings"
            continue
        assert len(boxes) == 1 and boxes[0]["first"], f"{page}: {boxes}"
        items = boxes[0]["items"]
        assert [i["text"].split(" ")[0] for i in items] == [e["id"] for e in entries], page
        for item, entry in zip(items, entries, strict=True):
            assert entry["verdict"] in item["text"] and entry["margin"] in item["text"], item
            target = (item["href"] or "").lstrip("#")
            assert target in visits[page]["wide"]["ids"], f"{page}: {item} links nowhere"


def test_the_book_s_listings_are_framed_and_labelled_with_their_page(visits):
    """Each cell tagged as a listing of the book shows a frame of its own and the label that
    names the book's page, the page of the listing its code holds."""
    from tools import book_listings

    seen = 0
    for page in NOTEBOOK_PAGES:
        for shown in visits[page]["wide"]["listings"]:
            listing = book_listings.match(shown["code"])
            assert shown["label"].strip() == listing.label, (page, shown["label"])
            assert shown["border"] >= 2, f"{page}: the listing {listing.name!r} has no frame"
            seen += 1
    tagged = sum(
        book_listings.TAG in c.metadata.get("tags", [])
        for p in NOTEBOOK_PAGES
        for c in jupytext.read(os.path.join(ROOT, "chapters", p[: -len(".html")] + ".md")).cells
    )
    assert seen == tagged and seen > 0, f"{seen} listings framed, {tagged} cells tagged"

"""The built book, as a reader's browser sees it: headless Chromium on a local web server.

For every chapter page: equations are typeset by MathJax (served by the book itself), every
figure loads, and nothing (script, stylesheet, font, image) is requested from another host.
Every notebook page links to its own notebook on Colab (the badge under its title and the
theme's launch button) and offers the .ipynb for download.
Needs `make book-build` first. Without Chromium the tests skip locally; under CI they fail.
"""

import functools
import glob
import html.parser
import http.server
import os
import re
import threading

import pytest

from tool_modules import chromium, foreign, load_tool, require

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HTML = os.path.join(ROOT, "build", "book", "_build", "html")
PAGES = sorted(
    os.path.basename(p)
    for pattern in ("[0-9][0-9]_*.html", "A[0-9]_*.html")
    for p in glob.glob(os.path.join(HTML, pattern))
)


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


@pytest.mark.parametrize("page", PAGES or ["<none>"])
def test_page_reads_offline(page, server, browser):
    state = _open(browser, f"{server}/{page}")
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
def test_notebook_page_opens_in_colab_and_downloads_its_notebook(page, server, browser):
    import json
    import urllib.request

    chapter = page[: -len(".html")]
    colab = load_tool("colab").colab_url(chapter)
    state = _open(browser, f"{server}/{page}")
    to_colab = [a for a in state["anchors"] if a["href"] == colab]
    badges = [a for a in to_colab if a["img"] and a["img"]["alt"] == "Open in Colab"]
    assert badges and all(a["img"]["loaded"] for a in badges), f"{page}: no Colab badge"
    assert any(a is not b for a in to_colab for b in badges), f"{page}: no Colab launch button"
    others = {a["href"] for a in state["anchors"] if "colab.research.google.com" in a["href"]}
    assert others == {colab}, f"{page}: Colab links to another notebook: {others - {colab}}"
    downloads = [
        a["href"] for a in state["anchors"] if a["download"] and a["href"].endswith(".ipynb")
    ]
    assert len(downloads) == 1, f"{page}: not one download button for the notebook"
    with urllib.request.urlopen(downloads[0]) as response:
        served = json.load(response)
    with open(os.path.join(ROOT, "chapters", chapter + ".ipynb"), encoding="utf-8") as f:
        stored = json.load(f)
    assert [c["source"] for c in served["cells"]] == [c["source"] for c in stored["cells"]]


def test_book_has_equations_and_figures(server, browser):
    """At least one page typesets equations and at least one shows a figure, so the checks
    above are not vacuous."""
    states = {page: _open(browser, f"{server}/{page}") for page in PAGES}
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

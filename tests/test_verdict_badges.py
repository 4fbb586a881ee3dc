"""tools/verdict_badges.py: a verdict is a badge holding its word, coloured in both modes, and
the bold word in LaTeX."""

import os
import re
import subprocess
import sys

from helpers.chapter.claims import VERDICTS

import pytest

from tools import verdict_badges as badges

from tool_modules import ROOT

CSS = os.path.join(ROOT, "book", "_static", "companion.css")


def test_the_role_puts_the_word_in_the_badge():
    (outer,), messages = badges.verdict_role(
        "verdict", "{verdict}`not  held`", "not  held", 1, None
    )
    assert not messages
    assert outer["classes"] == ["verdict"] and outer.astext() == "not held"
    (inner,) = outer.children
    assert inner["classes"] == ["verdict-not-held"] and inner.astext() == "not held"


def _rules(css, mode):
    """``{verdict class: {property: value}}`` of the stylesheet's rules for one mode."""
    prefix = r'html\[data-theme="dark"\] ' if mode == "dark" else ""
    found = {}
    for selector, body in re.findall(r"([^{}]+)\{([^}]*)\}", css):
        match = re.fullmatch(prefix + r"span\.(verdict-[a-z-]+)", selector.strip())
        if match:
            declarations = (d.split(":") for d in body.split(";") if ":" in d)
            found[match.group(1)] = {k.strip(): v.strip() for k, v in declarations}
    return found


def _luminance(colour):
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a, b):
    """WCAG's contrast ratio of two colours ``#rrggbb``."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_contrast_is_wcag_s():
    assert contrast("#000000", "#ffffff") == pytest.approx(21)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_every_verdict_has_its_colours_with_contrast_in_each_mode(mode):
    """The colour repeats the word: each verdict's badge has its own colours, in light and in
    dark mode, and its text keeps a contrast of 4.5:1 (WCAG AA) on its background."""
    with open(CSS, encoding="utf-8") as f:
        rules = _rules(f.read(), mode)
    classes = [badges.css_class(word) for word in VERDICTS]
    assert len(set(classes)) == len(VERDICTS)
    assert sorted(rules) == sorted(classes), f"{mode} mode: colours for {sorted(rules)}"
    for word, name in zip(VERDICTS, classes):
        rule = rules[name]
        assert contrast(rule["color"], rule["background"]) >= 4.5, (mode, word, rule)
    pairs = {(r["color"], r["background"]) for r in rules.values()}
    assert len(pairs) == len(VERDICTS), f"{mode} mode: two verdicts share their colours"


PAGE = """# Verdicts

| verdict | n |
|---|---|
| {verdict}`held, API not as described` | 1 |

One claim is {verdict}`not held`.
"""


@pytest.mark.integration
@pytest.mark.parametrize("builder", ["html", "latex"])
def test_the_html_shows_a_badge_and_the_pdf_the_word(tmp_path, builder):
    """A Sphinx build of a MyST page with the role (a subprocess: Sphinx registers its nodes
    once per process)."""
    (tmp_path / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {os.path.join(ROOT, 'tools')!r})\n"
        'extensions = ["myst_parser", "verdict_badges"]\nlatex_engine = "xelatex"\n'
    )
    (tmp_path / "index.md").write_text(PAGE)
    out = tmp_path / "out"
    subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-W", "-b", builder, str(tmp_path), str(out)],
        check=True,
        timeout=120,
    )
    if builder == "html":
        page = (out / "index.html").read_text()
        for word in ("held, API not as described", "not held"):
            badge = f'<span class="verdict"><span class="{badges.css_class(word)}">{word}</span>'
            assert badge + "</span>" in page
    else:
        (tex,) = out.glob("*.tex")
        text = tex.read_text()
        assert badges.LATEX.strip() in text
        assert r"One claim is \DUrole{verdict}{\DUrole{verdict-not-held}{not held}}." in text

"""Write the book's front page from book/index.md, the chapters and the claims index.

book/index.md holds the prose; this fills in what must follow the chapters rather than be
typed: the verdict totals (counted from the claims the chapters reported, as the claims index
counts them, each verdict a badge holding its word), the claims that are not held, the map
of the chapters (each chapter's own title, then its line from book/chapters.yml), the versions
of the stored runs (read from each chapter's versions table) and the link to the PDF edition
when one was built. The prose names the chapter to start with.

Usage: python tools/front_page.py CHAPTERS_DIR OUT.md
"""

import json
import os
import re
import sys

from helpers.chapter import claims as claims_mod

import yaml

from tools import claims_index

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = os.path.join(ROOT, "book", "index.md")
LINES = os.path.join(ROOT, "book", "chapters.yml")
#: The PDF edition's name next to the HTML pages (tools/build_book.py copies it there).
PDF_NAME = "bn-companion.pdf"


class FrontPageError(Exception):
    """Something the front page needs is missing: the message names it and the fix."""


def _notebook(chapters_dir, name):
    with open(os.path.join(chapters_dir, name + ".ipynb"), encoding="utf-8") as f:
        return json.load(f)


def _source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def title(notebook):
    """The text of the notebook's first ``# `` heading."""
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            found = re.search(r"^# +(.+)$", _source(cell), re.M)
            if found:
                return found.group(1).strip()
    raise FrontPageError("a chapter has no `# ` title")


def versions(notebook):
    """``{package: version}`` from the stored output of the chapter's versions table."""
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code" and "versions_frame()" in _source(cell):
            for output in cell.get("outputs", []):
                text = output.get("data", {}).get("text/plain")
                if text:
                    text = "".join(text) if isinstance(text, list) else text
                    rows = [line.split() for line in text.splitlines()[1:]]
                    return {row[1]: row[2] for row in rows if len(row) >= 3}
    return {}


def not_held(claims, found):
    """One sentence naming the claims whose verdict is "not held", each linked to its figures
    in the claims index and to the section of its chapter that checks it.

    Args:
        claims: ``{id: table}`` from `helpers.chapter.claims.load`.
        found: ``{id: (checks, verdict)}`` from `claims_index.collect`.

    Returns:
        MyST text: the sentence, or one saying that no claim is not held.
    """
    index = claims_index.PAGE + ".md"
    named = []
    for cid, claim in claims.items():
        if found[cid][1] != claims_mod.NOT_HELD:
            continue
        where = f"p. {claim['page']}" if claim["page"] else "beyond the book"
        section = f"{claim['chapter'][:2]}: {claim['section']}"
        link = f"{claim['chapter']}.ipynb#{claims_index.slug(claim['section'])}"
        named.append(
            f"[{cid}]({index}#{claims_index.slug(cid)}) ({where}), “{claim['book'].rstrip('.')}”, "
            f"checked in [{section}]({link})"
        )
    badge = claims_index.badge(claims_mod.NOT_HELD)
    if not named:
        return f"No claim is {badge}: each holds, at least in part."
    if len(named) == 1:
        return f"One claim is {badge}: {named[0]}."
    return f"{len(named)} claims are {badge}: " + "; ".join(named) + "."


def verdict_table(claims, found):
    """The verdict totals as a Markdown table: the book's claims, then those beyond it."""
    book = [c for c, v in claims.items() if v["page"]]
    beyond = [c for c, v in claims.items() if not v["page"]]
    lines = [
        f"| verdict | the book's {len(book)} claims | {len(beyond)} claims beyond the book |",
        "|---|---|---|",
    ]
    # The verdicts the index shows (claims.verdict's, computed once by the index's collect).
    shown = {c: found[c][1] for c in claims}
    for verdict in claims_mod.VERDICTS:
        counts = [sum(shown[c] == verdict for c in group) for group in (book, beyond)]
        if any(counts):
            lines.append(f"| {claims_index.badge(verdict)} | {counts[0]} | {counts[1]} |")
    return "\n".join(lines)


def chapter_map(chapters_dir, names, lines):
    """One line per page: a link titled with the page's own title, then what it holds."""
    missing = [n for n in names if n not in lines]
    if missing:
        raise FrontPageError(
            f"{', '.join(missing)} has no line in book/chapters.yml; add one saying what it holds"
        )
    out = []
    for name in names:
        if name == claims_index.PAGE:
            heading = "Index of the claims"
        else:
            heading = title(_notebook(chapters_dir, name))
        out.append(f"- {{doc}}`{heading} <{name}>`: {lines[name]}")
    return "\n".join(out)


def versions_line(chapters_dir, names):
    """One sentence naming the versions of the stored runs when every chapter agrees on them."""
    seen = {}
    for name in names:
        if os.path.exists(os.path.join(chapters_dir, name + ".ipynb")):
            for package, version in versions(_notebook(chapters_dir, name)).items():
                seen.setdefault(package, set()).add(version)
    if not seen:
        return ""
    if all(len(v) == 1 for v in seen.values()):
        listed = ", ".join(f"{p} {next(iter(v))}" for p, v in seen.items())
        return f"The stored outputs were all produced with {listed}."
    return "The chapters were not all run with the same versions: see each chapter's last section."


def render(chapters_dir, names, pdf_available, claims=None):
    """The front page's MyST text.

    Args:
        chapters_dir: the folder of the executed chapters.
        names: the pages of the book after the front page, in order (the claims index too).
        pdf_available: whether the PDF edition sits next to the HTML pages.
        claims: ``{id: table}`` (default: `helpers.claims.load`).

    Raises:
        FrontPageError, claims_index.ClaimsIndexError: see `chapter_map` and
            `claims_index.collect`.
    """
    claims = claims_mod.load() if claims is None else claims
    found = claims_index.collect(claims, chapters_dir)
    with open(LINES, encoding="utf-8") as f:
        lines = yaml.safe_load(f)
    with open(TEMPLATE, encoding="utf-8") as f:
        page = f.read()
    if pdf_available:
        pdf = (
            f'The whole book is also one PDF: <a href="{PDF_NAME}">{PDF_NAME}</a>, for print '
            "and for reading offline."
        )
    else:
        pdf = "`make pdf` builds the whole book as one PDF, for print and for reading offline."
    fills = {
        "verdicts": verdict_table(claims, found),
        "not-held": not_held(claims, found),
        "chapters": chapter_map(chapters_dir, names, lines),
        "versions": versions_line(chapters_dir, names),
        "pdf": pdf,
    }
    for key, text in fills.items():
        marker = f"<!-- {key} -->"
        if marker not in page:
            raise FrontPageError(f"book/index.md lacks the marker {marker}")
        page = page.replace(marker, text)
    return page


def write(chapters_dir, names, out_path, pdf_available=False, claims=None):
    """Render the front page into `out_path`."""
    text = render(chapters_dir, names, pdf_available, claims)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    found_names = sorted(
        os.path.splitext(n)[0]
        for n in os.listdir(sys.argv[1])
        if re.match(r"([0-9][0-9]|A[0-9])_.*\.ipynb$", n)
    )
    try:
        write(sys.argv[1], found_names, sys.argv[2])
    except (FrontPageError, claims_index.ClaimsIndexError) as err:
        sys.exit(f"The front page cannot be built: {err}")
    print(f"front page -> {sys.argv[2]}")

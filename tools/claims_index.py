"""Write the book's claims index from the executed chapters.

Every claim of ``helpers/chapter/claims.toml`` names the chapter and the section that check it. The
chapter reports it with ``helpers.chapter.claims.report``, which stores the figures, thresholds and
comparisons in the output's metadata. This script reads those records from the stored
notebooks, recomputes each verdict from the figures, computes each part's margin (how far its
figure is from its threshold, in units of the figure's noise) and writes one MyST page: a
compact verdict table with one row per claim, whose id links to the claim's figures below it;
a claim held only by a part within its noise is shown as fragile. It refuses, naming the claim
and the chapter, when a claim is not reported, is reported twice or by another chapter, when a
stored verdict differs from the one its figures give, or when the section a claim names is not
a heading of its chapter.

Usage: python -m tools.claims_index CHAPTERS_DIR OUT.md
"""

import json
import math
import os
import re
import sys

from helpers.chapter import claims as claims_mod

from tools.common import rerun_hint

#: The page's name in the book (tools/build_book.py puts it first among the appendices).
PAGE = "A1_claims_index"


class ClaimsIndexError(Exception):
    """A claim the index cannot show: the message names the claim, the chapter and the fix."""


def slug(text):
    """The anchor MyST gives a heading (myst_heading_anchors), from its source text."""
    from myst_parser.mdit_to_docutils.base import default_slugify

    return default_slugify(text.replace("`", ""))


def headings(notebook):
    """The heading texts of a notebook's Markdown cells (``#`` to ``###``)."""
    found = []
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        found += [m.group(1).strip() for m in re.finditer(r"^#{1,3} +(.+)$", source, re.M)]
    return found


def _fix(chapter):
    return f"re-execute it: {rerun_hint(chapter)}"


def collect(claims, chapters_dir):
    """Each claim's report, from the stored notebook of the chapter that checks it.

    Args:
        claims: ``{id: table}`` from `helpers.chapter.claims.load`.
        chapters_dir: the folder of the executed ``NN_topic.ipynb`` files.

    Returns:
        ``{id: (checks, verdict)}`` with the verdict recomputed from the checks by
        `helpers.chapter.claims.verdict`, the one the chapter printed.

    Raises:
        ClaimsIndexError: a claim is missing, reported twice or by another chapter, its stored
            verdict disagrees with its figures, or its section is not a heading of its chapter.
    """
    found, titles = {}, {}
    for chapter in sorted({c["chapter"] for c in claims.values()}):
        path = os.path.join(chapters_dir, chapter + ".ipynb")
        if not os.path.exists(path):
            raise ClaimsIndexError(
                f"chapter {chapter} has no executed notebook ({path}); {_fix(chapter)}"
            )
        with open(path, encoding="utf-8") as f:
            notebook = json.load(f)
        try:
            reports = claims_mod.records(notebook)
        except ValueError as err:
            raise ClaimsIndexError(f"chapter {chapter}: {err}") from None
        titles[chapter] = headings(notebook)
        for record, checks, verdict in reports:
            cid = record.get("id")
            if cid not in claims:
                raise ClaimsIndexError(
                    f"chapter {chapter} reports {cid!r}, which claims.toml lacks"
                )
            if claims[cid]["chapter"] != chapter:
                raise ClaimsIndexError(
                    f"claim {cid} is reported by chapter {chapter}, but claims.toml says "
                    f"chapter {claims[cid]['chapter']} checks it"
                )
            if cid in found:
                raise ClaimsIndexError(f"claim {cid} is reported twice by chapter {chapter}")
            stored = record.get("verdict")
            if stored != verdict:
                raise ClaimsIndexError(
                    f"claim {cid} in chapter {chapter}: the stored verdict "
                    f"{record.get('verdict')!r} is not the {verdict!r} its figures give; "
                    + _fix(chapter)
                )
            stale = _stale(claims[cid], checks)
            if stale:
                raise ClaimsIndexError(
                    f"claim {cid} in chapter {chapter}: the stored report {stale}; {_fix(chapter)}"
                )
            found[cid] = (checks, verdict)
    for cid, claim in claims.items():
        chapter = claim["chapter"]
        if cid not in found:
            raise ClaimsIndexError(
                f"claim {cid} is not reported by chapter {chapter}: its notebook has no "
                f"helpers.chapter.claims.report({cid!r}, ...) output; add one, then "
                f"{_fix(chapter)}"
            )
        if claim["section"] not in titles[chapter]:
            raise ClaimsIndexError(
                f"claim {cid}: chapter {chapter} has no heading {claim['section']!r}; "
                "correct the section in helpers/chapter/claims.toml"
            )
    return found


def _stale(claim, checks):
    """How a stored report departs from the claim's declaration, or "" when it follows it."""
    parts = claim.get("parts")
    if parts is None:  # a claim table without declared parts (tests of the page alone)
        return ""
    names = list(dict.fromkeys(c.name for c in checks))
    declared = [p.name for p in parts]
    if names != declared:
        return f"binds the parts {names}, while claims.toml declares {declared}"
    by_name = {p.name: p for p in parts}
    for check in checks:
        part = by_name[check.name]
        noise = part.noise if part.noise != "given" else check.noise
        stated = (check.op, check.threshold, check.kind, check.noise)
        if stated != (part.op, part.threshold, part.kind, noise):
            return (
                f"checks {check.name} as {check.op} {check.threshold!r} ({check.kind}, noise "
                f"{check.noise!r}), while claims.toml declares {part.op} {part.threshold!r} "
                f"({part.kind}, noise {part.noise!r})"
            )
    return ""


def badge(word):
    """A verdict as the MyST role that the book shows as a badge holding its word
    (``tools/verdict_badges.py``): ``{verdict}`held` ``.

    Raises:
        ValueError: `word` is not one of `helpers.chapter.claims.VERDICTS`.
    """
    if word not in claims_mod.VERDICTS:
        raise ValueError(f"word must be one of {claims_mod.VERDICTS}, got {word!r}")
    return f"{{verdict}}`{word}`"


#: How the summary tables name each kind of noise a margin is counted in.
NOISE_NAMES = {"seeds": "seeds' spread"}
#: The name of a noise stated with the part (a number in claims.toml, or given by the chapter).
STATED = "stated noise"


def _significant(x):
    """`x` to two significant digits, written out (``0.84``, ``17``, ``17,000,000``)."""
    if x == 0:
        return "0"
    rounded = float(f"{x:.2g}")
    decimals = max(0, 1 - math.floor(math.log10(abs(rounded))))
    return f"{rounded:,.{decimals}f}".replace("-", "−")


def worst_margin(checks):
    """The margin of a claim's worst voting part, in units of its noise, as the summary tables
    show it.

    Each voting part's margin is `helpers.chapter.claims.margin`'s. From worst to best: a part
    that fails with no noise to count in (an exact figure, seeds that all agree) or none known
    (one seed, a missing value): ``"exact, not met"``, ``"n/a, not met"``; a part's margin in
    units of its noise, ``"1.3 × seeds' spread"`` (negative when the part fails in some seed);
    a part that holds with its noise unknown, ``"n/a"``; a part that holds exactly, or in
    seeds that all gave the same value, ``"exact"``. A margin within the part's noise
    (`helpers.chapter.claims.fragile_parts`) says so. An API part that fails is left to the
    verdict's word ("held, API not as described"), unless the claim has no other voting part.

    Args:
        checks: the claim's `helpers.chapter.claims.Check` list.

    Returns:
        The text of the claim's margin cell.
    """
    fragile = claims_mod.fragile_parts(checks)
    voting = [c for c in checks if c.votes]
    # An API part that fails is what the verdict's own word says ("held, API not as described");
    # the margin is about the rest, unless nothing else votes.
    shown = [c for c in voting if c.kind != "api" or c.status() == claims_mod.HELD] or voting
    ranked = []  # (rank, text): the lowest rank is the worst part
    for check in shown:
        found = claims_mod.margin(check)
        held = check.status() == claims_mod.HELD
        if found is None or check.noise == "exact" or found["noise"] == 0:
            ranked.append((math.inf, "exact") if held else (-math.inf, "exact, not met"))
        elif found["units"] is None:
            ranked.append((0.0, "n/a") if held else (-math.inf, "n/a, not met"))
        else:
            text = f"{_significant(found['units'])} × {NOISE_NAMES.get(check.noise, STATED)}"
            text += ", within it" if any(check is c for c in fragile) else ""
            ranked.append((found["units"], text))
    return min(ranked, key=lambda r: r[0])[1]


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _rows(claims, found, with_page):
    """The compact verdict table: one short row per claim, its id linking to its figures, then
    its verdict and margin (beside the id, where a phone's screen still shows them), then the
    claim in words."""
    head = ["claim", "p."] if with_page else ["claim"]
    head += ["verdict", "margin", "what the book says (our words)" if with_page else "the claim"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cid, claim in claims.items():
        checks, verdict = found[cid]
        row = [f"[{cid}](#{slug(cid)})"] + ([claim["page"]] if with_page else [])
        row += [badge(verdict), worst_margin(checks), claim["book"]]
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return lines


def findings(claims, found):
    """What each chapter finds, for the box at its top (``tools/verdict_badges.py`` draws it):
    ``{chapter: [entry]}``, each entry a claim the chapter checks, with its verdict and margin
    as this index's tables show them (`worst_margin`).

    Args:
        claims: ``{id: table}`` from `helpers.chapter.claims.load`.
        found: ``{id: (checks, verdict)}`` from `collect`.

    Returns:
        ``{chapter: [{"id", "page", "claim", "section", "verdict", "margin"}]}``, the claims in
        the order of claims.toml.
    """
    out = {}
    for cid, claim in claims.items():
        checks, verdict = found[cid]
        out.setdefault(claim["chapter"], []).append(
            {
                "id": cid,
                "page": claim["page"],
                "claim": claim["book"],
                "section": claim["section"],
                "verdict": verdict,
                "margin": worst_margin(checks),
            }
        )
    return out


def _details(claims, found):
    """Below the tables, one short section per claim: where it is checked, and its figures."""
    lines = []
    for cid, claim in claims.items():
        checks, verdict = found[cid]
        link = f"[{claim['chapter'][:2]}: {claim['section']}]({claim['chapter']}.ipynb#"
        link += f"{slug(claim['section'])})"
        lines += [
            f"### {cid}",
            "",
            _cell(claim["book"]),
            "",
            f"{badge(verdict)}, checked in {link}:",
            "",
        ]
        lines += [f"- {_cell(claims_mod.part_text(check))}" for check in checks]
        lines.append("")
    return lines


def _count(group):
    return f"{len(group)} claim" + ("s" if len(group) != 1 else "")


def render(claims, found):
    """The index page as MyST Markdown.

    Args:
        claims: ``{id: table}`` from `helpers.chapter.claims.load`.
        found: ``{id: (checks, verdict)}`` from `collect`.

    Returns:
        The page's text.
    """
    book = {k: v for k, v in claims.items() if v["page"]}
    beyond = {k: v for k, v in claims.items() if not v["page"]}

    shown = {cid: found[cid][1] for cid in claims}

    def tally(group):
        counts = {v: sum(shown[c] == v for c in group) for v in claims_mod.VERDICTS}
        return "; ".join(f"{n} {v}" for v, n in counts.items() if n)

    fragile = sum(v == claims_mod.FRAGILE for v in shown.values())
    within = [  # parts within their noise, whatever the verdict of their claim
        cid
        for cid in claims
        for check in found[cid][0]
        if check in claims_mod.fragile_parts(found[cid][0])
    ]
    parts = f"{len(within)} part" + ("s" if len(within) != 1 else "")
    where = f" ({', '.join(dict.fromkeys(within))})" if within else ""

    lines = [
        "# Index of the claims",
        "",
        "Every statement of pages 339-345 that the chapters check, and the claims that the "
        "chapters add beyond those pages, in our words, with the "
        "verdict that the chapter's own figures give. Each part of a claim is a figure the "
        "chapter measured, compared with the threshold declared with the claim (in "
        "`helpers/chapter/claims.toml`, chosen from what the claim means), in every seed that "
        "it ran. One function, `helpers.chapter.claims.verdict`, turns those comparisons into "
        "the verdict that the chapter, this index, the front page and the PDF all show; the "
        "first of these rules that applies decides it:",
        "",
        f"1. {badge(claims_mod.NOT_HELD)}: no part holds in any seed;",
        f"2. {badge(claims_mod.PARTLY)}: a part about the method fails in some seed (the seeds "
        "disagree, or one part of a compound claim holds and another does not);",
        f"3. {badge(claims_mod.FRAGILE)}: every part about the method holds in every seed, but "
        "at least one part holds by no more than its noise, so another computer or another "
        "seed could turn it; it does not count as held, and it outranks an API difference, "
        "which the claim's parts still show;",
        f"4. {badge(claims_mod.API_DIFFERS)}: every part about the method holds with margin, "
        "and a part about what TensorFlow or Keras does, as the book (TensorFlow 2.0) or the "
        "Keras guide describes it, was not observed in the Keras that ran the chapter;",
        f"5. {badge(claims_mod.HELD)}: every part holds in every seed, each by more than its "
        "noise where that is known.",
        "",
        "A part marked *context* is a figure shown beside the claim (a library default the "
        "book never stated, a case the book set aside); it does not vote.",
        "",
        "Figures measured over several seeds are shown as their mean, then the lowest and "
        "the highest value; [k/n seeds] counts the seeds where the part held. Each comparison "
        "of order also shows its margin: the distance from the worst seed's figure to the "
        "threshold, and that distance in units of the figure's noise (the spread over the "
        "seeds for results of training, a float32 ulp or a derived rounding bound for results "
        "of arithmetic; counts and settings are exact). A part checked on one seed says so: "
        "it has no spread to compare with. The last digits of the figures vary with the "
        "computer; a part whose margin is several times its noise keeps its verdict on "
        "another computer, one within its noise may not and is marked fragile. The figures "
        "are those of the chapters' stored runs, whose versions each chapter lists in its "
        "last section.",
        "",
        f"Verdicts of the book's {_count(book)}: {tally(book)}."
        + (f" Beyond the book, {_count(beyond)}: {tally(beyond)}." if beyond else ""),
        f"Fragile verdicts: {fragile} (the goal is none). Parts that hold by no more than "
        f"their noise, in any claim: {parts}{where}.",
        "",
        "In the tables, a claim's margin is that of its worst voting part, in units of the "
        f"part's noise: the spread over the seeds ({NOISE_NAMES['seeds']}), or the noise stated "
        f"with the part ({STATED}: a float32 ulp, a rounding bound, a spread of timings; the "
        "claim's figures below name it). Below one, the part holds by no more than its noise; "
        "negative, it fails in some seed. *exact*: every voting part holds, and its figure "
        "(a count, a setting, a flag) has no noise; *exact, not met*: such a figure does not "
        "meet its condition; *n/a*: a part's noise is unknown (one seed). A part about "
        "TensorFlow or Keras that was not observed is left to the verdict's word.",
        "",
        "## The book's claims",
        "",
        *_rows(book, found, with_page=True),
        "",
        "## Claims beyond the book",
        "",
    ]
    if beyond:
        lines += _rows(beyond, found, with_page=False)
    else:
        lines.append("None so far: every claim above comes from the book.")
    lines += [
        "",
        "## The figures behind each verdict",
        "",
        "Each claim's parts: the figure, the condition it must meet, its value, and the "
        "seeds where the part held.",
        "",
        *_details(claims, found),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


def write(chapters_dir, out_path, claims=None):
    """Collect, render and write the index; returns the number of claims.

    Raises:
        ClaimsIndexError: see `collect`.
    """
    claims = claims_mod.load() if claims is None else claims
    found = collect(claims, chapters_dir)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(render(claims, found))
    return len(found)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    try:
        n = write(sys.argv[1], sys.argv[2])
    except ClaimsIndexError as err:
        sys.exit(f"The claims index cannot be built: {err}")
    print(f"claims index: {n} claims -> {sys.argv[2]}")

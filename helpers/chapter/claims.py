"""Claims, declared once: what the book says, how each part of it is checked, and the verdict.

Every claim is declared in ``helpers/chapter/claims.toml``: what the book says in our words,
its page, the chapter section that checks it, and one ``[[claim.part]]`` table per part of
the check. A part names the figure it reads (``name``, the keyword a chapter binds), says what
that figure is (``figure``, ``unit``), how it must compare (``op``, ``threshold``), what kind
of part it is (``kind``) and what noise its figure carries (``noise``, ``noise_unit``), and how
many decimals to show (``digits``). The thresholds are chosen from what the claim means, and
they live there, not in a chapter.

A chapter binds its figures by name, ``report("C26", best_momentum=..., mode_gap=...)``; the
report refuses, in one sentence, a declared figure left unbound or a bound figure that is not
declared. Each part becomes a `Check`, which holds in a seed when ``value <op> threshold``.

**One verdict.** `verdict` decides every claim, in the chapter, the claims index, the front page
and the PDF alike, from the parts that vote (``kind`` "evidence" or "api"; "context" parts are
shown beside the claim and never vote). Its words, from the first rule that applies:

1. **not held**: no voting part holds in any seed;
2. **partly**: some evidence part fails in some seed (seeds disagree, or one part of a compound
   claim holds and another does not);
3. **fragile**: every evidence part holds in every seed, but at least one voting part holds by
   no more than its noise (see `margin`), so another computer or seed could turn it. Fragile
   outranks an API difference: whether the evidence holds at all is the first thing to know,
   and the parts list still shows the API part that failed;
4. **held, API not as described**: every evidence part holds with margin, and a part about what
   TensorFlow/Keras does (``kind="api"``, as the book's TF 2.0 or the Keras guide describes it)
   was not observed today;
5. **held**: every voting part holds in every seed, each by more than its noise.

Noise kinds: ``"seeds"`` (results of training: the spread over the seeds), ``"exact"`` (counts,
flags and settings), a number in the toml (a fixed bound, in the figure's unit), or ``"given"``
(a float rounding bound the chapter measures, such as one float32 ulp of its largest output,
bound with ``report(..., noise={"name": value})``).

What a report shows: the claim's verdict and, for each part, its figure, condition, value,
seeds held and margin (`part_text`), exactly the lines of the claims index. Figures from
training and rounding-level margins differ in their last digits between computers, and a
verdict within its noise ("fragile") with them, so a chapter shows its reports in a cell that
nbval does not compare, and prints with `outcomes` what every computer reproduces (which side
of its threshold each part is on, in how many seeds) in one that it does. The full record, raw
per-seed figures included, goes into the output's metadata under `METADATA_KEY`, from which
the claims index recomputes the verdict.
"""

import dataclasses
import keyword
import math
import numbers
import operator
import os
import tomllib

from helpers import checks
from helpers.chapter.verdicts import API_DIFFERS, FRAGILE, HELD, NOT_HELD, PARTLY, VERDICTS

import numpy as np

__all__ = [
    "VERDICTS",
    "Check",
    "Part",
    "decided_by",
    "load",
    "margin",
    "part_text",
    "report",
    "threshold",
    "outcomes",
    "verdict",
]

#: Where a report keeps its machine-readable record in the notebook output's metadata.
METADATA_KEY = "bn_companion_claim"
#: What a part is: evidence for the claim (votes), what TensorFlow/Keras does (votes as an API
#: part), or context shown beside the claim (never votes).
KINDS = ("evidence", "api", "context")
#: The comparisons whose margin depends on the figure's noise, which they must declare.
ORDERED = ("<", "<=", ">", ">=")
#: The comparisons a part may state.
OPS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "in": lambda value, allowed: value in allowed,
}
#: The noise kinds a declaration may name (or a number > 0, a fixed bound).
NOISE_KINDS = ("seeds", "exact", "given")
CLAIMS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "claims.toml")
#: The text fields of a claim.
CLAIM_FIELDS = ("id", "page", "book", "chapter", "section")


def _plain(value, what):
    """A JSON-friendly scalar: bool, int, float (NaN becomes None), str, or a list of them."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return None if math.isnan(value) else value
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and value:
        return [_plain(v, what) for v in value]
    raise ValueError(f"{what} must be a number, a bool, a string or a list of them, got {value!r}")


def _noise(noise, noise_unit):
    """A valid noise: None, "seeds", "exact", "given" (declarations only) or a number > 0."""
    if noise is None or noise in NOISE_KINDS:
        return noise
    if isinstance(noise, str) or not checks.is_real(noise) or not noise > 0 or noise == math.inf:
        raise ValueError(
            f"noise must be one of {', '.join(NOISE_KINDS)} or a number > 0, got {noise!r}"
        )
    if not noise_unit.strip():
        raise ValueError(f"a numeric noise ({noise:g}) needs a noise_unit saying what it is")
    return float(noise)


def _validated(op, kind, digits, threshold, noise, noise_unit, texts):
    """What a declared `Part` and a bound `Check` both require of their fields.

    Args:
        texts: ``{field: value}`` of the fields that must be text.

    Returns:
        ``(threshold, noise)`` in plain form.

    Raises:
        ValueError: one sentence naming the field that is wrong.
    """
    for field, value in texts.items():
        if not isinstance(value, str):
            raise ValueError(f"{field} must be text, got {value!r}")
    if op not in OPS:
        raise ValueError(f"op must be one of {', '.join(OPS)}, got {op!r}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if digits is not None and (not checks.is_int(digits) or digits < 0):
        raise ValueError(f"digits must be None or an integer >= 0, got {digits!r}")
    plain = _plain(threshold, "threshold")
    if op == "in" and not isinstance(plain, list):
        raise ValueError(f"threshold of op 'in' must be a list, got {threshold!r}")
    return plain, _noise(noise, noise_unit)


@dataclasses.dataclass(frozen=True)
class Part:
    """One declared part of a claim (a ``[[claim.part]]`` table of claims.toml).

    Args:
        name: the keyword a chapter binds the figure to (a Python identifier).
        figure: what the figure is, in words.
        op: the comparison that makes the part hold: one of `OPS`.
        threshold: the value to compare with (a list of allowed values for ``"in"``).
        kind: ``"evidence"``, ``"api"`` or ``"context"`` (see the module docstring).
        noise: one of `NOISE_KINDS` or a number > 0; required by ``<``, ``<=``, ``>``, ``>=``.
        noise_unit: what a numeric or given noise is, in words.
        unit: the figure's unit, shown after its value (``"°"``, ``"steps"``), or ``""``.
        digits: decimals for a float figure; None shows two significant digits.
        over: ``""``, or what the figure is bound per (``"model"``): the chapter binds
            ``{label: value}`` and the part is checked once per label.
        reads: ``""``, or the name of another part whose bound figure this part reads too
            (the same figure against a second threshold, such as a context line).
    """

    name: str
    figure: str
    op: str
    threshold: object
    kind: str = "evidence"
    noise: object = None
    noise_unit: str = ""
    unit: str = ""
    digits: int | None = None
    over: str = ""
    reads: str = ""

    def __post_init__(self):
        what = f"part {self.name!r}"
        if (
            not isinstance(self.name, str)
            or not self.name.isidentifier()
            or keyword.iskeyword(self.name)
            or self.name == "noise"
        ):
            raise ValueError(
                f"a part's name must be a Python identifier other than 'noise', got {self.name!r}"
            )
        if not isinstance(self.figure, str) or not self.figure.strip():
            raise ValueError(f"{what}: figure must be a non-empty description")
        try:
            threshold, noise = _validated(
                self.op,
                self.kind,
                self.digits,
                self.threshold,
                self.noise,
                self.noise_unit,
                {k: getattr(self, k) for k in ("noise_unit", "unit", "over", "reads")},
            )
        except ValueError as err:
            raise ValueError(f"{what}: {err}") from None
        if self.op in ORDERED and noise is None:
            raise ValueError(
                f"{what}: the comparison {self.op} needs a noise "
                f"({', '.join(NOISE_KINDS)} or a number > 0)"
            )
        if noise == "given" and not self.noise_unit.strip():
            raise ValueError(f"{what}: noise 'given' needs a noise_unit saying what it is")
        object.__setattr__(self, "threshold", threshold)
        object.__setattr__(self, "noise", noise)

    @property
    def binds(self):
        """The keyword of `report` this part reads its figure from."""
        return self.reads or self.name

    def describe(self):
        """The part as words: the figure, its condition, and how it counts."""
        text = f"{self.figure} {self.op} {_show(self.threshold)}"
        text += f" {self.unit}" if self.unit and self.op != "in" else ""
        if self.over:
            text += f", for each {self.over}"
        if self.noise == "seeds":
            text += ", in every seed"
        return text + {
            "api": " [TensorFlow/Keras behaviour]",
            "context": " [context: does not vote]",
        }.get(self.kind, "")


def load(path=CLAIMS_FILE):
    """The claims of the book and beyond it, in the order of the file.

    Args:
        path: a TOML file with one ``[[claim]]`` table per claim (``id``, ``page`` or ``""``
            for a claim beyond the book, ``book``, ``chapter``, ``section``) holding one
            ``[[claim.part]]`` table per part (the fields of `Part`).

    Returns:
        A dict ``{id: table}``; each table's ``"parts"`` is a list of `Part`, and its
        ``"decided_by"`` the words `decided_by` generates from them.

    Raises:
        ValueError: a claim lacks a field or a part, a part is invalid, or an id or a part's
            name appears twice.
    """
    with open(path, "rb") as f:
        tables = tomllib.load(f).get("claim", [])
    claims = {}
    for i, table in enumerate(tables):
        missing = [k for k in CLAIM_FIELDS if not isinstance(table.get(k), str)]
        if missing:
            raise ValueError(f"claim {i + 1} of {path} lacks the text field(s) {missing}")
        cid = table["id"]
        if cid in claims:
            raise ValueError(f"claim id {cid} appears twice in {path}")
        raw = table.get("part")
        if not isinstance(raw, list) or not raw:
            raise ValueError(f"claim {cid} of {path} declares no [[claim.part]]")
        parts = []
        for j, fields in enumerate(raw):
            unknown = set(fields) - {f.name for f in dataclasses.fields(Part)}
            if unknown:
                raise ValueError(f"claim {cid}, part {j + 1}: unknown field(s) {sorted(unknown)}")
            try:
                parts.append(Part(**fields))
            except TypeError:
                raise ValueError(
                    f"claim {cid}, part {j + 1}: name, figure, op and threshold are required"
                ) from None
            except ValueError as err:
                raise ValueError(f"claim {cid}, {err}") from None
        names = [p.name for p in parts]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"claim {cid} of {path} names the part(s) {twice} twice")
        bound = {p.name for p in parts if not p.reads}
        dangling = [p.name for p in parts if p.reads and p.reads not in bound]
        if dangling:
            raise ValueError(
                f"claim {cid} of {path}: part(s) {dangling} read a figure that no "
                "part of the claim binds"
            )
        if not any(p.kind != "context" for p in parts):
            raise ValueError(f"claim {cid} of {path} has no part that votes (all are context)")
        claim = {k: table[k] for k in CLAIM_FIELDS}
        claim["parts"] = parts
        claim["decided_by"] = decided_by(parts)
        claims[cid] = claim
    return claims


def decided_by(parts):
    """What decides a claim, in words, generated from its declared parts."""
    return "; ".join(p.describe() for p in parts)


def _claim(claim_id, claims):
    claims = load() if claims is None else claims
    if claim_id not in claims:
        raise ValueError(f"claim_id must be one of the ids of claims.toml, got {claim_id!r}")
    return claims[claim_id]


def threshold(claim_id, name, claims=None):
    """The declared threshold of one part, for a chapter whose analysis uses it too.

    Raises:
        ValueError: an unknown claim or part.
    """
    parts = {p.name: p for p in _claim(claim_id, claims)["parts"]}
    if name not in parts:
        raise ValueError(
            f"claim {claim_id} declares no part {name!r}; its parts: {', '.join(parts)}"
        )
    return parts[name].threshold


@dataclasses.dataclass(frozen=True)
class Check:
    """One part of a claim with its figure bound: a measured value against its threshold.

    A chapter does not build these: `report` does, from the declaration and the bound figures.
    `Check` is what a record stores and what `verdict` and `margin` read.

    Args:
        figure: what was measured, in words.
        values: the figure: one value, or a dict (or pandas Series) ``{seed: value}``.
        op, threshold, kind, noise_unit, unit, digits: as in `Part`.
        noise: ``"seeds"``, ``"exact"``, a number > 0 (in the figure's units) or None (for
            ``==``, ``!=``, ``in``).
        name: the declared part's name (empty for a check built by hand).
        label: for a part declared ``over`` a label, this check's label.
        api: the older spelling of ``kind="api"``.

    Raises:
        ValueError: an empty figure name or seed dict, an unknown `op` or `kind`, a bad
            `noise`, or a value that is not a number, bool or string.
    """

    figure: str
    values: object
    op: str
    threshold: object
    kind: str = "evidence"
    noise: object = None
    noise_unit: str = ""
    digits: int | None = None
    unit: str = ""
    name: str = ""
    label: str = ""
    api: dataclasses.InitVar[bool] = False

    def __post_init__(self, api):
        if not isinstance(self.figure, str) or not self.figure.strip():
            raise ValueError(f"figure must be a non-empty description, got {self.figure!r}")
        kind = "api" if api else self.kind
        values = self.values
        if hasattr(values, "to_dict"):  # a pandas Series
            values = values.to_dict()
        if isinstance(values, dict):
            if not values:
                raise ValueError(f"values of {self.figure!r} must hold at least one seed")
            values = {str(k): _plain(v, f"values[{k!r}]") for k, v in values.items()}
        else:
            values = _plain(values, "values")
        if self.noise == "given":
            raise ValueError(f"noise of {self.figure!r} must be the given number, not 'given'")
        threshold, noise = _validated(
            self.op,
            kind,
            self.digits,
            self.threshold,
            self.noise,
            self.noise_unit,
            {k: getattr(self, k) for k in ("noise_unit", "unit", "name", "label")},
        )
        if noise == "seeds" and not isinstance(values, dict):
            raise ValueError(
                f"noise 'seeds' of {self.figure!r} needs values per seed ({{seed: value}})"
            )
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "threshold", threshold)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "noise", noise)

    @property
    def per_seed(self):
        """The values as ``{seed: value}``; one value without seeds is keyed ``""``."""
        return self.values if isinstance(self.values, dict) else {"": self.values}

    @property
    def votes(self):
        """True unless the part is context."""
        return self.kind != "context"

    def held(self):
        """``{seed: bool}``: whether ``value <op> threshold`` in each seed (None fails)."""
        compare = OPS[self.op]
        return {
            s: v is not None and bool(compare(_key(v), _key(self.threshold)))
            for s, v in self.per_seed.items()
        }

    def status(self):
        """``"held"``, ``"not held"`` or ``"partly"`` (seeds disagree) for this part."""
        flags = list(self.held().values())
        return HELD if all(flags) else NOT_HELD if not any(flags) else PARTLY

    def condition(self):
        """The stated condition as text, such as ``"> 1"``."""
        return f"{self.op} {_show(self.threshold)}"

    def exact(self):
        """True when every value is exact (bool, int, string)."""
        return all(
            isinstance(v, (bool, int, str)) or (isinstance(v, list) and all(map(_is_exact, v)))
            for v in self.per_seed.values()
        )

    def record(self):
        """The check as a JSON-friendly dict."""
        return {
            "name": self.name,
            "label": self.label,
            "figure": self.figure,
            "values": self.values,
            "op": self.op,
            "threshold": self.threshold,
            "kind": self.kind,
            "noise": self.noise,
            "noise_unit": self.noise_unit,
            "unit": self.unit,
            "digits": self.digits,
        }

    @classmethod
    def from_record(cls, record):
        """The check a `record` describes (an older record may lack ``kind``, ``noise``,
        ``unit`` and ``name``, and have ``api`` instead of ``kind``).

        Raises:
            ValueError: a field is missing or invalid.
        """
        try:
            fields = {k: record[k] for k in ("figure", "values", "op", "threshold")}
            fields["kind"] = record.get("kind", "api" if record.get("api") else "evidence")
            for key, default in (
                ("noise", None),
                ("noise_unit", ""),
                ("unit", ""),
                ("name", ""),
                ("label", ""),
                ("digits", None),
            ):
                fields[key] = record.get(key, default)
            return cls(**fields)
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"a claim check record lacks a field: {err}") from None


def _is_mapping(value):
    return isinstance(value, dict) or hasattr(value, "to_dict")


def bind(claim_id, figures, noise=None, claims=None):
    """The checks of one claim: its declared parts with the chapter's figures bound.

    Args:
        claim_id: an id of claims.toml.
        figures: ``{part name: value}``; a value is one number (bool, string, list) or
            ``{seed: value}`` (a dict or pandas Series); for a part declared ``over`` a label,
            ``{label: value}``.
        noise: ``{part name: number}`` (or ``{label: number}`` for an ``over`` part) for the
            parts whose noise is ``"given"``.
        claims: the claims to look the id up in (default: `load()`).

    Returns:
        A list of `Check`, in the order of the declaration (an ``over`` part in the order of
        its labels).

    Raises:
        ValueError: an unknown claim, a declared figure left unbound, a figure or noise bound
            that is not declared, or a bad value.
    """
    claim = _claim(claim_id, claims)
    parts = {p.name: p for p in claim["parts"]}
    keywords = list(dict.fromkeys(p.binds for p in parts.values()))
    noise = {} if noise is None else noise
    if not isinstance(noise, dict):
        raise ValueError(f"noise must be a dict {{part name: number}}, got {noise!r}")
    missing = [n for n in keywords if n not in figures]
    extra = [n for n in figures if n not in keywords]
    given = list(dict.fromkeys(p.binds for p in parts.values() if p.noise == "given"))
    if missing or extra:
        problem = []
        if missing:
            problem.append(f"lacks the declared figure(s) {', '.join(missing)}")
        if extra:
            problem.append(f"binds {', '.join(extra)}, which claims.toml does not declare")
        raise ValueError(
            f"report({claim_id!r}) {' and '.join(problem)}; its parts are {', '.join(parts)}"
        )
    if sorted(noise) != sorted(given):
        raise ValueError(
            f"report({claim_id!r}) must give noise={{...}} for exactly the parts "
            f"declared noise = 'given' ({', '.join(given) or 'none'}), got "
            f"{', '.join(noise) or 'none'}"
        )
    found = []
    for name, part in parts.items():
        value = figures[part.binds]
        if part.over:
            if not _is_mapping(value) or not len(value):
                raise ValueError(
                    f"report({claim_id!r}): {name} is declared per {part.over}, so "
                    f"bind it as {{{part.over}: value}}, got {type(value).__name__}"
                )
            labelled = dict(value.to_dict() if hasattr(value, "to_dict") else value)
        else:
            labelled = {None: value}
        for label, v in labelled.items():
            n = noise[part.binds] if part.noise == "given" else part.noise
            if part.over and _is_mapping(n):
                n = n.get(label)
            try:
                found.append(
                    Check(
                        figure=part.figure if label is None else f"{part.figure}, {label}",
                        values=v,
                        op=part.op,
                        threshold=part.threshold,
                        kind=part.kind,
                        noise=n,
                        noise_unit=part.noise_unit,
                        digits=part.digits,
                        unit=part.unit,
                        name=name,
                        label="" if label is None else str(label),
                    )
                )
            except ValueError as err:
                raise ValueError(f"report({claim_id!r}), {name}: {err}") from None
    return found


def margin(check):
    """How far a part's figure is from its threshold, in units of the figure's noise.

    Only the comparisons ``<``, ``<=``, ``>``, ``>=`` on numbers have a margin: the signed
    distance of the worst seed to the threshold (positive on the side where the part holds).
    The noise is the standard deviation over the seeds (``noise="seeds"``, n - 1; none with
    one seed), zero (``"exact"``) or the declared number.

    Args:
        check: a `Check`.

    Returns:
        None for a comparison without a margin, else a dict: ``distance`` (None when a value
        is missing), ``noise`` (None: undeclared, or one seed), ``units`` (distance / noise, or
        None), ``fragile`` (the part holds, by no more than its noise) and ``text``.
    """
    if check.op not in ORDERED:
        return None
    values = [v for v in check.per_seed.values() if v is not None]  # None: a missing value
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    limit = check.threshold
    if not numeric or not isinstance(limit, (int, float)) or isinstance(limit, bool):
        return None
    if len(values) < len(check.per_seed):
        text = "margin n/a: a value is missing (NaN)"
        return {"distance": None, "noise": None, "units": None, "fragile": False, "text": text}
    sign = 1.0 if check.op in (">", ">=") else -1.0
    distance = min(sign * (float(v) - float(limit)) for v in values)
    if check.noise is None:
        noise, unit = None, "noise not declared"
    elif check.noise == "exact":
        noise, unit = 0.0, "exact"
    elif check.noise == "seeds":
        if len(values) < 2:
            noise, unit = None, "one seed: no spread"
        else:
            noise = float(np.std(np.array(values, dtype=float), ddof=1))
            unit = f"the spread over {len(values)} seeds ({noise:.2g})"
    else:
        noise, unit = check.noise, f"{check.noise_unit} ({check.noise:.2g})"
    held = check.status() == HELD
    fragile = held and noise is not None and check.noise != "exact" and distance <= noise
    units = distance / noise if noise else None
    if units is None:
        text = f"margin {distance:.2g}, {unit}"
    else:
        text = f"margin {distance:.2g} = {units:.3g} × {unit}"
    return {
        "distance": distance,
        "noise": noise,
        "units": units,
        "fragile": fragile,
        "text": text + (": fragile" if fragile else ""),
    }


def _is_exact(v):
    return isinstance(v, (bool, int, str))


def _key(v):
    """Lists compare as tuples (``[1, 2] == (1, 2)``, and ``in`` finds them)."""
    return tuple(v) if isinstance(v, list) else v


def _show(v, digits=None, separate=True):
    """A value as text; integers get thousands separators, except inside lists."""
    if isinstance(v, float) and digits is not None:
        return f"{v:.{digits}f}"
    if isinstance(v, list):
        return "[" + ", ".join(_show(x, digits, separate=False) for x in v) + "]"
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 1000 and separate:
        return f"{v:,}"
    return "n/a" if v is None else str(v)


def _checked(parts):
    parts = list(parts) if isinstance(parts, (list, tuple)) else None
    if not parts or not all(isinstance(c, Check) for c in parts):
        raise ValueError("checks must be a non-empty list of helpers.chapter.claims.Check")
    if not any(c.votes for c in parts):
        raise ValueError("checks must hold at least one part that votes (not kind='context')")
    return parts


def fragile_parts(parts):
    """The voting parts that hold by no more than their noise."""
    return [c for c in _checked(parts) if c.votes and (margin(c) or {}).get("fragile")]


def verdict(parts):
    """The verdict on a claim: the one function every page uses (rules: module docstring).

    Args:
        parts: a non-empty sequence of `Check`, at least one of them not context.

    Returns:
        One of `VERDICTS`.

    Raises:
        ValueError: `parts` is empty, holds something other than a `Check`, or only context.
    """
    voting = [c for c in _checked(parts) if c.votes]
    status = {id(c): c.status() for c in voting}
    if all(s == NOT_HELD for s in status.values()):
        return NOT_HELD
    if any(status[id(c)] != HELD for c in voting if c.kind == "evidence"):
        return PARTLY
    if fragile_parts(voting):
        return FRAGILE
    if any(s != HELD for s in status.values()):
        return API_DIFFERS
    return HELD


def figure_text(check):
    """The figure's value: exact values as they are; floats with the check's `digits` (two
    significant digits without); per-seed numbers as ``mean (lowest to highest, n seeds)``;
    then the unit."""
    values = list(check.per_seed.values())
    unit = f" {check.unit}" if check.unit else ""
    if check.exact() or len(values) == 1:
        return ", ".join(_number(v, check.digits) for v in values) + unit
    finite = np.array([v for v in values if isinstance(v, (int, float))], dtype=float)
    finite = finite[np.isfinite(finite)]
    if not finite.size:
        return "n/a"
    low, mean, high = (
        _number(float(v), check.digits) for v in (finite.min(), finite.mean(), finite.max())
    )
    return f"{mean}{unit} ({low} to {high}, {len(values)} seeds)"


def _number(v, digits):
    if isinstance(v, float):
        return f"{v + 0.0:.{digits}f}" if digits is not None else f"{v:.2g}"
    return _show(v, digits)


def part_text(check):
    """One part as the chapter and the claims index both show it: figure (condition): value
    [seeds held or status; margin; context]."""
    held = check.held()
    count = f"{sum(held.values())}/{len(held)} seeds" if "" not in held else check.status()
    found = margin(check)
    if found is not None:
        count += f"; {found['text']}"
    if check.kind == "api":
        count += "; TensorFlow/Keras behaviour"
    if check.kind == "context":
        count += "; context, does not vote"
    return f"{check.figure} ({check.condition()}): {figure_text(check)} [{count}]"


def heading(claim_id, page, word):
    """The first line of a claim's report: its id, page and verdict."""
    cite = f"{'pp.' if '-' in page else 'p.'} {page}" if page else "beyond the book"
    return f"{claim_id} ({cite}): {word}"


#: The claims reported in this kernel, in order: what `outcomes` prints.
_REPORTED = {}


def outcome_line(claim_id, parts):
    """One claim's outcome at its thresholds: each voting part's seeds held, by name.

    This is what reads the same on every computer whose figures stay on the same side of each
    threshold: no figure and no margin, so no fragility either (that is in the report).
    """
    shown = []
    for check in parts:
        if not check.votes:
            continue
        held = check.held()
        label = (check.name or check.figure) + (f"[{check.label}]" if check.label else "")
        count = f"{sum(held.values())}/{len(held)}" if "" not in held else check.status()
        shown.append(f"{label} {count}")
    return f"{claim_id}: " + ", ".join(shown)


def report(claim_id, *, noise=None, claims=None, **figures):
    """Report one claim: bind the chapter's figures to its declared parts, and display the
    verdict and every part, as the claims index shows them.

    Args:
        claim_id: an id of ``helpers/chapter/claims.toml``, such as ``"C1"``.
        noise: ``{part name: number}`` for the parts declared ``noise = "given"``.
        claims: the claims to look the id up in (default: `load()`).
        **figures: one keyword per declared part (see `bind`).

    Returns:
        None (the report is displayed; its record goes into the output's metadata).

    Raises:
        ValueError: see `bind`.
    """
    claim = _claim(claim_id, claims)
    parts = bind(claim_id, figures, noise, claims={claim_id: claim})
    word = verdict(parts)
    _REPORTED[claim_id] = outcome_line(claim_id, parts)
    lines = [heading(claim_id, claim["page"], word)] + [f"  - {part_text(c)}" for c in parts]
    record = {"id": claim_id, "verdict": word, "checks": [c.record() for c in parts]}
    from IPython.display import display

    display({"text/plain": "\n".join(lines)}, raw=True, metadata={METADATA_KEY: record})


def outcomes():
    """Print, for every claim reported in this kernel, whether each voting part held, and in
    how many seeds: the lines a chapter's compared output states.

    The verdict word and the margins are in the reports, which nbval does not compare: a
    margin within the noise moves from one computer to another, and "fragile" with it (chapter
    07's C1 is "held" at 1.4 times its seeds' spread here and "fragile" at 0.5 under other
    numerics). Which side of its threshold each figure is on is what every computer
    reproduces when the thresholds have margin, and that is what this prints.

    Raises:
        ValueError: no claim has been reported in this kernel.
    """
    if not _REPORTED:
        raise ValueError("no claim has been reported in this kernel yet; call report() first")
    print("\n".join(_REPORTED.values()))


def records(notebook):
    """The claim records in an executed notebook, in order.

    Args:
        notebook: a notebook as a dict (``json.load`` of the ``.ipynb``) or an nbformat node.

    Returns:
        A list of ``(record, checks, verdict)``: the stored record, its `Check` objects, and
        the verdict recomputed from them by `verdict`.

    Raises:
        ValueError: a record is malformed.
    """
    found = []
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            record = output.get("metadata", {}).get(METADATA_KEY)
            if record is None:
                continue
            if not isinstance(record, dict) or not isinstance(record.get("checks"), list):
                raise ValueError(f"a claim record is malformed: {record!r}")
            parts = [Check.from_record(c) for c in record["checks"]]
            found.append((record, parts, verdict(parts)))
    return found

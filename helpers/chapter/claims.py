"""Claim reports: a chapter states what it measured, and the verdict follows from the numbers.

The claims the book makes are listed once, in our words, in ``helpers/chapter/claims.toml``. A
chapter reports a claim with `report`, passing one `Check` per part of the claim: the figure it
measured (one value, or one value per seed), the comparison and the threshold the chapter
states, what kind of part it is and what noise its figure carries. Each part holds in a seed
when ``value <op> threshold`` is true, and the claim's verdict is computed from the parts that
vote by `verdict_of`, never passed in as a word. The words are the companion's one vocabulary,
`helpers.chapter.verdicts.VERDICTS`:

* **held**: every part holds in every seed;
* **held, API not as described**: every part about the learning method holds, and at least one
  part about what TensorFlow/Keras does (``kind="api"``: as the book's TF 2.0 or the Keras
  guide describes it) was not observed today;
* **not held**: no part holds in any seed;
* **partly**: anything else (seeds disagree, or one part of a compound claim holds and another
  does not).

A part of ``kind="context"`` (a figure shown beside the claim, such as a library default the
book never stated) is shown but does not vote.

Every comparison ``<``, ``<=``, ``>``, ``>=`` declares the noise of its figure (``noise``):
``"seeds"`` for results of training (the spread over the seeds), ``"exact"`` for counts, flags
and settings, or a number, the float noise in the figure's units (an ulp, a derived rounding
bound), named by ``noise_unit``. `margin` measures how far the worst seed is from the threshold
in that unit; a part that holds by no more than one unit of its noise is *fragile*, and
`verdict_with_margins` (what the claims index shows) does not count it as held. Margins are
computed from the raw figures when the index is built, never printed by the chapter.

The report's text states the verdict and each part's count of seeds, which read the same on
every CPU when the chapter's thresholds have margin; a single exact figure (a count, a flag, a
setting, not a result of training) is shown too. The full record, raw per-seed figures
included, goes into the output's metadata under `METADATA_KEY`, where the book's claims index
reads it from the executed notebook and recomputes the verdict.
"""

import dataclasses
import math
import numbers
import operator
import os
import tomllib

from helpers import checks
from helpers.chapter.verdicts import API_DIFFERS, FRAGILE, HELD, NOT_HELD, PARTLY, VERDICTS

import numpy as np

__all__ = ["VERDICTS", "Check", "load", "margin", "report", "verdict_of", "verdict_with_margins"]

#: Where a report keeps its machine-readable record in the notebook output's metadata.
METADATA_KEY = "bn_companion_claim"
#: What a part is: evidence for the claim (votes), what TensorFlow/Keras does (votes as an API
#: part), or context shown beside the claim (never votes).
KINDS = ("evidence", "api", "context")
#: The comparisons whose margin depends on the figure's noise, which they must declare.
ORDERED = ("<", "<=", ">", ">=")
#: The comparisons a check may state, with the words the report prints.
OPS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "in": lambda value, allowed: value in allowed,
}
CLAIMS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "claims.toml")


def load(path=CLAIMS_FILE):
    """The claims of the book and beyond it, in the order of the file.

    Args:
        path: a TOML file with one ``[[claim]]`` table per claim (``id``, ``page`` or ``""``
            for a claim beyond the book, ``book``, ``chapter``, ``section``, ``decided_by``).

    Returns:
        A dict ``{id: table}``.

    Raises:
        ValueError: a claim lacks a field, or an id appears twice.
    """
    with open(path, "rb") as f:
        tables = tomllib.load(f).get("claim", [])
    fields = ("id", "page", "book", "chapter", "section", "decided_by")
    claims = {}
    for i, table in enumerate(tables):
        missing = [k for k in fields if not isinstance(table.get(k), str)]
        if missing:
            raise ValueError(f"claim {i + 1} of {path} lacks the text field(s) {missing}")
        if table["id"] in claims:
            raise ValueError(f"claim id {table['id']} appears twice in {path}")
        claims[table["id"]] = table
    return claims


def _plain(value, what):
    """A JSON-friendly scalar: bool, int, float (NaN becomes None), str, or a tuple of them."""
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


@dataclasses.dataclass(frozen=True)
class Check:
    """One part of a claim: a measured figure against the threshold the chapter states.

    Args:
        figure: what was measured, in words (``"steps ratio r, no BN / BN"``).
        values: the figure: one value, or a dict (or pandas Series) ``{seed: value}``.
        op: the comparison that makes the part hold: one of `OPS`.
        threshold: the value to compare with (a list of allowed values for ``"in"``).
        kind: ``"evidence"`` (votes), ``"api"`` (what TensorFlow/Keras does, as the book or the
            Keras guide describes it; a failing API part gives "held, API not as described",
            not "not held") or ``"context"`` (shown, never votes).
        noise: the noise of the figure, required by ``<``, ``<=``, ``>``, ``>=`` (the claims
            index refuses a record without it): ``"seeds"`` (the spread over seeds; `values`
            must be per seed), ``"exact"`` (a count, flag or setting) or a number > 0 (the
            float noise in the figure's units, named by `noise_unit`).
        noise_unit: what a numeric `noise` is, in words (``"1 float32 ulp of 0.009"``).
        digits: decimals for showing a float figure in the claims index; None shows it as is.
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
    api: dataclasses.InitVar[bool] = False

    def __post_init__(self, api):
        if not isinstance(self.figure, str) or not self.figure.strip():
            raise ValueError(f"figure must be a non-empty description, got {self.figure!r}")
        if self.op not in OPS:
            raise ValueError(f"op must be one of {', '.join(OPS)}, got {self.op!r}")
        if self.digits is not None and (not checks.is_int(self.digits) or self.digits < 0):
            raise ValueError(f"digits must be None or an integer >= 0, got {self.digits!r}")
        kind = "api" if api else self.kind
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        values = self.values
        if hasattr(values, "to_dict"):  # a pandas Series
            values = values.to_dict()
        if isinstance(values, dict):
            if not values:
                raise ValueError(f"values of {self.figure!r} must hold at least one seed")
            values = {str(k): _plain(v, f"values[{k!r}]") for k, v in values.items()}
        else:
            values = _plain(values, "values")
        threshold = _plain(self.threshold, "threshold")
        if self.op == "in" and not isinstance(threshold, list):
            raise ValueError(f"threshold of op 'in' must be a list, got {self.threshold!r}")
        noise = self.noise
        if not isinstance(self.noise_unit, str):
            raise ValueError(f"noise_unit must be text, got {self.noise_unit!r}")
        if noise == "seeds" and not isinstance(values, dict):
            raise ValueError(
                f"noise 'seeds' of {self.figure!r} needs values per seed ({{seed: value}})"
            )
        if isinstance(noise, str) or noise is None:
            if noise not in (None, "seeds", "exact"):
                raise ValueError(
                    f"noise must be 'seeds', 'exact' or a number > 0, got {self.noise!r}"
                )
        elif checks.is_real(noise) and math.isfinite(noise) and noise > 0:
            noise = float(noise)
            if not self.noise_unit.strip():
                raise ValueError(
                    f"a numeric noise ({noise:g}) needs a noise_unit saying what it is"
                )
        else:
            raise ValueError(f"noise must be 'seeds', 'exact' or a number > 0, got {noise!r}")
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
        """True when every value is exact (bool, int, string): safe to print anywhere."""
        return all(
            isinstance(v, (bool, int, str)) or (isinstance(v, list) and all(map(_is_exact, v)))
            for v in self.per_seed.values()
        )

    def record(self):
        """The check as a JSON-friendly dict."""
        return {
            "figure": self.figure,
            "values": self.values,
            "op": self.op,
            "threshold": self.threshold,
            "kind": self.kind,
            "noise": self.noise,
            "noise_unit": self.noise_unit,
            "digits": self.digits,
        }

    @classmethod
    def from_record(cls, record):
        """The check a `record` describes (a record stored before ``kind`` and ``noise``
        existed has ``api`` instead, and no noise).

        Raises:
            ValueError: a field is missing or invalid.
        """
        try:
            fields = {k: record[k] for k in ("figure", "values", "op", "threshold")}
            fields["kind"] = record.get("kind", "api" if record.get("api") else "evidence")
            fields.update({k: record.get(k, d) for k, d in (("noise", None), ("noise_unit", ""))})
            fields["digits"] = record.get("digits")
            return cls(**fields)
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"a claim check record lacks a field: {err}") from None


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
    threshold = check.threshold
    if not numeric or not isinstance(threshold, (int, float)) or isinstance(threshold, bool):
        return None
    if len(values) < len(check.per_seed):
        text = "margin n/a: a value is missing (NaN)"
        return {"distance": None, "noise": None, "units": None, "fragile": False, "text": text}
    sign = 1.0 if check.op in (">", ">=") else -1.0
    distance = min(sign * (float(v) - float(threshold)) for v in values)
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


def _checked(checks):
    checks = list(checks) if isinstance(checks, (list, tuple)) else None
    if not checks or not all(isinstance(c, Check) for c in checks):
        raise ValueError("checks must be a non-empty list of helpers.chapter.claims.Check")
    if not any(c.votes for c in checks):
        raise ValueError("checks must hold at least one part that votes (not kind='context')")
    return checks


def verdict_of(checks):
    """The verdict on a claim from the parts that vote (see the module docstring).

    Args:
        checks: a non-empty sequence of `Check`, at least one of them not context.

    Returns:
        One of `VERDICTS` other than "fragile".

    Raises:
        ValueError: `checks` is empty, holds something other than a `Check`, or only context.
    """
    voting = [c for c in _checked(checks) if c.votes]
    status = [c.status() for c in voting]
    if all(s == HELD for s in status):
        return HELD
    if all(s == HELD for c, s in zip(voting, status) if c.kind != "api"):
        return API_DIFFERS
    if all(s == NOT_HELD for s in status):
        return NOT_HELD
    return PARTLY


def verdict_with_margins(checks):
    """`verdict_of`, except that a claim held only thanks to a fragile part is "fragile".

    This is what the claims index shows: it depends on the last digits of the figures, so a
    chapter's compared text never prints it.
    """
    verdict = verdict_of(checks)
    fragile = any((margin(c) or {}).get("fragile") for c in checks if c.votes)
    return FRAGILE if fragile and verdict in (HELD, API_DIFFERS) else verdict


def summary(check):
    """One check as text: the condition, then the value of a single measurement when it is
    exact (or has `digits`), else whether it held; per-seed figures are results of training,
    whose digits vary between computers, so only the count of seeds where the part held is
    shown."""
    held = check.held()
    line = f"{check.figure} {check.condition()}: "
    single = len(held) == 1 and "" in held
    if single and (check.exact() or check.digits is not None):
        shown = ", ".join(_show(v, check.digits) for v in check.per_seed.values())
        line += f"{shown} ({check.status()})"
    elif single:
        line += check.status()
    else:
        line += f"held in {sum(held.values())} of {len(held)} seeds"
    tag = {"api": " [TensorFlow/Keras behaviour]", "context": " [context: does not vote]"}
    return line + tag.get(check.kind, "")


def figure_text(check):
    """The figure's value for the claims index.

    Exact values are shown as they are; floats with the check's `digits` (two significant
    digits without); per-seed numbers as ``mean (lowest to highest, n seeds)``.
    """
    values = list(check.per_seed.values())
    if check.exact() or len(values) == 1:
        return ", ".join(_number(v, check.digits) for v in values)
    finite = np.array([v for v in values if isinstance(v, (int, float))], dtype=float)
    finite = finite[np.isfinite(finite)]
    if not finite.size:
        return "n/a"
    low, mean, high = (
        _number(float(v), check.digits) for v in (finite.min(), finite.mean(), finite.max())
    )
    return f"{mean} ({low} to {high}, {len(values)} seeds)"


def _number(v, digits):
    if isinstance(v, float):
        return f"{v + 0.0:.{digits}f}" if digits is not None else f"{v:.2g}"
    return _show(v, digits)


def report(claim_id, *checks, claims=None):
    """Report the verdict on one claim, computed from its checks, and display it.

    The displayed text (verdict and per-check findings) is what every CPU reproduces; the
    record with the raw figures goes into the output's metadata under `METADATA_KEY`.

    Args:
        claim_id: an id of ``helpers/chapter/claims.toml``, such as ``"C1"``.
        *checks: one `Check` per part of the claim.
        claims: the claims to look the id up in (default: `load()`).

    Returns:
        None (the verdict is displayed; `verdict_of` computes it without displaying).

    Raises:
        ValueError: an unknown claim id, or no checks.
    """
    claims = load() if claims is None else claims
    if claim_id not in claims:
        raise ValueError(f"claim_id must be one of the ids of claims.toml, got {claim_id!r}")
    result = verdict_of(list(checks))
    page = claims[claim_id]["page"]
    cite = f" ({'pp.' if '-' in page else 'p.'} {page})" if page else ""
    lines = [f"{claim_id}{cite}: {result}"]
    lines += [f"  - {summary(c)}" for c in checks]
    record = {"id": claim_id, "verdict": result, "checks": [c.record() for c in checks]}
    from IPython.display import display

    display({"text/plain": "\n".join(lines)}, raw=True, metadata={METADATA_KEY: record})


def records(notebook):
    """The claim records in an executed notebook, in order.

    Args:
        notebook: a notebook as a dict (``json.load`` of the ``.ipynb``) or an nbformat node.

    Returns:
        A list of ``(record, checks, verdict)``: the stored record, its `Check` objects, and
        the verdict recomputed from them.

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
            checks = [Check.from_record(c) for c in record["checks"]]
            found.append((record, checks, verdict_of(checks)))
    return found

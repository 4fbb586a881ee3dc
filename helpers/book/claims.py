"""Claim reports: a chapter states what it measured, and the verdict follows from the numbers.

The claims the book makes are listed once, in our words, in ``helpers/book/claims.toml``. A chapter
reports a claim with `report`, passing one `Check` per part of the claim: the figure it
measured (one value, or one value per seed), the comparison and the threshold the chapter
states. Each part holds in a seed when ``value <op> threshold`` is true, and the claim's verdict
is computed from those findings by `verdict_of`, never passed in as a word:

* **held**: every part holds in every seed;
* **changed in Keras 3**: every part about the learning method holds, and at least one part
  about TensorFlow's API (``api=True``: what the book's TF 2.0 did) does not;
* **not held**: no part holds in any seed;
* **partly**: anything else (seeds disagree, or one part of a compound claim holds and another
  does not).

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

from helpers.book import checks

import numpy as np

#: Where a report keeps its machine-readable record in the notebook output's metadata.
METADATA_KEY = "bn_companion_claim"
#: The four verdicts, from best to worst.
VERDICTS = ("held", "changed in Keras 3", "partly", "not held")
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
        api: True when the part is about what TensorFlow/Keras does (the book describes TF
            2.0); a failing API part makes the verdict "changed in Keras 3", not "not held".
        digits: decimals for showing a float figure in the claims index; None shows it as is.

    Raises:
        ValueError: an empty figure name or seed dict, an unknown `op`, or a value that is not
            a number, bool or string.
    """

    figure: str
    values: object
    op: str
    threshold: object
    api: bool = False
    digits: int | None = None

    def __post_init__(self):
        if not isinstance(self.figure, str) or not self.figure.strip():
            raise ValueError(f"figure must be a non-empty description, got {self.figure!r}")
        if self.op not in OPS:
            raise ValueError(f"op must be one of {', '.join(OPS)}, got {self.op!r}")
        if self.digits is not None and (not checks.is_int(self.digits) or self.digits < 0):
            raise ValueError(f"digits must be None or an integer >= 0, got {self.digits!r}")
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
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "threshold", threshold)
        object.__setattr__(self, "api", bool(self.api))

    @property
    def per_seed(self):
        """The values as ``{seed: value}``; one value without seeds is keyed ``""``."""
        return self.values if isinstance(self.values, dict) else {"": self.values}

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
        return "held" if all(flags) else "not held" if not any(flags) else "partly"

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
            "api": self.api,
            "digits": self.digits,
        }

    @classmethod
    def from_record(cls, record):
        """The check a `record` describes.

        Raises:
            ValueError: a field is missing or invalid.
        """
        try:
            return cls(**{f.name: record[f.name] for f in dataclasses.fields(cls)})
        except (KeyError, TypeError) as err:
            raise ValueError(f"a claim check record lacks a field: {err}") from None


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


def verdict_of(checks):
    """The verdict on a claim from its checks (see the module docstring for the rules).

    Args:
        checks: a non-empty sequence of `Check`.

    Returns:
        One of `VERDICTS`.

    Raises:
        ValueError: `checks` is empty or holds something other than a `Check`.
    """
    checks = list(checks) if isinstance(checks, (list, tuple)) else None
    if not checks or not all(isinstance(c, Check) for c in checks):
        raise ValueError("checks must be a non-empty list of helpers.book.claims.Check")
    status = [c.status() for c in checks]
    if all(s == "held" for s in status):
        return "held"
    if all(s == "held" for c, s in zip(checks, status) if not c.api):
        return "changed in Keras 3"
    if all(s == "not held" for s in status):
        return "not held"
    return "partly"


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
    return line + (" [TensorFlow/Keras behaviour]" if check.api else "")


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
        claim_id: an id of ``helpers/book/claims.toml``, such as ``"C1"``.
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

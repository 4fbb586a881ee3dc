"""Chapter parameters: each one's type and range stated once, every value checked in one call.

A chapter's first code cell holds its parameters, which a reader overrides with
``make run CHAPTER=NN PARAMS="-p name value"`` (papermill). The next cell checks them::

    check(globals(), seed=Int(0), n_train=Int("batch_size", 55_000), epochs=Int(1), ...)

A wrong value stops the chapter with one sentence that names the parameter, the value and what
is allowed, before anything runs: ``epochs must be an integer >= 1, got -1``. A bound may be the
name of another parameter, for structural minimums such as "at least one batch of training
images" (``Int("batch_size")``). A name that is not a parameter of the chapter (a misspelt
``-p``) is an error too, since it would otherwise be silently ignored.

`table` renders the same specification as a table of parameters.

This module must not import TensorFlow: the check runs before the chapter loads it.
"""

import math

from helpers import checks

#: Names the notebook kernel defines by itself; everything else at the check is a parameter.
_KERNEL_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


class ParameterError(ValueError):
    """A chapter parameter has a wrong value; the message says which, and what is allowed."""


def _fmt(x):
    return f"{x:,}" if checks.is_int(x) else f"{x:g}" if isinstance(x, float) else repr(x)


class _Rule:
    """One parameter's rule: `describe` says what is allowed, `bounds` names other parameters."""

    def bounds(self):
        return []

    def ok(self, value, resolve):
        raise NotImplementedError

    def describe(self, resolve):
        raise NotImplementedError


class _Number(_Rule):
    noun = ""

    def __init__(self, min=None, max=None, *, min_open=False, max_open=False, multiple_of=None):
        self.min, self.max, self.multiple_of = min, max, multiple_of
        self.min_open, self.max_open = min_open, max_open

    def bounds(self):
        return [b for b in (self.min, self.max) if isinstance(b, str)]

    def _bound(self, bound, resolve):
        return resolve(bound) if isinstance(bound, str) else bound

    def _fits(self, value, resolve):
        lo, hi = self._bound(self.min, resolve), self._bound(self.max, resolve)
        if lo is not None and (value < lo or (self.min_open and value == lo)):
            return False
        if hi is not None and (value > hi or (self.max_open and value == hi)):
            return False
        return self.multiple_of is None or value % self.multiple_of == 0

    def describe(self, resolve=None):
        def shown(bound):
            if isinstance(bound, str) and resolve is not None:
                return f"{_fmt(resolve(bound))} ({bound})"
            return bound if isinstance(bound, str) else _fmt(bound)

        text = self.noun
        if self.min is not None and self.max is not None:
            low, high = shown(self.min), shown(self.max)
            text += {
                (False, False): f" from {low} to {high}",
                (True, False): f" above {low}, up to {high}",
                (False, True): f" from {low}, below {high}",
                (True, True): f" above {low} and below {high}",
            }[self.min_open, self.max_open]
        elif self.min is not None:
            text += f" {'>' if self.min_open else '>='} {shown(self.min)}"
        elif self.max is not None:
            text += f" {'<' if self.max_open else '<='} {shown(self.max)}"
        if self.multiple_of is not None:
            text += f", a multiple of {_fmt(self.multiple_of)}"
        return text


class Int(_Number):
    """An integer, optionally within ``[min, max]`` and a multiple of `multiple_of`.

    Args:
        min, max: bounds (inclusive); a string names another parameter whose value is the bound.
        multiple_of: the value must be a multiple of this.
    """

    noun = "an integer"

    def ok(self, value, resolve):
        return checks.is_int(value) and self._fits(value, resolve)


class Float(_Number):
    """A finite number (an integer is accepted too), optionally within bounds.

    Args:
        min, max: bounds; a string names another parameter whose value is the bound.
        min_open: exclude `min` itself (``> min`` instead of ``>= min``).
    """

    noun = "a number"

    def ok(self, value, resolve):
        return checks.is_real(value) and math.isfinite(value) and self._fits(value, resolve)


class Choice(_Rule):
    """One of a fixed set of values.

    Args:
        *choices: the allowed values.
    """

    def __init__(self, *choices):
        self.choices = choices

    def ok(self, value, resolve):
        return not isinstance(value, (list, dict)) and value in self.choices

    def describe(self, resolve=None):
        return "one of " + ", ".join(map(repr, self.choices))


class Text(_Rule):
    """A string (empty allowed)."""

    def ok(self, value, resolve):
        return isinstance(value, str)

    def describe(self, resolve=None):
        return "a string"


class AnyOf(_Rule):
    """A value that satisfies at least one of several rules.

    Args:
        *rules: the alternatives, e.g. ``AnyOf(Float(0, min_open=True), Choice("he_normal"))``.
    """

    def __init__(self, *rules):
        self.rules = rules

    def bounds(self):
        return [b for rule in self.rules for b in rule.bounds()]

    def ok(self, value, resolve):
        return any(rule.ok(value, resolve) for rule in self.rules)

    def describe(self, resolve=None):
        return " or ".join(rule.describe(resolve) for rule in self.rules)


class ListOf(_Rule):
    """A list whose every item follows `item`.

    Args:
        item: the rule for each item.
        min_len: the fewest items allowed (at least 1).
        including: values the list must contain (the chapter's checks refer to them).
    """

    def __init__(self, item, min_len=1, including=()):
        self.item, self.min_len, self.including = item, max(1, min_len), tuple(including)

    def bounds(self):
        return self.item.bounds()

    def ok(self, value, resolve):
        return (
            isinstance(value, (list, tuple))
            and len(value) >= self.min_len
            and all(self.item.ok(v, resolve) for v in value)
            and all(v in value for v in self.including)
        )

    def describe(self, resolve=None):
        size = "a non-empty list" if self.min_len == 1 else f"a list of at least {self.min_len}"
        text = f"{size} of {self.item.describe(resolve)}"
        return text + (
            f" that includes {', '.join(map(_fmt, self.including))}" if self.including else ""
        )


def _spec_errors(spec):
    for name, rule in spec.items():
        if not isinstance(rule, _Rule):
            raise TypeError(
                f"the rule for {name!r} must be Int, Float, Choice, Text, AnyOf or ListOf, "
                f"got {type(rule).__name__}"
            )
        for bound in rule.bounds():
            if bound not in spec:
                raise TypeError(
                    f"the rule for {name!r} refers to {bound!r}, which is not a parameter"
                )


def check(namespace, **spec):
    """Check a chapter's parameters against their rules; raise one sentence on the first problem.

    Args:
        namespace: the chapter's variables right after its parameters cell (``globals()``);
            every public name in it must be a parameter of `spec`.
        **spec: ``name=rule`` for every parameter, in the order of the parameters cell.

    Returns:
        None; the values are left as they are.

    Raises:
        ParameterError: a parameter is missing from the namespace, has a value its rule does
            not allow (the message names the parameter, the value and what is allowed, with the
            values of bounds taken from other parameters), or the namespace holds a name that
            is not a parameter.
        TypeError: `spec` itself is malformed (a programming error in the chapter).
    """
    _spec_errors(spec)
    unknown = sorted(
        name
        for name, value in namespace.items()
        if not name.startswith("_")
        and name not in _KERNEL_NAMES
        and name not in spec
        and not callable(value)
        and type(value).__name__ != "module"
        and not isinstance(value, _Rule)
    )
    if unknown:
        raise ParameterError(
            f"{unknown[0]} is not a parameter of this chapter; its parameters are "
            f"{', '.join(spec)}"
        )
    missing = [name for name in spec if name not in namespace]
    if missing:
        raise ParameterError(
            f"parameter {missing[0]} is not defined; run the parameters cell first"
        )
    checked = set()

    def resolve(name):
        value = namespace[name]
        if name not in checked and not spec[name].ok(value, resolve):
            fail(name)
        return value

    def fail(name):
        rule = spec[name]
        try:
            allowed = rule.describe(resolve)
        except ParameterError:
            raise
        except Exception:  # a bound that is itself invalid is reported for itself
            allowed = rule.describe(None)
        raise ParameterError(f"{name} must be {allowed}, got {namespace[name]!r}")

    for name, rule in spec.items():
        checked.add(name)
        if not rule.ok(namespace[name], resolve):
            fail(name)


def table(namespace=None, **spec):
    """The parameters as a table: name, what is allowed and, given a namespace, the value.

    Args:
        namespace: optional, the chapter's variables (``globals()``) to show the values.
        **spec: the same rules as for `check`.

    Returns:
        A pandas DataFrame with one row per parameter.
    """
    import pandas as pd

    _spec_errors(spec)
    rows = [
        (name, rule.describe(None)) + ((repr(namespace[name]),) if namespace is not None else ())
        for name, rule in spec.items()
    ]
    columns = ["parameter", "allowed"] + (["value"] if namespace is not None else [])
    return pd.DataFrame(rows, columns=columns).set_index("parameter")

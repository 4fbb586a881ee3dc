"""The check of a fused model: random inputs, predictions and their comparison.

`fuse` compares the fused model's outputs with the original's before a final softmax or
sigmoid (`before_squash`), against a bound that allows `NOISE_FACTOR` times how much moving
each weight by one ulp moves the outputs (`compare`); see `helpers.fusion.fuse`.
"""

from helpers import internals
from helpers.fusion.plan import linear_kind, np_dtype

import numpy as np

__all__ = ["NOISE_FACTOR", "RTOL", "before_squash", "check_inputs", "compare", "tolerance"]


#: Relative tolerance of `fuse`'s own check (see `fuse` for the justification).
RTOL = 1e-4
#: How many times the model's own float32 noise the check allows (see `fuse`).
NOISE_FACTOR = 10

_SQUASH = ("softmax", "sigmoid")


def before_squash(model):
    """`model`'s inputs to the outputs it computes before a final softmax or sigmoid."""
    import keras

    outs, changed = [], False
    for t in keras.tree.flatten(model.outputs):
        node = internals.producer(t)
        op = node.operation
        act = getattr(getattr(op, "activation", None), "__name__", "")
        if isinstance(op, keras.layers.Softmax) or (
            isinstance(op, keras.layers.Activation) and act in _SQUASH
        ):
            outs.append(node.input_tensors[0])
            changed = True
        elif act in _SQUASH and linear_kind(op) and len(node.input_tensors) == 1:
            linear = op.__class__.from_config({**op.get_config(), "activation": "linear"})
            outs.append(linear(node.input_tensors[0]))
            linear.set_weights(op.get_weights())
            changed = True
        else:
            outs.append(t)
    return keras.Model(model.inputs, outs) if changed else model


def _coarser(a, b):
    """Of two float dtypes, the one with the larger spacing of numbers near 1 (machine epsilon)."""

    def eps(dtype):
        d = np_dtype(dtype)
        return float(np.nextafter(np.ones((), d), np.full((), 2, d))) - 1.0

    return a if eps(a) >= eps(b) else b


def _one_ulp_off(weights, dtypes, rng):
    """Every float weight moved by one unit in the last place of its dtype in `dtypes`.

    Each weight is rounded to that dtype (its own, or a coarser compute dtype such as
    float16), moved to the next number of that dtype up or down at random, and stored back
    in its own dtype.
    """
    out = []
    for w, dtype in zip(weights, dtypes):
        if "float" in w.dtype.name:
            own = w.dtype.name
            d = np_dtype(_coarser(own, dtype) if "float" in str(dtype) else own)
            v = w.astype(d)
            down = np.nextafter(v, np.full((), -np.inf, d))
            up = np.nextafter(v, np.full((), np.inf, d))
            w = np.where(rng.random(w.shape) < 0.5, down, up).astype(w.dtype)
        out.append(w)
    return out


def _largest_change(a, b):
    """max |a - b|, infinite when a NaN appears (Python's max would skip a NaN)."""
    change = float(np.max(np.abs(a - b)))
    return np.inf if np.isnan(change) else change


def _largest_finite_change(a, b):
    """max |a - b| over the entries where both are finite (0.0 if there are none)."""
    change = np.abs(a - b)
    return float(np.max(change[np.isfinite(change)], initial=0.0))


def compare(views, fused, xs, ulp_dtypes, seed):
    """(max |fused - original|, noise, output scale) of the two `views` on the inputs `xs`.

    `noise` is the largest change of the fused outputs when every weight of `fused` moves by
    one ulp of its dtype in `ulp_dtypes` (`_one_ulp_off`). The scale is at least 1.
    """
    want = [_predict(views[0], batch) for batch in xs]
    got = [_predict(views[1], batch) for batch in xs]
    weights = fused.get_weights()
    fused.set_weights(_one_ulp_off(weights, ulp_dtypes, np.random.default_rng(seed)))
    try:
        noisy = [_predict(views[1], batch) for batch in xs]
    finally:
        fused.set_weights(weights)
    diff, noise, scale, finite = 0.0, 0.0, 1.0, True
    with np.errstate(invalid="ignore"):  # inf - inf: the caller reports non-finite outputs
        for w, g, z in zip(want, got, noisy):
            for a, b, c in zip(w, g, z):
                if a.size:
                    finite = finite and bool(np.all(np.isfinite(a)))
                    diff = max(diff, _largest_change(a, b))
                    noise = max(noise, _largest_finite_change(c, b))
                    scale = max(scale, float(np.max(np.abs(a))))
    return diff, noise, scale, finite


def _random_inputs(model, n, seed):
    rng = np.random.default_rng(seed)
    xs = []
    for t in model.inputs:
        shape = tuple(t.shape)[1:]
        if any(d is None for d in shape):
            return None
        if "int" in str(t.dtype):
            xs.append(rng.integers(0, 2, (n, *shape)).astype(t.dtype))
        else:
            xs.append(rng.standard_normal((n, *shape)).astype(np.float32))
    return xs


def _predict(model, xs):
    import keras

    out = model(xs if len(xs) > 1 else xs[0], training=False)
    return [np.asarray(keras.ops.convert_to_numpy(o), np.float64) for o in keras.tree.flatten(out)]


def check_inputs(model, x, n_random, seed):
    """The batches the check runs on: `n_random` standard-normal samples, then `x` if given.

    Returns:
        A list of batches, each a list of arrays with one per model input.

    Raises:
        ValueError: there is nothing to check on (`n_random=0` and no `x`, or inputs with
            unknown dimensions and no `x`).
    """
    xs = []
    if n_random:
        rand = _random_inputs(model, n_random, seed)
        if rand is None and x is None:
            raise ValueError(
                "the model's inputs have unknown dimensions: pass sample inputs as x."
            )
        xs.append(rand)
    if x is not None:
        xs.append([np.asarray(a) for a in (x if isinstance(x, (list, tuple)) else [x])])
    xs = [v for v in xs if v is not None]
    if not xs:
        raise ValueError("nothing to check the fused model on: use n_random > 0 or pass x.")
    return xs


def tolerance(rtol, scale, noise):
    """The check's bound: ``max(rtol * scale, NOISE_FACTOR * noise)`` (see `fuse`)."""
    return max(rtol * scale, NOISE_FACTOR * noise)

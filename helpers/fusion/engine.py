"""`fuse`: fold every inference-mode BN layer of a Keras model into a neighbouring linear layer.

`fuse` finds each BN layer in a Sequential or functional model (nested models included),
decides whether it folds exactly into the linear layer before or after it (`helpers.fusion.plan`,
which lists those layers), rebuilds the model without it (`helpers.fusion.surgery`), and checks
the new model's predictions against the original's (`helpers.fusion.verify`), in float32 even
for a model that computes in float16 or bfloat16 (`helpers.fusion.precision`). The algebra of
each fold is in `helpers.fusion.folds`, pure NumPy.

Also here: `layer_table`, a plain listing of a model's layers to compare models before and
after fusion. ``python -m helpers.fusion model.keras -o fused.keras`` fuses a saved model
(`helpers.fusion.__main__`).
"""

from helpers import checks, internals
from helpers.fusion.plan import Graph
from helpers.fusion.precision import (
    NoTwin,
    compute_dtypes,
    float32_twin,
    low_layers,
    low_precision,
    policy_name,
)
from helpers.fusion.report import FusionError, FusionReport
from helpers.fusion.surgery import fuse_graph
from helpers.fusion.verify import (
    NOISE_FACTOR,
    RTOL,
    before_squash,
    check_inputs,
    compare,
    tolerance,
)

import numpy as np

__all__ = ["fuse", "layer_table"]


def fuse(model, x=None, *, n_random=64, seed=0, rtol=RTOL):
    """A copy of `model` with every Batch Normalization layer that can be folded folded away.

    Each BN layer ``z = s * x + t`` (`helpers.fusion.bn_affine_of`) is absorbed, exactly, into

    * the linear layer *before* it (the book's formula, p. 341), when that layer applies no
      activation, is called once, feeds only this BN, and the BN normalizes its channel axis;
      otherwise into
    * the linear layer *after* it, possibly through Flatten, Reshape, Permute, Dropout or
      Identity layers, when every tensor on that path feeds only the next layer on it, a
      convolution uses ``padding="valid"``, and each input channel of the linear layer
      receives a single BN channel.

    The linear layers are listed in `helpers.fusion.plan`. BN layers inside nested models (a
    ``keras.applications`` base inside a Sequential) fold within their model; those inside a
    nested *subclassed* model stay. Anything else stays in place, with the reason in the
    report. Fused layers always get a bias, even when the original had ``use_bias=False``.
    Every other layer is copied from its config, except a layer without weights whose config
    cannot be rebuilt (a ``Lambda`` of a Python lambda), which the two models share.

    The new model is then checked against the original on `n_random` standard-normal inputs
    (plus `x` when given), on the outputs *before* a final softmax or sigmoid, whose scale
    would hide errors in small probabilities:

        max |fused - original| <= max(rtol * max(1, max |original|), NOISE_FACTOR * noise).

    Folding only rounds the new weights to float32 and reorders float32 arithmetic. In a
    well-conditioned network each output is a sum of a few hundred products whose rounding
    errors (unit roundoff 6e-8) add up to about 1e-6 of the output's scale, so ``rtol=1e-4``
    leaves a margin of ~100. Deep networks with untrained weights can amplify rounding a
    thousandfold; `noise` measures that amplification on the fused model itself, as the
    largest change of its outputs when every weight moves by one float32 ulp, and the check
    allows `NOISE_FACTOR` times that. A wrong fold changes outputs at the scale of the
    outputs themselves, far above either bound.

    The bound must stay below the outputs' scale, or a wrong fold could pass: `fuse` refuses
    a model whose `noise` makes it that large (ValueError), which in practice happens only to
    weights stored in bfloat16 or float16.

    Models whose layers compute in float16 or bfloat16 (the ``mixed_float16`` and
    ``mixed_bfloat16`` policies, or layers built with ``dtype="float16"``/``"bfloat16"``) are
    folded the same way: each fold is computed in float64 from the stored weights and rounded
    once to the layer's variable dtype, which is float32 under the mixed policies (Keras
    casts the weights to float16 only when a layer computes) and float16 or bfloat16 under
    the pure ones. A fold whose weights would exceed the largest value of the layer's compute
    or variable dtype (65504 for float16) is not made; the BN stays, with the reason. The
    check then runs twice:

    1. On float32 copies of both models, by the bound above, with `noise` in ulps of each
       weight's dtype in the fused model. Each copy is built with public Keras API from the
       model's layers' configs with every dtype policy made "float32", and holds the model's
       weights converted to float32 (exactly); the models themselves are only read, never
       changed, not even for the duration of the check. Every layer of a copy computes in
       float32, with the same numbers as weights, so the copies compute what the models
       would in float32. Under the mixed policies the weights are float32, so a fold is checked as
       sharply as in a float32 model; under the pure ones the folded weights had to be
       rounded to float16 or bfloat16, and `noise` measures what that rounding moves. This
       is the check that catches a wrong fold (`max_abs_diff`, `tolerance`, `noise`).
       Check 2 cannot stand in for it, as its bound lets through errors up to the rounding
       of float16 or bfloat16 (a bias off by 1e-3 passes it), so `fuse` refuses a model it
       cannot copy so (ValueError, naming the layer): one with a nested subclassed model, or
       with a layer that its config does not rebuild and that `fuse` therefore shares.
    2. With both models computing as their policies say, by the same bound with `noise` in
       ulps of each layer's *compute* dtype (`compute_diff`, `compute_tolerance`,
       `compute_noise`). Every weight is rounded to that dtype when the layer uses it (unit
       roundoff u = 2^-11 = 4.9e-4 for float16, 2^-8 = 3.9e-3 for bfloat16, against
       float32's 2^-24), and so is every layer's output. Folding changes which numbers get
       rounded: a fused weight rounds differently from the original one, the two roundings
       at most one ulp apart, which is the move `noise` makes; and the BN's own rounded
       output disappears, one rounding of each value, no more than what rounding the n
       weights of the sum that produced it does. So the outputs differ by about `noise`:
       measured, at most 2 times `noise` (mean 0.6) over 96 small Dense and Conv2D
       networks, and 1.0 on MobileNetV2, so `NOISE_FACTOR` leaves a margin of five. Scaling
       ``rtol`` by the ratio of unit roundoffs instead (8192 for float16, 65536 for
       bfloat16), as its float32 derivation would, gives 0.8 and 6.6 times the outputs'
       scale, which would pass a wrong fold; that is check 1's job. This check shows that
       the fused model, run as it will be, stays within the rounding of its compute dtype
       (it fails, e.g., where a fused activation overflows float16).

    Args:
        model: a built Sequential or functional Keras model. It is not modified.
        x: optional array (or list of arrays, one per model input) to include in the check.
        n_random: number of random samples in the check (0 to use only `x`).
        seed: seed of the random check inputs.
        rtol: relative tolerance of the check.

    Returns:
        ``(fused_model, report)``: a new model of the same kind (Sequential stays Sequential),
        named ``<name>_fused``, with the same dtype policies, and a `FusionReport`.

    Raises:
        ValueError: `model` is not a built Sequential/functional model, the check has no
            input (`n_random=0` and no `x`, or inputs with unknown dimensions and no `x`), the
            original model outputs infinite or NaN values on the check inputs, or rounding
            alone moves its outputs too much to check a fold (weights stored in float16 or
            bfloat16; the message names the dtype policy), or it computes in float16 or
            bfloat16 and has a layer that cannot be rebuilt to compute in float32.
        FusionError: a layer could not be rebuilt (the message names it), or the fused
            model's predictions differ from the original's beyond the tolerance (in float32,
            or in the model's compute dtype); nothing is returned then.
    """
    rtol = _checked_arguments(model, n_random, seed, rtol)
    graph = Graph(model)  # refuses subclassed and unbuilt models with a ValueError
    xs = check_inputs(model, x, n_random, seed)
    fused, records = fuse_graph(graph)
    low = low_precision(model)
    twin = _float32_twin_or_refuse(model, low) if low else None
    in_float32, at_compute = _run_checks(model, fused, twin, xs, seed)
    report = _judge_in_float32(model, records, xs, in_float32, rtol, low)
    if low:
        _judge_at_compute_dtypes(model, report, at_compute, rtol, low)
    return fused, report


def _checked_arguments(model, n_random, seed, rtol):
    """`rtol` as a float, once `fuse`'s arguments are checked (ValueError otherwise)."""
    import keras

    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model, got {type(model).__name__}.")
    checks.integer(n_random, "n_random", minimum=0)
    checks.seed(seed)
    return checks.positive(rtol, "rtol")


def _float32_twin_or_refuse(model, low):
    """`float32_twin(model)` for check 1, or a ValueError naming what it cannot rebuild."""
    try:
        return float32_twin(model)
    except NoTwin as err:
        raise ValueError(
            f"{model.name!r} computes in {' and '.join(low)}, and fuse checks its folds on a "
            f"copy of it that computes in float32, which it cannot build: {err}."
        ) from err


def _run_checks(model, fused, twin, xs, seed):
    """The comparisons of `fused` with `model`: (in float32, in the compute dtypes or None).

    Each is `compare`'s ``(diff, noise, scale, finite)``. With a `twin` (a model computing in
    float16 or bfloat16), check 1 runs on float32 copies and check 2 on the models themselves.
    """
    try:
        views = before_squash(model), before_squash(fused)
        own = [v.dtype for v in fused.weights]
        if twin is None:
            return compare(views, fused, xs, own, seed), None
        fused32 = float32_twin(fused)
        views32 = before_squash(twin), before_squash(fused32)
        in_float32 = compare(views32, fused32, xs, own, seed)
        return in_float32, compare(views, fused, xs, compute_dtypes(fused), seed)
    except internals.InternalsError:
        raise
    except Exception as err:
        raise FusionError(
            f"could not run the check of {model.name!r}: {type(err).__name__}: {err}"
        ) from err


def _judge_in_float32(model, records, xs, in_float32, rtol, low):
    """The `FusionReport` of check 1, or the ValueError or FusionError it ends in."""
    diff, noise, scale, finite = in_float32
    tol = tolerance(rtol, scale, noise)
    report = FusionReport(records, diff, tol, sum(len(b[0]) for b in xs), noise)
    both = " with both computing in float32" if low else ""
    if not finite:
        raise ValueError(
            f"{model.name!r} itself outputs infinite or NaN values on the check inputs{both}; "
            "pass inputs like those it was trained on as x, with n_random=0."
        )
    if not NOISE_FACTOR * noise < scale:  # a wrong fold moves outputs by about their scale
        raise ValueError(_too_noisy(model, noise, scale))
    if not diff <= tol:
        raise FusionError(
            f"the fused model differs from {model.name!r} by up to {diff:.3g} (tolerance "
            f"{tol:.3g}){both}; this is a bug in fuse, please report it with the model.\n{report}"
        )
    return report


def _too_noisy(model, noise, scale):
    """Why rounding alone moves `model`'s outputs too much for the check to judge a fold."""
    low = low_layers(model)
    stored = " and ".join(sorted({la.variable_dtype for la in low} or {"float32"}))
    policies = ", ".join(sorted({repr(policy_name(la)) for la in low}))
    hint = "; rebuild it under a mixed policy, which keeps float32 weights" if policies else ""
    return (
        f"{model.name!r} stores its weights in {stored}"
        + (f" (dtype policy {policies})" if policies else "")
        + f", and moving each weight by one ulp moves its outputs by up to {noise:.3g} for a "
        f"scale of {scale:.3g}, too much for fuse's check to tell a wrong fold from "
        f"rounding{hint}."
    )


def _judge_at_compute_dtypes(model, report, at_compute, rtol, low):
    """Check 2 into `report`, or the ValueError or FusionError it ends in."""
    dtypes = " and ".join(low)
    c_diff, c_noise, c_scale, c_finite = at_compute
    c_tol = tolerance(rtol, c_scale, c_noise)
    report.compute_dtypes, report.compute_tolerance = low, c_tol
    report.compute_diff, report.compute_noise = c_diff, c_noise
    if not c_finite:
        raise ValueError(
            f"{model.name!r} itself outputs infinite or NaN values on the check inputs when "
            f"it computes in {dtypes}, as its dtype policy says; pass inputs like those it "
            "was trained on as x, with n_random=0."
        )
    if not c_diff <= c_tol:
        why = f"overflows {dtypes}" if np.isinf(c_diff) else f"differs by up to {c_diff:.3g}"
        raise FusionError(
            f"computing in {dtypes}, as its dtype policy says, the fused model {why}, more "
            f"than rounding explains (tolerance {c_tol:.3g}), though it predicts what "
            f"{model.name!r} does when both compute in float32; keep the original model."
            f"\n{report}"
        )


# ---------------------------------------------------------------------------------------------
# Looking at models
# ---------------------------------------------------------------------------------------------


def layer_table(model):
    """One row per layer: name, type, output shape (batch dimension omitted) and parameters.

    A plain, width-independent alternative to ``model.summary()``, so tables of models before
    and after fusion can be compared and asserted on.

    Args:
        model: a built Keras model.

    Returns:
        A list of ``(name, type, output shape, number of parameters)`` tuples.

    Raises:
        ValueError: `model` is not a built Keras model.
    """
    import keras

    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError(
            "model must be a built keras.Model (give it a keras.Input or call it once)."
        )
    rows = []
    for layer in model.layers:
        try:
            shape = tuple(layer.output.shape[1:])
        except (AttributeError, ValueError):
            shape = ()
        rows.append((layer.name, type(layer).__name__, shape, int(layer.count_params())))
    return rows

"""What `helpers.fusion.fuse` returns and raises: a `FusionReport` of `FoldRecord`s, one per
BN layer, with the figures of its check, or a `FusionError`."""

from dataclasses import dataclass, field

__all__ = ["FoldRecord", "FusionError", "FusionReport"]


class FusionError(RuntimeError):
    """`fuse` could not build a model that predicts what the original does; nothing returned."""


@dataclass
class FoldRecord:
    """What happened to one BN layer: folded into a layer, or left in place and why."""

    bn: str
    action: str  # "folded into previous", "folded into next" or "left in place"
    target: str = ""
    via: str = ""
    reason: str = ""


@dataclass
class FusionReport:
    """Every BN layer of the model with what `fuse` did to it, and the check it ran.

    Attributes:
        records: one `FoldRecord` per BN layer, in graph order; a BN inside a nested model
            is named ``"<nested model>/<BN layer>"``.
        max_abs_diff: largest ``|fused - original|`` over the check inputs and outputs,
            compared before a final softmax or sigmoid.
        tolerance: the bound that `max_abs_diff` had to meet.
        n_checked: number of input samples the check used.
        noise: largest change of the fused model's outputs when each of its weights moves by
            one ulp of its dtype (float32's, or float16's or bfloat16's when the layer stores
            its weights so): how much rounding alone moves this network's outputs.
        compute_dtypes: the dtypes below float32 that the model computes or stores weights
            in, e.g. ``("float16",)`` under ``mixed_float16``; empty for a float32 model. For
            such a model, the three figures above are those of both models computing in float32.
        compute_diff, compute_tolerance, compute_noise: the same three with both models
            computing as their dtype policies say, `noise` in ulps of the compute dtype (NaN for
            a float32 model).
    """

    records: list = field(default_factory=list)
    max_abs_diff: float = float("nan")
    tolerance: float = float("nan")
    n_checked: int = 0
    noise: float = float("nan")
    compute_dtypes: tuple = ()
    compute_diff: float = float("nan")
    compute_tolerance: float = float("nan")
    compute_noise: float = float("nan")

    @property
    def folded(self):
        """Records of the BN layers that were folded."""
        return [r for r in self.records if r.action != "left in place"]

    @property
    def left(self):
        """Records of the BN layers left in place."""
        return [r for r in self.records if r.action == "left in place"]

    def rows(self):
        """The report as a list of dicts (one per BN), e.g. for ``pandas.DataFrame``."""
        return [
            {
                "BN layer": r.bn,
                "action": r.action,
                "into": r.target,
                "via": r.via,
                "reason": r.reason,
            }
            for r in self.records
        ]

    def __str__(self):
        head = ("BN layer", "action", "into", "via", "reason")
        body = [tuple(row.values()) for row in self.rows()]
        widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [fmt.format(*head).rstrip(), "  ".join("-" * w for w in widths)]
        lines += [fmt.format(*row).rstrip() for row in body]
        lines.append(
            f"{len(self.folded)} folded, {len(self.left)} left; max |fused - original| = "
            f"{self.max_abs_diff:.1e} on {self.n_checked} samples (tolerance {self.tolerance:.1e})"
        )
        if self.compute_dtypes:
            lines[-1] += ", both computing in float32"
            lines.append(
                f"and {self.compute_diff:.1e} computing in {' and '.join(self.compute_dtypes)}, "
                f"as the model's dtype policy says (tolerance {self.compute_tolerance:.1e})"
            )
        return "\n".join(lines)

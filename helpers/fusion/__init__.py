"""Fusing BN into neighbouring layers (chapter 06): the folds in NumPy, the model surgery, the
`keras.applications` networks it is tried on, TFLite conversion and timing.

`fuse`, `layer_table` and the report classes are those of `helpers.fusion.graph`, so that a
chapter writes ``from helpers import fusion`` and ``fusion.fuse(model)``.
"""

from helpers.fusion.graph import (
    NOISE_FACTOR,
    RTOL,
    FoldRecord,
    FusionError,
    FusionReport,
    bn_affine_of,
    fuse,
    layer_table,
)

__all__ = [
    "NOISE_FACTOR",
    "RTOL",
    "FoldRecord",
    "FusionError",
    "FusionReport",
    "bn_affine_of",
    "fuse",
    "layer_table",
]

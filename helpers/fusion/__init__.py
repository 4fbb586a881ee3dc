"""Fusing BN into neighbouring layers (chapter 06): the folds in NumPy, the model surgery, the
`keras.applications` networks it is tried on, TFLite conversion and timing, and the worked
examples and comparisons that chapter 06 shows (`examples`, `compare`).

`fuse` and `layer_table` (`helpers.fusion.engine`), the report classes
(`helpers.fusion.report`), the check's constants (`helpers.fusion.verify`) and `bn_affine_of`
(`helpers.fusion.plan`) are re-exported here, so that a chapter writes
``from helpers import fusion`` and ``fusion.fuse(model)``.
"""

from helpers.fusion.engine import fuse, layer_table
from helpers.fusion.plan import bn_affine_of
from helpers.fusion.report import FoldRecord, FusionError, FusionReport
from helpers.fusion.verify import NOISE_FACTOR, RTOL

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

"""Helpers for the executable companion to Géron, *Hands-On ML* (2nd ed.), pp. 339-345.

Importing this package sets two TensorFlow environment defaults before TensorFlow loads:
quiet C++ start-up logging, and oneDNN's reordered kernels off (their start-up banner would
land in notebook outputs, and they make float results depend on the CPU's instruction set).
Chapters import ``helpers`` before ``tensorflow`` or ``keras``.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from helpers.repro import BOOK_VERSIONS, setup, versions_frame, versions_table  # noqa: E402

__all__ = ["BOOK_VERSIONS", "setup", "versions_frame", "versions_table"]

"""Helpers for the executable companion to Géron, *Hands-On ML* (2nd ed.), pp. 339-345.

Importing this package first pins the settings that decide float results (instruction set,
thread counts, BLAS kernel; see `helpers.runtime.numerics`), before TensorFlow or NumPy loads, and
quiets TensorFlow's start-up logging. Chapters import ``helpers`` before anything else.
Without TensorFlow (or with one older than the supported range), the import stops with one
sentence that says how to install it (`helpers.runtime.supported`); under ``KERAS_BACKEND=jax``
it checks JAX instead.
"""

from helpers.runtime import numerics, supported

numerics.pin()
supported.check()

# In a kernel: pandas tables as LaTeX for the PDF, and the book's figure size and fonts.
from helpers.chapter import display, figures  # noqa: E402,F401
from helpers.runtime.session import BOOK_VERSIONS, setup, versions_frame, versions_table  # noqa: E402

__all__ = ["BOOK_VERSIONS", "numerics", "setup", "versions_frame", "versions_table"]

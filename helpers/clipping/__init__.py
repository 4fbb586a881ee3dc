"""Gradient clipping (chapter 08): NumPy references, a model that records gradient norms,
TensorBoard scalars, and fitting over seeds."""

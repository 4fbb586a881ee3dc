"""Batch Normalization itself: the NumPy reference, the multi-axis Keras layer, and counting a
layer's parameters (chapters 01 to 05)."""

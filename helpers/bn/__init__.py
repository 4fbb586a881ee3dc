"""Batch Normalization itself: the NumPy reference, the multi-axis Keras layer and the layer
that records its `training` flag, counting a layer's parameters, ε in practice, the moving
statistics, and the figures and tables of chapters 00 to 02 (chapters 00 to 05)."""

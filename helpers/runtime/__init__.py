"""The runtime every chapter runs in: the numerics pins (imported first, by `import helpers`),
the supported TensorFlow range, logical CPU devices, and `setup` (seeds, determinism, the
versions table). Nothing here imports NumPy or TensorFlow on import of the package."""

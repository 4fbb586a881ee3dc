"""Gradient clipping (chapter 08): NumPy references and real Keras steps, the book's printed
digits, a model that records gradient norms, TensorBoard scalars, fitting over seeds, the
exploding-gradient experiment and the chapter's figures."""

"""TensorFlow Lite's conversion of a Keras model: convert, list the operators, predict.

Chapter 06 compares what `helpers.fusion.fuse` does with what TFLite's converter does to the
same model (Géron, *Hands-On ML*, 2nd ed., p. 341: "TFLite's optimizer does this
automatically"). These helpers run the converter and the interpreter quietly and return the
warnings they raise as `Caught` records (category, module, text), so a chapter can show the
one its text is about, picked by category and module: which other warnings a stack raises
differs between releases (on Python 3.13 with TensorFlow 2.20, AutoGraph adds a deprecation
warning of Python's `ast` module of its own).
"""

import contextlib
import dataclasses
import os
import sys
import warnings

from helpers import checks, internals

import numpy as np

__all__ = [
    "Caught",
    "convert_all",
    "interpreter_deprecation",
    "keras_gap",
    "operator_table",
    "select",
    "tflite_ops",
    "tflite_predict",
    "to_tflite",
]


@dataclasses.dataclass(frozen=True, order=True)
class Caught:
    """One warning caught while TFLite ran.

    Attributes:
        category: the warning's class name (``"UserWarning"``, ``"DeprecationWarning"``, ...).
        module: the dotted module that raised it (``"tensorflow.lite.python.interpreter"``),
            from the file it was raised in; the file's own name when it is not in a package.
        text: its message, whitespace-normalized.
    """

    category: str
    module: str
    text: str

    def __str__(self):
        return self.text


def _module_of(filename):
    """The dotted name of the loaded module whose file raised a warning, else the file's stem."""
    path = os.path.abspath(filename or "")
    for name, module in list(sys.modules.items()):
        if os.path.abspath(getattr(module, "__file__", None) or "") == path:
            return name
    return os.path.splitext(os.path.basename(path))[0]


def _keras():
    import keras

    return keras


@contextlib.contextmanager
def _silenced():
    """Send file-descriptor level stdout/stderr to /dev/null, and collect Python warnings.

    TFLite's converter prints the path of a temporary SavedModel, and its interpreter logs
    from C++ straight to file descriptor 2; neither can be stopped with Python's own streams.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = []
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            saved.append((fd, os.dup(fd)))
            os.dup2(devnull, fd)
        with (
            warnings.catch_warnings(record=True) as caught,
            open(os.devnull, "w") as out,
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(out),
        ):
            warnings.simplefilter("always")
            yield caught
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


def _warning_texts(caught):
    notes = []
    for w in caught:
        note = Caught(
            w.category.__name__, _module_of(w.filename), " ".join(str(w.message).split())
        )
        if note not in notes:
            notes.append(note)
    return notes


def select(notes, category, module):
    """The texts of the `notes` of one `category` raised in `module` or a module below it.

    Args:
        notes: `Caught` records, as `to_tflite` and `tflite_ops` return them.
        category: a warning class (``UserWarning``); its subclasses are not included.
        module: a dotted module name (``"tensorflow.lite"`` includes
            ``"tensorflow.lite.python.interpreter"``).

    Returns:
        The matching texts, each once, in the order they were caught.
    """
    if not (isinstance(category, type) and issubclass(category, Warning)):
        raise ValueError(
            f"category must be a Warning class such as UserWarning, got {category!r}."
        )
    texts = []
    for note in notes:
        if not isinstance(note, Caught):
            raise ValueError(
                f"notes must be the Caught records that to_tflite and tflite_ops return, "
                f"got {note!r}."
            )
        inside = note.module == module or note.module.startswith(module + ".")
        if note.category == category.__name__ and inside and note.text not in texts:
            texts.append(note.text)
    return texts


#: Where TensorFlow raises the deprecation of ``tf.lite.Interpreter`` (TF 2.19 to 2.21).
INTERPRETER_MODULE = "tensorflow.lite.python.interpreter"


def interpreter_deprecation(notes):
    """The deprecation notice of ``tf.lite.Interpreter`` among `notes`, or None.

    It is the `UserWarning` that TensorFlow's interpreter module raises when an interpreter is
    built, and says that it is deprecated; any other warning caught alongside it is left out.
    """
    found = [t for t in select(notes, UserWarning, INTERPRETER_MODULE) if "deprecated" in t]
    return found[0] if found else None


def to_tflite(model):
    """Convert a Keras model with TensorFlow Lite's default converter, quietly.

    Uses ``tf.lite.TFLiteConverter.from_keras_model(model).convert()`` with no optimization
    flags (float32 kept), which is what the book refers to on p. 341.

    Args:
        model: a built Keras model with one input.

    Returns:
        ``(flatbuffer bytes, warnings)``: every Python warning raised during conversion, as
        `Caught` records.

    Raises:
        ValueError: `model` is not a built single-input Keras model.
    """
    keras = _keras()
    if not isinstance(model, keras.Model) or not model.built or len(model.inputs) != 1:
        raise ValueError("model must be a built keras.Model with exactly one input.")
    import tensorflow as tf

    with _silenced() as caught:
        content = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    return content, _warning_texts(caught)


def _interpreter(tflite_model, delegates, num_threads=None):
    if not isinstance(tflite_model, (bytes, bytearray)) or not tflite_model:
        raise ValueError("tflite_model must be the non-empty bytes returned by to_tflite(model).")
    import tensorflow as tf

    kind = tf.lite.experimental.OpResolverType
    resolver = kind.AUTO if delegates else kind.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    with _silenced() as caught:
        it = tf.lite.Interpreter(
            model_content=bytes(tflite_model),
            experimental_op_resolver_type=resolver,
            num_threads=num_threads,
        )
        it.allocate_tensors()
    return it, _warning_texts(caught)


def tflite_ops(tflite_model):
    """The operators of a converted model, in execution order, without delegation.

    Uses the interpreter's private ``_get_ops_details()`` through `helpers.internals` (TF 2.21
    has no public listing other than ``tf.lite.experimental.Analyzer``, which prints rather
    than returns). The interpreter is
    created without the default XNNPACK delegate, so the list shows the model's own
    operators instead of one opaque ``DELEGATE`` node.

    Args:
        tflite_model: bytes from `to_tflite`.

    Returns:
        ``(operator names, warnings)``: the warnings raised while the interpreter was built,
        as `Caught` records.

    Raises:
        ValueError: `tflite_model` is not non-empty bytes.
    """
    it, msgs = _interpreter(tflite_model, delegates=False)
    return internals.tflite_op_names(it), msgs


def tflite_predict(tflite_model, x, batch_size=1024, num_threads=None):
    """Run a converted single-input model on `x`, batch by batch, with the default delegates.

    Args:
        tflite_model: bytes from `to_tflite`.
        x: float array whose first axis is the batch.
        batch_size: positive number of samples per interpreter call.
        num_threads: threads for the interpreter (None: TFLite's default).

    Returns:
        The outputs for every sample, as one float32 array.

    Raises:
        ValueError: bad `tflite_model`, empty `x`, or non-positive `batch_size`.
    """
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    x = np.asarray(x, np.float32)
    if x.ndim < 1 or len(x) == 0:
        raise ValueError("x must hold at least one sample along its first axis.")
    it, _ = _interpreter(tflite_model, delegates=True, num_threads=num_threads)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    results, current = [], None
    with _silenced():
        for start in range(0, len(x), batch_size):
            chunk = x[start : start + batch_size]
            if current != len(chunk):
                it.resize_tensor_input(inp["index"], [len(chunk), *x.shape[1:]])
                it.allocate_tensors()
                current = len(chunk)
            it.set_tensor(inp["index"], chunk)
            it.invoke()
            results.append(it.get_tensor(out["index"]).copy())
    return np.concatenate(results)


def convert_all(models):
    """Convert each model with `to_tflite` and list the operators of each conversion.

    Args:
        models: a dict ``{key: built single-input Keras model}``.

    Returns:
        ``(contents, operators, notes)``: dicts ``{key: flatbuffer bytes}`` and ``{key:
        operator names}`` in the order of `models`, and the set of every warning caught
        (`Caught` records), for `interpreter_deprecation`.

    Raises:
        ValueError: `models` is empty, or as `to_tflite`.
    """
    if not isinstance(models, dict) or not models:
        raise ValueError("models must be a non-empty dict {key: Keras model}")
    contents, operators, notes = {}, {}, set()
    for key, model in models.items():
        contents[key], caught = to_tflite(model)
        operators[key], built = tflite_ops(contents[key])
        notes.update(caught + built)
    return contents, operators, notes


def operator_table(operators, first="FULLY_CONNECTED"):
    """How many ``MUL`` and ``ADD`` operators each conversion holds, and its operators.

    Args:
        operators: a dict ``{(model, variant): operator names}`` from `convert_all`.
        first: the operator from whose first occurrence on the list is shown.

    Returns:
        A pandas DataFrame, one row per conversion: model, converted, MUL, ADD and the
        operators from the first `first` on (all of them when it does not occur).
    """
    import pandas as pd

    rows = []
    for (name, kind), ops in operators.items():
        start = ops.index(first) if first in ops else 0
        rows.append((name, kind, ops.count("MUL"), ops.count("ADD"), " ".join(ops[start:])))
    columns = ["model", "converted", "MUL", "ADD", f"TFLite operators from the first {first} on"]
    return pd.DataFrame(rows, columns=columns)


def keras_gap(tflite_model, model, x):
    """How far a conversion's outputs are from those of the Keras model it came from, on `x`.

    Args:
        tflite_model: bytes from `to_tflite(model)`.
        model: the Keras model.
        x: the inputs, batch axis first.

    Returns:
        ``(largest |Δ output|, number of samples whose predicted class differs)``.
    """
    p_lite = tflite_predict(tflite_model, x)
    p_keras = model.predict(x, batch_size=1000, verbose=0)
    return float(np.abs(p_lite - p_keras).max()), int(
        (p_lite.argmax(1) != p_keras.argmax(1)).sum()
    )

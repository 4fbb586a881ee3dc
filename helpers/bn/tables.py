"""The tables of chapters 00 to 02 that take more than one line to build.

* `split_table`: shape, type, pixel range and mean of each split of Fashion-MNIST (chapter 00).
"""

import numpy as np
import pandas as pd

__all__ = ["split_table"]


def split_table(splits):
    """One row per split: the images' shape, dtype, pixel range and mean, the labels' shape.

    Args:
        splits: dict ``{name: (images, labels)}``, e.g. ``{"train": (X_train, y_train)}``.

    Returns:
        A DataFrame indexed by split, with the columns ``images``, ``dtype``, ``pixel range``
        (one decimal), ``mean pixel`` (four decimals) and ``labels``.

    Raises:
        ValueError: `splits` is empty, or a split's images and labels differ in length.
    """
    if not splits:
        raise ValueError("splits is empty; pass {name: (images, labels)}.")
    rows = []
    for name, (x, y) in splits.items():
        x, y = np.asarray(x), np.asarray(y)
        if len(x) != len(y):
            raise ValueError(
                f"split {name!r} has {len(x)} images but {len(y)} labels; pass one label each."
            )
        pixels = f"[{x.min():.1f}, {x.max():.1f}]"
        rows.append((name, x.shape, str(x.dtype), pixels, f"{x.mean():.4f}", y.shape))
    columns = ["split", "images", "dtype", "pixel range", "mean pixel", "labels"]
    return pd.DataFrame(rows, columns=columns).set_index("split")

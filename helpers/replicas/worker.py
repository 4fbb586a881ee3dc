"""One worker process of chapter 09: ``python -m helpers.replicas.worker FOLDER``.

Started by `helpers.replicas.supervisor.run_workers`, never by hand: it reads the task from
FOLDER, runs it under `tf.distribute.MultiWorkerMirroredStrategy` (the cluster is in
``TF_CONFIG``) and writes its JSON result there.
"""

import argparse
import json
import os
import re
import sys
import time

from helpers.replicas.experiments import flat_batch, one_step_model, one_step_stats
from helpers.replicas.supervisor import die_with_parent
from helpers.runtime.session import setup

import numpy as np


def _tf_config_index():
    config = json.loads(os.environ["TF_CONFIG"])
    return int(config["task"]["index"]), len(config["cluster"]["worker"])


def _worker(folder):
    """One worker: read the task, run it under MultiWorkerMirroredStrategy, write JSON."""
    with open(os.path.join(folder, "options.json"), encoding="utf-8") as f:
        options = json.load(f)
    index, n_workers = _tf_config_index()
    if options["task"] == "sleep":
        while True:
            time.sleep(1)
    with np.load(os.path.join(folder, "arrays.npz")) as data:
        arrays = {k: data[k] for k in data.files}
    if not {"x", "y"} <= set(arrays):
        raise ValueError(
            f"the {options['task']} task needs the arrays x and y, got {sorted(arrays)}"
        )
    import tensorflow as tf

    setup(options["seed"])
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    result = {}
    if options["task"] == "one_step":
        stats = one_step_stats(
            arrays["x"], arrays["y"], n_workers, True, options["seed"], strategy=strategy
        )
        result = {k: np.asarray(v).tolist() for k, v in stats.items()}
    if options["task"] == "fit" or options.get("try_fit"):
        result["fit_error"] = _try_fit(strategy, arrays["x"], arrays["y"], n_workers)
    path = os.path.join(folder, f"result{index}.json")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(result, f)
    os.replace(path + ".tmp", path)


def _try_fit(strategy, x, y, n_workers):
    """`model.fit` for one step under `strategy`: None if it ran, else the error's first line."""
    import keras

    x, y = flat_batch(x, y, n_workers)
    with strategy.scope():
        model = one_step_model(x.shape[1], True)
        model.compile(
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), optimizer="sgd"
        )
    try:
        model.fit(x, y, batch_size=len(x), epochs=1, verbose=0, shuffle=False)
    except Exception as err:  # reported, not raised: the chapter shows it
        text = re.sub(r"\{.*\}", "{...}", str(err), flags=re.DOTALL)
        return f"{type(err).__name__}: {' '.join(text.split())}"[:300]
    return None


def main(argv=None):
    """``python -m helpers.replicas.worker FOLDER``: the worker entry point."""
    parser = argparse.ArgumentParser(prog="python -m helpers.replicas.worker")
    parser.add_argument("folder")
    args = parser.parse_args(argv)
    die_with_parent()
    if "TF_CONFIG" not in os.environ:
        parser.error("TF_CONFIG is not set: workers are started by run_workers")
    _worker(args.folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())

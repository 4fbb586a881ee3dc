"""One `tf.distribute.MirroredStrategy` per number of replicas, for the life of the process."""

from helpers import checks, internals
from helpers.runtime.devices import RESTART

_STRATEGIES = {}


def mirrored_strategy(n_replicas):
    """One `tf.distribute.MirroredStrategy` over the first `n_replicas` logical CPUs.

    The same object is returned for the same `n_replicas` for the life of the process. Two
    strategies in one process number their collective operations from the same start, and
    under TensorFlow 2.21 a synchronized BN layer of the second one then fails: with "Shape
    mismatch in the collective instance" when both span the same devices (its all-reduce
    meets another model's gradient all-reduce under the same key), with "joining a group
    with size 2, but that group has size 4" when the second spans fewer. So each strategy is
    created once, with its own range of collective keys.

    Args:
        n_replicas: an integer >= 1, at most the number of logical CPU devices.

    Returns:
        The strategy.

    Raises:
        ValueError: `n_replicas` is not an integer >= 1, or exceeds the logical CPUs.
    """
    n_replicas = checks.integer(n_replicas, "n_replicas", minimum=1)
    import tensorflow as tf

    if n_replicas not in _STRATEGIES:
        have = len(tf.config.list_logical_devices("CPU"))
        if n_replicas > have:
            raise ValueError(
                f"n_replicas must be at most the {have} logical CPU device(s) of this process, "
                f"got {n_replicas}; {RESTART}"
            )
        devices = [f"/cpu:{i}" for i in range(n_replicas)]
        # Each strategy numbers its collective groups from 1 + a base (a private class
        # attribute that TensorFlow's own tests set); a distinct base per strategy keeps two
        # strategies' groups apart.
        cls = internals.collective_key_base_class(10_000 * (1 + len(_STRATEGIES)))
        _STRATEGIES[n_replicas] = cls(devices)
    return _STRATEGIES[n_replicas]

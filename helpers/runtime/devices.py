"""Logical CPU devices: the physical CPU split in several, for `tf.distribute` in one process.

`helpers.setup(seed, cpu_devices=N)` calls `configure_cpu_devices` before anything starts
TensorFlow's runtime; the replicas of chapter 09 (`helpers.replicas`) run on these devices.
"""

from helpers import checks

RESTART = (
    "restart the kernel and call helpers.setup(seed, cpu_devices=N) before anything else "
    "runs TensorFlow"
)


def configure_cpu_devices(n):
    """Split the physical CPU into `n` logical CPU devices, before TensorFlow initializes.

    Calling it again with the same `n` does nothing. TensorFlow fixes its devices when its
    runtime starts (the first operation, or listing the logical devices), so a different `n`
    afterwards cannot take effect.

    Args:
        n: number of logical CPU devices, an integer from 1 to 64.

    Returns:
        `n`, as an ``int``.

    Raises:
        ValueError: `n` is not an integer from 1 to 64.
        RuntimeError: TensorFlow already runs with another number of CPU devices.
    """
    n = checks.integer(n, "cpu_devices", minimum=1, maximum=64)
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]  # does not start the runtime
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == n:
        return n
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
        )
    except RuntimeError:  # the runtime has started: its device list is final
        have = len(tf.config.list_logical_devices("CPU"))
        if have != n:
            raise RuntimeError(
                f"TensorFlow already runs with {have} CPU device(s), so cpu_devices={n} "
                f"cannot take effect; {RESTART}"
            ) from None
    return n

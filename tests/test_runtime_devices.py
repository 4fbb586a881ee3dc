"""helpers.runtime.devices: the logical CPU devices' argument check, before TensorFlow is touched.

Splitting the CPU for real needs a fresh process: tests/test_replicas_experiments.py does it.
"""

from helpers.runtime import devices

import pytest


@pytest.mark.parametrize("n", [0, 65, 2.5, "4", True])
def test_a_bad_device_count_is_one_sentence(n):
    with pytest.raises(ValueError, match="cpu_devices must be an integer from 1 to 64") as info:
        devices.configure_cpu_devices(n)
    assert "\n" not in str(info.value)

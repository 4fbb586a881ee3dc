"""Fixtures and markers shared by the tests of helpers."""

import pytest


def pytest_configure(config):
    # `integration`: a test that starts a kernel, a subprocess, a server or a browser, or builds
    # a keras.applications network (`make check` leaves them out). pyproject.toml registers it
    # too; registering it here as well keeps a run without that entry free of warnings.
    config.addinivalue_line(
        "markers",
        "integration: starts a kernel, a subprocess, a server or a browser, or builds a "
        "keras.applications network (left out of make check)",
    )


@pytest.fixture
def seeded():
    """A fresh Keras session seeded with 0: layer names and initial weights repeat in each test."""
    import helpers

    helpers.setup(0)


@pytest.fixture(scope="module")
def seeded_module():
    """One fresh Keras session seeded with 0 for a whole module (layer names go on counting)."""
    import helpers

    helpers.setup(0)

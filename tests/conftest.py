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
    # `browser` and `pdf`: the tests of the built book and of the PDF edition, which need
    # `make book-build` or `make pdf` first; only make book-check / pdf-check select them.
    config.addinivalue_line(
        "markers", "browser: the built book in headless Chromium (make book-check only)"
    )
    config.addinivalue_line("markers", "pdf: the built PDF edition (make pdf-check only)")


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

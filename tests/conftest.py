"""Fixtures and markers shared by the tests of helpers."""


def pytest_configure(config):
    # `integration`: a test that starts a kernel, a subprocess, a server or a browser, or builds
    # a keras.applications network (`make check` leaves them out). pyproject.toml registers it
    # too; registering it here as well keeps a run without that entry free of warnings.
    config.addinivalue_line(
        "markers",
        "integration: starts a kernel, a subprocess, a server or a browser, or builds a "
        "keras.applications network (left out of make check)",
    )

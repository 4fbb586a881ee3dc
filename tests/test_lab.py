"""JupyterLab as readers use it: `make lab`'s server opens a chapter's .md as a notebook.

The test starts the server the way `make lab` does (as root too, where `--allow-root` is
needed), asks its contents API for a chapter's MyST file as a notebook, and compares the cells
and outputs with the paired .ipynb: Jupytext pairs them, so a reader who opens the .md sees the
stored outputs.
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import nbformat
import pytest

from tool_modules import ROOT

CHAPTERS = os.path.join(ROOT, "chapters")


def _lab_command():
    """The shell line `make lab` runs, read from `make -n lab` so that the two cannot drift."""
    out = subprocess.run(
        ["make", "-s", "-n", "lab"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return next(line for line in out.splitlines() if " lab --notebook-dir" in line)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    command = _lab_command()
    if os.geteuid() == 0:
        assert "--allow-root" in command.split(), "make lab must pass --allow-root as root"
    token, port = secrets.token_hex(16), _free_port()
    home = tmp_path_factory.mktemp("lab-home")
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "HOME": str(home)}
    log_path = home / "server.log"
    log = open(log_path, "wb")  # a file, not a pipe: a pipe nobody reads would block the server
    extra = f"--no-browser --ip=127.0.0.1 --port={port} --port-retries=0"
    proc = subprocess.Popen(
        ["bash", "-c", f"{command} {extra} --IdentityProvider.token={token}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def get(path):
        request = urllib.request.Request(base + path, headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-800:]
                pytest.fail(f"JupyterLab exited with {proc.returncode}: {tail}")
            try:
                get("/api/status")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not answer within 90 s")
                time.sleep(0.5)
        yield get
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _cells(cells):
    return [
        (c["cell_type"], c["source"], [o.get("output_type") for o in c.get("outputs", [])])
        for c in cells
    ]


@pytest.mark.parametrize("chapter", ["01_equations", "03_keras_model"])
def test_a_chapter_md_opens_as_its_executed_notebook(lab, chapter):
    model = lab(f"/api/contents/{chapter}.md?type=notebook&content=1")
    assert model["type"] == "notebook"
    opened = model["content"]["cells"]
    stored = nbformat.read(os.path.join(CHAPTERS, f"{chapter}.ipynb"), as_version=4).cells
    assert len(opened) == len(stored)
    assert _cells(opened) == _cells(stored)
    n_outputs = sum(len(c.get("outputs", [])) for c in opened)
    assert n_outputs > 0  # the outputs come from the paired .ipynb

"""tools/colab.py: the install cell's three paths, and the badge and links it writes."""

import builtins
import importlib.metadata
import importlib.util
import subprocess
import sys
import types

import pytest

from tools import colab


def _run_cell(monkeypatch, installed, on_colab, has_tensorflow=True):
    """Run the install cell with the package `installed` (a version or None) and record pip."""
    calls = []
    real_version, real_find_spec = importlib.metadata.version, importlib.util.find_spec

    def version(name):
        if name == "bn-companion-helpers":
            if installed is None:
                raise importlib.metadata.PackageNotFoundError(name)
            return installed
        return real_version(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: (
            None if name == "tensorflow" and not has_tensorflow else real_find_spec(name, *a)
        ),
    )
    monkeypatch.setattr(subprocess, "run", lambda cmd, check: calls.append(cmd))
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    printed = []
    monkeypatch.setattr(builtins, "print", lambda *a, **k: printed.append(" ".join(map(str, a))))
    exec(colab.install_source(), {})
    return calls, printed


def test_ours_installed_does_nothing(monkeypatch):
    _, version, _ = colab.project()
    assert _run_cell(monkeypatch, version, on_colab=True) == ([], [])


@pytest.mark.parametrize("installed", [None, "0.0.1"])
def test_on_colab_it_installs_the_release_quietly_and_says_so(monkeypatch, installed):
    url, version, tag = colab.project()
    calls, printed = _run_cell(monkeypatch, installed, on_colab=True)
    assert calls == [
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            f"bn-companion-helpers @ git+{url}@{tag}",
        ]
    ]
    assert printed == [f"Installed the companion's helpers ({version}) from git+{url}@{tag}"]


@pytest.mark.parametrize("has_tensorflow, extra", [(True, ""), (False, "[tensorflow]")])
def test_elsewhere_it_stops_with_the_one_command(monkeypatch, has_tensorflow, extra):
    url, _, tag = colab.project()
    with pytest.raises(ModuleNotFoundError) as err:
        _run_cell(monkeypatch, None, on_colab=False, has_tensorflow=has_tensorflow)
    command = f'pip install "bn-companion-helpers{extra} @ git+{url}@{tag}"'
    assert str(err.value) == f"This chapter needs the companion: {command}"


def test_links_point_at_the_chapter_notebook_at_the_tag(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nversion = "1.2.3"\n[project.urls]\nRepository = "https://github.com/a/b"\n'
    )
    assert colab.colab_url("01_x", pyproject) == (
        "https://colab.research.google.com/github/a/b/blob/v1.2.3/chapters/01_x.ipynb"
    )
    assert colab.BADGE_LINE.match(colab.badge_line("01_x", pyproject))
    pyproject.write_text('[project]\nversion = "1"\n[project.urls]\nRepository = "gitlab.com/a"\n')
    with pytest.raises(colab.ColabError, match="must be https://github.com/OWNER/REPO"):
        colab.project(pyproject)

"""tools/reader_install.py: what a pip report would install, and what counts as a change."""

import subprocess
import sys

import pytest

from tools import reader_install

from tool_modules import ROOT


def _report(*items):
    return {"install": [{"metadata": {"name": n, "version": v}} for n, v in items]}


def test_only_the_package_is_fine_and_anything_else_is_named():
    planned = reader_install.planned_installs(
        _report(("bn_companion_helpers", "0.2.0"), ("TensorFlow", "2.21.0"), ("keras", "3.15.1"))
    )
    assert planned[0] == ("bn-companion-helpers", "0.2.0")
    assert reader_install.others(planned) == [("tensorflow", "2.21.0"), ("keras", "3.15.1")]
    assert reader_install.others(planned[:1]) == []
    assert reader_install.planned_installs({}) == []


def test_an_environment_that_would_change_fails_with_the_names(monkeypatch):
    monkeypatch.setattr(reader_install, "_pip", lambda *args, **kwargs: "[]")
    monkeypatch.setattr(
        reader_install,
        "dry_run",
        lambda python, wheel: [("bn-companion-helpers", "0.2.0"), ("numpy", "2.4.6")],
    )
    with pytest.raises(reader_install.InstallError, match=r"would also install numpy 2\.4\.6"):
        reader_install.into_environment(sys.executable, "/x/bn_companion_helpers-0.2.0.whl")


@pytest.mark.integration
def test_a_missing_interpreter_is_one_line():
    run = subprocess.run(
        [sys.executable, "-m", "tools.reader_install", "/no/such/python", "x.whl"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 1
    assert run.stderr == "/no/such/python is not a Python interpreter that runs\n"


def test_beside_a_stack_every_pin_is_kept_and_one_tensorflow_only(monkeypatch):
    colab = ["tensorflow==2.19.0", "keras==3.10.0"]
    planned = [("bn-companion-helpers", "0.2.0"), ("tensorflow", "2.19.0"), ("keras", "3.10.0")]
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: None)  # no venv is made
    monkeypatch.setattr(reader_install, "dry_run", lambda *a: planned)
    assert "keeping tensorflow==2.19.0" in reader_install.into_fresh("python", "w.whl", colab)
    for changed, message in (
        ([*planned, ("tensorflow-cpu", "2.21.0")], "install TensorFlow as"),
        ([*planned[:2], ("keras", "3.15.1")], "would change pinned versions"),
    ):
        monkeypatch.setattr(reader_install, "dry_run", lambda *a, c=changed: c)
        with pytest.raises(reader_install.InstallError, match=message):
            reader_install.into_fresh("python", "w.whl", colab)
    with pytest.raises(reader_install.InstallError, match="--with takes pinned requirements"):
        reader_install.pins(["keras>=3"])

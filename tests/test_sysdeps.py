"""tools/sysdeps.sh: what it counts as installed, asked of a stand-in dpkg-query."""

import os
import stat
import subprocess

import pytest

from tool_modules import ROOT

pytestmark = pytest.mark.integration

FAKE_DPKG_QUERY = """#!/bin/sh
# dpkg-query -W -f=FORMAT PACKAGE: TeX Live removed with its configuration files left, the
# rest installed.
for last; do :; done
case "$last" in
  texlive-*) printf 'config-files' ;;
  *) printf 'installed' ;;
esac
"""


def _dry_run(tmp_path, *args):
    fake = tmp_path / "dpkg-query"
    fake.write_text(FAKE_DPKG_QUERY)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run(
        ["bash", os.path.join(ROOT, "tools", "sysdeps.sh"), *args, "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return set(run.stdout.split())


def test_a_removed_package_whose_configuration_remains_is_not_installed(tmp_path):
    need = _dry_run(tmp_path, "pdf")
    texlive = {"texlive-xetex", "texlive-latex-extra", "texlive-latex-recommended"}
    assert texlive <= need
    assert not {"latexmk", "poppler-utils", "fonts-freefont-otf"} & need


def test_the_pdf_packages_are_asked_for_only_by_make_pdf(tmp_path):
    assert not any(p.startswith("texlive") for p in _dry_run(tmp_path))


def test_an_unknown_argument_is_refused():
    run = subprocess.run(
        ["bash", os.path.join(ROOT, "tools", "sysdeps.sh"), "--pdf"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "usage: tools/sysdeps.sh" in run.stderr

"""What the tests of the tools share: a chapter header, and headless Chromium.

The tools themselves are a package (``from tools import execute_chapters``); pytest puts the
repository's root on ``sys.path`` (``pythonpath`` in pyproject.toml).
"""

import os
import shutil
import subprocess
import urllib.parse

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: The Jupytext header every chapter starts with.
MYST_HEADER = """---
jupytext:
  formats: ipynb,md:myst
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""


CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")

#: The only fonts the test's Chromium may use (tests/fonts.conf): those of a fresh Debian
#: machine, whatever else this one has gained, so that a layout measured here is the layout a
#: new machine gets (TeX Live's fonts, installed by `make pdf`, once hid a page that scrolled
#: sideways on a phone).
FONTS_CONF = os.path.join(ROOT, "tests", "fonts.conf")
FONT_DIR = "/usr/share/fonts/truetype/dejavu"
FONTS = [
    f"{FONT_DIR}/DejaVu{face}.ttf"
    for face in ("Sans", "Sans-Bold", "SansMono", "SansMono-Bold", "Serif", "Serif-Bold")
]


def font_environment():
    """The environment for a browser that sees only `FONTS`, checked with fontconfig itself."""
    env = {**os.environ, "FONTCONFIG_FILE": FONTS_CONF}
    listed = subprocess.run(
        ["fc-list", ":", "file"], env=env, capture_output=True, text=True, timeout=60
    )
    seen = sorted(line.split(":")[0] for line in listed.stdout.splitlines() if line.strip())
    assert seen == sorted(FONTS), (
        f"the browser test renders with the fonts of fonts-dejavu-core only ({FONTS_CONF}); "
        f"fontconfig lists {seen or 'none'} (`make sysdeps` installs the package)"
    )
    return env


def require(condition, why):
    """Skip a test when `condition` is false, except under CI, where it fails."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{why} (CI must run this test)")
    pytest.skip(why)


def chromium(user_data_dir, window="1280,1024", performance_log=False):
    """Debian's headless Chromium through Selenium, kept off the network but for loopback,
    with the fonts of a fresh Debian machine only (`FONTS`).

    Args:
        user_data_dir: a fresh folder for the browser's profile.
        window: the window size, "WIDTH,HEIGHT".
        performance_log: record the DevTools performance log (every request the page makes).

    Returns:
        A Selenium WebDriver; the caller quits it.
    """
    require(
        CHROMIUM and CHROMEDRIVER and shutil.which("fc-list"),
        "chromium, chromedriver and fc-list are not installed (`make sysdeps`)",
    )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--window-size={window}",
        f"--user-data-dir={user_data_dir}",
    ):
        options.add_argument(flag)
    if performance_log:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    service = Service(CHROMEDRIVER, env=font_environment())
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    return driver


def foreign(urls, base, schemes=("http", "https")):
    """The URLs of `urls` with one of `schemes` whose host is not `base`'s."""
    host = urllib.parse.urlsplit(base).netloc
    return sorted(
        {
            u
            for u in urls
            if urllib.parse.urlsplit(u).scheme in schemes
            and urllib.parse.urlsplit(u).netloc != host
        }
    )

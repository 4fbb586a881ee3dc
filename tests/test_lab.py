"""JupyterLab as readers use it: `make lab`'s server, through its contents API and in a browser.

The server runs the command `make lab` runs (read from `make -n lab`, so that the two cannot
drift; as root too, where `--allow-root` is needed), on a copy of the chapters in a temporary
folder: nothing here changes the stored notebooks. Its JupyterLab settings and home folder are
fresh, as on a reader's first start, and the numerics pins are taken out of its environment, so
that a kernel with the pins shows that `make lab` itself set them.

- The contents API returns a chapter's .md as the notebook paired with its .ipynb (cells and
  stored outputs).
- Headless Chromium double-clicks a chapter in the file browser and must get a notebook with the
  stored outputs (not the text editor), runs the first code cells, edits a markdown cell and
  saves; both files of the pair must then hold the edit and be in sync. No popup may appear, and
  no request may leave the machine: the browser's requests are read from its network log, and
  the server's and the kernel's from a Python audit hook on DNS look-ups and connections
  (a `sitecustomize` put on their `PYTHONPATH`).
- A code cell tagged `book-listing` (a listing of the book) shows, in the light and the dark
  theme, a frame around its code and the label "Book listing (Géron)" above it, both with the
  contrast WCAG asks; an untagged code cell shows neither.

Without Chromium the browser test skips locally; under CI it fails.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import types
import urllib.error
import urllib.parse
import urllib.request

from helpers.runtime import numerics

import jupytext
import nbformat
import pytest

from tools import check_sync, pairing

from tool_modules import ROOT, chromium, foreign

#: A JupyterLab server, kernels and a browser: the integration tier (`make check` leaves it out).
pytestmark = pytest.mark.integration

CHAPTERS = os.path.join(ROOT, "chapters")

#: Put on the server's PYTHONPATH, so that the server and its kernels log every look-up of, or
#: connection to, a host other than this machine into $LAB_TEST_OUTSIDE_LOG.
OUTSIDE_HOOK = """
import ipaddress, os, sys

_LOG = os.environ.get("LAB_TEST_OUTSIDE_LOG")


def _local(host):
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = "" if host is None else str(host).split("%")[0]
    if host in ("", "localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _hook(event, args):
    if event in ("socket.getaddrinfo", "socket.gethostbyname"):
        host = args[0]
    elif event in ("socket.connect", "socket.sendto"):
        if not isinstance(args[1], tuple):
            return  # a Unix socket
        host = args[1][0]
    else:
        return
    if not _local(host):
        with open(_LOG, "a", encoding="utf-8") as f:
            f.write(f"{event} {host!r} from {os.path.basename(sys.argv[0])} ({os.getpid()})\\n")


if _LOG:
    sys.addaudithook(_hook)
"""


def _lab_command():
    """The shell line `make lab` runs, read from `make -n lab` so that the two cannot drift."""
    out = subprocess.run(
        ["make", "-s", "-n", "lab"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.replace("\\\n", " ")  # a recipe line continued with a backslash
    return next(line for line in out.splitlines() if " lab --notebook-dir" in line)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pin_variables():
    names = {numerics.PROFILE_VARIABLE, *numerics.ALWAYS}
    for profile in numerics.PROFILES.values():
        names.update(profile)
    return names


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    command = _lab_command()
    if os.geteuid() == 0:
        assert "--allow-root" in command.split(), "make lab must pass --allow-root as root"
    work = tmp_path_factory.mktemp("lab-work")
    chapters = work / "chapters"
    shutil.copytree(CHAPTERS, chapters, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copy(os.path.join(ROOT, "jupytext.toml"), work)
    assert "--notebook-dir=chapters " in command, command
    command = command.replace("--notebook-dir=chapters ", f"--notebook-dir={chapters} ")

    home = tmp_path_factory.mktemp("lab-home")
    (home / "hook").mkdir()
    (home / "hook" / "sitecustomize.py").write_text(OUTSIDE_HOOK)
    outside_log = home / "outside.log"
    outside_log.touch()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _pin_variables() and not k.startswith(("JUPYTER", "JPY_"))
    }
    env.update(
        HOME=str(home),
        JUPYTER_CONFIG_DIR=str(home / "config"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(home / "hook"), env.get("PYTHONPATH")])),
        LAB_TEST_OUTSIDE_LOG=str(outside_log),
    )
    token, port = secrets.token_hex(16), _free_port()
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

    def put(path, body):
        request = urllib.request.Request(
            base + path,
            data=json.dumps(body).encode(),
            method="PUT",
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status

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
        yield types.SimpleNamespace(
            get=get,
            put=put,
            url=base,
            token=token,
            chapters=chapters,
            outside=lambda: outside_log.read_text().splitlines(),
        )
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
    model = lab.get(f"/api/contents/{chapter}.md?type=notebook&content=1")
    assert model["type"] == "notebook"
    opened = model["content"]["cells"]
    stored = nbformat.read(os.path.join(CHAPTERS, f"{chapter}.ipynb"), as_version=4).cells
    assert len(opened) == len(stored)
    assert _cells(opened) == _cells(stored)
    n_outputs = sum(len(c.get("outputs", [])) for c in opened)
    assert n_outputs > 0  # the outputs come from the paired .ipynb


# --- in a browser ---------------------------------------------------------------------------

#: The chapter the browser test opens, runs the first code cells of, edits and saves.
CHAPTER = "02_moving_averages"
N_RUN = 4  # code cells run: the install cell, parameters, their check, the set-up


@pytest.fixture
def browser(tmp_path):
    driver = chromium(tmp_path / "chromium", window="1400,1000", performance_log=True)
    driver.requested = []  # every URL the page asked for, from the performance log

    def drain():
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                driver.requested.append(message["params"]["request"]["url"])
            elif message["method"] == "Network.webSocketCreated":
                driver.requested.append(message["params"]["url"])
        return driver.requested

    driver.drain = drain
    yield driver
    driver.quit()


@pytest.fixture
def screenshots(tmp_path):
    """Where the browser test leaves its screenshots: $LAB_SCREENSHOTS, or a temporary folder."""
    folder = os.environ.get("LAB_SCREENSHOTS") or str(tmp_path / "screenshots")
    os.makedirs(folder, exist_ok=True)
    return folder


def _wait(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"within {timeout} s: {what}")
        time.sleep(0.2)


#: The widget of the main area's current tab, as the reader sees it.
CURRENT = """
const tab = document.querySelector('#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current');
const widget = tab && document.getElementById(tab.dataset.id);
"""

#: What the current tab shows: its label, whether it is a notebook or a text editor, its cells
#: and which of them have outputs, the prompt of each, and the text of every output.
SHOWN = (
    CURRENT
    + """
if (!widget) return null;
const cells = [...widget.querySelectorAll('.jp-Notebook .jp-Cell')];
return {
  label: tab.querySelector('.lm-TabBar-tabLabel').textContent,
  notebook: widget.classList.contains('jp-NotebookPanel'),
  editor: !!widget.querySelector('.jp-FileEditor'),
  kinds: cells.map(c => c.classList.contains('jp-CodeCell') ? 'code'
                      : c.classList.contains('jp-MarkdownCell') ? 'markdown' : 'raw'),
  outputs: cells.map(c => c.querySelectorAll('.jp-OutputArea-output').length),
  errors: cells.map(c => c.querySelectorAll(
    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').length),
  prompts: cells.map(c => (c.querySelector('.jp-InputPrompt') || {}).textContent || ''),
  text: cells.map(c => [...c.querySelectorAll('.jp-OutputArea-output')]
                        .map(o => o.textContent).join('\\n')),
};
"""
)

#: Popups: toasts (JupyterLab's notifications) and dialogs, with their text, and the count of
#: notifications that the status bar shows (those of toasts already gone included).
POPUPS = """
const count = document.querySelector('.jp-Notification-Status-Text');
return {
  popups: [...document.querySelectorAll('.Toastify__toast, .jp-Dialog')].map(e => e.textContent),
  notifications: count && count.textContent,
};
"""

#: Record, for each cell of the current tab, whether its prompt ever showed `[*]` (running).
WATCH_RUNS = (
    CURRENT
    + """
window.__ran = new Set();
const cells = () => [...widget.querySelectorAll('.jp-Notebook .jp-Cell')];
new MutationObserver(() => {
  cells().forEach((c, i) => {
    const p = c.querySelector('.jp-InputPrompt');
    if (p && p.textContent.includes('*')) window.__ran.add(i);
  });
}).observe(widget, {subtree: true, childList: true, characterData: true});
"""
)


def _cell(browser, index):
    return browser.execute_script(
        CURRENT + "return widget.querySelectorAll('.jp-Notebook .jp-Cell')[arguments[0]];", index
    )


def _kernel_environment(lab, path):
    """The environment of the kernel of the session on `path`, read from /proc."""
    (kernel,) = [s["kernel"]["id"] for s in lab.get("/api/sessions") if s["path"] == path]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f"kernel-{kernel}.json".encode() not in f.read():
                    continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                pairs = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        return dict(p.split("=", 1) for p in pairs if "=" in p)
    pytest.fail(f"no process found for kernel {kernel}")


def test_a_reader_double_clicks_runs_edits_and_saves_a_chapter(lab, browser, screenshots):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    md, ipynb = lab.chapters / f"{CHAPTER}.md", lab.chapters / f"{CHAPTER}.ipynb"
    md_before, ipynb_before = md.read_text(), ipynb.read_text()
    stored = nbformat.reads(ipynb_before, as_version=4).cells
    code = [i for i, c in enumerate(stored) if c.cell_type == "code"]
    run = code[:N_RUN]
    edited = next(i for i, c in enumerate(stored) if i > run[-1] and c.cell_type == "markdown")
    marker = f"Edited in the lab by the browser test {secrets.token_hex(4)}."
    shot = lambda name: browser.save_screenshot(os.path.join(screenshots, name))  # noqa: E731

    # The reader's first start: the file browser lists each chapter once, as its .md.
    browser.get(f"{lab.url}/lab?token={lab.token}")
    item_path = (
        "//li[contains(@class, 'jp-DirListing-item')]"
        f"[.//span[@class='jp-DirListing-itemText']/span[text()='{CHAPTER}.md']]"
    )
    item = _wait(
        lambda: [e for e in browser.find_elements(By.XPATH, item_path) if e.rect["height"] > 0],
        60,
        f"{CHAPTER}.md in the file browser",
    )[0]
    listed = [
        e.get_attribute("textContent")
        for e in browser.find_elements(By.CSS_SELECTOR, ".jp-DirListing-itemText")
    ]
    assert f"{CHAPTER}.md" in listed
    assert not [n for n in listed if n.endswith(".ipynb")], (
        f"the .ipynb twins are listed: {listed}"
    )
    shot("1-started.png")

    # A double-click opens the chapter as a notebook, with the outputs stored in the .ipynb.
    ActionChains(browser).double_click(item).perform()
    with_outputs = [i for i, c in enumerate(stored) if c.get("outputs")]
    assert with_outputs, f"{CHAPTER}.ipynb has no stored outputs"

    def opened():
        s = browser.execute_script(SHOWN)
        if s and s["label"] == f"{CHAPTER}.md":
            loaded = len(s["kinds"]) == len(stored) and all(s["outputs"][i] for i in with_outputs)
            return s if s["editor"] or loaded else None

    shown = _wait(
        opened,
        30,
        f"{CHAPTER}.md opened, as a notebook with the cells and stored outputs of its .ipynb "
        "or as text",
    )
    assert not shown["editor"], f"{CHAPTER}.md opened in the text editor, not as a notebook"
    assert shown["notebook"]
    assert shown["kinds"] == [c.cell_type for c in stored]
    # The first plain-text output reads as stored (an HTML output is shown as its HTML).
    i, text = next(
        (i, o.get("text") or o.data["text/plain"])
        for i in with_outputs
        for o in stored[i].outputs
        if o.output_type == "stream" or set(o.get("data", {})) == {"text/plain"}
    )
    assert " ".join(text.split()) in " ".join(shown["text"][i].split())
    # The Open in Colab badge under the title shows (an inline image, no other host asked).
    badge = _cell(browser, 0).find_element(By.CSS_SELECTOR, 'img[alt="Open in Colab"]')
    assert browser.execute_script("return arguments[0].naturalWidth", badge) > 0
    shot("2-top.png")
    _cell(browser, i).location_once_scrolled_into_view  # noqa: B018
    shot("2-opened.png")

    # Run the first code cells, from the first one on, with Shift+Enter.
    browser.execute_script(WATCH_RUNS)
    _cell(browser, run[0]).find_element(By.CSS_SELECTOR, ".jp-InputPrompt").click()
    actions = ActionChains(browser).send_keys(Keys.ESCAPE)
    for _ in range(run[-1] - run[0] + 1):
        actions.key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT)
    actions.perform()
    _wait(
        lambda: (
            set(run) <= set(browser.execute_script("return [...window.__ran]"))
            and all(
                p.strip("[]: ").isdigit()
                for p in (browser.execute_script(SHOWN)["prompts"][i] for i in run)
            )
        ),
        120,
        f"cells {run} of {CHAPTER} running to the end",
    )
    shown = browser.execute_script(SHOWN)
    assert not any(shown["errors"][i] for i in run), [shown["text"][i] for i in run]

    # The kernel has the numerics pins, which the test took out of the server's environment.
    kernel_env = _kernel_environment(lab, f"{CHAPTER}.md")
    profile = kernel_env.get(numerics.PROFILE_VARIABLE)
    assert profile, "the kernel has no numerics profile: make lab must start under the pins"
    for var, (value, _) in numerics.plan({numerics.PROFILE_VARIABLE: profile}).items():
        assert kernel_env.get(var) == value, f"kernel: {var}={kernel_env.get(var)}, not {value}"

    # Edit a markdown cell, render it, and save.
    ActionChains(browser).double_click(_cell(browser, edited)).perform()
    editor = _wait(
        lambda: _cell(browser, edited).find_elements(By.CSS_SELECTOR, ".cm-content"),
        10,
        "the markdown cell's editor",
    )[0]
    _wait(lambda: editor.is_displayed(), 10, "the markdown cell's editor, shown")
    editor.send_keys(Keys.CONTROL, Keys.END)
    editor.send_keys(Keys.ENTER, Keys.ENTER, marker)
    ActionChains(browser).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()
    ActionChains(browser).key_down(Keys.CONTROL).send_keys("s").key_up(Keys.CONTROL).perform()
    _wait(
        lambda: marker in md.read_text() and marker in ipynb.read_text(),
        30,
        "the edit saved into both the .md and the .ipynb",
    )
    time.sleep(0.5)  # let both writes finish
    _cell(browser, edited).location_once_scrolled_into_view  # noqa: B018
    shot("3-saved.png")

    # Both files changed, the pair is in sync (as `make sync-check` checks it), and the only
    # change in the cells is the edit; the cells run have their new outputs, the others kept
    # theirs.
    assert md.read_text() != md_before and ipynb.read_text() != ipynb_before
    problem = check_sync.check_pair(str(md))
    assert problem is None, problem
    # The save wrote Jupytext's version lines into the .md header; `make sync` (tools.pairing)
    # puts back the pairing metadata as it was stored, on both sides.
    pairing.normalize(str(md))
    assert pairing.problem(str(md)) is None
    assert pairing.header(md.read_text()) == pairing.header(md_before)
    assert (
        nbformat.read(ipynb, as_version=4).metadata.jupytext
        == nbformat.reads(ipynb_before, as_version=4).metadata.jupytext
    )
    expected = [c.source.strip() for c in stored]
    expected[edited] = f"{expected[edited]}\n\n{marker}"
    assert [c.source.strip() for c in jupytext.read(md).cells] == expected
    saved = nbformat.read(ipynb, as_version=4).cells
    assert [c.source.strip() for c in saved] == expected
    for i in run:
        assert saved[i].execution_count is not None
        assert not [o for o in saved[i].outputs if o.output_type == "error"]
    for i in set(code) - set(run):
        assert len(saved[i].outputs) == len(stored[i].outputs), f"cell {i} lost its outputs"

    # Quiet and offline: no popup, and no request to another host, from the page, the server
    # or the kernel.
    popups = browser.execute_script(POPUPS)
    assert not popups["popups"], f"popups: {popups['popups']}"
    assert popups["notifications"] == "0", f"{popups['notifications']} notifications"
    requested = browser.drain()
    assert any(u.startswith(lab.url) for u in requested)  # the log does see the page's requests
    assert not foreign(requested, lab.url, ("http", "https", "ws", "wss")), (
        "the page asked another host"
    )
    assert not lab.outside(), "the server or the kernel reached for another host"


# --- the book's listings, framed and labelled -----------------------------------------------

#: The chapter whose first cell tagged `book-listing` the test looks at.
LISTING_CHAPTER = "A2_book_vs_today"
LISTING_TAG = "book-listing"
LISTING_LABEL = "Book listing (Géron)"

#: For a cell of the current tab: its classes, its code's frame (border widths and colour), the
#: label shown before the code (a pseudo-element: its text, display and colours), the room
#: between the frame's top and the code, and the notebook's background.
LOOK = (
    CURRENT
    + """
const cell = widget.querySelectorAll('.jp-Notebook .jp-Cell')[arguments[0]];
const editor = cell.querySelector('.jp-InputArea-editor');
const code = editor.querySelector('.cm-editor');
const frame = getComputedStyle(editor);
const label = getComputedStyle(editor, '::before');
return {
  classes: [...cell.classList],
  borders: ['Top', 'Right', 'Bottom', 'Left'].map(s => parseFloat(frame[`border${s}Width`])),
  frameColour: frame.borderTopColor,
  label: label.content,
  labelDisplay: label.display,
  labelColour: label.color,
  labelBackground: label.backgroundColor,
  above: code.getBoundingClientRect().top - editor.getBoundingClientRect().top,
  page: getComputedStyle(widget.querySelector('.jp-Notebook')).backgroundColor,
  theme: document.body.dataset.jpThemeName,
};
"""
)


def contrast(a, b):
    """WCAG's contrast ratio of two opaque computed colours ``rgb(r, g, b)``."""

    def luminance(colour):
        assert colour.startswith("rgb("), f"not an opaque colour: {colour}"
        channels = [int(v) / 255 for v in colour[4:-1].split(",")]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _a_listing(md):
    """The index of the first code cell of the chapter `md` tagged `book-listing`, that of the
    next code cell without the tag, and the number of cells."""
    nb = jupytext.read(md)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    tagged = [i for i in code if LISTING_TAG in nb.cells[i].metadata.get("tags", [])]
    assert tagged, f"{md.name} has no cell tagged {LISTING_TAG!r}"
    untagged = next(
        i
        for i in code
        if i > tagged[0] and LISTING_TAG not in nb.cells[i].metadata.get("tags", [])
    )
    return tagged[0], untagged, len(nb.cells)


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"])
def test_a_book_listing_is_framed_and_labelled(lab, browser, screenshots, theme):
    tagged, untagged, n_cells = _a_listing(lab.chapters / f"{LISTING_CHAPTER}.md")
    settings = "/lab/api/settings/@jupyterlab/apputils-extension:themes"
    assert lab.put(settings, {"raw": json.dumps({"theme": theme})}) == 204
    try:
        browser.get(f"{lab.url}/lab/tree/{LISTING_CHAPTER}.md?token={lab.token}")

        def opened():
            s = browser.execute_script(SHOWN)
            if s and s["label"] == f"{LISTING_CHAPTER}.md" and len(s["kinds"]) == n_cells:
                return s

        shown = _wait(opened, 60, f"{LISTING_CHAPTER}.md opened as a notebook")
        assert shown["notebook"] and not shown["editor"]
        look = _wait(
            lambda: (
                (s := browser.execute_script(LOOK, tagged))
                and f"cell-tag-{LISTING_TAG}" in s["classes"]
                and s
            ),
            30,
            f"cell {tagged} with the class cell-tag-{LISTING_TAG} (jupyterlab-celltagsclasses)",
        )
        assert look["theme"] == theme
        _cell(browser, tagged).location_once_scrolled_into_view  # noqa: B018
        time.sleep(0.5)  # let the scroll settle for the screenshot
        browser.save_screenshot(
            os.path.join(screenshots, f"4-book-listing-{theme.split()[-1].lower()}.png")
        )

        # The tagged cell: a frame of at least 2 px on every side, in a colour that stands out
        # from the page (3:1, WCAG's ratio for a control's border), and the label, shown above
        # the code, legible (4.5:1).
        assert min(look["borders"]) >= 2, look
        assert contrast(look["frameColour"], look["page"]) >= 3, look
        assert look["label"] == json.dumps(LISTING_LABEL, ensure_ascii=False), look
        assert look["labelDisplay"] == "block", look
        assert look["above"] >= 12, look  # the label's line, between the frame and the code
        assert contrast(look["labelColour"], look["labelBackground"]) >= 4.5, look

        # An untagged code cell: the editor's usual hairline, no label.
        plain = browser.execute_script(LOOK, untagged)
        assert f"cell-tag-{LISTING_TAG}" not in plain["classes"]
        assert max(plain["borders"]) < 2, plain
        assert plain["label"] in ("none", "normal"), plain
        assert plain["above"] < 12, plain

        popups = browser.execute_script(POPUPS)
        assert not popups["popups"], f"popups: {popups['popups']}"
    finally:
        lab.put(settings, {"raw": "{}"})

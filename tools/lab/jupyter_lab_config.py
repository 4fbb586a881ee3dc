"""JupyterLab's server settings for `make lab`, which passes this file with --config.

They apply to that server only: nothing is written to the reader's own Jupyter settings.
"""

import os

c = get_config()  # noqa: F821 (traitlets provides it when it loads this file)

# The JupyterLab settings of this folder (overrides.json5): chapters open as notebooks, and no
# news or update checks. The default folder, in .venv, holds nothing else.
c.LabApp.app_settings_dir = os.path.dirname(os.path.abspath(__file__))

# No request leaves the machine: no news feed, no update check against PyPI, and an extension
# manager that lists the installed extensions without searching PyPI (the packages come from
# requirements.lock, so installing from the lab would leave the pinned set anyway).
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
c.LabApp.extension_manager = "readonly"

# The file browser lists each chapter once, as the .md a reader opens; its .ipynb twin (the
# stored outputs, which Jupytext reads and writes alongside) is hidden from the listing only.
c.ContentsManager.hide_globs.extend(["[0-9][0-9]_*.ipynb", "A[0-9]_*.ipynb"])

# Cells tagged `book-listing` (those that reproduce a listing of the book) show a frame and the
# label "Book listing (Géron)" around their code, in every theme. jupyterlab-celltagsclasses
# (the `lab` extra) gives each cell the class `cell-tag-<tag>`; the stylesheet custom/custom.css
# beside this file styles it. JupyterLab loads /custom/custom.css when `custom_css` is on, from
# the server's `static_custom_path`, which would otherwise be ~/.jupyter/custom: this server
# serves ours instead, and a reader's own custom.css is left alone (and not loaded here).
c.LabApp.custom_css = True
c.ServerApp.tornado_settings.update(
    {"static_custom_path": [os.path.join(os.path.dirname(os.path.abspath(__file__)), "custom")]}
)

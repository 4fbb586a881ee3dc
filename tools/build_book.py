"""Build the static book from the executed chapters, offline, with warnings as errors.

- The table of contents is one entry per ``chapters/NN_*.ipynb`` (chapter 00 is the landing
  page), so adding a chapter needs no edit here, then the appendices: the claims index
  (generated here) and each ``chapters/A<digit>_*.ipynb``.
- The claims index is written by ``tools/claims_index.py`` from the claim reports stored in the
  executed chapters; a claim of ``helpers/book/claims.toml`` that its chapter did not report stops
  the build with a message naming both.
- Sphinx reads a staged copy of the notebooks (``build/book/src``) next to the generated index,
  so nothing is written into ``chapters/``.
- MathJax comes from the npm package installed under build/npm (never from a CDN, never
  committed); it is staged under the book's ``_static/mathjax`` and named by ``mathjax_path``.
- The rendered pages are the stored outputs of the .ipynb files; nothing is executed.
- Each notebook page gets the theme's Colab launch button and a download button for its
  ``.ipynb``. The repository and the tag they point to come from ``pyproject.toml``
  (``tools/colab.py``, which also writes the badge at the top of each chapter): Jupyter Book
  would otherwise point them at its own repository and ``master``.
"""

import glob
import os
import shutil
import subprocess
import sys

import yaml

from tools import claims_index, colab
from tools.common import CHAPTERS, ROOT

OUT = os.path.join(ROOT, "build", "book")
MATHJAX = os.path.join(ROOT, "build", "npm", "node_modules", "mathjax", "es5")
MATHJAX_ENTRY = "tex-chtml-full.js"


def main():
    if not os.path.exists(os.path.join(MATHJAX, MATHJAX_ENTRY)):
        sys.exit(
            f"MathJax is missing ({MATHJAX}); run `make book-build`, which installs it with npm."
        )
    notebooks = sorted(glob.glob(os.path.join(CHAPTERS, "[0-9][0-9]_*.ipynb")))
    if not notebooks:
        sys.exit("No executed chapters (chapters/NN_*.ipynb) to build from; run `make book`.")
    appendices = sorted(glob.glob(os.path.join(CHAPTERS, "A[0-9]_*.ipynb")))
    names = [os.path.splitext(os.path.basename(p))[0] for p in notebooks]
    extra = [claims_index.PAGE] + [os.path.splitext(os.path.basename(p))[0] for p in appendices]

    os.makedirs(OUT, exist_ok=True)
    source = os.path.join(OUT, "src")
    shutil.rmtree(source, ignore_errors=True)
    os.makedirs(source)
    for path in notebooks + appendices:
        shutil.copy2(path, source)
    try:
        claims_index.write(CHAPTERS, os.path.join(source, claims_index.PAGE + ".md"))
    except claims_index.ClaimsIndexError as err:
        sys.exit(f"The claims index cannot be built: {err}")
    static = os.path.join(OUT, "static")
    shutil.rmtree(static, ignore_errors=True)
    shutil.copytree(MATHJAX, os.path.join(static, "mathjax"))

    with open(os.path.join(ROOT, "book", "_config.yml")) as f:
        config = yaml.safe_load(f)
    url, _, tag = colab.project()
    config["repository"] = {"url": url, "branch": tag, "path_to_book": "chapters"}
    config.setdefault("launch_buttons", {})["colab_url"] = colab.COLAB.removesuffix("/github")
    sphinx = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx["html_static_path"] = [static]
    sphinx["mathjax_path"] = f"mathjax/{MATHJAX_ENTRY}"
    config_path = os.path.join(OUT, "_config.yml")
    with open(config_path, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False, allow_unicode=True)

    toc = {"format": "jb-book", "root": names[0], "parts": []}
    if len(names) > 1:
        toc["parts"].append({"caption": "Chapters", "chapters": [{"file": n} for n in names[1:]]})
    toc["parts"].append({"caption": "Appendices", "chapters": [{"file": n} for n in extra]})
    toc_path = os.path.join(OUT, "_toc.yml")
    with open(toc_path, "w") as f:
        yaml.safe_dump(toc, f, sort_keys=False)

    shutil.rmtree(os.path.join(OUT, "_build"), ignore_errors=True)
    cmd = [
        os.path.join(os.path.dirname(sys.executable), "jupyter-book"),
        "build",
        source,
        "--config",
        config_path,
        "--toc",
        toc_path,
        "--path-output",
        OUT,
        "--warningiserror",
        "--keep-going",
        "--quiet",
    ]
    result = subprocess.run(cmd)
    if result.returncode:
        sys.exit(f"The book build failed (warnings are errors): exit status {result.returncode}")
    print(
        f"Built {len(names)} chapters and {len(extra)} appendices into "
        f"{os.path.relpath(os.path.join(OUT, '_build', 'html'), ROOT)}/index.html"
    )


if __name__ == "__main__":
    main()

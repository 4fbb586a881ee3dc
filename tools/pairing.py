"""The Jupytext pairing metadata of each chapter, kept in one form whatever rewrites the pair.

    python -m tools.pairing chapters/NN_topic.md ...   (make sync runs it after jupytext --sync)

A chapter's pairing metadata is its ``.md``'s header (``jupytext: formats, text_representation``)
and the ``jupytext`` entry of its ``.ipynb``'s metadata. The stored form, which every tool
keeps:

- the ``.md`` header's ``text_representation`` holds ``extension`` and ``format_name`` only;
  Jupytext adds ``format_version`` and ``jupytext_version`` lines when it writes a header
  (a save in JupyterLab, ``jupytext --sync``), and they are taken out again;
- the ``.ipynb`` holds the same ``text_representation`` (an execution from the ``.md`` puts it
  there); ``jupytext --sync`` and its ``--pipe`` (which ``make format`` uses) drop it, and it is
  put back.

`normalize` writes that form (``make sync`` and ``make format`` call it after Jupytext), and
`problem` names a chapter whose metadata has another form (``make sync-check`` fails on it).
"""

import argparse
import json
import re
import sys

import nbformat
import yaml

#: The lines Jupytext writes into a header it re-creates; the stored headers leave them out.
VERSION_LINES = re.compile(r"^ {4}(format_version|jupytext_version): .*\n", re.MULTILINE)
#: The keys of ``text_representation`` that the stored form keeps.
KEPT = ("extension", "format_name")


def strip_version_lines(text):
    """`text` (a chapter's MyST source) without the version lines of its header."""
    end = text.find("\n---", 3) if text.startswith("---\n") else -1
    if end < 0:
        return text
    return VERSION_LINES.sub("", text[: end + 1]) + text[end + 1 :]


def header(text):
    """The ``jupytext`` mapping of a MyST source's YAML header (empty when it has none)."""
    end = text.find("\n---", 3) if text.startswith("---\n") else -1
    if end < 0:
        return {}
    return (yaml.safe_load(text[4:end]) or {}).get("jupytext") or {}


def _notebook_path(md):
    return md[: -len(".md")] + ".ipynb"


def stored_form(md_text, nb_metadata):
    """``(md_text, nb_jupytext_metadata)`` in the stored form (see the module's docstring)."""
    md_text = strip_version_lines(md_text)
    representation = header(md_text).get("text_representation") or {}
    meta = dict(nb_metadata or {})
    meta["text_representation"] = {k: representation[k] for k in KEPT if k in representation}
    return md_text, meta


def problem(md):
    """None if `md`'s pair holds its pairing metadata in the stored form, else what differs."""
    with open(md, encoding="utf-8") as f:
        text = f.read()
    nb = nbformat.read(_notebook_path(md), as_version=4)
    meta = nb.metadata.get("jupytext")
    want_text, want_meta = stored_form(text, meta)
    if text != want_text:
        return f"{md}: its header holds Jupytext's version lines; run `make sync`"
    if json.dumps(meta, sort_keys=True) != json.dumps(want_meta, sort_keys=True):
        return (
            f"{_notebook_path(md)}: its Jupytext metadata is {json.dumps(meta)}, "
            f"not {json.dumps(want_meta)}; run `make sync`"
        )
    return None


def normalize(md, keep=None):
    """Write `md`'s pair in the stored form; return whether a file changed.

    Args:
        md: a chapter's ``.md`` (its ``.ipynb`` sits next to it).
        keep: the ``.ipynb``'s ``jupytext`` metadata from before Jupytext rewrote it; its
            other entries are kept as they were (default: those the ``.ipynb`` holds now).
    """
    with open(md, encoding="utf-8") as f:
        text = f.read()
    path = _notebook_path(md)
    nb = nbformat.read(path, as_version=4)
    before = nb.metadata.get("jupytext")
    new_text, new_meta = stored_form(text, before if keep is None else keep)
    changed = False
    if new_text != text:
        with open(md, "w", encoding="utf-8") as f:
            f.write(new_text)
        changed = True
    if json.dumps(new_meta, sort_keys=True) != json.dumps(before, sort_keys=True):
        nb.metadata["jupytext"] = new_meta
        nbformat.write(nb, path)
        changed = True
    return changed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="+", metavar="NN_topic.md")
    args = parser.parse_args(argv)
    for md in args.chapters:
        if normalize(md):
            print(f"restored the pairing metadata of {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

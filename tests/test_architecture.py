"""The docs name what exists: ARCHITECTURE.md's modules, and the `make` targets of the docs.

Every ``helpers.x.y`` that ARCHITECTURE.md names in backticks is a module or subpackage under
``helpers/``, or a name defined at the top of one (``helpers.setup``, ``helpers.fusion.fuse``);
every ``make TARGET`` that ARCHITECTURE.md, CONTRIBUTING.md and README.md name is a target of the
Makefile; every ``tools/*.py`` and ``tests/*.py`` file ARCHITECTURE.md and CONTRIBUTING.md name
exists. Read as text and parsed with ``ast``: nothing is imported.
"""

import ast
import os
import re

import pytest

from tool_modules import ROOT

DOCS = ("ARCHITECTURE.md", "CONTRIBUTING.md", "README.md")
#: Inline code: one backtick pair, possibly across a line break.
CODE_SPAN = re.compile(r"(?<!`)`([^`]+)`(?!`)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
MAKE = re.compile(r"(?:^|\s|\()make\s+([a-z][a-z0-9-]*)")


def _read(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        return f.read()


def _code(text):
    """The inline code spans and fenced blocks of a Markdown text."""
    fenced = FENCE.findall(text)
    return fenced + CODE_SPAN.findall(FENCE.sub("", text))


def _helpers_names():
    """The dotted names in ARCHITECTURE.md's code, and the modules its table lists.

    A row of the table starts with its subpackage (`` | `helpers.fusion` | ``) and names each of
    its modules as `` `plan` (what it holds) ``.
    """
    text = _read("ARCHITECTURE.md")
    names = set()
    for span in _code(text):
        names.update(re.findall(r"\bhelpers(?:\.[A-Za-z_]\w*)+", span))
    for package, holds in re.findall(r"^\| `(helpers\.\w+)` \| ([^|]*)\|", text, re.M):
        names.update(f"{package}.{m}" for m in re.findall(r"`([a-z_][a-z0-9_]*)` \(", holds))
    return sorted(names)


def _top_level_names(path):
    """The names a module defines or imports at its top level (its attributes)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def resolve(dotted, root=ROOT):
    """Why `dotted` (``helpers.a.b``) names nothing under `root`, or None when it does.

    Each part is a subpackage (a folder with ``__init__.py``) or a module (``.py``) of the one
    before; the first part that is neither must be a name defined at the top of the module or
    package ``__init__`` before it (the parts after it are its attributes, not checked).
    """
    parts = dotted.split(".")
    path = os.path.join(root, parts[0])
    for i, part in enumerate(parts[1:], start=1):
        package, module = os.path.join(path, part), os.path.join(path, part + ".py")
        if os.path.isfile(os.path.join(package, "__init__.py")):
            path = package
            continue
        if os.path.isfile(module):
            path = module
            if i == len(parts) - 1:
                return None
            owner = module
            attribute = parts[i + 1]
        else:
            owner = os.path.join(path, "__init__.py")
            attribute = part
        where = ".".join(parts[: i + (owner == module)])
        if not os.path.isfile(owner):
            return f"{where} is no module or package under helpers/"
        if attribute not in _top_level_names(owner):
            return (
                f"{where} defines no {attribute!r} (and {'.'.join(parts[: i + 1])} is no module)"
            )
        return None
    return None


@pytest.mark.parametrize("name", _helpers_names())
def test_every_module_architecture_names_exists(name):
    assert resolve(name) is None, f"ARCHITECTURE.md names `{name}`: {resolve(name)}"


def _targets():
    return set(re.findall(r"^([a-z0-9][a-z0-9-]*)\s*:(?!=)", _read("Makefile"), re.M))


def _named_targets(doc):
    named = set()
    for span in _code(_read(doc)):
        named.update(MAKE.findall(span))
    return named


@pytest.mark.parametrize("doc", DOCS)
def test_every_make_target_the_docs_name_is_defined(doc):
    named = _named_targets(doc)
    assert named, f"{doc} names no make target: the pattern no longer finds them"
    assert sorted(named - _targets()) == [], f"{doc} names targets the Makefile does not define"


@pytest.mark.parametrize("doc", DOCS[:2])
def test_every_tool_and_test_file_the_docs_name_exists(doc):
    paths = set(re.findall(r"\b(?:tools|tests)/[\w/]+\.py\b", _read(doc)))
    assert sorted(p for p in paths if not os.path.isfile(os.path.join(ROOT, p))) == []


def test_the_checks_themselves(tmp_path):
    pkg = tmp_path / "helpers"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from helpers.sub.mod import setup\nVALUE = 1\n")
    (pkg / "sub" / "__init__.py").write_text("def fuse():\n    pass\n")
    (pkg / "sub" / "mod.py").write_text("class Check:\n    pass\n\n\ndef setup():\n    pass\n")
    (pkg / "data").mkdir()  # a folder, not a package
    for ok in ("helpers.setup", "helpers.VALUE", "helpers.sub", "helpers.sub.fuse"):
        assert resolve(ok, str(tmp_path)) is None, ok
    for ok in ("helpers.sub.mod", "helpers.sub.mod.Check", "helpers.sub.mod.setup.x"):
        assert resolve(ok, str(tmp_path)) is None, ok
    assert "no module" in resolve("helpers.sub.gone", str(tmp_path))
    assert "defines no 'gone'" in resolve("helpers.sub.mod.gone", str(tmp_path))
    assert "helpers.data is no module" in resolve("helpers.data.stored", str(tmp_path))
    (pkg / "bench").mkdir()  # stored results, but no package yet
    (pkg / "bench" / "x.json").write_text("{}")
    assert "helpers.bench is no module" in resolve("helpers.bench.stored", str(tmp_path))
    text = "Run `make check`, then `make chapter\n  CHAPTER=03`; make that hold.\n"
    text += "```sh\nmake lab\n```\n"
    spans = _code(text)
    assert {t for s in spans for t in MAKE.findall(s)} == {"check", "chapter", "lab"}


def test_make_help_lists_every_phony_target():
    makefile = _read("Makefile")
    phony = re.search(r"^\.PHONY:(.*?)(?<!\\)$", makefile, re.M | re.S).group(1)
    phony = set(phony.replace("\\", " ").split())
    described = set(re.findall(r"^([a-z0-9-]+):.*## ", makefile, re.M))
    assert sorted(phony - described) == [] and sorted(described - phony) == []

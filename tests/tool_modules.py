"""What the tests of the tools share: loading a script of tools/ as a module, a chapter header."""

import importlib.util
import os
import sys

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


def load_tool(name):
    """Import tools/<name>.py as the module `name` (registered, so its functions pickle).

    Loaded once per process: a second load would replace the registered module, and functions
    of the first (held by a test module) would no longer pickle for a process pool.
    """
    if name in sys.modules and getattr(sys.modules[name], "__file__", "").startswith(
        os.path.join(ROOT, "tools")
    ):
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module

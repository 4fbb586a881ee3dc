"""The repository's own tools: run each as ``python -m tools.NAME`` from the repository's root.

They import each other as ``from tools import ...`` (never through ``sys.path``), and what
several of them need is written once in `tools.common`.
"""

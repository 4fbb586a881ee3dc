"""The book's machinery, under every chapter: argument checks, seeding and set-up, numerics
pins, the supported range, the data, chapter parameters, reports and the claims.

Nothing here imports a chapter's domain (`helpers.bn`, `helpers.training`, `helpers.fusion`,
...): the import contract in ``pyproject.toml`` (``lint-imports``) enforces it.
"""

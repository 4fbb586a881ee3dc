"""The chapter protocol: checked parameters, verdicts over seeds with their limits, the book's
claims (``claims.toml``) and their reports, and pandas tables as LaTeX for the PDF."""

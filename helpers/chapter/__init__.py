"""The chapter protocol: checked parameters, verdicts over seeds with their limits, the book's
claims (``claims.toml``) and their reports, pandas tables as LaTeX for the PDF, and the
figures' size and fonts."""

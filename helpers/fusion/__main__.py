"""``python -m helpers.fusion model.keras -o fused.keras``: see `helpers.fusion.graph.main`."""

import sys

from helpers.fusion.graph import main

if __name__ == "__main__":
    sys.exit(main())

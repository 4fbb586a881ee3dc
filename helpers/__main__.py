"""``python -m helpers [-- COMMAND ...]``: show the numerics pins, or run a command under them.

Importing the package has already pinned this process (see `helpers.runtime.numerics`); a
command run from here inherits the pinned environment, and so do the Jupyter kernels it starts.
"""

import os
import sys

from helpers.runtime import numerics

USAGE = "usage: python -m helpers [-- COMMAND [ARGS...]]"


def main(argv):
    if argv[:1] == ["--"] and len(argv) > 1:
        try:
            os.execvp(argv[1], argv[1:])
        except OSError as err:
            print(f"cannot run {argv[1]!r}: {err.strerror}", file=sys.stderr)
            return 127
    if argv:
        print(USAGE, file=sys.stderr)
        return 2
    rows = numerics.status_rows()
    width = max(len(var) for var, _, _ in rows)
    for var, value, source in rows:
        print(f"{var:<{width}}  {value:<36}  {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

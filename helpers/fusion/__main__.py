"""``python -m helpers.fusion model.keras -o fused.keras``: fuse a saved model (see `main`)."""

import argparse
import os
import sys

from helpers.fusion.engine import fuse
from helpers.fusion.report import FusionError

__all__ = ["main"]


def main(argv=None):
    """Fuse a saved Keras model: ``python -m helpers.fusion model.keras -o fused.keras``.

    Loads the model, fuses it with `fuse` (which checks the result), saves the fused model and
    prints the report. Any failure prints one line on stderr, exits with status 1 and writes
    no output file.

    Args:
        argv: the command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 on failure (2 for bad usage, from argparse).
    """
    parser = argparse.ArgumentParser(
        prog="python -m helpers.fusion",
        description="Fold the BN layers of a saved Keras model into their neighbours.",
    )
    parser.add_argument("model", help="the saved model, a .keras file")
    parser.add_argument("-o", "--output", required=True, help="where to save the fused model")
    parser.add_argument("--n-random", type=int, default=64, help="random samples in the check")
    args = parser.parse_args(argv)

    def fail(message):
        print(f"error: {message}", file=sys.stderr)
        return 1

    if not args.output.endswith(".keras"):
        return fail(f"the output must be a .keras file, got {args.output!r}.")
    if os.path.abspath(args.output) == os.path.abspath(args.model):
        return fail("the output must not overwrite the input model.")
    if not os.path.isfile(args.model):
        return fail(f"no such file: {args.model!r}.")
    import keras

    try:
        model = keras.models.load_model(args.model, compile=False)
    except Exception as err:
        first = (str(err).strip().splitlines() or [""])[0]
        return fail(f"{args.model!r} is not a Keras model that can be loaded ({first}).")
    try:
        fused, report = fuse(model, n_random=args.n_random)
    except (ValueError, FusionError) as err:
        return fail(str(err).splitlines()[0])
    tmp = f"{args.output}.partial.keras"
    try:
        fused.save(tmp)
        os.replace(tmp, args.output)
    except Exception as err:
        return fail(f"could not save {args.output!r}: {err}")
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    print(report)
    print(f"saved {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

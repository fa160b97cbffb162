"""``python -m nnbackprop``: the command line (see :mod:`nnbackprop.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

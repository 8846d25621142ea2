"""``python -m cnnjax``: the same as the ``cnnjax`` command (see :mod:`cnnjax.cli`)."""
import sys

from cnnjax.cli import main

if __name__ == "__main__":
    sys.exit(main())

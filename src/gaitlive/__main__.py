"""``python -m gaitlive``: the same command line as the ``gaitlive`` script
(:func:`gaitlive.cli.main`), exiting with its return code."""

from __future__ import annotations

import sys

from gaitlive.cli import main

if __name__ == "__main__":
    sys.exit(main())

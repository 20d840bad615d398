"""``python -m gaitlive``: the same command line as the ``gaitlive`` script
(:func:`gaitlive.cli.script`), exiting with its return code."""

from __future__ import annotations

from gaitlive.cli import script

if __name__ == "__main__":
    script()

"""The one ``gaitlive`` command line.

Each subcommand lives in :mod:`gaitlive.commands` as a small module with
``register(subparsers)``: it declares its arguments and a ``run(args) -> int`` that imports
the heavy modules it needs only when called, so ``gaitlive --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from gaitlive import __version__

log = logging.getLogger("gaitlive")

# subcommands, each a module gaitlive.commands.<name>, in the order --help lists them
COMMANDS: tuple[str, ...] = (
    "run",       # live pipeline (camera, stream, file)
    "analyze",   # offline: video or pose file -> poses, steps, passes, result movie
    "synth",     # render the synthetic corridor world
    "frames",    # pick frames for annotation (k-means)
    "annotate",  # annotation GUI
    "train",     # DeepLabCut training
    "evaluate",  # RMSE / PCK of a trained model
    "export",    # DLC-Live export + model card
    "score",     # score fit / score compare
    "listen",    # reference farm-system subscriber
    "relay",     # XSUB/XPUB multi-camera proxy
    "keys",      # CURVE key pairs
    "view",      # remote overlay viewer
    "report",    # gait reports
    "info",      # versions and GPU
)


class CLIError(Exception):
    """A user-facing error: printed as ``gaitlive: error: ...`` with exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gaitlive",
        description="Real-time locomotion (gait) scoring of birds walking past a camera, "
                    "on DeepLabCut-Live.")
    parser.add_argument("--version", action="version", version=f"gaitlive {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"gaitlive.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None, *, owns_process: bool = False) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    ``owns_process``: the caller exits the process when this returns (:func:`script`), so
    a command may leave its signal handlers in place (``gaitlive run`` then exits at once
    on a signal, its outputs written, instead of being interrupted on its way out)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.owns_process = owns_process
    logging.basicConfig(level=logging.DEBUG if args.verbose >= 2 else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    logging.getLogger("gaitlive").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("gaitlive: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`gaitlive ... | head`): no traceback, and none at exit when
        # Python flushes stdout into the closed pipe
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (CLIError, ValueError, OSError, RuntimeError) as e:
        # ConfigError, DLCFileError, ... are ValueErrors with a message naming file and key;
        # OSError: a file that cannot be read or written (missing, no space, permissions)
        if args.verbose >= 2:
            raise
        print(f"gaitlive {args.command}: error: {e}", file=sys.stderr)
        return 2


def script() -> None:
    """The ``gaitlive`` console script: :func:`main`, then exit with its status.

    Once the command has returned everything it wrote is closed, so a Ctrl-C or SIGTERM
    while Python shuts down (libraries' exit hooks, thread joins) exits with the command's
    status at once instead of printing a traceback from whichever hook it interrupted.
    """
    from gaitlive.commands import exit_now

    code = main(owns_process=True)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: exit_now(code))
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    script()

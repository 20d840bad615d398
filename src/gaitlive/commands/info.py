"""``gaitlive info``: versions of gaitlive and its engines, and whether a GPU is visible."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="print versions and whether a GPU is visible",
                       description=__doc__)
    p.add_argument("--no-tf", action="store_true", help="do not import TensorFlow (slow)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gaitlive.env import environment_report

    for k, v in environment_report(tensorflow=not args.no_tf).items():
        print(f"{k:<14} {v}")
    return 0

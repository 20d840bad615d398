"""``gaitlive keys``: create a CURVE key pair (ZeroMQ certificates, zmq.auth).

A publisher needs ``server.key_secret`` in ``publish.curve.keys_dir``; every subscriber
needs its own pair, and its public ``NAME.key`` must be in ``publish.curve.allow_dir``
(``--allow`` copies it there). Subscribers also get the publisher's ``server.key``.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="create CURVE key pairs for encrypted publishing",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the key pair")
    p.add_argument("--name", default="server",
                   help="certificate name: 'server' for the publisher, e.g. 'farm1' for a "
                        "subscriber (default %(default)s)")
    p.add_argument("--allow", metavar="DIR", default=None,
                   help="also copy the public key into this allow-list folder")
    p.add_argument("--force", action="store_true", help="replace an existing pair")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gaitlive.fileio import output_dir
    from gaitlive.publish.keys import create_keypair

    output_dir(args.out)
    if args.allow is not None:
        output_dir(args.allow, "--allow")
    kp = create_keypair(args.out, args.name, allow_dir=args.allow, overwrite=args.force)
    print(f"public key: {kp.public}")
    print(f"secret key: {kp.secret}  (keep private)")
    if kp.allowed is not None:
        print(f"allowed:    {kp.allowed}")
    return 0

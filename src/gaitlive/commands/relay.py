"""``gaitlive relay``: one address for many cameras (XSUB/XPUB proxy).

Publishers connect to the frontend (``publish.endpoint: ">tcp://HOST:5560"`` or
``gaitlive run --endpoint ">tcp://HOST:5560"``), subscribers to the backend
(``gaitlive listen tcp://HOST:5561``). Runs until Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("relay", help="XSUB/XPUB proxy: many cameras publish to one address",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frontend", default="tcp://127.0.0.1:5560",
                   help="where publishers connect (default %(default)s)")
    p.add_argument("--backend", default="tcp://127.0.0.1:5561",
                   help="where subscribers connect (default %(default)s)")
    p.add_argument("--hwm", type=int, default=10000,
                   help="high-water mark per peer, messages (default %(default)s)")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="stop after S seconds (default: run until Ctrl-C / SIGTERM)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading

    from gaitlive.publish.relay import Relay

    log = logging.getLogger("gaitlive.relay")
    if args.hwm < 1:
        raise ValueError(f"--hwm: expected an integer >= 1, got {args.hwm}")
    if args.duration is not None and not args.duration > 0:
        raise ValueError(f"--duration: expected seconds > 0 (or leave it out to relay until "
                         f"stopped), got {args.duration}")
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    relay = Relay(args.frontend, args.backend, hwm=args.hwm).start()
    print(f"relay: publishers -> {relay.frontend}  subscribers -> {relay.backend}", flush=True)
    try:
        stop.wait(args.duration)
        stats = relay.statistics()
    finally:
        relay.stop()
    if stats:
        log.info("relay: %d messages in from publishers, %d out to subscribers",
                 stats["frontend_in_msgs"], stats["backend_out_msgs"])
    if relay.error is not None:
        raise RuntimeError(f"relay failed: {relay.error}")
    return 0

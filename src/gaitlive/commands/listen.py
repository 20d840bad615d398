"""``gaitlive listen``: the reference farm-system subscriber -- log every pass score once.

Scores go to SQLite (``--sqlite``, UNIQUE on publisher id + epoch + seq), CSV (``--csv``)
or stdout as JSON lines (``--print``, the default). Missed scores (gaps, downtime) are
fetched from the publisher's side channel; run it again on the same file after a crash and
it catches up.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("listen", help="log pass scores from a publisher or relay (never "
                       "losing one)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("endpoint", nargs="?", default="tcp://127.0.0.1:5556",
                   help="publisher PUB or relay backend endpoint (default %(default)s)")
    p.add_argument("--topics", default="pass",
                   help="comma-separated topics to log: pass,step,status,pose,frame or 'all' "
                        "(default %(default)s; --csv logs pass only)")
    p.add_argument("--camera", default=None, help="only this camera id (default: all)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--sqlite", metavar="FILE", help="log to this SQLite database (new, or "
                     "an earlier listen database; any other database is refused, untouched)")
    out.add_argument("--csv", metavar="FILE", help="log pass scores to this CSV file (new, "
                     "or an earlier listen CSV; any other CSV is refused, untouched)")
    out.add_argument("--print", action="store_true",
                     help="print every message as a JSON line (default)")
    p.add_argument("--side-channel", metavar="EP", default=None,
                   help="publisher side channel for catch-up (default: the one each "
                        "publisher advertises in its headers)")
    p.add_argument("--curve-server-key", metavar="FILE",
                   help="publisher's public key (server.key) for CURVE encryption")
    p.add_argument("--curve-client-cert", metavar="FILE",
                   help="this subscriber's secret certificate (NAME.key_secret)")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="stop after S seconds (default: run until Ctrl-C / SIGTERM)")
    p.add_argument("--timeout", type=float, default=2.0, metavar="S",
                   help="side-channel request timeout (default %(default)s s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import signal
    import threading

    from gaitlive.publish.keys import ClientSecurity
    from gaitlive.publish.listen import CSVStore, Listener, PrintStore, SQLiteStore
    from gaitlive.publish.subscriber import parse_topics

    topics = parse_topics(args.topics)
    if args.duration is not None and not args.duration > 0:
        raise ValueError(f"--duration: expected seconds > 0 (or leave it out to listen until "
                         f"stopped), got {args.duration}")
    if not args.timeout > 0:
        raise ValueError(f"--timeout: expected seconds > 0, got {args.timeout}")
    if args.side_channel is not None:
        from gaitlive.publish.messages import validate_endpoint

        validate_endpoint(args.side_channel, "--side-channel", wildcard=False)
    if bool(args.curve_server_key) != bool(args.curve_client_cert):
        raise ValueError("--curve-server-key and --curve-client-cert go together (CURVE "
                         "needs the publisher's public key and this subscriber's certificate)")
    security = None
    if args.curve_server_key:
        security = ClientSecurity.from_files(args.curve_server_key, args.curve_client_cert)
    if args.sqlite:
        store = SQLiteStore(args.sqlite)
    elif args.csv:
        store = CSVStore(args.csv)
    else:
        store = PrintStore()
    listener = Listener(args.endpoint, store, topics, args.camera, args.side_channel,
                        security=security, request_timeout_s=args.timeout)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: listener.stop_event.set())
    try:
        return listener.run(args.duration)
    finally:
        store.close()

"""``gaitlive view``: watch a remote ``gaitlive run`` on another machine.

Subscribes to the run's published frames (``frame`` topic, JPEG; turn on ``publish.jpeg``
in the run's config), poses, steps, pass scores and status, and draws the live overlay
(skeletons, foot prints, scores, heads-up line) over the frames. Without frames the poses
are drawn on a dark canvas. In a window by default ('q' or Esc quits); ``--headless --out
FILE`` writes the viewer's output to a video file instead (.mp4 or .avi; checked before
anything is received; an existing file is refused unless ``--force``).
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("view", help="remote overlay viewer for a headless gaitlive run",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("endpoint", metavar="ENDPOINT",
                   help="the run's publisher (or a relay backend), e.g. tcp://barn-pc:5556")
    p.add_argument("--camera", default=None, metavar="ID",
                   help="camera id to show (default: the first one heard from)")
    p.add_argument("--profile", default=None,
                   help="species/view profile of the remote run (default: the config's)")
    p.add_argument("--config", "-c", default=None,
                   help="YAML run config whose profile to use (default: configs/default.yaml)")
    p.add_argument("--headless", action="store_true",
                   help="no window: write the viewer output to --out")
    p.add_argument("--out", "-o", default=None, metavar="FILE",
                   help="also write the viewer output to this video (.mp4 or .avi; an "
                        "existing file is refused unless --force)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing --out video (when the first frame is drawn)")
    p.add_argument("--fps", type=float, default=None,
                   help="frame rate of the stream (default: from the run's status, else 30)")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="stop after S seconds")
    p.add_argument("--frames", type=int, default=None, metavar="N",
                   help="stop after drawing N frames")
    p.add_argument("--idle-timeout", type=float, default=None, metavar="S",
                   help="stop when nothing arrives for S seconds")
    p.add_argument("--no-draw", action="store_true",
                   help="show the frames as received (when the run publishes drawn frames)")
    p.add_argument("--server-key", default=None,
                   help="CURVE: the publisher's public key file (server.key)")
    p.add_argument("--client-cert", default=None,
                   help="CURVE: this viewer's secret certificate (.key_secret)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gaitlive.config import load_config, load_profile
    from gaitlive.overlay import RemoteViewer, display_available

    if "://" not in args.endpoint:
        raise ValueError(f"ENDPOINT: expected a ZeroMQ endpoint like tcp://127.0.0.1:5556, "
                         f"got {args.endpoint!r}")
    for name in ("fps", "duration", "idle_timeout"):
        v = getattr(args, name)
        if v is not None and v <= 0:
            raise ValueError(f"--{name.replace('_', '-')}: expected a number > 0, got {v}")
    if args.frames is not None and args.frames <= 0:
        raise ValueError(f"--frames: expected an integer > 0, got {args.frames}")
    if args.headless and not args.out:
        raise ValueError("--headless: expected --out FILE (where the viewer output goes)")
    if args.out:
        from gaitlive.overlay.video import check_video_out

        check_video_out(args.out, overwrite=args.force)  # before waiting for any frame
    elif args.force:
        raise ValueError("--force: expected --out FILE (it only allows replacing that video)")
    window = not args.headless
    if window and not display_available():
        from gaitlive.overlay.window import no_display_reason

        raise ValueError(f"no display available ({no_display_reason()}); expected "
                         f"--headless --out FILE")
    if bool(args.server_key) != bool(args.client_cert):
        raise ValueError("CURVE: expected both --server-key and --client-cert, or neither")
    security = None
    if args.server_key:
        from gaitlive.publish.keys import ClientSecurity

        security = ClientSecurity.from_files(args.server_key, args.client_cert)
    profile = load_profile(args.profile) if args.profile else load_config(args.config).profile
    viewer = RemoteViewer(args.endpoint, profile, camera=args.camera, window=window,
                          out_path=Path(args.out) if args.out else None, fps=args.fps,
                          draw=not args.no_draw, security=security, overwrite=args.force)
    stats = viewer.run(duration_s=args.duration, max_frames=args.frames,
                       idle_timeout_s=args.idle_timeout)
    if stats.rendered == 0:
        import sys

        print(f"gaitlive view: nothing to draw: no frames or poses of "
              f"{'camera ' + args.camera if args.camera else 'any camera'} arrived from "
              f"{args.endpoint} (is gaitlive run publishing there, with publish.publish_poses "
              f"or publish.jpeg on?)", file=sys.stderr)
        return 1
    lost = f", lost {stats.lost}" if stats.lost else ""
    print(f"view {stats.camera_id or '-'}: drew {stats.rendered} frames ({stats.with_pose} "
          f"with poses) from {stats.frames_received} frames, {stats.poses_received} poses, "
          f"{stats.steps_received} steps, {stats.passes_received} passes{lost}"
          + (f"; wrote {args.out}" if args.out else ""))
    return 0

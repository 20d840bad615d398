"""``gaitlive report``: gait reports (PNGs) from ``gaitlive analyze`` output or a database.

For each pass: joint angles over time, a gait diagram (stance bars per foot) and the
features and score; for each recording (or each day of a database): the score
distribution and the scores over time. Writes ``index.html`` listing them.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="per-pass gait reports and score summaries (PNG)",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="DIR",
                   help="gaitlive analyze output folder (<stem>_passes.csv, <stem>_steps.csv, "
                        "pose .h5) or a gaitlive listen / journal SQLite file")
    p.add_argument("--out", "-o", default=None, metavar="DIR2",
                   help="output folder (default: DIR/report)")
    p.add_argument("--profile", default=None,
                   help="species/view profile name or YAML (default: the config's)")
    p.add_argument("--config", "-c", default=None,
                   help="YAML run config whose profile to use (default: configs/default.yaml)")
    p.add_argument("--fps", type=float, default=None,
                   help="frame rate, when the analyze output does not record it")
    p.add_argument("--poses", action="append", default=[], metavar="DIR",
                   help="folder (or file) where the analysed <stem>*.h5 pose files are, when "
                        "not in DIR (gaitlive analyze of a pose file); repeatable")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gaitlive.config import load_config, load_profile
    from gaitlive.report import build_report

    if args.fps is not None and args.fps <= 0:
        raise ValueError(f"--fps: expected a number > 0, got {args.fps}")
    profile = load_profile(args.profile) if args.profile else load_config(args.config).profile
    if args.out is not None:
        from gaitlive.fileio import check_output_dir

        check_output_dir(args.out)
    res = build_report(args.source, args.out, profile, fps=args.fps, pose_dirs=args.poses,
                       progress=True)
    print(f"wrote {len(res.pass_pngs)} pass reports and {len(res.summary_pngs)} summaries "
          f"to {res.out_dir} (open {res.index})")
    return 0

"""``gaitlive frames``: pick the most varied frames of movies for annotation.

Frames go to ``PROJECT/labeled-data/<video stem>/img<index>.png`` and each video is
registered in ``PROJECT/config.yaml`` (a minimal DeepLabCut project is created if the folder
has none), so DeepLabCut and ``gaitlive annotate`` take them as they are.
"""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("frames", help="pick frames for annotation (k-means, as DeepLabCut)",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="movies to pick frames from")
    p.add_argument("--project", "-p", required=True, metavar="DIR",
                   help="DeepLabCut project folder (created with a minimal config.yaml "
                        "if it has none)")
    p.add_argument("-n", "--num", type=int, default=20, help="frames per video (default 20)")
    p.add_argument("--algo", choices=("kmeans", "uniform"), default="kmeans",
                   help="kmeans: most visual variety (default); uniform: random in time")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--step", type=int, default=1,
                   help="k-means: cluster every STEP-th frame (faster on long videos)")
    p.add_argument("--resize-width", type=int, default=30,
                   help="k-means: width frames are downsampled to (default 30, as DLC)")
    p.add_argument("--start", type=float, default=0.0,
                   help="pick from this fraction of the video on (default 0)")
    p.add_argument("--stop", type=float, default=1.0,
                   help="pick up to this fraction of the video (default 1)")
    p.add_argument("--profile", default="broiler-side",
                   help="profile whose bodyparts a NEW project gets (default broiler-side)")
    p.add_argument("--scorer", default=None,
                   help="annotator name of a NEW project (default: your login name)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gaitlive.offline.frames import (
        FrameSelectionError,
        check_pick_options,
        extract_frames,
        plain_scorer,
    )

    # every option before any video is read or the project made
    if args.scorer is not None and not plain_scorer(args.scorer):
        raise FrameSelectionError(f"--scorer {args.scorer!r}: expected a plain annotator "
                                  f"name (it names labeled-data/<video>/CollectedData_"
                                  f"<scorer>.h5: no slashes)")
    check_pick_options(args.num, algo=args.algo, seed=args.seed, step=args.step,
                       resize_width=args.resize_width, start=args.start, stop=args.stop,
                       flags=True)
    total = 0
    failed: list[str] = []
    for video in args.videos:
        try:
            res = extract_frames(video, args.project, args.num, algo=args.algo,
                                 seed=args.seed, step=args.step,
                                 resize_width=args.resize_width, start=args.start,
                                 stop=args.stop, profile=args.profile, scorer=args.scorer)
        except FrameSelectionError as e:
            if len(args.videos) == 1:
                raise
            print(f"{video}: skipped: {e}", file=sys.stderr)
            failed.append(str(e))
            continue
        total += len(res.written)
        extra = f", {len(res.existing)} already there" if res.existing else ""
        print(f"{res.video}: {len(res.indices)} of {res.n_frames} frames -> {res.folder} "
              f"({len(res.written)} written{extra})")
        if len(res.indices) < args.num:
            window = " between --start and --stop" if (args.start, args.stop) != (0.0, 1.0) \
                else ""
            every = f" (every {args.step}th)" if args.step > 1 else ""
            print(f"{res.video}: note: {len(res.indices)} frames, fewer than the {args.num} "
                  f"asked for (too few frames{every}{window}, or frames that do not decode)",
                  file=sys.stderr)
    print(f"{total} new frame(s); next: gaitlive annotate {args.project}")
    if failed:  # the frames of the good videos are written; report the bad ones
        raise FrameSelectionError(f"{len(failed)} of {len(args.videos)} videos could not be "
                                  "used: " + "; ".join(failed))
    return 0

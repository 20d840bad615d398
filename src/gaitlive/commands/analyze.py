"""``gaitlive analyze INPUT... --out DIR``: steps, passes and scores of a video or pose file.

INPUT is a video (poses are inferred with the configured DLC-Live model), a DeepLabCut
pose file (.h5/.csv, single- or multi-animal) or a flat keypoint CSV (the T-LEAP cow
layout, with ``--profile cow-side``). Writes ``DIR/<stem>_steps.csv`` and
``DIR/<stem>_passes.csv``; for a video also ``DIR/<stem>.h5``/``.csv`` (poses) and
``DIR/<stem>_labeled.mp4``. Several inputs also give ``DIR/passes.csv`` (all passes).
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="offline: video or pose file -> steps, passes, scores",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="video, DeepLabCut .h5/.csv pose file, or flat keypoint CSV")
    p.add_argument("--out", "-o", required=True, help="output folder")
    p.add_argument("--config", "-c", default=None,
                   help="YAML run config (default: configs/default.yaml)")
    p.add_argument("--profile", default=None,
                   help="species/view profile name or YAML path (overrides the config's)")
    p.add_argument("--model", "-m", default=None, help="DLC-Live model (video inputs)")
    p.add_argument("--fps", type=float, default=None,
                   help="frame rate (default: the video's; 30 for pose files without one)")
    p.add_argument("--score-model", default=None,
                   help="score model JSON (default: the profile's score.model; 'none' = "
                        "leave passes unscored)")
    p.add_argument("--no-movie", action="store_true", help="skip the labelled movie")
    p.add_argument("--camera-id", default=None, help="camera id written with each pass")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import pandas as pd

    from gaitlive.analyze import AnalyzeError, analyze_file
    from gaitlive.commands import config_from_args
    from gaitlive.paths import resolve_asset
    from gaitlive.score import load_score_model

    if args.fps is not None and not args.fps > 0:
        raise AnalyzeError(f"--fps: expected a positive number, got {args.fps}")
    cfg = config_from_args(args)
    profile = cfg.profile
    model_file = args.score_model if args.score_model is not None else profile.score.model
    score_model = None
    if model_file and model_file.lower() != "none":
        base = Path(profile_file).parent if (profile_file := cfg.file) else None
        score_model = load_score_model(resolve_asset(model_file, base=base))
    out = Path(args.out)
    tables = []
    for inp in args.inputs:
        res = analyze_file(inp, out, profile, fps=args.fps, score_model=score_model,
                           model_path=cfg.model.path, model_settings=cfg.model,
                           presence=cfg.presence, movie=not args.no_movie,
                           camera_id=cfg.camera_id, progress=True)
        n_scored = sum(p.scored for p in res.passes)
        print(f"{inp}: {len(res.passes)} passes ({n_scored} scored), "
              f"{sum(p.n_steps for p in res.passes)} steps at {res.fps:g} fps")
        for p in res.passes:
            s = f"score {p.score:.2f} (class {p.score_class}, p={p.confidence:.2f})" \
                if p.scored else f"unscored: {p.reason}"
            print(f"  pass {p.pass_id} bird {p.individual} frames {p.start_frame}-"
                  f"{p.end_frame}: {p.n_steps} steps, cadence "
                  f"{p.features.get('cadence_hz', float('nan')):.2f}/s, {s}")
        print(f"  -> {res.steps_csv}\n  -> {res.passes_csv}")
        for extra in (res.pose_file, res.movie):
            if extra is not None:
                print(f"  -> {extra}")
        tables.append(pd.read_csv(res.passes_csv, dtype={"video": str}))
    if len(args.inputs) > 1:
        from gaitlive.analyze import _atomic_csv

        allp = _atomic_csv(pd.concat(tables, ignore_index=True), out / "passes.csv")
        print(f"all passes -> {allp}")
    return 0

"""``gaitlive evaluate``: pose errors of a trained model.

On a DeepLabCut project (its train/test split, the shuffle's best or last snapshot), or
with --model on an exported DLC-Live model folder, through the runner ``gaitlive run`` uses,
on all labelled frames of the project (a held-out set): on the whole frame, or with --live
on the crop the run config's presence gate would give it (the labelled animal's box stands
in for the moving blob; still frames have no motion). Prints RMSE (all keypoints and those
above pcutoff), PCK at a fraction of body length and detection rate, overall and per
bodypart; writes metrics.csv and gallery.png (labels vs predictions).

With --compare OTHER_MODEL (and --model), the second model runs on the same frames in the
same way, and each metric's difference (OTHER minus MODEL) gets a 95 % paired-bootstrap
interval: "B better" / "A better" only where the interval excludes 0. Written to
compare.csv beside metrics.csv.

Body length (--body-length): 'extent' = diagonal of the labelled keypoints' bounding box
(head-to-foot for a side-view bird), or segments summed, e.g.
'left_knee-left_hock,left_hock-left_foot'.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="RMSE / PCK of a trained or exported pose model",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("project", help="DeepLabCut project folder with labelled frames")
    p.add_argument("--model", "-m", default=None,
                   help="exported model folder: evaluate it on ALL labelled frames of PROJECT")
    p.add_argument("--shuffle", type=int, default=1)
    p.add_argument("--snapshot", default="-1",
                   help="snapshot index (-1: best if kept, else last)")
    p.add_argument("--device", default="auto",
                   help="auto | cpu | cuda | cuda:N | mps (default auto: cuda when torch finds "
                        "a GPU, else cpu; with --model: where the exported model runs, mps "
                        "excepted)")
    p.add_argument("--pcutoff", type=float, default=None,
                   help="likelihood cutoff (default: project config pcutoff; 0.6 with --model)")
    p.add_argument("--pck", type=float, default=0.1,
                   help="PCK threshold as a fraction of body length (default 0.1)")
    p.add_argument("--body-length", default="extent",
                   help="'extent' or segments 'a-b,c-d' (see above)")
    p.add_argument("--resize", type=float, default=None,
                   help="with --model: model.resize (default: the model card's)")
    p.add_argument("--crop-margin", type=int, default=None, metavar="PX",
                   help="with --model: infer on each frame's labelled bird grown by PX pixels, "
                        "as the live presence crop does (default: the whole frame)")
    p.add_argument("--min-crop", type=int, nargs=2, default=(), metavar=("W", "H"),
                   help="with --crop-margin: grow each crop to at least W x H pixels, as "
                        "presence.min_crop does live")
    p.add_argument("--crop-step", type=int, default=1, metavar="PX",
                   help="with --crop-margin: round crop sides up to a multiple of PX pixels, "
                        "as presence.crop_step does live (default 1: no rounding)")
    p.add_argument("--bird-size", type=int, default=0, metavar="PX",
                   help="with --crop-margin: scale a bird larger than PX pixels down, as "
                        "presence.bird_size does live (default 0: off)")
    p.add_argument("--max-input-pixels", type=int, default=0, metavar="N",
                   help="with --crop-margin: scale a crop of more than N pixels down, as "
                        "presence.max_input_pixels does live (default 0: off)")
    p.add_argument("--live", action="store_true",
                   help="with --model: run it as 'gaitlive run' does with the run config "
                        "(--config, default configs/default.yaml): its model.resize and its "
                        "presence crop (margin, min_crop, crop_step, bird_size, "
                        "max_input_pixels; the whole frame when presence or its crop is off)")
    p.add_argument("--config", "-c", default=None, metavar="FILE",
                   help="with --live: the run config to take the settings from")
    p.add_argument("--compare", default=None, metavar="OTHER_MODEL",
                   help="with --model: also run this exported model on the same frames and "
                        "report the paired differences (OTHER minus MODEL) with 95 %% "
                        "intervals")
    p.add_argument("--out", default=None,
                   help="output folder for metrics.csv and gallery.png (default: the "
                        "shuffle's DeepLabCut evaluation folder, evaluation-results-pytorch/...; "
                        "with --model: MODEL/evaluation)")
    p.add_argument("--no-gallery", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # options first: a bad one must not cost a whole evaluation
    from gaitlive.commands import bundled_or_given
    from gaitlive.fileio import check_output_dir
    from gaitlive.offline.evaluate import evaluate_model, evaluate_project
    from gaitlive.pose import check_device

    args.model, args.compare = bundled_or_given(args.model), bundled_or_given(args.compare)
    check_device(args.device)
    if args.out:
        check_output_dir(args.out)
    if not 0 < args.pck <= 1:
        raise ValueError(f"--pck: expected a fraction in (0, 1], got {args.pck}")
    if args.resize is not None:
        from gaitlive.pose import check_resize

        check_resize(args.resize, f"--resize {args.resize:g}")
    if args.crop_margin is not None and not args.model:
        raise ValueError(f"--crop-margin {args.crop_margin}: only with --model (an exported "
                         f"model run on crops, as live); a project's snapshot is evaluated "
                         f"on whole frames")
    if args.crop_margin is not None and args.crop_margin < 0:
        raise ValueError(f"--crop-margin {args.crop_margin}: expected a number of pixels >= 0")
    crop_flags = (("--min-crop", " ".join(map(str, args.min_crop)) if args.min_crop else None),
                  ("--crop-step", args.crop_step if args.crop_step != 1 else None),
                  ("--bird-size", args.bird_size or None),
                  ("--max-input-pixels", args.max_input_pixels or None))
    for flag, value in crop_flags:
        if value is not None and args.crop_margin is None and not args.live:
            raise ValueError(f"{flag} {value}: only with --crop-margin (or --live), which "
                             f"it shapes")
    if args.min_crop and min(args.min_crop) <= 0:
        raise ValueError(f"--min-crop {' '.join(map(str, args.min_crop))}: expected two "
                         f"positive pixel sizes W H")
    if args.crop_step < 1:
        raise ValueError(f"--crop-step {args.crop_step}: expected a positive number of pixels")
    for flag, value in (("--bird-size", args.bird_size),
                        ("--max-input-pixels", args.max_input_pixels)):
        if value < 0:
            raise ValueError(f"{flag} {value}: expected a number of pixels >= 0")
    if args.live or args.config:
        _live_settings(args)
    if args.compare and not args.model:
        raise ValueError(f"--compare {args.compare}: compares two exported models; give the "
                         f"first with --model")
    if args.model:
        pcutoff = 0.6 if args.pcutoff is None else args.pcutoff

        def one(model: str, out: Any) -> Any:
            settings = None
            if args.resize is not None:
                from gaitlive.config import ModelSettings

                settings = ModelSettings(path=model, resize=args.resize, warmup_frames=0)
            return evaluate_model(model, args.project, settings=settings, device=args.device,
                                  pcutoff=pcutoff,
                                  pck_fraction=args.pck, body_length=args.body_length,
                                  out_dir=out, gallery=not args.no_gallery,
                                  crop_margin=args.crop_margin, min_crop=tuple(args.min_crop),
                                  crop_step=args.crop_step, bird_size=args.bird_size,
                                  max_input_pixels=args.max_input_pixels)

        if args.compare:  # both models fit the project, before the first one runs
            from gaitlive.offline.evaluate import check_predicts
            from gaitlive.offline.project import open_project

            info = open_project(args.project, fix_paths=False)
            for model in (args.model, args.compare):
                check_predicts(model, info.bodyparts, info.config_path)
        res = one(args.model, args.out)
        if args.compare:
            from pathlib import Path

            other = one(args.compare, res.out_dir / f"compare-{Path(args.compare).name}")
            print(f"A = {args.model}\n{res.summary()}")
            print(f"B = {args.compare}\n{other.summary()}")
            return _print_comparison(args, res, other, pcutoff)
    else:
        snap: int | str = int(args.snapshot) if args.snapshot.lstrip("-").isdigit() \
            else args.snapshot
        res = evaluate_project(args.project, shuffle=args.shuffle, snapshot_index=snap,
                               device=args.device, pcutoff=args.pcutoff,
                               pck_fraction=args.pck, body_length=args.body_length,
                               out_dir=args.out, gallery=not args.no_gallery)
    print(res.summary())
    print(f"metrics: {res.csv}")
    if res.gallery:
        print(f"gallery: {res.gallery}")
    return 0


def _live_settings(args: argparse.Namespace) -> None:
    """``--live``: the crop and resize settings of the run config, in place of the flags
    (which may not be given with it: one source for each setting, no silent override)."""
    from gaitlive.config import load_config

    if args.config and not args.live:
        raise ValueError(f"--config {args.config}: used with --live (the run config whose "
                         f"settings the model runs with)")
    if not args.model:
        raise ValueError("--live: runs an exported model as 'gaitlive run' does; give it "
                         "with --model")
    given = [flag for flag, on in (("--resize", args.resize is not None),
                                   ("--crop-margin", args.crop_margin is not None),
                                   ("--min-crop", bool(args.min_crop)),
                                   ("--crop-step", args.crop_step != 1),
                                   ("--bird-size", args.bird_size != 0),
                                   ("--max-input-pixels", args.max_input_pixels != 0)) if on]
    if given:
        raise ValueError(f"--live takes {', '.join(given)} from the run config; give either "
                         f"--live or {', '.join(given)}")
    cfg = load_config(args.config)  # validated: a bad file is one error naming it
    pr = cfg.presence
    args.resize = cfg.model.resize
    if pr.enabled and pr.crop:
        args.crop_margin, args.min_crop, args.crop_step = pr.margin, tuple(pr.min_crop), \
            pr.crop_step
        args.bird_size, args.max_input_pixels = pr.bird_size, pr.max_input_pixels
    where = args.config or "configs/default.yaml"
    crop = (f"crop margin {pr.margin}, min {'x'.join(map(str, pr.min_crop)) or 'none'}, step "
            f"{pr.crop_step}, bird size {pr.bird_size}, max input {pr.max_input_pixels} px"
            if args.crop_margin is not None else "the whole frame (presence crop off)")
    print(f"--live ({where}): model.resize {args.resize:g}, {crop}")


def _print_comparison(args: argparse.Namespace, a: Any, b: Any, pcutoff: float) -> int:
    from gaitlive.offline.evaluate import compare_pose_metrics, write_compare_csv

    diffs = compare_pose_metrics(a.labels, a.predictions, b.predictions, a.bodyparts,
                                 pcutoff=pcutoff, pck_fraction=args.pck,
                                 body_length=args.body_length)
    names = {"rmse": "RMSE px", "rmse_pcutoff": f"RMSE(p>={pcutoff:g}) px",
             "pck": f"PCK@{args.pck:g} %", "detected": "detected %"}
    print("B minus A, 95 % paired-bootstrap interval (1000 resamples of frames):")
    for d in diffs:
        if d.bodypart != "all" and d.metric not in ("rmse", "pck"):
            continue
        k = 100.0 if d.metric in ("pck", "detected") else 1.0
        print(f"  {d.bodypart:<14}{names[d.metric]:<16}{k * d.a:8.2f} -> {k * d.b:8.2f}  "
              f"{k * d.diff:+7.2f} [{k * d.low:+.2f}, {k * d.high:+.2f}]  {d.verdict}")
    csv = write_compare_csv(a.out_dir / "compare.csv", diffs, (args.model, args.compare))
    print(f"comparison: {csv}")
    return 0

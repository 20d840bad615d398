"""``gaitlive synth``: render the synthetic corridor world.

* ``gaitlive synth video --out DIR --view side --passes 3 --seed 1``: a rendered clip with
  its exact truth (``<stem>.mp4``, ``<stem>.h5/.csv`` keypoints, ``<stem>_truth.json``,
  ``<stem>_truth_steps.csv``);
* ``gaitlive synth project --out DIR --frames 1500 --seed 0 --scale 0.5``: a DeepLabCut 3
  training project of labelled synthetic frames.
"""

from __future__ import annotations

import argparse


class SynthArgError(ValueError):
    """A bad ``gaitlive synth`` option value (the message names the option)."""


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SynthArgError(f"--size: expected WIDTHxHEIGHT such as 640x480, got {text!r}"
                            ) from None
    if not (32 <= w <= 4096 and 32 <= h <= 4096):
        raise SynthArgError(f"--size: width and height must be 32..4096, got {text!r}")
    return w, h


def _severities(text: str | None, passes: int) -> list[float] | None:
    if text is None:
        return None
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SynthArgError(f"--severity: expected a number or comma-separated numbers in "
                            f"[0, 5], got {text!r}") from None
    if not vals or any(not 0.0 <= v <= 5.0 for v in vals):
        raise SynthArgError(f"--severity: values must be in [0, 5] (Kestin score), got {text!r}")
    if len(vals) == 1:
        return vals * passes
    return vals


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="render the synthetic corridor world (videos with truth, "
                                     "DeepLabCut training projects)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ss = p.add_subparsers(dest="synth_command", metavar="WHAT")
    v = ss.add_parser("video", help="a rendered clip and its exact truth")
    v.add_argument("--out", "-o", required=True, help="output folder")
    v.add_argument("--view", choices=("side", "rear"), default="side")
    v.add_argument("--passes", type=int, default=None,
                   help="number of passes (default 3, or as many as --severity lists)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--species", choices=("broiler", "turkey", "mixed"), default="broiler")
    v.add_argument("--severity", default=None,
                   help="Kestin severity 0-5: one value for all passes or one per pass "
                        "(comma-separated; sets the number of passes); default random")
    v.add_argument("--fps", type=float, default=30.0)
    v.add_argument("--size", default="640x480", help="WIDTHxHEIGHT (default 640x480)")
    v.add_argument("--background", type=float, default=0.3,
                   help="probability of a background bird during each pass (default 0.3)")
    v.add_argument("--gap", type=float, nargs=2, default=(1.0, 3.0), metavar=("MIN", "MAX"),
                   help="seconds of empty corridor between passes (default 1 3)")
    v.add_argument("--pecking", type=float, default=0.0,
                   help="probability that a pass's bird pecks at the litter as it walks")
    v.add_argument("--stem", default=None, help="file name stem (default synth-<view>-s<seed>)")
    v.add_argument("--force", action="store_true",
                   help="replace a clip of the same stem already in --out (refused without)")
    v.add_argument("--debug", action="store_true",
                   help="plain grey world without lighting, noise or compression")
    v.set_defaults(func=run)
    q = ss.add_parser("project", help="a DeepLabCut 3 training project of labelled frames")
    q.add_argument("--out", "-o", required=True, help="project folder")
    q.add_argument("--frames", type=int, default=1500, help="labelled frames (default 1500)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--views", default="side,rear", help="comma-separated (default side,rear)")
    q.add_argument("--species", default="broiler,turkey",
                   help="comma-separated (default broiler,turkey)")
    q.add_argument("--scale", type=float, default=1.0,
                   help="write images downscaled by this factor, labels scaled (e.g. 0.5)")
    q.add_argument("--frames-per-clip", type=int, default=12,
                   help="labelled frames per clip (default 12; fewer = more variety)")
    q.add_argument("--workers", type=int, default=1,
                   help="processes making clips in parallel (same project for any number)")
    q.add_argument("--edges", type=float, default=0.0,
                   help="fraction of clips centred on the bird entering or leaving the image "
                        "(default 0)")
    q.add_argument("--force", action="store_true",
                   help="replace an existing project: what --out holds is moved to "
                        "<out>-previous-<time> beside it first (nothing is deleted)")
    q.set_defaults(func=run)
    p.set_defaults(func=run, _synth_parser=p)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "synth_command", None) is None:
        args._synth_parser.print_help()
        return 2
    try:
        return _run(args)
    except OSError as e:  # e.g. an output folder that cannot be created or written
        where = e.filename or args.out
        raise SynthArgError(f"{where}: cannot write the output there "
                            f"({e.strerror or e}); choose another --out") from e


def _run(args: argparse.Namespace) -> int:
    import logging
    import time
    from pathlib import Path

    log = logging.getLogger("gaitlive.synth")
    cmd = args.synth_command
    t0 = time.perf_counter()
    if getattr(args, "seed", None) is not None and not 0 <= args.seed < 2 ** 32:
        # numpy's generators take 32-bit words: 2^32 would give the clip of seed 0
        raise SynthArgError(f"--seed: expected 0 to {2 ** 32 - 1}, got {args.seed}")
    if cmd == "video":
        from gaitlive.synth import simulate_sequence
        from gaitlive.synth.export import write_video_set

        if args.passes is not None and args.passes < 1:
            raise SynthArgError(f"--passes must be >= 1, got {args.passes}")
        if args.fps <= 0:
            raise SynthArgError(f"--fps must be > 0, got {args.fps}")
        if not 0.0 <= args.background <= 1.0:
            raise SynthArgError(f"--background must be in [0, 1], got {args.background}")
        if not 0.0 <= args.pecking <= 1.0:
            raise SynthArgError(f"--pecking must be in [0, 1], got {args.pecking}")
        if not 0.0 <= args.gap[0] <= args.gap[1]:
            raise SynthArgError(f"--gap: expected 0 <= MIN <= MAX, got {args.gap}")
        w, h = _size(args.size)
        sev = _severities(args.severity, args.passes or 3)
        if sev is not None and args.passes is not None and len(sev) != args.passes:
            raise SynthArgError(f"--severity {args.severity!r} lists {len(sev)} passes but "
                                f"--passes is {args.passes}: give one severity for all "
                                f"passes, or one per pass")
        n_passes = len(sev) if sev is not None else (args.passes or 3)
        stem = args.stem or f"synth-{args.view}-s{args.seed}"
        if not stem or Path(stem).name != stem or stem.startswith(".") or "\\" in stem:
            raise SynthArgError(f"--stem {stem!r}: expected a plain file name stem (the files "
                                f"go into --out; no folders, no leading dot)")
        old = sorted(p.name for p in Path(args.out).glob(f"{stem}*")
                     if p.is_file() and p.name.startswith((f"{stem}.", f"{stem}_truth")))
        if old and not args.force:
            raise SynthArgError(f"--out {args.out}: already holds the clip {stem!r} "
                                f"({', '.join(old)}); give another --out or --stem, or "
                                f"--force to replace it")
        seq = simulate_sequence(passes=n_passes, severities=sev, view=args.view,
                                species=args.species, fps=args.fps, seed=args.seed, width=w,
                                height=h, gap_s=tuple(args.gap), background=args.background,
                                pecking=args.pecking)
        paths = write_video_set(seq, Path(args.out), stem, debug=args.debug, progress=True,
                                extra={"command": "gaitlive synth video"})
        dt = time.perf_counter() - t0
        n_bg = sum(p.background for p in seq.passes)
        n_main = len(seq.passes) - n_bg
        print(f"wrote {paths['mp4']} ({seq.n_frames} frames, {n_main} pass"
              f"{'es' if n_main != 1 else ''}"
              f"{f' + {n_bg} background' if n_bg else ''}, {dt:.1f} s)")
        for p in seq.passes:
            print(f"  pass {p.pass_id} bird{p.individual + 1}: severity {p.severity:.2f} "
                  f"{p.species}/{p.plumage} frames {p.start_frame}-{p.end_frame} "
                  f"cadence {p.cadence_hz:.2f} steps/s")
        for k in ("h5", "csv", "json", "steps", "visible"):
            print(f"  {paths[k]}")
        return 0
    from gaitlive.synth.export import write_project

    views = [v.strip() for v in args.views.split(",") if v.strip()]
    species = [v.strip() for v in args.species.split(",") if v.strip()]
    s = write_project(Path(args.out), frames=args.frames, seed=args.seed, views=views,
                      species=species, scale=args.scale, frames_per_clip=args.frames_per_clip,
                      workers=args.workers, progress=True, force=args.force,
                      edges=args.edges)
    dt = time.perf_counter() - t0
    log.debug("project written in %.1f s", dt)
    print(f"wrote DeepLabCut project {s.config} : {s.n_frames} labelled frames from "
          f"{s.n_clips} clips in {dt:.1f} s")
    print(f"  views {s.views}, species {s.species}, {s.n_labels} keypoints labelled, "
          f"{s.n_missing} NaN (out of frame or occluded)")
    return 0

"""``gaitlive analyze INPUT... --out DIR``: steps, passes and scores of a video or pose file.

INPUT is a video (poses are inferred with the configured DLC-Live model), a DeepLabCut
pose file (.h5/.csv, single- or multi-animal) or a flat keypoint CSV (the T-LEAP cow
layout, with ``--profile cow-side``). Writes ``DIR/<stem>_steps.csv`` and
``DIR/<stem>_passes.csv``; for a video also ``DIR/<stem>.h5``/``.csv`` (poses) and
``DIR/<stem>_labeled.mp4``. Several inputs also give ``DIR/passes.csv`` (all passes in the
folder: re-analysing some inputs later replaces their rows and keeps the others').

Every input is checked before any is analysed: it must exist and be a supported type, no
two may have the same stem, and an existing ``DIR/<stem>.h5``/``.csv`` that a video would
write must have been written by gaitlive analyze (else choose another --out). Ctrl-C or
SIGTERM during a video writes the poses, steps and passes of the frames analysed so far
and exits with status 130 (a second Ctrl-C stops at once).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gaitlive.commands import count_noun

log = logging.getLogger(__name__)


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
                   help="frame rate (default: the video's; for a pose file the one gaitlive "
                        "noted in it or that of its source video beside it, else 30)")
    p.add_argument("--score-model", default=None,
                   help="score model JSON (default: the profile's score.model; 'none' = "
                        "leave passes unscored)")
    p.add_argument("--no-movie", action="store_true", help="skip the labelled movie")
    p.add_argument("--camera-id", default=None, help="camera id written with each pass")
    p.add_argument("--frame-size", default=None, metavar="WxH",
                   help="size of the images pose files come from, e.g. 640x480 (where a "
                        "bird leaves the image; default: the one gaitlive noted in the file, "
                        "or that of its source video lying beside it; videos: their own)")
    p.set_defaults(func=run)


def parse_frame_size(value: str) -> tuple[int, int]:
    """``"640x480"`` -> ``(640, 480)``; anything else is a clear error."""
    w, sep, h = value.lower().partition("x")
    try:
        size = (int(w), int(h))
    except ValueError:
        size = (0, 0)
    if not sep or min(size) <= 0:
        raise ValueError(f"--frame-size {value}: expected WIDTHxHEIGHT in pixels, e.g. "
                         "640x480")
    return size


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """While inside: SIGINT and SIGTERM raise :class:`~gaitlive.analyze.AnalyzeInterrupted`
    (naming the signal), so that SIGTERM stops an analysis as cleanly as Ctrl-C. A signal
    the process ignores stays ignored; outside the main thread nothing changes."""
    from gaitlive.analyze import AnalyzeInterrupted

    def handler(signum: int, _frame: Any) -> None:
        raise AnalyzeInterrupted(signal.Signals(signum).name)

    old: dict[int, Any] = {}
    try:
        for s in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(s) is not signal.SIG_IGN:
                old[s] = signal.signal(s, handler)
    except ValueError:  # not the main thread: signals stay as they are
        pass
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _print_result(inp: Path, res: Any) -> None:
    n_scored = sum(p.scored for p in res.passes)
    print(f"{inp}: {count_noun(len(res.passes), 'pass')} ({n_scored} scored), "
          f"{count_noun(sum(p.n_steps for p in res.passes), 'step')} at {res.fps:g} fps")
    for p in res.passes:
        s = f"score {p.score:.2f} (class {p.score_class}, p={p.confidence:.2f})" \
            if p.scored else f"unscored: {p.reason}"
        cad = p.features.get("cadence_hz", float("nan"))
        print(f"  pass {p.pass_id} bird {p.individual} frames {p.start_frame}-"
              f"{p.end_frame}: {count_noun(p.n_steps, 'step')}, cadence "
              + (f"{cad:.2f}/s" if math.isfinite(cad) else "-") + f", {s}")
    print(f"  -> {res.steps_csv}\n  -> {res.passes_csv}")
    for extra in (res.pose_file, res.movie):
        if extra is not None:
            print(f"  -> {extra}")


def run(args: argparse.Namespace) -> int:

    from gaitlive.analyze import AnalyzeError, check_inputs, make_out_dir
    from gaitlive.commands import config_from_args, profile_score_model
    from gaitlive.gait.stage import MAX_FPS
    from gaitlive.paths import resolve_asset
    from gaitlive.score import load_score_model

    if args.fps is not None and not 0 < args.fps <= MAX_FPS:
        raise AnalyzeError(f"--fps: expected a frame rate > 0 and <= {MAX_FPS:g}, got "
                           f"{args.fps:g}")
    frame_size = parse_frame_size(args.frame_size) if args.frame_size else None
    cfg = config_from_args(args)
    out = Path(args.out)
    inputs = check_inputs(args.inputs, out)  # every input, before any work
    profile = cfg.profile
    score_model = None
    if args.score_model is None:  # the profile's (relative to its config; errors name it)
        score_model = profile_score_model(cfg)
    elif args.score_model.lower() != "none":  # as typed (from here)
        score_model = load_score_model(resolve_asset(args.score_model))
    existed = out.is_dir()
    make_out_dir(out)
    try:
        return _analyze_all(args, inputs, out, profile, cfg, score_model, frame_size)
    except Exception:
        if not existed:  # a bad input leaves no empty output folder behind
            with contextlib.suppress(OSError):
                out.rmdir()  # only when empty
        raise


def _analyze_all(args: argparse.Namespace, inputs: list[Path], out: Path, profile: Any,
                 cfg: Any, score_model: Any, frame_size: tuple[int, int] | None) -> int:
    """Analyse every input in turn into ``out`` (its batch ``passes.csv`` too)."""
    import pandas as pd

    from gaitlive.analyze import _atomic_csv, analyze_file

    tables: list[pd.DataFrame] = []
    stop: str | None = None  # why the batch stopped early
    not_started: list[Path] = []
    with _signals_interrupt():
        for i, inp in enumerate(inputs):
            not_started = inputs[i + 1:]
            try:
                res = analyze_file(inp, out, profile, fps=args.fps, score_model=score_model,
                                   model_path=cfg.model.path, model_settings=cfg.model,
                                   presence=cfg.presence, movie=not args.no_movie,
                                   camera_id=cfg.camera_id, progress=True,
                                   frame_size=frame_size)
            except KeyboardInterrupt as e:
                written = getattr(e, "written", [])
                stop = (f"{getattr(e, 'signal_name', 'SIGINT')} received while analysing "
                        f"{inp}: " + (f"written for it: {', '.join(map(str, written))}"
                                      if written else "nothing written for it"))
                break
            _print_result(inp, res)
            tables.append(pd.read_csv(res.passes_csv, dtype={"video": str}))
            if res.interrupted is not None:
                if res.stopped_at is not None:
                    stop = (f"{res.interrupted} received: stopped {inp} at frame "
                            f"{res.stopped_at}; its partial outputs (frames 0-"
                            f"{res.stopped_at - 1}, open passes ended there) are "
                            f"{res.pose_file}, {res.steps_csv} and {res.passes_csv}")
                else:
                    stop = (f"{res.interrupted} received while writing the labelled movie "
                            f"of {inp}: its poses, steps and passes are complete, the movie "
                            f"was not written")
                break
        else:
            not_started = []
        earlier = out / "passes.csv"
        if tables and (len(inputs) > 1 or earlier.is_file()):
            # the folder's table of all passes: an earlier batch's rows of the videos not
            # analysed now are kept, those analysed now are replaced (their own tables were
            # just moved to previous/); an interrupted batch never replaces a complete
            # passes.csv of an earlier run
            new = pd.concat(tables, ignore_index=True)
            if earlier.is_file():
                try:
                    old = pd.read_csv(earlier, dtype={"video": str})
                except (ValueError, OSError) as e:  # unreadable: left as it is, said so
                    log.warning("%s: not updated (unreadable: %s)", earlier, e)
                    old = None
                if old is not None and "video" in old.columns:
                    new = pd.concat([old[~old.video.isin(set(new.video))], new],
                                    ignore_index=True)
            name = "passes_partial.csv" if stop else "passes.csv"
            allp = _atomic_csv(new, out / name)
            print(f"{'passes so far' if stop else 'all passes'} -> {allp}")
    if stop is not None:
        if not_started:
            stop += f"; not analysed: {', '.join(map(str, not_started))}"
        print(f"gaitlive analyze: interrupted: {stop}", file=sys.stderr, flush=True)
        return 130
    return 0

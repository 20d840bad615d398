"""``gaitlive run``: score gait live from a camera, a stream or a video file.

With no arguments it runs the bundled demo: ``models/demo/corridor-demo.mp4`` replayed in
real time through the bundled model ``models/gaitlive-corridor``. It prints one line per
finished pass as it comes, and a statistics summary at the end. Ctrl-C or SIGTERM stop it
cleanly (files flushed and closed, statistics printed).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from gaitlive.commands import (
    add_config_args,
    config_from_args,
    count_noun,
    exit_now,
    profile_score_model,
)

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="live gait scoring from a camera, stream or video (default: the demo)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p)
    p.add_argument("--headless", action="store_true",
                   help="no window: the overlay goes to <out>/overlay.mp4")
    p.add_argument("--no-overlay", action="store_true", help="no overlay at all")
    p.add_argument("--no-realtime", action="store_true",
                   help="read video files as fast as possible and drop no frame")
    p.add_argument("--max-frames", type=int, default=None, metavar="N",
                   help="stop after N frames")
    p.add_argument("--out", "-o", default=None, metavar="DIR",
                   help="output folder for poses, passes, steps, overlay and stats "
                        "(default: out_dir of the config)")
    p.add_argument("--no-publish", action="store_true", help="do not start the ZeroMQ publisher")
    p.add_argument("--record", action="store_true",
                   help="record the raw stream to rotated video files (record.dir)")
    p.set_defaults(func=run)


def format_pass(res: Any) -> str:
    """One line per pass: camera, bird, frames, steps, cadence, score."""
    cad = res.features.get("cadence_hz", float("nan"))
    cad_s = f"{cad:.2f} Hz" if cad == cad else "-"
    if res.scored and res.score is not None:
        score = f"score {res.score:.2f}"
        if res.score_class is not None:
            score += f" (class {res.score_class})"
    else:
        score = f"not scored ({res.reason})" if res.reason else "not scored"
    return (f"pass {res.camera_id} bird {res.individual} pass {res.pass_id}: frames "
            f"{res.start_frame}-{res.end_frame}, {count_noun(res.n_steps, 'step')}, cadence "
            f"{cad_s}, {score}")


def warm_up_gait(profile: Any, fps: float) -> None:
    """Run a throw-away gait stage on two made-up frames so the numba kernels are loaded
    (about 0.5 s the first time in a process) before live frames arrive."""
    import numpy as np

    from gaitlive.gait.stage import GaitStage

    stage = GaitStage(profile, fps=fps)
    n = profile.n_keypoints
    pose = np.zeros((1, n, 3), np.float32)
    pose[0, :, 0] = 100 + 10 * np.arange(n)
    pose[0, :, 1] = 100 + 7 * np.arange(n)
    pose[0, :, 2] = 1.0
    stage.update(0, pose)
    stage.update(1, pose)
    stage.flush()


#: what a run writes into its output folder (``poses.csv`` at the end, the overlay video
#: with --headless)
RUN_OUTPUTS = ("poses.h5", "poses.csv", "passes.csv", "steps.csv", "stats.json",
               "overlay.mp4")


def _keep_previous_outputs(out_dir: Path, overlay_video: Path | None = None) -> Path | None:
    """Move an earlier run's outputs in ``out_dir`` to ``out_dir/previous/<time>/`` (the
    time its files were last written), so a new run never overwrites scores already
    produced; returns that folder, or None when there was nothing to move. An
    ``overlay.video`` elsewhere that exists is moved the same way, to ``previous/<time>/``
    beside it."""
    from gaitlive.fileio import move_to_previous

    old = [out_dir / n for n in RUN_OUTPUTS]
    if overlay_video is not None and overlay_video.is_file():
        if overlay_video.resolve().parent == out_dir.resolve():
            if overlay_video.name not in RUN_OUTPUTS:
                old.append(overlay_video)
        else:
            dest = move_to_previous([overlay_video], overlay_video.parent)
            print(f"the previous overlay video {overlay_video} was moved to {dest}",
                  flush=True)
    dest = move_to_previous(old, out_dir)
    if dest is not None:
        print(f"the previous run's outputs in {out_dir} were moved to {dest}", flush=True)
    return dest


def _make_publisher(cfg: Any, args: argparse.Namespace, source: Any, stats: Any,
                    clock: Any = None) -> Any:
    """The publisher's sink, bound and started (None when publishing is off). Made before
    anything is written or moved: a port already in use fails first."""
    if not cfg.publish.enabled or args.no_publish:
        return None
    from gaitlive.pipeline import PublisherAdapter
    from gaitlive.publish import Publisher

    pub = Publisher(cfg.publish, cfg.camera_id, model=Path(cfg.model.path).name)
    try:
        pub.start()
    except BaseException:
        pub.close()
        raise
    print(f"publishing on {pub.endpoint} (side channel {pub.side_endpoint})", flush=True)
    return PublisherAdapter(pub, stats, cfg.profile, camera_id=cfg.camera_id, fps=source.fps,
                            clock=clock)


def _make_sinks(sinks: list[Any], cfg: Any, args: argparse.Namespace, out_dir: Path,
                source: Any, runner: Any, stats: Any, clock: Any) -> None:
    """Append the run's sinks to ``sinks`` (so a failure half-way still closes the ones
    made): output files, the pass printer and the overlay (window or video). The publisher
    is made before them (:func:`_make_publisher`)."""
    from gaitlive.pipeline import CallbackSink, OutputWriter

    add = sinks.append

    profile = cfg.profile
    card = getattr(runner, "card", None)
    n_ind = max(cfg.model.max_individuals, getattr(card, "individuals", 1))
    spec = getattr(source, "spec", None)
    video = Path(spec.target).stem if spec is not None and spec.kind == "file" else None
    add(OutputWriter(out_dir, profile.bodyparts, n_individuals=n_ind, camera_id=cfg.camera_id,
                     fps=source.fps, scorer=Path(cfg.model.path).name, video=video,
                     clock=clock))
    add(CallbackSink(on_pass=lambda r: print(format_pass(r), flush=True)))
    if not args.no_overlay:
        from gaitlive.overlay import OverlaySink, choose_overlay_mode
        from gaitlive.pipeline import OverlayAdapter

        mode = choose_overlay_mode(cfg.overlay, args.headless, out_dir=out_dir)
        if mode.window or mode.video_path:
            # an offline replay (--no-realtime into a movie) draws every frame; live, the
            # sink skips frames rather than slow anything down
            lossless = (not cfg.realtime and not source.reconnectable and not mode.window)
            ov = OverlaySink(profile, mode.window, mode.video_path, source.fps,
                             cfg.overlay.queue_size, title=f"gaitlive {cfg.camera_id}",
                             lossless=lossless, clock=clock)
            add(OverlayAdapter(ov, stats, cfg.camera_id))
            where = " and ".join(x for x in ("a window" if mode.window else "",
                                             str(mode.video_path or "")) if x)
            print(f"overlay: {where} ({mode.reason})", flush=True)


def run(args: argparse.Namespace) -> int:
    import threading

    if threading.current_thread() is not threading.main_thread():
        return _run(args)

    def on_term(signum: int, _frame: Any) -> None:
        # while the run starts (model load, sockets, files): stop as Ctrl-C does, with what
        # was opened closed, instead of the default SIGTERM death; the pipeline's own
        # handler (a clean stop that writes the outputs) replaces this once it runs
        print("gaitlive run: SIGTERM received while starting, stopping", file=sys.stderr,
              flush=True)
        raise KeyboardInterrupt("SIGTERM")

    before = signal.signal(signal.SIGTERM, on_term)
    try:
        return _run(args)
    finally:
        if not getattr(args, "owns_process", False):  # else: the pipeline's handler stays
            signal.signal(signal.SIGTERM, before)


def _run(args: argparse.Namespace) -> int:
    import dataclasses

    from gaitlive.capture import (
        Capture,
        FrameSlot,
        RateProbe,
        SourceError,
        live_rate,
        open_source,
    )
    from gaitlive.gait.stage import GaitStage, view_box
    from gaitlive.pipeline import Pipeline, PipelineStats
    from gaitlive.pose import load_runner

    cfg = config_from_args(args)
    if args.no_realtime:
        cfg = dataclasses.replace(cfg, realtime=False)
    if args.max_frames is not None and args.max_frames < 1:
        raise ValueError(f"--max-frames: expected a positive integer, got {args.max_frames}")
    from gaitlive.fileio import check_output_dir, output_dir

    out_where = ("--out" if args.out else f"{cfg.file}: out_dir")
    check_output_dir(args.out if args.out else cfg.out_dir, out_where)  # creates nothing
    profile = cfg.profile

    # the source first: a wrong camera index or URL fails before the slow model load
    try:
        source = open_source(cfg.source, open_timeout_s=cfg.open_timeout_s,
                             read_timeout_s=cfg.read_timeout_s)
    except SourceError as e:
        if getattr(args, "source", None) is not None:
            raise  # --source: the message names it already
        raise SourceError(f"{cfg.file}: {e}") from None  # the config file's source: key
    # a camera or stream may deliver another rate than it reports: read from now (while
    # the model loads), measured after it, and the gait stage's clock follows what it
    # delivers
    probe = RateProbe(source) if source.reconnectable else None
    reported = source.fps
    try:
        runner = load_runner(cfg.model.path, cfg.model)
    except BaseException:
        if probe is None or probe.stop():  # never close a source a read is still inside
            source.close()
        raise
    if probe is not None:
        try:
            measured = probe.finish()
        except BaseException:
            runner.close()
            source.close()
            raise
        source.fps = source.fps_set = live_rate(source, measured)
    if tuple(runner.bodyparts) != tuple(profile.bodyparts):
        source.close()
        runner.close()
        raise ValueError(f"model {cfg.model.path} detects {list(runner.bodyparts)} but profile "
                         f"{profile.name!r} expects {list(profile.bodyparts)} (same names, "
                         f"same order)")
    try:  # made once the run can start: a run stopped or refused before leaves no folder
        out_dir = output_dir(args.out if args.out else cfg.out_dir, out_where)
    except BaseException:
        source.close()
        runner.close()
        raise
    live = source.reconnectable
    if live and not cfg.realtime:
        log.info("--no-realtime has no effect on a live source")
    blocking = not cfg.realtime and not live
    slot = FrameSlot(blocking=blocking, capacity=cfg.queue_size if blocking else 1)

    recorder = None
    sinks: list[Any] = []
    old_handlers: dict[int, Any] = {}
    try:
        shape = source.frame_shape
        gait = GaitStage(profile, fps=source.fps, score_model=profile_score_model(cfg),
                         camera_id=cfg.camera_id,
                         view_box=view_box(None if shape is None else (shape[1], shape[0]),
                                           cfg.model.cropping))
        taps = []
        if cfg.record.enabled or args.record:
            from gaitlive.record import Recorder

            recorder = Recorder(cfg.record, camera_id=cfg.camera_id, fps=source.fps,
                                clock=gait.clock)
            recorder.start()
            taps.append(recorder.submit)
        capture = Capture(source, slot, camera_id=cfg.camera_id, realtime=cfg.realtime,
                          reconnect_max_s=cfg.reconnect_max_s, max_frames=args.max_frames,
                          taps=taps)
        warm_up_gait(profile, source.fps)
        pipeline_stats = PipelineStats()
        publisher = _make_publisher(cfg, args, source, pipeline_stats, gait.clock)
        if publisher is not None:
            sinks.append(publisher)
        # only once nothing else can stop the run
        _keep_previous_outputs(out_dir, Path(cfg.overlay.video)
                               if cfg.overlay.video and not args.no_overlay else None)
        _make_sinks(sinks, cfg, args, out_dir, source, runner, pipeline_stats, gait.clock)
        init = None
        if shape is not None:
            import numpy as np

            init = np.zeros((shape[0], shape[1], 3), np.uint8)
        pipeline = Pipeline.from_config(cfg, capture, runner, gait=gait, sinks=sinks,
                                        init_frame=init, stats=pipeline_stats,
                                        follow_rate=probe is not None and not probe.too_fast)
        sinks = []  # the pipeline closes them from now on

        received: list[str] = []
        written: list[bool] = []  # set once every output is written and closed

        def on_signal(signum: int, _frame: Any) -> None:
            name = signal.Signals(signum).name
            received.append(name)
            if written and getattr(args, "owns_process", False):
                # nothing is left to lose: quit now instead of in the middle of closing the
                # model or the interpreter's exit (a traceback from whatever ran then); an
                # in-process caller of main() gets the usual behaviour (its process)
                print(f"gaitlive run: {name} received, the outputs in {out_dir} are written; "
                      "exiting now", file=sys.stderr, flush=True)
                exit_now(0)
            if len(received) == 1:
                print(f"gaitlive run: {name} received, stopping (again to force)",
                      file=sys.stderr, flush=True)
                pipeline.stop(f"{name} received")
            elif pipeline.closing:
                # the files are being finalised: an interrupt now would lose them
                print("gaitlive run: closing the output files, please wait",
                      file=sys.stderr, flush=True)
            elif len(received) == 2:
                # a second signal: stop waiting for queued frames and slow threads; the
                # open passes are still ended and the files still closed
                print(f"gaitlive run: {name} received again, forcing the stop (closing the "
                      "files; a third time to quit at once)", file=sys.stderr, flush=True)
                pipeline.force()
            else:
                raise KeyboardInterrupt

        for sig in (signal.SIGINT, signal.SIGTERM):
            old_handlers[sig] = signal.signal(sig, on_signal)
        rate = (f"{source.fps:.3g} fps" if source.fps == reported else
                f"{source.fps:.3g} fps (measured; it reports {reported:.3g})")
        print(f"gaitlive run: {source.spec.kind} {source.spec.text} at {rate}, "
              f"model {cfg.model.path} ({runner.engine}, {runner.device}), profile "
              f"{profile.name}, output {out_dir}", flush=True)
        failed: BaseException | None = None
        try:
            pipeline.run(on_start=lambda: print(
                "gaitlive run: running (Ctrl-C or SIGTERM stops it)", flush=True))
        except Exception as e:
            failed = e
        # the pipeline has closed its sinks (pipeline.closing): a signal from now on
        # only says to wait, until the recording and stats.json are written too
        if recorder is not None:
            recorder.close()
        st = pipeline.stats
        print("--- gaitlive run: statistics ---")
        print(st.format())
        if recorder is not None:
            print(f"recorded {recorder.written} frames ({recorder.dropped} dropped) in "
                  f"{len(recorder.segments)} file(s) under {recorder.dir}"
                  + (f"; recording stopped: {recorder.error}" if recorder.error else ""))
        from gaitlive.fileio import atomic_write_text, jsonable

        atomic_write_text(out_dir / "stats.json", json.dumps(
            jsonable(st.summary()), indent=1, default=str, allow_nan=False))
        if failed is None:  # every output written (a failure is reported by the caller)
            written.append(True)
        outputs = [n for n in RUN_OUTPUTS if (out_dir / n).is_file()]
        print(f"outputs in {out_dir}: {', '.join(outputs)}", flush=True)
        if failed is not None:
            raise failed
        return 0
    finally:
        for sink in sinks:  # only when setup failed before the pipeline took them over
            sink.close()
        if recorder is not None:
            recorder.close()
        source.close()
        runner.close()
        if not getattr(args, "owns_process", False):  # else: on a signal, exit (see main)
            for sig, h in old_handlers.items():
                signal.signal(sig, h)

"""``gaitlive annotate``: click the bodyparts of a DeepLabCut project's frames.

Opens a window on the frames in ``DIR/labeled-data/*/`` (see ``gaitlive frames``). Click
each bodypart in the project's order; the next one comes up by itself, and the next frame
once all are placed. Keys: x skip (occluded), u undo, n/p next/previous frame, g next
unfinished frame, Tab or 1-9 choose a bodypart to re-place, d delete it, +/- zoom (the
mouse wheel too, except with the Qt HighGUI of the PyPI OpenCV wheels, which zooms its own
view on it), right-drag pans, drag a point to move it, s save, h help, q quit.

Labels are saved after every click to ``CollectedData_<scorer>.h5`` and ``.csv`` (as
DeepLabCut writes them) and the session resumes where it stopped. With ``--model``, each
unlabelled frame starts from the model's predictions (points at or above pcutoff).
"""

from __future__ import annotations

import argparse


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 1200x700, got {text!r}"
                                         ) from None
    if w < 100 or h < 100:
        raise argparse.ArgumentTypeError(f"window size must be at least 100x100, got {text!r}")
    return w, h


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("annotate", help="annotation GUI: click bodyparts on picked frames",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("project", metavar="DIR", help="DeepLabCut project folder")
    p.add_argument("--scorer", default=None,
                   help="annotator name (default: the project's scorer, else your login)")
    p.add_argument("--profile", default=None,
                   help="profile giving the bodyparts when DIR has no config.yaml "
                        "(default broiler-side)")
    p.add_argument("--model", "-m", default=None,
                   help="exported DLC-Live model: start each unlabelled frame from its "
                        "predictions")
    p.add_argument("--pcutoff", type=float, default=None,
                   help="model points below this likelihood stay unlabelled "
                        "(default: the project's pcutoff)")
    p.add_argument("--max-size", type=_size, default=(1200, 700), metavar="WxH",
                   help="largest size the image is shown at (default 1200x700)")
    p.add_argument("--no-auto-advance", action="store_true",
                   help="stay on a frame when all its bodyparts are placed")
    p.add_argument("--stats", action="store_true",
                   help="print the progress of the project and exit (no window)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gaitlive.offline.annotate import AnnotationError, AnnotationSession

    if args.pcutoff is not None and not 0.0 <= args.pcutoff <= 1.0:
        raise AnnotationError(f"--pcutoff must be in [0, 1], got {args.pcutoff}")
    from pathlib import Path

    project = Path(args.project).expanduser()
    if project.is_file():  # before a --model is loaded
        raise AnnotationError(f"{project.resolve()}: a file, not a project folder; expected "
                              f"a DeepLabCut project folder (with labeled-data/, see "
                              f"'gaitlive frames')")
    if not args.stats:
        from gaitlive.overlay.window import display_available, no_display_reason

        if not display_available():
            raise AnnotationError(
                f"no display to open the annotation window on ({no_display_reason()}); run "
                f"it on a desktop, over 'ssh -X', or under 'xvfb-run'; --stats needs no "
                f"display")
    predictor = None
    if args.model and not args.stats:
        from gaitlive.pose import load_runner

        predictor = load_runner(args.model)
    try:
        session = AnnotationSession(args.project, scorer=args.scorer, profile=args.profile,
                                    predictor=predictor, pcutoff=args.pcutoff,
                                    auto_advance=not args.no_auto_advance,
                                    canvas_size=args.max_size)
        if args.stats:
            st = session.stats()
        else:
            from gaitlive.offline.annotate_window import AnnotationWindow

            print(f"annotating {session.n_frames} frames of {session.project} as "
                  f"{session.scorer!r}; bodyparts: {', '.join(session.bodyparts)}")
            st = AnnotationWindow(session).run()
    finally:
        if predictor is not None:
            predictor.close()
    print(f"{st['frames_done']}/{st['frames']} frames done, {st['labelled']} points labelled, "
          f"{st['skipped']} skipped, {st['user_clicks']} clicks")
    if st["model_points"]:
        print(f"model placed {st['model_points']} points: {st['clicks_saved']} kept as "
              f"predicted (clicks saved), {st['model_corrected']} corrected")
    print(f"labels: {session.project}/labeled-data/*/CollectedData_{session.scorer}.h5")
    return 0

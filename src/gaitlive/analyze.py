"""Offline analysis: a video or a pose file in, steps, passes and scores out.

``gaitlive analyze INPUT --out DIR`` (see :mod:`gaitlive.commands.analyze`) writes

* ``DIR/<stem>_steps.csv``: one row per stance: ``individual, pass_id, foot,
  strike_frame, lift_frame`` (empty when the stance was still open at the pass end),
  ``strike_s, lift_s``;
* ``DIR/<stem>_passes.csv``: one row per pass: ``video, individual, pass_id, start_frame,
  end_frame, n_steps, cadence_hz, stance_fraction_<leg>..., score, score_class,
  confidence, scored, reason`` and every feature;
* for a video, also the poses as a DeepLabCut file ``DIR/<stem>.h5`` + ``.csv`` and the
  labelled movie ``DIR/<stem>_labeled.mp4``.

The same :class:`~gaitlive.gait.stage.GaitStage` as the live pipeline runs on the poses,
so offline and live give the same numbers. Frames without a bird are gaps, not errors.

Before any work, :func:`check_inputs` checks every input of a call (exists, supported
type, not empty, no two with the same stem), the output folder, and that no pose file
``DIR/<stem>.h5``/``.csv`` a video would write exists unless ``gaitlive analyze`` wrote it
(its scorer level is :data:`ANALYZE_SCORER`). Ctrl-C or SIGTERM (:class:`AnalyzeInterrupted`)
during a video's inference stop it at that frame: the poses so far, and the steps and
passes of those frames (open passes ended as at the end of the file), are still written.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gaitlive.config import Profile
from gaitlive.dlcio import DLCFileError, PoseData, read_cow_csv, read_pose, read_pose_scorer
from gaitlive.fileio import atomic_write, check_output_dir, output_dir
from gaitlive.gait.events import PassResult, StanceCollector, StepEvent

log = logging.getLogger(__name__)

__all__ = ["AnalyzeError", "AnalyzeInterrupted", "AnalyzeResult", "analyze_poses",
           "analyze_file", "read_input_poses", "check_inputs", "make_out_dir",
           "steps_table", "passes_table", "VIDEO_SUFFIXES", "POSE_SUFFIXES", "ANALYZE_SCORER"]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv")
POSE_SUFFIXES = (".h5", ".csv")
DEFAULT_FPS = 30.0
#: the DeepLabCut scorer level of the pose files ``gaitlive analyze`` writes for a video:
#: an existing ``DIR/<stem>.h5``/``.csv`` with another scorer is not replaced
ANALYZE_SCORER = "gaitlive"
_EXPECTED_INPUT = (f"expected a video ({', '.join(VIDEO_SUFFIXES)}) or a DeepLabCut "
                   ".h5/.csv pose file")


class AnalyzeError(ValueError):
    """The input cannot be analysed (the message names the file and what was expected)."""


class AnalyzeInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during an analysis.

    ``signal_name`` is the signal (``"SIGINT"`` for a plain KeyboardInterrupt); when raised
    by :func:`analyze_file`, ``source`` is the input and ``written`` the files it had
    already written for it."""

    def __init__(self, signal_name: str = "SIGINT", source: Path | None = None,
                 written: list[Path] | None = None) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.source = source
        self.written = list(written or [])


def _signal_name(e: BaseException) -> str:
    return getattr(e, "signal_name", "SIGINT")


@dataclass
class AnalyzeResult:
    """What :func:`analyze_file` produced."""

    steps: list[StepEvent]
    passes: list[PassResult]
    steps_csv: Path
    passes_csv: Path
    pose_file: Path | None = None
    movie: Path | None = None
    fps: float = DEFAULT_FPS
    extra: dict[str, str] = field(default_factory=dict)
    #: the signal that stopped the analysis early (None: it ran to the end)
    interrupted: str | None = None
    #: for a video stopped during inference: the first frame not analysed (frames
    #: ``0 .. stopped_at - 1`` are in the outputs); None when every frame was
    stopped_at: int | None = None


def _atomic_csv(df: pd.DataFrame, path: Path) -> Path:
    return atomic_write(path, lambda p: df.to_csv(p, index=False))


def steps_table(steps: list[StepEvent], fps: float,
                rate_changes: Sequence[tuple[int, float]] = ()) -> pd.DataFrame:
    """One row per stance from the stage's step events, in their order (see
    :class:`~gaitlive.gait.events.StanceCollector`: provisional strikes and joined stances
    are resolved; ``lift_frame`` is empty for a stance still open when its pass ended).
    Times are frame / ``fps``, following ``rate_changes`` (``(frame, fps)``) if any."""
    from gaitlive.gait.clock import FrameClock

    sec = FrameClock.from_changes(fps, rate_changes).seconds
    col = StanceCollector()
    stances = [st for ev in steps for st in col.add(ev)] + col.flush()
    rows = [{"individual": st.individual, "pass_id": st.pass_id, "foot": st.foot,
             "strike_frame": st.strike_frame,
             "lift_frame": st.lift_frame if st.lift_frame is not None else pd.NA,
             "strike_s": sec(st.strike_frame),
             "lift_s": sec(st.lift_frame) if st.lift_frame is not None else np.nan}
            for st in sorted(stances, key=lambda st: (st.pass_id, st.strike_frame, st.foot))]
    df = pd.DataFrame(rows, columns=["individual", "pass_id", "foot", "strike_frame",
                                     "lift_frame", "strike_s", "lift_s"])
    df["lift_frame"] = df["lift_frame"].astype("Int64")
    return df


def passes_table(passes: list[PassResult], video: str = "",
                 legs: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per pass: identity, frames, score and every feature (the contract columns,
    with ``stance_fraction_<leg>`` for each of ``legs``, even when there is no pass)."""
    rows = []
    for p in sorted(passes, key=lambda p: (p.start_frame, p.pass_id)):
        row = {"video": video, "individual": p.individual, "pass_id": p.pass_id,
               "start_frame": p.start_frame, "end_frame": p.end_frame, "n_steps": p.n_steps,
               "score": p.score, "score_class": p.score_class, "confidence": p.confidence,
               "scored": p.scored, "reason": p.reason, "camera_id": p.camera_id}
        feats = dict(p.features)
        # the contract's leading feature columns first, then the rest
        for k in ("cadence_hz",):
            row[k] = feats.pop(k, np.nan)
        for k in sorted(x for x in feats if x.startswith("stance_fraction_")):
            row[k] = feats.pop(k)
        row.update(feats)
        rows.append(row)
    cols = ["video", "individual", "pass_id", "start_frame", "end_frame", "n_steps",
            "cadence_hz"] + [f"stance_fraction_{leg}" for leg in legs]
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=cols + ["score", "score_class", "confidence", "scored",
                                            "reason", "camera_id"])
    first = [c for c in cols if c in df]
    first += sorted(c for c in df if c.startswith("stance_fr") and c not in first)
    first += ["score", "score_class", "confidence", "scored", "reason", "camera_id"]
    return df[first + [c for c in df.columns if c not in first]]


def analyze_poses(data: PoseData, profile: Profile, fps: float, score_model=None,
                  camera_id: str = "cam0", source: str | os.PathLike[str] | None = None,
                  rate_changes: Sequence[tuple[int, float]] = ()
                  ) -> tuple[list[StepEvent], list[PassResult]]:
    """Run the gait stage over a pose series.

    Parameters
    ----------
    data
        Poses; their bodyparts must be the profile's (matched by name, any order).
    profile
        The species/view profile.
    fps
        Frame rate.
    score_model
        A :class:`gaitlive.score.ScoreModel` or ``None``.
    source
        Where the poses come from (named in errors).
    rate_changes
        ``(frame, fps)`` where a live source changed its rate (noted in a live run's
        ``poses.h5``; :meth:`GaitStage.run_series <gaitlive.gait.stage.GaitStage.run_series>`).

    Returns
    -------
    steps, passes
    """
    steps, passes, _ = _run_stage(data, profile, fps, score_model, camera_id, source,
                                  rate_changes)
    return steps, passes


def _run_stage(data: PoseData, profile: Profile, fps: float, score_model: Any,
               camera_id: str, source: str | os.PathLike[str] | None,
               rate_changes: Sequence[tuple[int, float]]
               ) -> tuple[list[StepEvent], list[PassResult], list[tuple[int, float]]]:
    """:func:`analyze_poses`, plus the rate changes as the stage applied them (a change is
    applied between passes: at a later frame than noted when a pass is open there), the
    clock of every step time."""
    from gaitlive.gait.stage import GaitStage, view_box

    _check_bodyparts(data.bodyparts, profile, source if source is not None else "the poses")
    poses = data.select(profile.bodyparts).poses
    box = view_box(data.meta.get("frame_size"), data.meta.get("cropping", ()))
    stage = GaitStage(profile, fps=fps, score_model=score_model, camera_id=camera_id,
                      view_box=box)
    steps, passes = stage.run_series(poses, data.frame_index, rate_changes=rate_changes)
    return steps, passes, stage.clock.changes


def _check_bodyparts(have: tuple[str, ...] | list[str], profile: Profile,
                     source: str | os.PathLike[str]) -> None:
    missing = [b for b in profile.bodyparts if b not in have]
    if missing:
        raise AnalyzeError(f"{source}: the poses lack the profile {profile.name!r} bodyparts "
                           f"{missing}; they have {list(have)} (choose another --profile)")


def _input_problem(path: Path) -> str | None:
    """Why ``path`` cannot be an input (None: it can)."""
    if not path.exists():
        return (f"{path}: input not found (expected a video, or a DeepLabCut .h5/.csv pose "
                "file)")
    if not path.is_file():
        return f"{path}: not a file; {_EXPECTED_INPUT}"
    suffix = path.suffix.lower()
    if suffix not in POSE_SUFFIXES and suffix not in VIDEO_SUFFIXES:
        return f"{path}: unsupported input {suffix!r}; {_EXPECTED_INPUT}"
    if path.stat().st_size == 0:
        return f"{path}: the file is empty; {_EXPECTED_INPUT}"
    if suffix in VIDEO_SUFFIXES and not _video_opens(path):
        return (f"{path}: cannot be read as a video (OpenCV decodes no frame from it: a "
                f"corrupt file or an unsupported codec); {_EXPECTED_INPUT}")
    return None


def _video_opens(path: Path) -> bool:
    """Whether OpenCV opens ``path`` and decodes its first frame (cheap: one frame)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        return bool(cap.isOpened() and cap.read()[0])
    finally:
        cap.release()


def check_out_dir(out: Path) -> None:
    """Raise :class:`AnalyzeError` when ``out`` cannot be (or become) an output folder."""
    try:
        check_output_dir(out)
    except ValueError as e:
        raise AnalyzeError(f"{e}; give another --out") from None


def make_out_dir(out: str | os.PathLike[str]) -> Path:
    """Create the output folder ``out``: an :class:`AnalyzeError` naming it, not an OSError."""
    try:
        return output_dir(out)
    except ValueError as e:
        raise AnalyzeError(f"{e}; give another --out") from None


def _keep_previous(out: Path, stem: str, source: Path, kind: str) -> Path | None:
    """Move an earlier analysis's outputs of ``stem`` in ``out`` to
    ``out/previous/<time>/`` before this one writes any (an interrupted re-run would
    otherwise replace complete results with partial ones); returns that folder, or None
    when there were none. The input itself is never moved."""
    from gaitlive.fileio import move_to_previous

    names = [f"{stem}_steps.csv", f"{stem}_passes.csv", f"{stem}_labeled.mp4"]
    if kind == "video":  # its pose file (check_inputs made sure analyze wrote it)
        names += [f"{stem}.h5", f"{stem}.csv"]
    src = source.resolve()
    dest = move_to_previous([out / n for n in names if (out / n).resolve() != src], out)
    if dest is not None:
        log.warning("%s: the previous analysis's outputs (%s) were moved to %s", source,
                    ", ".join(sorted(f.name for f in dest.iterdir())), dest)
    return dest


def _check_pose_target(out: Path, stem: str, source: Path) -> None:
    """Refuse when a video's pose file ``out/<stem>.h5``/``.csv`` exists and was not written
    by ``gaitlive analyze`` (another scorer, or not a pose file at all)."""
    for target in (out / f"{stem}.h5", out / f"{stem}.csv"):
        if not (target.exists() or target.is_symlink()):
            continue
        what = f"analysing {source} would replace it with its poses; give another --out folder"
        if not target.is_file():
            raise AnalyzeError(f"{target}: exists and is not a pose file; {what}")
        try:
            scorer = read_pose_scorer(target)
        except DLCFileError as e:
            raise AnalyzeError(f"{target}: exists and cannot be read as a pose file "
                               f"({e}); {what}") from e
        if scorer != ANALYZE_SCORER:
            raise AnalyzeError(f"{target}: exists with scorer {scorer!r}, not written by "
                               f"gaitlive analyze (scorer {ANALYZE_SCORER!r}); {what}")


def check_inputs(inputs: list[str | os.PathLike[str]] | tuple[str | os.PathLike[str], ...],
                 out_dir: str | os.PathLike[str]) -> list[Path]:
    """Check a call's inputs and output folder before any work starts.

    Every input must exist and be a non-empty file of a supported type; no two inputs may
    share a stem (their ``<stem>_*.csv`` would overwrite each other and the combined
    passes table could not tell them apart); ``out_dir`` must be (or be creatable as) a
    writable folder; and a video's pose file ``out_dir/<stem>.h5``/``.csv`` may exist only
    when ``gaitlive analyze`` wrote it (its scorer level is :data:`ANALYZE_SCORER`).

    Returns
    -------
    list of Path
        The inputs.

    Raises
    ------
    AnalyzeError
        Naming every bad input, the clashing inputs, the folder or the pose file.
    """
    paths = [Path(x) for x in inputs]
    if not paths:
        raise AnalyzeError(f"no input; {_EXPECTED_INPUT}")
    problems = [m for p in paths if (m := _input_problem(p)) is not None]
    if problems:
        note = "" if len(paths) == 1 else " (nothing was analysed)"
        raise AnalyzeError("; ".join(problems) + note)
    by_stem: dict[str, list[Path]] = {}
    for p in paths:
        by_stem.setdefault(p.stem, []).append(p)
    for stem, same in by_stem.items():
        if len(same) > 1:
            twice = " (the same file given twice)" if len({p.resolve() for p in same}) \
                < len(same) else ""
            raise AnalyzeError(
                f"inputs {', '.join(map(str, same))} have the same stem {stem!r}{twice}: "
                f"their outputs {stem}_steps.csv and {stem}_passes.csv would overwrite each "
                f"other and the combined passes table could not tell them apart; analyse "
                f"them in separate calls with different --out folders (nothing was analysed)")
    out = Path(out_dir)
    check_out_dir(out)
    for p in paths:
        if p.suffix.lower() in VIDEO_SUFFIXES:
            _check_pose_target(out, p.stem, p)
    return paths


def _is_dlc_csv(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
    return first.startswith("scorer")


def read_input_poses(path: Path, profile: Profile, fps: float | None = None,
                     model_path: str | None = None, settings=None,
                     progress: bool = False, presence=None,
                     frame_size: tuple[int, int] | None = None) -> tuple[PoseData, str]:
    """Poses of ``path``: a DeepLabCut pose file, a flat keypoint CSV (cow layout) or a
    video (pose inference with the configured model, behind the ``presence`` gate as in
    ``gaitlive run`` when given). Returns the poses and the kind. ``frame_size`` is that
    of a pose file's images (see :func:`analyze_file`)."""
    suffix = path.suffix.lower()
    problem = _input_problem(path)
    if problem is not None:
        raise AnalyzeError(problem)
    if suffix == ".h5":
        return _with_source_size(read_pose(path), path, frame_size), "pose"
    if suffix == ".csv":
        if _is_dlc_csv(path):
            return _with_source_size(read_pose(path), path, frame_size), "pose"
        try:
            return read_cow_csv(path, fps=fps), "csv"
        except DLCFileError as e:
            raise AnalyzeError(f"{e} (or a DeepLabCut pose CSV, whose first row starts "
                               "with 'scorer')") from e
    return _infer_video(path, profile, model_path, settings, progress, presence), "video"


def source_video(pose_file: Path) -> Path | None:
    """The video a DeepLabCut pose file was made from, when it lies beside it: the pose
    file's stem is the video's stem, or the video's stem followed by DeepLabCut's
    ``DLC_...`` scorer (``walk.mp4`` -> ``walkDLC_resnet50_...shuffle1_500000.h5``), or
    the video is ``gaitlive analyze``'s labelled movie of it (``walk_labeled.mp4``)."""
    stem = pose_file.stem
    names = {stem, stem + "_labeled"}  # analyze's own outputs: <stem>.h5, <stem>_labeled.mp4
    i = stem.find("DLC")
    if i > 0:
        names.add(stem[:i])
    for f in sorted(pose_file.parent.iterdir()) if pose_file.parent.is_dir() else []:
        if f.stem in names and f.suffix.lower() in VIDEO_SUFFIXES and f.is_file():
            return f
    return None


def _with_source_size(data: PoseData, path: Path,
                      frame_size: tuple[int, int] | None = None) -> PoseData:
    """Note where the poses of a pose file come from: the frame size (where a bird leaves
    the image: :class:`~gaitlive.gait.stage.GaitStage` ``view_box``) given, or noted in
    the file by gaitlive, or that of its source video lying beside it; and that video's
    frame rate when the file has none. Says when the frame size stays unknown."""
    if frame_size is not None:
        data.meta["frame_size"] = frame_size
        xy = data.poses[..., :2][data.poses[..., 2] > 0]
        # a pose model may put a keypoint a little outside the image (a foot at the
        # border): only many keypoints well outside say the size is wrong
        out = (xy[:, 0] > 1.1 * frame_size[0]) | (xy[:, 1] > 1.1 * frame_size[1])
        if len(xy) and out.mean() > 0.01:
            log.warning("%s: %.0f %% of the keypoints lie outside the frame size %dx%d given "
                        "(up to x %.0f, y %.0f): is it the size of the images these poses "
                        "come from (WIDTHxHEIGHT)?", path, 100 * out.mean(), *frame_size,
                        np.nanmax(xy[:, 0]), np.nanmax(xy[:, 1]))
    video = None
    if "frame_size" not in data.meta or data.fps is None:
        video = source_video(path)
    if video is not None:
        w, h, fps = _video_header(video)
        if w <= 0 or h <= 0:
            log.warning("%s: the video beside it, %s, cannot be read: its frame size and "
                        "rate are not used", path, video)
        else:
            if "frame_size" not in data.meta:
                data.meta["frame_size"] = (w, h)
                log.info("%s: frame size %dx%d from %s", path, w, h, video)
            if data.fps is None and fps is not None:
                data.fps = fps
                log.info("%s: %g fps from %s", path, fps, video)
    if "frame_size" not in data.meta:
        log.warning("%s: frame size unknown (no source video beside it, no --frame-size): "
                    "a bird seen only partly that vanishes anywhere counts as gone after "
                    "0.1 s", path)
    return data


def _video_header(path: Path) -> tuple[int, int, float | None]:
    """Width, height (0 when unreadable) and frame rate of a video, from one open of its
    header. A broken rate (0, NaN, 90000) is None: the caller assumes one and says so."""
    import cv2

    from gaitlive.gait.stage import MAX_FPS

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return 0, 0, None
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    return w, h, float(fps) if fps and np.isfinite(fps) and 0 < fps <= MAX_FPS else None


def _video_fps(path: Path) -> float | None:
    return _video_header(path)[2]


def _infer_video(path: Path, profile: Profile, model_path: str | None, settings,
                 progress: bool, presence=None) -> PoseData:
    """Poses of every frame of a video. With ``presence`` (the config's
    :class:`~gaitlive.config.PresenceSettings`, enabled), the live pipeline's gate decides
    per frame: no inference on an empty corridor (no bird: an empty row) and, with
    ``presence.crop``, inference on the crop around the moving bird, exactly as live.

    A KeyboardInterrupt (Ctrl-C, or :class:`AnalyzeInterrupted` from a signal handler)
    after the first frame stops the inference there: the poses of the frames so far come
    back, with ``meta["interrupted"]`` (the signal) and ``meta["stopped_at"]`` (the first
    frame not analysed)."""
    import cv2

    try:
        from gaitlive.pose import load_runner
    except ImportError as e:  # pragma: no cover - depends on the install
        raise AnalyzeError(f"{path}: analysing a video needs gaitlive.pose and dlclive "
                           f"({e}); analyse a DeepLabCut pose file instead") from e
    runner = load_runner(model_path, settings)
    bodyparts = tuple(getattr(runner, "bodyparts", None) or profile.bodyparts)
    try:
        _check_bodyparts(bodyparts, profile, f"{path} (model {model_path})")
    except AnalyzeError:
        runner.close()
        raise
    gate = None
    if presence is not None and presence.enabled:
        from gaitlive.presence import PresenceGate, runner_resize

        gate = PresenceGate(presence, pcutoff=profile.pcutoff, resize=runner_resize(runner))
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        runner.close()
        raise AnalyzeError(f"{path}: cannot open the video")
    n_total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    frame_size: tuple[int, int] | None = None
    poses: list[np.ndarray] = []
    interrupted: str | None = None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_total, unit="frame", desc=path.name)
    try:
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                if frame_size is None:
                    frame_size = (frame.shape[1], frame.shape[0])
                res = gate.update(frame) if gate is not None else None
                if res is not None and not res.run:
                    pose = np.zeros((0, len(bodyparts), 3), np.float32)
                else:
                    crop = res.crop if res is not None else None
                    scale = res.scale if res is not None else 1.0
                    pose = np.asarray(runner.get_pose(frame, crop=crop, scale=scale),
                                      dtype=np.float32)
                    if gate is not None:
                        gate.observe(pose)
                poses.append(pose)  # one row per frame, appended once the frame is done
                if bar is not None:
                    bar.update(1)
        except KeyboardInterrupt as e:
            if not poses:
                raise
            interrupted = _signal_name(e)
    finally:
        cap.release()
        runner.close()
        if bar is not None:
            bar.close()
    if not poses:
        raise AnalyzeError(f"{path}: the video has no readable frames")
    if interrupted is None and n_total and len(poses) < 0.98 * n_total:
        # a truncated or damaged file: say so, the outputs cover only what decoded
        log.warning("%s: only %d of the %d frames its header announces could be decoded (a "
                    "truncated or damaged file?); the outputs cover frames 0-%d", path,
                    len(poses), n_total, len(poses) - 1)
    n_ind = max(1, max(p.shape[0] for p in poses))
    arr = np.full((len(poses), n_ind, len(bodyparts), 3), np.nan, np.float32)
    arr[..., 2] = 0.0
    for i, p in enumerate(poses):
        arr[i, :p.shape[0]] = p
    inds = tuple(f"bird{i + 1}" for i in range(n_ind)) if n_ind > 1 else ("animal",)
    data = PoseData(poses=arr, bodyparts=bodyparts, individuals=inds, scorer=ANALYZE_SCORER,
                    fps=_video_fps(path), multi_animal=n_ind > 1)
    # where a bird leaves the view: the frame, or the model's static crop within it
    data.meta["frame_size"] = frame_size
    data.meta["cropping"] = tuple(getattr(settings, "cropping", ()) or ())
    if interrupted is not None:
        data.meta.update(interrupted=interrupted, stopped_at=len(poses))
        log.warning("%s: %s received at frame %d: writing the outputs of frames 0-%d "
                    "(again to stop at once)", path, interrupted, len(poses), len(poses) - 1)
    return data


def analyze_file(path: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                 profile: Profile, *, fps: float | None = None, score_model=None,
                 model_path: str | None = None, model_settings=None, presence=None,
                 movie: bool = True, camera_id: str = "cam0", progress: bool = False,
                 log_fn: Callable[[str], None] | None = None,
                 frame_size: tuple[int, int] | None = None) -> AnalyzeResult:
    """Analyse one input file and write its outputs to ``out_dir``.

    Parameters
    ----------
    path
        Video, DeepLabCut pose file (.h5/.csv, single- or multi-animal) or flat keypoint CSV.
    out_dir
        Output folder (created).
    profile
        Species/view profile.
    fps
        Frame rate; default the video's, else 30.
    score_model
        :class:`gaitlive.score.ScoreModel` or ``None`` (passes stay unscored).
    model_path, model_settings
        The DLC-Live model and how to run it (the config's ``model`` section), for videos.
    presence
        The config's ``presence`` section: for a video, skip empty frames and infer on the
        crop around the bird exactly as the live pipeline does (None: every frame, whole).
    movie
        For a video input, also write the labelled movie.
    frame_size
        For a pose file, ``(width, height)`` of the images its poses come from (where a
        bird leaves the image; see :class:`~gaitlive.gait.stage.GaitStage`). Default: that
        of its source video when it lies beside it, else unknown. A video's own size is
        always used for it.

    Returns
    -------
    AnalyzeResult
        With ``interrupted`` set when Ctrl-C/SIGTERM stopped a video's inference (the
        outputs then cover frames ``0 .. stopped_at - 1``, no movie) or its movie.

    Raises
    ------
    AnalyzeError
        Bad input or output folder (see :func:`check_inputs`), before any work.
    AnalyzeInterrupted
        Interrupted at another point; ``written`` lists what was written for this input.
    """
    path = Path(path)
    out = Path(out_dir)
    check_inputs([path], out)
    make_out_dir(out)
    data, kind = read_input_poses(path, profile, fps, model_path, model_settings, progress,
                                  presence, frame_size)
    _keep_previous(out, path.stem, path, kind)
    interrupted = data.meta.get("interrupted")
    stopped_at = data.meta.get("stopped_at")
    # a live run's rate changes, noted in its poses.h5, unless --fps says otherwise
    changes: Sequence[tuple[int, float]] = () if fps else data.meta.get("rate_changes", ())
    if changes:
        log.info("%s: the source changed its frame rate during the run (frame, fps): %s; "
                 "the analysis follows (--fps sets one rate instead)", path, changes)
    if fps is None:
        fps = data.fps or (_video_fps(path) if kind == "video" else None)
        if fps is None:
            fps = DEFAULT_FPS
            log.warning("%s: frame rate unknown, assuming %.0f fps (set --fps)", path, fps)
    data.fps = fps
    stem = path.stem
    pose_file = None
    written: list[Path] = []
    try:
        if kind == "video":
            from gaitlive.dlcio import write_pose

            # written before the analysis, so an interrupted analysis keeps the poses
            pose_file = write_pose(out / f"{stem}.h5", data)
            written += [pose_file, pose_file.with_suffix(".csv")]
        steps, passes, changes = _run_stage(data, profile, fps, score_model, camera_id, path,
                                            changes)
        steps_csv = _atomic_csv(steps_table(steps, fps, changes), out / f"{stem}_steps.csv")
        written.append(steps_csv)
        passes_csv = _atomic_csv(passes_table(passes, video=stem,
                                              legs=tuple(profile.gait.legs)),
                                 out / f"{stem}_passes.csv")
        written.append(passes_csv)
    except KeyboardInterrupt as e:
        raise AnalyzeInterrupted(_signal_name(e), source=path, written=written) from e
    res = AnalyzeResult(steps=steps, passes=passes, steps_csv=steps_csv,
                        passes_csv=passes_csv, pose_file=pose_file, fps=fps,
                        interrupted=interrupted, stopped_at=stopped_at)
    if kind == "video" and movie and interrupted is None:
        try:
            from gaitlive.overlay import write_labelled_video
        except ImportError as e:  # pragma: no cover - depends on the checkout
            log.error("cannot write the labelled movie: gaitlive.overlay unavailable (%s)", e)
        else:
            try:
                res.movie = write_labelled_video(path, data, out / f"{stem}_labeled.mp4",
                                                 profile, steps_table(steps, fps, changes),
                                                 passes,
                                                 fps=fps, progress=progress)
            except KeyboardInterrupt as e:  # the tables and poses are complete
                res.interrupted = _signal_name(e)
    return res

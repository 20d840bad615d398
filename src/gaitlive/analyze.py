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
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gaitlive.config import Profile
from gaitlive.dlcio import DLCFileError, PoseData, read_cow_csv, read_pose
from gaitlive.fileio import atomic_write
from gaitlive.gait.events import PassResult, StanceCollector, StepEvent

log = logging.getLogger(__name__)

__all__ = ["AnalyzeError", "AnalyzeResult", "analyze_poses", "analyze_file", "read_input_poses",
           "steps_table", "passes_table", "VIDEO_SUFFIXES"]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv")
DEFAULT_FPS = 30.0


class AnalyzeError(ValueError):
    """The input cannot be analysed (the message names the file and what was expected)."""


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


def _atomic_csv(df: pd.DataFrame, path: Path) -> Path:
    return atomic_write(path, lambda p: df.to_csv(p, index=False))


def steps_table(steps: list[StepEvent], fps: float) -> pd.DataFrame:
    """One row per stance from the stage's step events, in their order (see
    :class:`~gaitlive.gait.events.StanceCollector`: provisional strikes and joined stances
    are resolved; ``lift_frame`` is empty for a stance still open when its pass ended)."""
    col = StanceCollector()
    stances = [st for ev in steps for st in col.add(ev)] + col.flush()
    rows = [{"individual": st.individual, "pass_id": st.pass_id, "foot": st.foot,
             "strike_frame": st.strike_frame,
             "lift_frame": st.lift_frame if st.lift_frame is not None else pd.NA,
             "strike_s": st.strike_frame / fps,
             "lift_s": st.lift_frame / fps if st.lift_frame is not None else np.nan}
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
                  camera_id: str = "cam0") -> tuple[list[StepEvent], list[PassResult]]:
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

    Returns
    -------
    steps, passes
    """
    from gaitlive.gait.stage import GaitStage

    missing = [b for b in profile.bodyparts if b not in data.bodyparts]
    if missing:
        raise AnalyzeError(f"the poses lack the profile {profile.name!r} bodyparts {missing}; "
                           f"they have {list(data.bodyparts)} (choose another --profile)")
    order = [data.bodyparts.index(b) for b in profile.bodyparts]
    poses = data.poses[:, :, order]
    stage = GaitStage(profile, fps=fps, score_model=score_model, camera_id=camera_id)
    return stage.run_series(poses, data.frame_index)


def _is_dlc_csv(path: Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
    return first.startswith("scorer")


def read_input_poses(path: Path, profile: Profile, fps: float | None = None,
                     model_path: str | None = None, settings=None,
                     progress: bool = False, presence=None) -> tuple[PoseData, str]:
    """Poses of ``path``: a DeepLabCut pose file, a flat keypoint CSV (cow layout) or a
    video (pose inference with the configured model, behind the ``presence`` gate as in
    ``gaitlive run`` when given). Returns the poses and the kind."""
    suffix = path.suffix.lower()
    if not path.exists():
        raise AnalyzeError(f"{path}: input not found (expected a video, or a DeepLabCut "
                           ".h5/.csv pose file)")
    if suffix == ".h5":
        return read_pose(path), "pose"
    if suffix == ".csv":
        if _is_dlc_csv(path):
            return read_pose(path), "pose"
        try:
            return read_cow_csv(path, fps=fps), "csv"
        except DLCFileError as e:
            raise AnalyzeError(f"{e} (expected a DeepLabCut pose CSV or a flat "
                               "<bodypart>_x/_y/_likelihood CSV)") from e
    if suffix in VIDEO_SUFFIXES:
        return _infer_video(path, profile, model_path, settings, progress,
                            presence), "video"
    raise AnalyzeError(f"{path}: unsupported input {suffix!r}; expected a video "
                       f"({', '.join(VIDEO_SUFFIXES)}) or a DeepLabCut .h5/.csv pose file")


def _video_fps(path: Path) -> float | None:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    finally:
        cap.release()
    return float(fps) if fps and np.isfinite(fps) and fps > 0 else None


def _infer_video(path: Path, profile: Profile, model_path: str | None, settings,
                 progress: bool, presence=None) -> PoseData:
    """Poses of every frame of a video. With ``presence`` (the config's
    :class:`~gaitlive.config.PresenceSettings`, enabled), the live pipeline's gate decides
    per frame: no inference on an empty corridor (no bird: an empty row) and, with
    ``presence.crop``, inference on the crop around the moving bird, exactly as live."""
    import cv2

    try:
        from gaitlive.pose import load_runner
    except ImportError as e:  # pragma: no cover - depends on the install
        raise AnalyzeError(f"{path}: analysing a video needs gaitlive.pose and dlclive "
                           f"({e}); analyse a DeepLabCut pose file instead") from e
    runner = load_runner(model_path, settings)
    bodyparts = tuple(getattr(runner, "bodyparts", None) or profile.bodyparts)
    gate = None
    if presence is not None and presence.enabled:
        from gaitlive.presence import PresenceGate

        gate = PresenceGate(presence, pcutoff=profile.pcutoff)
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise AnalyzeError(f"{path}: cannot open the video")
    n_total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    poses: list[np.ndarray] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_total, unit="frame", desc=path.name)
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            res = gate.update(frame) if gate is not None else None
            if res is not None and not res.run:
                poses.append(np.zeros((0, len(bodyparts), 3), np.float32))
            else:
                crop = res.crop if res is not None else None
                scale = res.scale if res is not None else 1.0
                poses.append(np.asarray(runner.get_pose(frame, crop=crop, scale=scale),
                                        dtype=np.float32))
                if gate is not None:
                    gate.observe(poses[-1])
            if bar is not None:
                bar.update(1)
    finally:
        cap.release()
        runner.close()
        if bar is not None:
            bar.close()
    if not poses:
        raise AnalyzeError(f"{path}: the video has no readable frames")
    n_ind = max(1, max(p.shape[0] for p in poses))
    arr = np.full((len(poses), n_ind, len(bodyparts), 3), np.nan, np.float32)
    arr[..., 2] = 0.0
    for i, p in enumerate(poses):
        arr[i, :p.shape[0]] = p
    inds = tuple(f"bird{i + 1}" for i in range(n_ind)) if n_ind > 1 else ("animal",)
    return PoseData(poses=arr, bodyparts=bodyparts, individuals=inds, scorer="gaitlive",
                    fps=_video_fps(path), multi_animal=n_ind > 1)


def analyze_file(path: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                 profile: Profile, *, fps: float | None = None, score_model=None,
                 model_path: str | None = None, model_settings=None, presence=None,
                 movie: bool = True, camera_id: str = "cam0", progress: bool = False,
                 log_fn: Callable[[str], None] | None = None) -> AnalyzeResult:
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

    Returns
    -------
    AnalyzeResult
    """
    path = Path(path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data, kind = read_input_poses(path, profile, fps, model_path, model_settings, progress,
                                  presence)
    if fps is None:
        fps = data.fps or (_video_fps(path) if kind == "video" else None)
        if fps is None:
            fps = DEFAULT_FPS
            log.warning("%s: frame rate unknown, assuming %.0f fps (set --fps)", path, fps)
    data.fps = fps
    stem = path.stem
    pose_file = None
    if kind == "video":
        from gaitlive.dlcio import write_pose

        pose_file = write_pose(out / f"{stem}.h5", data)  # written before the analysis
    steps, passes = analyze_poses(data, profile, fps, score_model, camera_id)
    steps_csv = _atomic_csv(steps_table(steps, fps), out / f"{stem}_steps.csv")
    passes_csv = _atomic_csv(passes_table(passes, video=stem,
                                                 legs=tuple(profile.gait.legs)), out / f"{stem}_passes.csv")
    res = AnalyzeResult(steps=steps, passes=passes, steps_csv=steps_csv,
                        passes_csv=passes_csv, pose_file=pose_file, fps=fps)
    if kind == "video" and movie:
        try:
            from gaitlive.overlay import write_labelled_video
        except ImportError as e:  # pragma: no cover - depends on the checkout
            log.error("cannot write the labelled movie: gaitlive.overlay unavailable (%s)", e)
        else:
            res.movie = write_labelled_video(path, data, out / f"{stem}_labeled.mp4", profile,
                                             steps_table(steps, fps), passes, fps=fps,
                                             progress=progress)
    return res

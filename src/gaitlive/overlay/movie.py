"""The result movie of ``gaitlive analyze``: :func:`write_labelled_video` draws the overlay
over a recorded video from its poses, step events and pass results."""

from __future__ import annotations

import bisect
import collections
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gaitlive.config import Profile
from gaitlive.fileio import atomic_write
from gaitlive.gait.events import GaitUpdate, PassResult, StepEvent, TrackState
from gaitlive.overlay.draw import annotate
from gaitlive.overlay.state import OverlayState
from gaitlive.overlay.style import OverlayStyle
from gaitlive.overlay.video import VideoOut

log = logging.getLogger(__name__)

__all__ = ["pass_pose_row", "write_labelled_video"]


def _records(items: Any) -> list[dict[str, Any]]:
    """Steps/passes given as dataclasses, dicts, a pandas DataFrame or the path of a
    ``_steps.csv`` / ``_passes.csv`` table -> list of dicts."""
    if items is None:
        return []
    if isinstance(items, (str, os.PathLike)):
        import pandas as pd

        path = Path(items)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: table not found (expected a gaitlive analyze "
                                    f"<stem>_steps.csv or <stem>_passes.csv)")
        try:
            items = pd.read_csv(path)
        except (ValueError, OSError) as e:
            raise ValueError(f"{path}: cannot read as CSV ({e})") from None
    if hasattr(items, "to_dict") and hasattr(items, "columns"):
        return [dict(r) for r in items.to_dict("records")]
    out = []
    for it in items:
        out.append(it.to_dict() if hasattr(it, "to_dict") else dict(it))
    return out


def _opt_int(v: Any) -> int | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return int(f) if math.isfinite(f) else None


def _step_events(steps: Any) -> list[StepEvent]:
    evs = []
    for r in _records(steps):
        strike = _opt_int(r.get("strike_frame"))
        if strike is None:
            continue
        evs.append(StepEvent(individual=int(r.get("individual", 0)),
                             pass_id=int(r.get("pass_id", 0)), foot=str(r["foot"]),
                             kind="strike", strike_frame=strike,
                             lift_frame=_opt_int(r.get("lift_frame"))))
    return evs


def _pass_results(passes: Any) -> list[PassResult]:
    known = {"individual", "pass_id", "start_frame", "end_frame", "n_steps", "score",
             "score_class", "confidence", "scored", "camera_id", "reason"}
    out = []
    for r in _records(passes):
        if isinstance(r.get("features"), Mapping):
            feats = {k: float(v) for k, v in r["features"].items()}
        else:
            feats = {k: float(v) for k, v in r.items() if k not in known
                     and isinstance(v, (int, float)) and not isinstance(v, bool)}
        score = r.get("score")
        score = float(score) if score is not None and math.isfinite(float(score)) else None
        scored = r.get("scored")
        scored = bool(scored) if scored is not None and not (
            isinstance(scored, float) and math.isnan(scored)) else score is not None
        out.append(PassResult(individual=int(r.get("individual", 0)),
                              pass_id=int(r.get("pass_id", 0)),
                              start_frame=int(r["start_frame"]), end_frame=int(r["end_frame"]),
                              n_steps=int(r.get("n_steps", 0) or 0), features=feats,
                              score=score, scored=scored and score is not None,
                              reason=str(r.get("reason", "") or "")))
    return out


def _individual_row(individual: Any, names: Sequence[str], n_rows: int) -> int:
    if isinstance(individual, str) and individual in names:
        return list(names).index(individual)
    if n_rows == 1:
        return 0
    try:
        i = int(individual)
    except (TypeError, ValueError):
        return -1
    return i if 0 <= i < n_rows else -1


def pass_pose_row(series: np.ndarray, frame_index: np.ndarray, individual: Any,
                  start_frame: int, end_frame: int, pcutoff: float,
                  names: Sequence[str] = ()) -> int:
    """The row of a pose series that holds a pass's bird.

    The gait stage numbers birds by track (``individual`` 0, 1, 2 ... over a recording),
    not by pose row. A row named ``individual`` wins; a single-row series is row 0;
    otherwise the row with the most keypoints above ``pcutoff`` during the pass.

    Returns
    -------
    int
        The row, or -1 when no row has the bird.
    """
    n_rows = series.shape[1]
    if isinstance(individual, str) and individual in names:
        return list(names).index(individual)
    if n_rows == 1:
        return 0
    sel = (frame_index >= start_frame) & (frame_index <= end_frame)
    if not sel.any():
        return -1
    lik = np.nan_to_num(series[sel, :, :, 2], nan=0.0)
    counts = (lik >= pcutoff).sum(axis=(0, 2))
    return int(np.argmax(counts)) if counts.max() > 0 else -1


def write_labelled_video(video_path: str | os.PathLike[str], poses: Any,
                         out_path: str | os.PathLike[str], profile: Profile,
                         steps: Iterable[StepEvent] | Any = None,
                         passes: Iterable[PassResult] | Any = None, *,
                         fps: float | None = None, style: OverlayStyle | None = None,
                         progress: bool = False) -> Path:
    """Write the result movie of ``gaitlive analyze``: the video with the overlay drawn.

    Parameters
    ----------
    video_path
        The analysed video.
    poses
        A :class:`~gaitlive.dlcio.PoseData` (rows placed by its ``frame_index``) or a
        ``(n_frames, n_individuals, n_keypoints, 3)`` array aligned with the video's frames.
    out_path
        The movie to write (``.mp4`` or ``.avi``); written to a temporary file beside it and
        renamed when complete, so a failure never leaves a truncated movie.
    profile
        Bodyparts (must match the poses' keypoints), skeleton, angles and score scale.
    steps
        Step events (:class:`StepEvent`, dicts, or a DataFrame or the path of a table with
        the ``_steps.csv`` columns ``individual, pass_id, foot, strike_frame,
        lift_frame``): a foot print at each strike.
    passes
        Finished passes (:class:`PassResult`, or ``_passes.csv`` rows: a DataFrame or the
        file's path): the bird's id, step
        count and features during its pass, and its score at its end.
    fps
        Frame rate; default the video's.
    progress
        Show a tqdm progress bar.

    Returns
    -------
    pathlib.Path
        ``out_path``.
    """
    from gaitlive.dlcio import PoseData

    video_path, out_path = Path(video_path), Path(out_path)
    if not video_path.is_file():
        raise FileNotFoundError(f"write_labelled_video: video not found: {video_path}")
    names: Sequence[str] = ()
    if isinstance(poses, PoseData):
        if poses.bodyparts != profile.bodyparts:
            raise ValueError(f"write_labelled_video: the poses' bodyparts "
                             f"{list(poses.bodyparts)} do not match profile {profile.name!r} "
                             f"({list(profile.bodyparts)})")
        series, index, names = poses.poses, np.asarray(poses.frame_index), poses.individuals
        fps = fps or poses.fps
    else:
        series = np.asarray(poses, dtype=np.float32)
        if series.ndim == 3:
            series = series[:, None]
        if series.ndim != 4 or series.shape[2:] != (profile.n_keypoints, 3):
            raise ValueError(f"write_labelled_video: expected poses of shape (n_frames, "
                             f"n_individuals, {profile.n_keypoints}, 3) for profile "
                             f"{profile.name!r}, got {series.shape}")
        index = np.arange(len(series))
    row_of = {int(f): i for i, f in enumerate(index)}
    cap = cv2.VideoCapture(str(video_path))
    if not cap.isOpened():
        raise ValueError(f"write_labelled_video: cannot read video {video_path}")
    fps = float(fps or cap.get(cv2.CAP_PROP_FPS) or 30.0)
    n_video = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    st = style or OverlayStyle()
    state = OverlayState(profile, fps, st)
    events = _step_events(steps)
    results = _pass_results(passes)
    strikes: dict[int, list[StepEvent]] = collections.defaultdict(list)
    for ev in events:
        strikes[ev.strike_frame].append(ev)
    ends: dict[int, list[PassResult]] = collections.defaultdict(list)
    for res in results:
        ends[res.end_frame].append(res)
    n_ind = series.shape[1]
    # per pass: its strikes in time order (for step counts and stance at each frame)
    by_pass: dict[tuple[int, int], tuple[list[int], list[StepEvent]]] = {}
    for ev in sorted(events, key=lambda e: e.strike_frame):
        fr, evs = by_pass.setdefault((ev.individual, ev.pass_id), ([], []))
        fr.append(ev.strike_frame)
        evs.append(ev)
    rows = {(r.individual, r.pass_id): pass_pose_row(series, index, r.individual,
                                                     r.start_frame, r.end_frame,
                                                     profile.pcutoff, names)
            for r in results}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_video or None, unit="frame", desc=out_path.name)
    f = 0

    def render(tmp: Path) -> None:
        nonlocal f
        out = VideoOut(tmp, fps)
        pending = sorted(results, key=lambda r: r.start_frame)
        active: list[PassResult] = []
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                row = row_of.get(f)
                pose = series[row] if row is not None else None
                tracks = []
                while pending and pending[0].start_frame <= f:  # passes that start now
                    active.append(pending.pop(0))
                active = [res for res in active if res.end_frame >= f]
                for res in active:
                    r = rows[(res.individual, res.pass_id)]
                    if r < 0:
                        continue
                    mine = by_pass.get((res.individual, res.pass_id), ([], []))
                    n_steps = bisect.bisect_right(mine[0], f)
                    stance = {ev.foot: True for ev in mine[1][:n_steps]
                              if f <= (ev.lift_frame if ev.lift_frame is not None
                                       else ev.strike_frame)}
                    tracks.append(TrackState(individual=res.individual, pass_id=res.pass_id,
                                             pose_row=r, complete=False, stance=stance,
                                             n_steps=n_steps))
                todays = strikes.get(f, [])
                for ev in todays:
                    if not any(t.individual == ev.individual for t in tracks):
                        r = rows.get((ev.individual, ev.pass_id),
                                     _individual_row(ev.individual, names, n_ind))
                        if r >= 0:
                            tracks.append(TrackState(individual=ev.individual,
                                                     pass_id=ev.pass_id, pose_row=r,
                                                     complete=False))
                upd = GaitUpdate(frame_index=f, tracks=tracks, steps=list(todays),
                                 passes=ends.get(f, []))
                out.write(annotate(frame, pose, profile, upd, None, state))
                f += 1
                if bar is not None:
                    bar.update(1)
            if f == 0:
                raise ValueError(f"write_labelled_video: no frame could be read from "
                                 f"{video_path}")
            if len(index) and f <= int(np.max(index)):
                log.warning("%s has %d frames but the poses go to frame %d", video_path, f,
                            int(np.max(index)))
        finally:
            out.close()

    try:
        atomic_write(out_path, render)  # a failure never leaves a truncated movie
    finally:
        cap.release()
        if bar is not None:
            bar.close()
    log.info("wrote %s (%d frames)", out_path, f)
    return out_path

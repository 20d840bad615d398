"""What the overlay remembers between frames (:class:`OverlayState`): foot prints of recent
strikes, the scores of passes that just ended, and where each bird was last seen."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gaitlive.config import Profile
from gaitlive.gait.clock import FrameClock
from gaitlive.gait.events import GaitUpdate, PassResult, TrackState
from gaitlive.overlay.geometry import compute_scale_px
from gaitlive.overlay.style import BGR, OverlayStyle, leg_colour, marker_radius

__all__ = ["OverlayState"]


@dataclass
class _Print:
    individual: int
    foot: str
    xy: tuple[float, float]
    t: float
    size: float
    colour: BGR


@dataclass
class _Badge:
    result: PassResult
    xy: tuple[float, float]
    t: float


@dataclass
class OverlayState:
    """What the overlay remembers between frames: recent foot prints, recent pass scores,
    the current tracks and where each bird was last seen.

    Time is ``frame_index / fps`` (or the gait stage's ``clock``, for a live camera that
    changes its rate) so that a result movie looks the same on every run.

    Parameters
    ----------
    profile
        The species/view profile (legs give the foot keypoints and colours).
    fps
        Frame rate of the source, to convert frame indices to seconds.
    style
        Hold times of prints and badges.
    clock
        Frame index -> seconds across a live camera's rate changes (the gait stage's
        :class:`~gaitlive.gait.clock.FrameClock`); ``None``: ``index / fps``.
    """

    profile: Profile
    fps: float = 30.0
    style: OverlayStyle = field(default_factory=OverlayStyle)
    tracks: list[TrackState] = field(default_factory=list)
    prints: list[_Print] = field(default_factory=list)
    badges: list[_Badge] = field(default_factory=list)
    last_xy: dict[int, tuple[float, float]] = field(default_factory=dict)
    last_scale: dict[int, float] = field(default_factory=dict)
    last_seen: dict[int, float] = field(default_factory=dict)
    now: float = 0.0
    #: birds not seen for this long are forgotten (bounded memory on week-long runs)
    forget_s: float = 120.0
    clock: FrameClock | None = None

    def seconds(self, frame_index: float) -> float:
        """Seconds of a frame index on the source's clock."""
        if self.clock is not None:
            return self.clock.seconds(frame_index)
        return frame_index / self.fps if self.fps > 0 else 0.0

    def reset(self) -> None:
        """Forget everything (the stream was reset)."""
        self.tracks, self.prints, self.badges = [], [], []
        self.last_xy.clear()
        self.last_scale.clear()
        self.last_seen.clear()

    def _row_pose(self, poses: np.ndarray | None, individual: int) -> np.ndarray | None:
        if poses is None or len(poses) == 0:
            return None
        for t in self.tracks:
            if t.individual == individual and 0 <= t.pose_row < len(poses):
                return poses[t.pose_row]
        return None

    def ingest(self, update: GaitUpdate | None, poses: np.ndarray | None,
               frame_index: int | None = None) -> None:
        """Take one frame's gait update and poses into the state.

        Parameters
        ----------
        update
            What the gait stage produced for this frame (``None``: no gait stage; the
            tracks are kept from before).
        poses
            ``(n_individuals, n_keypoints, 3)`` of this frame, used to place foot prints
            and to remember where each bird was.
        frame_index
            The frame's index (defaults to ``update.frame_index``).
        """
        fi = frame_index if frame_index is not None else (update.frame_index if update else None)
        if fi is not None:
            t = self.seconds(fi)
            if t + 1.0 < self.now:  # indices went back: a new stream
                self.reset()
            self.now = t
        if update is None:
            return
        self.tracks = list(update.tracks)
        for tr in self.tracks:
            if poses is not None and 0 <= tr.pose_row < len(poses):
                p = poses[tr.pose_row]
                ok = np.isfinite(p[:, :2]).all(axis=1) & (np.nan_to_num(p[:, 2]) >=
                                                          self.profile.pcutoff)
                if ok.any():
                    self.last_xy[tr.individual] = (float(np.mean(p[ok, 0])),
                                                   float(np.mean(p[ok, 1])))
                    self.last_seen[tr.individual] = self.now
                s = tr.scale_px if math.isfinite(tr.scale_px) else compute_scale_px(
                    p, self.profile)
                if math.isfinite(s):
                    self.last_scale[tr.individual] = s
        legs = list(self.profile.gait.legs)
        for ev in update.steps:
            if ev.kind != "strike" or ev.foot not in self.profile.gait.legs:
                continue
            pose = self._row_pose(poses, ev.individual)
            if pose is None:
                continue
            k = self.profile.index(self.profile.gait.legs[ev.foot].foot)
            xy = (float(pose[k, 0]), float(pose[k, 1]))
            if not all(math.isfinite(v) for v in xy):
                continue
            scale = self.last_scale.get(ev.individual, float("nan"))
            size = 2.2 * marker_radius(scale, self.style)
            colour = leg_colour(legs, ev.foot)
            t0 = self.seconds(ev.strike_frame) if self.fps > 0 else self.now
            self.prints.append(_Print(ev.individual, ev.foot, xy, min(t0, self.now), size,
                                      colour))
        for res in update.passes:
            xy = self.last_xy.get(res.individual, (float("nan"), float("nan")))
            self.badges = [b for b in self.badges if b.result.individual != res.individual]
            self.badges.append(_Badge(res, xy, self.now))
        self._expire()

    def _expire(self) -> None:
        self.prints = [p for p in self.prints if self.now - p.t <= self.style.step_hold_s]
        self.badges = [b for b in self.badges if self.now - b.t <= self.style.score_hold_s]
        for ind in [i for i, t in self.last_seen.items() if self.now - t > self.forget_s]:
            del self.last_seen[ind]
            self.last_xy.pop(ind, None)
            self.last_scale.pop(ind, None)

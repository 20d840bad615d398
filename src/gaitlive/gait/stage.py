"""The online gait stage: poses in, step events, rolling features and scored passes out.

:class:`GaitStage` keeps one :class:`_Track` per bird in view. Each frame it assigns the
frame's pose rows to the tracks (Hungarian assignment on body-centre distance in body
scales, :func:`scipy.optimize.linear_sum_assignment`), runs the numba kernel
:func:`gaitlive.gait.kernels.gait_frame` on each track (skeleton, angles, foot contact),
turns the kernel's strike/lift frames into :class:`~gaitlive.gait.events.StepEvent` and,
when a bird has left (not seen for ``lost_s``) or the stream ends, computes the pass
features (:func:`gaitlive.gait.features.compute_pass_features`) and scores the pass.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from gaitlive.config import Profile
from gaitlive.gait import kernels
from gaitlive.gait.clock import FrameClock
from gaitlive.gait.events import GaitUpdate, PassResult, StepEvent, TrackState
from gaitlive.gait.features import HistoryLayout, compute_pass_features, stance_foothold

log = logging.getLogger(__name__)

__all__ = ["GaitStage", "GaitLayout", "ScorerLike", "view_box"]

#: the highest frame rate the stage takes (its history is sized in seconds)
MAX_FPS = 1000.0
RING = 64  # frames of foot history per bird: a whole stance (refined at its lift)
# a partly seen bird that vanishes within this many of its scales (leg lengths) of the
# image border has left the image
LEAVE_MARGIN = 1.5
# a stance through frames without the foot is no step when the foot stands this many leg
# lengths from where it stood before them (it stepped unseen: a stride is 0.6-1.6 leg
# lengths; a pose model's foot jitters by up to ~0.3 where birds overlap, demo video)
UNSEEN_STEP = 0.3
# a track's leg length (px) follows each frame's at this rate, that frame's clamped to
# within this factor of the track's: a frame whose pose spans two birds (a leg length of
# several hundred px) must not widen the matching radius enough to take another bird
SCALE_RATE = 0.2
SCALE_CLAMP = 1.25
# a detection whose leg length differs from a track's by more than this factor is another
# bird (a far one, seen smaller, behind the corridor) or a pose spanning two birds
SIZE_GATE = 1.6
SIZE_MIN_N = 3


def _follow(value: float, new: float) -> float:
    """A robust running value: ``new`` clamped to ``SCALE_CLAMP`` times ``value`` either
    way, then averaged in at ``SCALE_RATE`` (one odd frame moves it by a few percent)."""
    if new > value * SCALE_CLAMP:
        new = value * SCALE_CLAMP
    elif new * SCALE_CLAMP < value:
        new = value / SCALE_CLAMP
    return value + SCALE_RATE * (new - value)


def view_box(frame_size: tuple[int, int] | None, cropping: Sequence[int] = ()
             ) -> tuple[int, int, int, int] | None:
    """The part of the image poses can come from, ``(x0, y0, x1, y1)``: the whole frame of
    ``frame_size`` ``(width, height)``, or within it a static crop given the DeepLabCut
    way, ``cropping = [x1, x2, y1, y2]``. None when the frame size is unknown."""
    if frame_size is None:
        return None
    w, h = int(frame_size[0]), int(frame_size[1])
    if cropping:
        x1, x2, y1, y2 = (int(v) for v in cropping)
        box = (max(0, x1), max(0, y1), min(w, x2), min(h, y2))
        if box[0] < box[2] and box[1] < box[3]:
            return box
    return (0, 0, w, h)


class ScorerLike(Protocol):
    """What the stage needs of a score model (see :class:`gaitlive.score.ScoreModel`)."""

    def predict_one(self, features: dict[str, float]) -> tuple[float, int, float]: ...


@dataclass(frozen=True)
class GaitLayout:
    """Index arrays of a profile, as the kernels take them."""

    required_idx: np.ndarray
    angle_idx: np.ndarray
    seg_idx: np.ndarray
    n_scale_legs: float
    foot_idx: np.ndarray
    hock_idx: np.ndarray
    body_idx: np.ndarray
    head_idx: int
    hist: HistoryLayout
    n_cols: int

    @classmethod
    def from_profile(cls, profile: Profile) -> GaitLayout:
        """Resolve the profile's names to keypoint columns."""
        g = profile.gait
        if not g.legs:
            raise ValueError(f"profile {profile.name!r}: gait.legs is empty; the gait stage "
                             "needs at least one leg with a foot")
        idx = profile.index
        legs = tuple(g.legs)
        required = sorted({idx(n) for e in profile.skeleton for n in e if n})
        angles = tuple(profile.angles)
        angle_idx = np.array([[idx(n) for n in profile.angles[a]] for a in angles],
                             dtype=np.int64).reshape(-1, 3)
        seg_idx = np.array([[idx(a), idx(b)] for a, b in g.scale_segments],
                           dtype=np.int64).reshape(-1, 2)
        if len(seg_idx) == 0:
            raise ValueError(f"profile {profile.name!r}: gait.scale_segments is empty; the "
                             "gait stage needs them for its scale (leg length)")
        body = [idx(b) for b in g.body] or [idx(g.legs[leg].foot) for leg in legs]
        hock_angle = []
        for leg in legs:
            h = g.legs[leg].hock
            hock_angle.append(next((j for j, a in enumerate(angles)
                                    if h and profile.angles[a][1] == h), -1))
        return cls(
            required_idx=np.array(required, dtype=np.int64),
            angle_idx=angle_idx, seg_idx=seg_idx,
            n_scale_legs=float(max(1, len(legs))),
            foot_idx=np.array([idx(g.legs[leg].foot) for leg in legs], dtype=np.int64),
            hock_idx=np.array([idx(g.legs[leg].hock) for leg in legs], dtype=np.int64),
            body_idx=np.array(body, dtype=np.int64),
            head_idx=idx(g.head),
            hist=HistoryLayout(legs=legs, angles=angles, pairs=tuple(g.pairs),
                               hock_angle=tuple(hock_angle)),
            n_cols=kernels.n_hist_cols(len(legs), len(angles)),
        )


def kernel_params(profile: Profile, fps: float) -> np.ndarray:
    """The kernel's ``params`` vector from the profile's gait settings."""
    g = profile.gait
    decay = math.exp(-1.0 / (fps * g.peak_tau_s))
    restrike = int(round(g.restrike_shift_s * fps))
    return np.array([g.smoothing_frames // 2, g.fit_frames // 2, g.stance_speed, g.stance_rel,
                     g.stance_hysteresis, g.min_stance_frames, g.min_swing_frames, decay,
                     g.foothold_eps, restrike], dtype=np.float64)


class _Track:
    """One bird: ring buffers, contact state, pass history and steps."""

    def __init__(self, individual: int, pass_id: int, frame: int, layout: GaitLayout,
                 n_kp: int, fps: float):
        n_legs = len(layout.foot_idx)
        self.individual = individual
        self.pass_id = pass_id
        self.start_frame = frame
        self.next_frame = frame  # next frame the kernel expects
        self.last_seen = frame
        self.n_seen = 0
        self.ring = np.full((RING, n_legs, 2), np.nan)
        self.ring_scale = np.full(RING, np.nan)
        self.istate = np.zeros((n_legs, kernels.N_ISTATE), dtype=np.int64)
        self.istate[:, kernels.I_STRIKE] = -1
        self.fstate = np.full(kernels.n_fstate(n_legs), np.nan)
        self.fstate[:kernels.N_FSTATE] = 0.0
        self.fstate[kernels.F_SCALE] = np.nan
        self.hist = np.full((max(64, int(8 * fps)), layout.n_cols), np.nan)
        self.events = np.full((n_legs, 3), -1, dtype=np.int64)
        self.tmp_angles = np.zeros(len(layout.angle_idx))
        self.tmp_ratios = np.zeros(len(layout.seg_idx))
        self.nan_pose = np.full((n_kp, 3), np.nan, dtype=np.float32)
        self.nan_pose[:, 2] = 0.0
        self.steps: list[list[tuple[int, int]]] = [[] for _ in range(n_legs)]
        self.cx = math.nan  # body centre, px (Python floats: cheaper than 2-vectors)
        self.cy = math.nan
        self.vx = 0.0  # velocity, px per frame, smoothed
        self.vy = 0.0
        self.last_count = 0  # keypoints present when last seen
        self.last_mask = 0  # body keypoints of the centre when last seen (detections)
        self.scale = np.nan  # leg length, px: robust running value (SCALE_RATE, SCALE_CLAMP)
        # ... of the detections with whole legs only, and how many there were (SIZE_GATE)
        self.size = math.nan
        self.n_size = 0
        self.first_sizes: list[float] = []
        # keypoints' extent (px) while the leg length is unknown: the matching scale then
        self.extent = math.nan
        self.pose_row = -1
        self.rolling: dict[str, float] = {}
        self.n_steps = 0
        # step events of a track not yet seen for min_pass_s: released once it is, dropped
        # with it if it was a false detection (no steps of a pass that never was)
        self.confirmed = False
        self.pending: list[StepEvent] = []


class GaitStage:
    """The gait stage: feed it one frame's poses at a time.

    Parameters
    ----------
    profile
        Species/view profile (bodyparts, angles, legs, gait settings).
    fps
        Frame rate of the source (frame indices are converted to seconds with it).
    score_model
        An object with ``predict_one(features) -> (score, score_class, confidence)``
        (:class:`gaitlive.score.ScoreModel`); ``None`` leaves passes unscored.
    camera_id
        Carried into every :class:`PassResult`.
    kernel
        The per-frame kernel; default the numba :func:`gaitlive.gait.kernels.gait_frame`
        (``tools/bench_gait.py`` passes the numpy reference to compare).
    view_box
        ``(x0, y0, x1, y1)``: the part of the image the poses can come from (the whole
        frame, ``(0, 0, width, height)``, or a static crop), when known. A bird seen only
        partly that then vanishes has left the view when this was near its border (its
        pass ends after 0.1 s, not ``gait.lost_s``); elsewhere it went behind something
        and its pass goes on (for ``gait.occluded_s``). A track whose predicted position
        is outside the box walked out. Without it, a partly seen bird that vanishes
        anywhere has left.

    Examples
    --------
    >>> stage = GaitStage(load_profile("broiler-side"), fps=30)      # doctest: +SKIP
    >>> for i, pose in enumerate(poses):                            # doctest: +SKIP
    ...     upd = stage.update(i, pose)
    ...     for p in upd.passes: print(p.score)
    >>> stage.flush()                                               # doctest: +SKIP
    """

    def __init__(self, profile: Profile, fps: float, score_model: ScorerLike | None = None,
                 camera_id: str = "cam0", kernel: Any = None,
                 view_box: tuple[int, int, int, int] | None = None):
        if not (0 < fps <= MAX_FPS):
            raise ValueError(f"fps: expected a frame rate > 0 and <= {MAX_FPS:g}, got {fps!r}")
        if view_box is not None:
            ok = len(view_box) == 4 and all(math.isfinite(float(v)) for v in view_box)
            if not (ok and 0 <= view_box[0] < view_box[2] and 0 <= view_box[1] < view_box[3]):
                raise ValueError(f"view_box: expected (x0, y0, x1, y1) with 0 <= x0 < x1 and "
                                 f"0 <= y0 < y1, got {view_box!r}")
            view_box = tuple(float(v) for v in view_box)  # type: ignore[assignment]
        self.view_box = view_box
        self.profile = profile
        self.clock = FrameClock(fps)  # frame -> seconds (step times), across rate changes
        self.score_model = score_model
        self._features_checked = False
        classes = getattr(score_model, "classes", None)
        sc = profile.score
        if classes and (min(classes) < sc.min_score or max(classes) > sc.max_score):
            log.warning("the score model's classes %s are not on the %s scale %d..%d of "
                        "profile %r: was it fitted for another species or scale?", classes,
                        sc.scale, sc.min_score, sc.max_score, profile.name)
        self.camera_id = camera_id
        self._kernel = kernel if kernel is not None else kernels.gait_frame
        self.layout = GaitLayout.from_profile(profile)
        self._c_angles = kernels.HIST_FIXED + 4 * len(self.layout.foot_idx)
        self.pcutoff = float(profile.pcutoff)
        self.min_step_length = float(profile.gait.min_step_length)
        # a foot unseen for this many frames within a stance may have stepped unseen: the
        # kernel holds its contact state while it cannot measure a speed
        self.gap_step_frames = max(3, int(profile.gait.min_swing_frames))
        self._set_rate(float(fps))
        self.n_kp = profile.n_keypoints
        self.tracks: list[_Track] = []
        self._rows_buf = np.zeros(4, np.int64)
        self._centres_buf = np.zeros((4, 2))
        self._counts_buf = np.zeros(4, np.int64)
        self._sizes_buf = np.zeros(4)
        self._masks_buf = np.zeros(4, np.int64)
        self._len_buf = np.zeros(len(self.layout.seg_idx))
        self.last_frame: int | None = None
        self._next_individual = 0
        self._next_pass = 0
        # step events decided while the last reset()/flush() drained the open passes
        self.flushed_steps: list[StepEvent] = []

    def _set_rate(self, fps: float) -> None:
        """Every setting in frames that comes from the profile's seconds, at ``fps`` (the
        profile's settings given in frames, e.g. ``smoothing_frames``, stay as they are, as
        in a stage made at ``fps``)."""
        self.fps = fps
        profile = self.profile
        self.params = kernel_params(profile, fps)
        self.delay = int(self.params[0] + self.params[1])
        g = profile.gait
        self.lost_frames = max(1, int(round(g.lost_s * self.fps)))
        # a bird that vanished mid-view (behind a post) is kept this long
        self.hidden_frames = max(self.lost_frames, int(round(g.occluded_s * self.fps)))
        # a bird last seen only partly (fewer than min_present_keypoints) has left after this
        self.leave_frames = min(self.lost_frames, max(3, int(round(0.1 * self.fps))))
        self.min_pass_frames = max(1, int(round(g.min_pass_s * self.fps)))
        # plausible step timing (pose-model noise splits stances into short pieces): a
        # stance shorter than this is no step, a swing shorter than this joins its stances
        self.min_stance_step = max(1, int(math.ceil(g.min_stance_s * self.fps - 1e-9)))
        self.min_swing_step = max(0, int(math.ceil(g.min_swing_s * self.fps - 1e-9)))
        self.window_frames = max(2, int(round(g.window_s * self.fps)))
        lay = self.layout
        # the kernel's per-stage arguments, in its order (one tuple: fewer lookups per call)
        self._kconst = (self.pcutoff, self.fps, lay.required_idx, lay.angle_idx, lay.seg_idx,
                        lay.n_scale_legs, lay.foot_idx, lay.hock_idx, lay.body_idx,
                        lay.head_idx, self.params)

    def set_fps(self, frame: int, fps: float) -> None:
        """Run at ``fps`` from ``frame`` on: a live camera changed its rate. Only between
        passes (no bird open): a pass is measured at one rate. Step times of the frames
        before ``frame`` keep the old rate (:attr:`clock`).

        Raises
        ------
        ValueError
            ``fps`` outside ``(0, MAX_FPS]``.
        RuntimeError
            A pass is open.
        """
        if not (0 < fps <= MAX_FPS):
            raise ValueError(f"fps: expected a frame rate > 0 and <= {MAX_FPS:g}, got {fps!r}")
        if self.tracks:
            raise RuntimeError(f"the gait stage's frame rate can change only between passes "
                               f"({len(self.tracks)} open)")
        self.clock.retime(frame, fps)
        self._set_rate(float(fps))

    # ------------------------------------------------------------------ public API
    def update(self, frame_index: int, poses: np.ndarray | None) -> GaitUpdate:
        """Process one frame.

        Parameters
        ----------
        frame_index
            Source frame index; it must increase (a jump back is treated as a stream
            reset). Skipped frames in between count as frames without a bird.
        poses
            ``(n_individuals, n_keypoints, 3)`` or ``None`` (inference skipped/empty).

        Returns
        -------
        GaitUpdate
            Tracks in view, the step events decided at this frame (they refer to frames a
            few frames back) and the passes that ended.
        """
        frame_index = int(frame_index)
        upd = GaitUpdate(frame_index=frame_index)
        if self.last_frame is not None and frame_index <= self.last_frame:
            log.warning("frame index went back from %d to %d: treating it as a stream reset",
                        self.last_frame, frame_index)
            upd.passes.extend(self._end_all(upd))
            self.last_frame = None
        if poses is not None:
            if poses.dtype != np.float32:
                poses = np.asarray(poses, dtype=np.float32)
            if poses.ndim == 2:
                poses = poses[None]
            if poses.ndim != 3 or poses.shape[1:] != (self.n_kp, 3):
                raise ValueError(f"poses must be (n_individuals, {self.n_kp}, 3) for profile "
                                 f"{self.profile.name!r}, got {poses.shape}")
        if self.last_frame is not None and self.tracks:
            gap = frame_index - self.last_frame - 1
            if gap > self.lost_frames:
                upd.passes.extend(self._end_all(upd))
            else:
                for f in range(self.last_frame + 1, frame_index):
                    self._step_all(f, None, upd)
                upd.tracks.clear()  # the tracks as of this frame only (added below)
        self.last_frame = frame_index
        self._step_all(frame_index, poses, upd)
        return upd

    def reset(self) -> list[PassResult]:
        """Stream reset: end every open pass (scored if it has enough steps), clear state."""
        upd = GaitUpdate(frame_index=self.last_frame if self.last_frame is not None else -1)
        passes = self._end_all(upd)
        self.flushed_steps = upd.steps
        self.last_frame = None
        return passes

    def flush(self) -> list[PassResult]:
        """End of stream: finish and return every open pass."""
        return self.reset()

    # ------------------------------------------------------------------ internals
    def _detections(self, poses: np.ndarray | None
                    ) -> tuple[list[int], list[list[float]], list[int], list[float],
                               list[int]]:
        """Rows with at least one keypoint (a tracked bird keeps its track while only a
        foot is in view), their body centres, keypoint counts, leg lengths (px) and body
        keypoint masks (:func:`gaitlive.gait.kernels.detections`)."""
        if poses is None or len(poses) == 0:
            return [], [], [], [], []
        n_ind = len(poses)
        if len(self._rows_buf) < n_ind:
            self._rows_buf = np.zeros(n_ind, np.int64)
            self._centres_buf = np.zeros((n_ind, 2))
            self._counts_buf = np.zeros(n_ind, np.int64)
            self._sizes_buf = np.zeros(n_ind)
            self._masks_buf = np.zeros(n_ind, np.int64)
        lay = self.layout
        n = kernels.detections(poses, self.pcutoff, 1, lay.body_idx, lay.seg_idx,
                               lay.n_scale_legs, self._rows_buf, self._centres_buf,
                               self._counts_buf, self._sizes_buf, self._masks_buf,
                               self._len_buf)
        return (self._rows_buf[:n].tolist(), self._centres_buf[:n].tolist(),
                self._counts_buf[:n].tolist(), self._sizes_buf[:n].tolist(),
                self._masks_buf[:n].tolist())

    @staticmethod
    def _predicted(tr: _Track, frame: int) -> tuple[float, float]:
        """Where the track's body centre should be now (constant velocity since last seen):
        a bird that walked out of view is not taken for the next one coming in."""
        dt = frame - tr.last_seen
        return tr.cx + tr.vx * dt, tr.cy + tr.vy * dt

    @staticmethod
    def _match_scale(tr: _Track) -> float:
        """Pixels per unit of ``max_match_distance``: the leg length, or, until a leg has
        been seen, the extent of the bird's keypoints (looser: about 2 leg lengths), so a
        young track does not take a detection anywhere in the image."""
        if math.isfinite(tr.scale) and tr.scale > 0:
            return tr.scale
        return tr.extent if math.isfinite(tr.extent) and tr.extent > 0 else math.nan

    def _walked_out(self, tr: _Track, frame: int) -> bool:
        """Whether the track, unseen since it was last seen, should by now be outside the
        view (its predicted body centre beyond the view box; False when the box or the
        position is unknown): a bird that walked out, even one seen whole at the edge, is
        not matched to the next bird coming in there."""
        if self.view_box is None or tr.last_seen >= frame - 1:
            return False
        px, py = self._predicted(tr, frame)
        x0, y0, x1, y1 = self.view_box
        return math.isfinite(px) and math.isfinite(py) and not (x0 <= px < x1
                                                                and y0 <= py < y1)

    def _near_border(self, tr: _Track, frame: int) -> bool:
        """Whether the track's predicted body centre is within ``LEAVE_MARGIN`` of its
        scale (leg length, or keypoint extent) of the view box's border, or outside it
        (True when the box or the scale is unknown)."""
        if self.view_box is None:
            return True
        s = self._match_scale(tr)
        px, py = self._predicted(tr, frame)
        if not (math.isfinite(s) and math.isfinite(px) and math.isfinite(py)):
            return True
        m = LEAVE_MARGIN * s
        x0, y0, x1, y1 = self.view_box
        return px < x0 + m or py < y0 + m or px > x1 - m or py > y1 - m

    def _note_extent(self, tr: _Track, pose: np.ndarray) -> None:
        if math.isfinite(tr.scale):
            return  # only needed until the leg length is known
        ok = pose[:, 2] >= self.pcutoff
        if ok.sum() >= 2:
            pts = pose[ok, :2]
            tr.extent = float(max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1])))

    @staticmethod
    def _other_size(tr: _Track, size: float) -> bool:
        """Whether a detection with leg length ``size`` (px, whole legs) is too large or
        too small to be this track's bird (``SIZE_GATE``; False until the track has been
        seen with whole legs ``SIZE_MIN_N`` times, or when the size is unknown)."""
        s = tr.size
        return tr.n_size >= SIZE_MIN_N and (size > SIZE_GATE * s or size * SIZE_GATE < s)

    @staticmethod
    def _note_size(tr: _Track, size: float) -> None:
        """Follow the track's whole-leg length: the median of its first ``SIZE_MIN_N``
        (one odd pose among them does not set it), then a clamped running value."""
        if not size > 0.0:
            return
        if tr.n_size >= SIZE_MIN_N:
            tr.size = _follow(tr.size, size)
        else:
            tr.first_sizes.append(size)
            tr.size = statistics.median(tr.first_sizes)
        tr.n_size += 1

    def _assign(self, rows: list[int], centres: list[list[float]], counts: list[int],
                sizes: list[float], frame: int) -> dict[int, int]:
        """track position -> detection position. A track that walked out of the view
        takes no detection, and one lost for more than 0.1 s only a detection with
        ``min_present_keypoints`` keypoints (a foot coming into view where a bird left is
        the next bird); a track takes no detection of another size (``SIZE_GATE``).
        Each track reaches ``max_match_distance`` of its own leg lengths; within reach,
        the assignment minimises the distances in pixels."""
        if not rows or not self.tracks:
            return {}
        max_d = self.profile.gait.max_match_distance
        min_new = self.profile.gait.min_present_keypoints
        if len(rows) == 1 and len(self.tracks) == 1:
            tr = self.tracks[0]
            if self._walked_out(tr, frame) or self._other_size(tr, sizes[0]) or (
                    counts[0] < min_new and frame - tr.last_seen > self.leave_frames):
                return {}
            px, py = self._predicted(tr, frame)
            s = self._match_scale(tr)
            d = math.hypot(centres[0][0] - px, centres[0][1] - py) / s \
                if math.isfinite(s) else 0.0
            return {0: 0} if not (d > max_d) else {}
        from scipy.optimize import linear_sum_assignment

        cost = np.full((len(self.tracks), len(rows)), 1e6)
        cen = np.asarray(centres, dtype=np.float64)
        few = np.asarray(counts) < min_new
        siz = np.asarray(sizes, dtype=np.float64)
        for i, tr in enumerate(self.tracks):
            px, py = self._predicted(tr, frame)
            if not (math.isfinite(px) and math.isfinite(py)) or self._walked_out(tr, frame):
                continue
            s = self._match_scale(tr)
            s = s if math.isfinite(s) else np.inf
            d = np.hypot(cen[:, 0] - px, cen[:, 1] - py)
            ok = d <= max_d * s  # each track's reach is in its own leg lengths ...
            if frame - tr.last_seen > self.leave_frames:
                ok &= ~few
            if tr.n_size >= SIZE_MIN_N:
                ok &= ~((siz > SIZE_GATE * tr.size) | (siz * SIZE_GATE < tr.size))
            # ... but tracks compete in pixels: a track started by one odd pose (spanning
            # two birds, a leg length of hundreds of px) is not nearer in its own units
            cost[i] = np.where(ok, d, 1e6)
        ti, di = linear_sum_assignment(cost)
        return {int(t): int(d) for t, d in zip(ti, di, strict=True) if cost[t, d] < 1e6}

    def _step_all(self, frame: int, poses: np.ndarray | None, upd: GaitUpdate) -> None:
        rows, centres, counts, sizes, masks = self._detections(poses)
        min_new = self.profile.gait.min_present_keypoints
        match = self._assign(rows, centres, counts, sizes, frame)
        used = set(match.values())
        ended: list[_Track] = []
        for i, tr in enumerate(self.tracks):
            if i in match:
                j = match[i]
                assert poses is not None
                pose = poses[rows[j]]
                self._run(tr, frame, pose, rows[j], upd)
                if tr.scale != tr.scale:  # (per frame: skip the call once a leg is known)
                    self._note_extent(tr, pose)
                cx, cy = centres[j]
                # the velocity from consecutive centres of the same body keypoints: a
                # centre of other keypoints (the feet alone while a post hides the rest)
                # is elsewhere on the bird, and that jump would send the prediction astray
                if (tr.last_seen == frame - 1 and tr.cx == tr.cx and tr.cy == tr.cy
                        and masks[j] != 0 and masks[j] == tr.last_mask):
                    vx = 0.7 * tr.vx + 0.3 * (cx - tr.cx)
                    vy = 0.7 * tr.vy + 0.3 * (cy - tr.cy)
                    vmax = 0.3 * tr.scale if math.isfinite(tr.scale) else 0.0
                    n = math.hypot(vx, vy)
                    if n > vmax:
                        vx, vy = vx * (vmax / n), vy * (vmax / n)
                    tr.vx, tr.vy = vx, vy
                tr.cx, tr.cy = cx, cy
                tr.last_seen = frame
                tr.last_count = counts[j]
                tr.last_mask = masks[j]
                self._note_size(tr, sizes[j])
                tr.n_seen += 1
                if not tr.confirmed:
                    self._confirm(tr, upd)
            else:
                self._run(tr, frame, tr.nan_pose, -1, upd)
                gone = frame - tr.last_seen
                # it left: unseen for occluded_s (it vanished mid-view, behind something),
                # for lost_s near the view's border, for 0.1 s when it was last seen only
                # partly there, or it walked out of the view
                if gone >= self.leave_frames:
                    near = self._near_border(tr, frame)
                    if (gone >= self.hidden_frames or near and (
                            gone >= self.lost_frames or tr.last_count < min_new)
                            or self._walked_out(tr, frame)):
                        ended.append(tr)
        for j, r in enumerate(rows):
            if j in used or counts[j] < min_new:
                continue  # a new bird needs min_present_keypoints keypoints
            assert poses is not None
            tr = _Track(self._next_individual, self._next_pass, frame, self.layout, self.n_kp,
                        self.fps)
            self._next_individual += 1
            self._next_pass += 1
            self.tracks.append(tr)
            self._run(tr, frame, poses[r], r, upd)
            self._note_extent(tr, poses[r])
            tr.cx, tr.cy = centres[j]
            tr.last_count = counts[j]
            tr.last_mask = masks[j]
            self._note_size(tr, sizes[j])
            tr.n_seen = 1
            self._confirm(tr, upd)
        for tr in ended:
            self.tracks.remove(tr)
            res = self._finish(tr, upd)
            if res is not None:
                upd.passes.append(res)
        for tr in self.tracks:
            upd.tracks.append(self._track_state(tr))

    def _confirm(self, tr: _Track, upd: GaitUpdate) -> None:
        """Release a young track's held step events once it has been seen long enough to
        be a pass (``gait.min_pass_s``)."""
        if not tr.confirmed and tr.n_seen >= self.min_pass_frames:
            tr.confirmed = True
            upd.steps.extend(tr.pending)
            tr.pending = []

    def _emit(self, tr: _Track, upd: GaitUpdate | None, ev: StepEvent) -> None:
        if upd is None:
            return
        if tr.confirmed:
            upd.steps.append(ev)
        else:
            tr.pending.append(ev)

    def _stepped_unseen(self, tr: _Track, leg: int, s0: int, l0: int) -> int:
        """Where the stance s0..l0 the kernel found was cut by a swing made unseen: the
        last frame the foot was seen before the gap, or -1 when it was not.

        The stance holds frames where the foot was not seen, long enough to hide a swing
        (``gap_step_frames``), and the foot stands in another place after them than before
        (more than ``UNSEEN_STEP`` leg lengths): the kernel held the stance through the
        gap, but the foot stepped. The stance up to the gap was seen from its strike on; it
        ended (at the latest) in the gap."""
        base = tr.start_frame
        cols = self.layout.hist.foot(leg)
        lo = max(s0 - base, 0)
        rows = slice(lo, l0 - base + 1)
        if not np.isnan(tr.hist[rows, cols.start]).any():
            return -1  # the foot was seen throughout (most stances: one numpy call)
        foot = tr.hist[rows, cols]
        seen = np.isfinite(foot).all(axis=1)
        if seen.sum() < 2:
            return -1
        idx = np.flatnonzero(seen)
        gaps = np.diff(idx) - 1
        k = int(np.argmax(gaps))
        if gaps[k] < self.gap_step_frames:
            return -1
        scales = tr.hist[rows, 1]
        if not np.isfinite(scales).any():
            return -1
        before = np.median(foot[idx[max(0, k - 2):k + 1]], axis=0)
        after = np.median(foot[idx[k + 1:k + 4]], axis=0)
        if not np.hypot(*(after - before)) > UNSEEN_STEP * float(np.nanmedian(scales)):
            return -1
        return base + lo + int(idx[k])

    def _run(self, tr: _Track, frame: int, pose: np.ndarray, row: int,
             upd: GaitUpdate | None) -> None:
        lay = self.layout
        row_t = frame - tr.start_frame
        if row_t >= len(tr.hist):
            grown = np.full((2 * len(tr.hist), lay.n_cols), np.nan)
            grown[:len(tr.hist)] = tr.hist
            tr.hist = grown
        u = frame - self.delay
        row_u = u - tr.start_frame
        seen = frame if row >= 0 else tr.last_seen  # the last frame with this bird's pose
        n_events = self._kernel(frame, pose, *self._kconst, tr.ring, tr.ring_scale, tr.istate,
                                tr.fstate, tr.hist, row_t, row_u if row_u >= 0 else -1,
                                tr.events, tr.tmp_angles, tr.tmp_ratios)
        tr.next_frame = frame + 1
        tr.pose_row = row
        s = float(tr.hist[row_t, 1])  # (a Python float: cheaper comparisons than numpy's)
        if s > 0.0:  # (False for NaN)
            tr.scale = _follow(tr.scale, s) if tr.scale == tr.scale else s
        if n_events == 0 or row_u < 0:
            return
        ev = tr.events
        legs = lay.hist.legs
        lifted = False
        for leg in range(len(legs)):
            if ev[leg, 1] >= 0:
                s0, l0 = int(ev[leg, 2]), int(ev[leg, 1])
                cut = self._stepped_unseen(tr, leg, s0, l0)
                if cut >= 0:
                    # the foot stepped while unseen: the stance is the part seen up to the
                    # gap (its strike was seen; it lifted in the gap). The stance after the
                    # gap began unseen, so it has no strike to report: no step.
                    log.debug("track %d, %s foot: stance %d-%d stepped while unseen: "
                              "stance %d-%d kept", tr.individual, legs[leg], s0, l0, s0, cut)
                    l0 = cut
                prev = tr.steps[leg][-1] if tr.steps[leg] else None
                if prev is not None and (s0 - prev[1] - 1 < self.min_swing_step
                                         or self._same_foothold(tr, leg, prev, s0, l0)):
                    # a swing too short to be one: the previous stance went on (its lift
                    # event is superseded by this one, which carries the same strike)
                    s0 = prev[0]
                    tr.steps[leg].pop()
                    tr.n_steps -= 1
                if s0 >= tr.start_frame and l0 - s0 + 1 >= self.min_stance_step:
                    tr.steps[leg].append((s0, l0))
                    tr.n_steps += 1
                    lifted = True
                    self._emit(tr, upd, StepEvent(tr.individual, tr.pass_id, legs[leg], "lift",
                                                  s0, l0, self.clock.seconds(l0)))
            # a strike is never on a frame after the bird was last seen (frames without
            # a pose decide nothing; a pass ends there)
            if ev[leg, 0] >= 0 and ev[leg, 0] <= seen:
                s0 = int(ev[leg, 0])
                self._emit(tr, upd, StepEvent(tr.individual, tr.pass_id, legs[leg], "strike",
                                              s0, None, self.clock.seconds(s0)))
        if lifted:
            tr.rolling = self._rolling(tr, frame)

    def _same_foothold(self, tr: _Track, leg: int, prev: tuple[int, int], s0: int,
                       l0: int) -> bool:
        """Whether the stance s0..l0 stands where the previous stance ``prev`` of the same
        foot stood: footholds (median foot positions) closer than ``min_step_length`` leg
        lengths, so the foot did not step in between."""
        if self.min_step_length <= 0.0:
            return False
        lay, hist = self.layout.hist, tr.hist
        fa = stance_foothold(hist, lay, leg, *prev)
        fb = stance_foothold(hist, lay, leg, s0, l0)
        base = tr.start_frame
        scales = np.concatenate([hist[max(a - base, 0):b - base + 1, 1]
                                 for a, b in (prev, (s0, l0))])
        if not (np.isfinite(fa).all() and np.isfinite(fb).all() and np.isfinite(scales).any()):
            return False
        scale = float(np.nanmedian(scales))
        return bool(np.hypot(*(fb - fa)) < self.min_step_length * scale)

    def _rolling(self, tr: _Track, frame: int) -> dict[str, float]:
        lo = max(tr.start_frame, frame - self.window_frames)
        hist = tr.hist[lo - tr.start_frame:frame - tr.start_frame + 1]
        steps = [[s for s in leg if s[0] >= lo] for leg in tr.steps]
        return compute_pass_features(hist, self.layout.hist, steps, self.fps, light=True)

    def _track_state(self, tr: _Track) -> TrackState:
        # (per frame and bird: plain zips over lists of the same, fixed lengths)
        c = self._c_angles
        names = self.layout.hist.angles
        row = tr.hist[tr.next_frame - 1 - tr.start_frame, :c + len(names)].tolist()
        states = tr.istate[:, kernels.I_STATE].tolist()
        stance = kernels.STANCE
        return TrackState(tr.individual, tr.pass_id, tr.pose_row, row[7] == 1.0,
                          dict(zip(names, row[c:], strict=False)),
                          {leg: st == stance
                           for leg, st in zip(self.layout.hist.legs, states, strict=False)},
                          tr.rolling, tr.n_steps, float(tr.scale))

    def _finish(self, tr: _Track, upd: GaitUpdate) -> PassResult | None:
        # drain the delayed contact decisions: frames up to ``delay`` after the last one
        # seen are still decided from it (a lift seen at the end), exactly as if frames
        # without a bird had followed
        f = tr.next_frame
        while f - self.delay <= tr.last_seen + self.delay:
            self._run(tr, f, tr.nan_pose, -1, upd)
            f += 1
        if tr.n_seen < self.min_pass_frames:
            log.debug("dropping track %d: seen in %d frames < %d", tr.individual, tr.n_seen,
                      self.min_pass_frames)
            return None
        end = tr.last_seen
        hist = tr.hist[:end - tr.start_frame + 1]
        steps = [[s for s in leg if s[1] <= end] for leg in tr.steps]
        feats = compute_pass_features(hist, self.layout.hist, steps, self.fps)
        n_steps = sum(len(s) for s in steps)
        res: dict[str, Any] = {}
        min_steps = self.profile.gait.min_steps
        cadence = feats.get("cadence_hz", math.nan)
        max_cadence = self.profile.gait.max_cadence_hz
        if n_steps < min_steps:
            res["reason"] = f"{n_steps} steps < min_steps {min_steps}"
        elif cadence > max_cadence:
            # steps faster than the animal can make them: noise, not gait
            res["reason"] = f"cadence {cadence:.1f}/s > max_cadence_hz {max_cadence:g}"
        elif self.score_model is None:
            res["reason"] = "no score model"
        else:
            self._check_features(feats)
            score, cls, conf = self.score_model.predict_one(feats)
            res.update(score=float(score), score_class=int(cls), confidence=float(conf),
                       scored=True)
        return PassResult(individual=tr.individual, pass_id=tr.pass_id,
                          start_frame=tr.start_frame, end_frame=end, n_steps=n_steps,
                          features=feats, camera_id=self.camera_id, **res)

    def _check_features(self, feats: dict[str, float]) -> None:
        """Warn once when the score model wants features this profile does not compute
        (they are imputed with its training mean: a model of another profile would give
        every pass nearly the same score)."""
        if self._features_checked:
            return
        self._features_checked = True
        names = list(getattr(self.score_model, "features", None) or [])
        absent = [n for n in names if n not in feats]
        if absent:
            log.warning("%d of the score model's %d features are not computed for profile "
                        "%r (e.g. %s): they are imputed with the model's training mean; was "
                        "it fitted for another profile?", len(absent), len(names),
                        self.profile.name, ", ".join(absent[:3]))

    def _end_all(self, upd: GaitUpdate) -> list[PassResult]:
        out = []
        for tr in self.tracks:
            res = self._finish(tr, upd)
            if res is not None:
                out.append(res)
        self.tracks = []
        return out

    def run_series(self, poses: np.ndarray, frame_index: Sequence[int] | None = None,
                   rate_changes: Sequence[tuple[int, float]] = ()
                   ) -> tuple[list[StepEvent], list[PassResult]]:
        """Run a whole pose series ``(n_frames, n_ind, n_kp, 3)`` through the stage.

        ``rate_changes``: ``(frame, fps)`` where the source changed its frame rate (a live
        run's ``poses.h5`` notes them): each is applied (:meth:`set_fps`) at the first frame
        from ``frame`` on with no pass open, as the live run did.

        Returns every step event and every pass (including those ended by the flush).
        """
        steps: list[StepEvent] = []
        passes: list[PassResult] = []
        idx = range(len(poses)) if frame_index is None else frame_index
        pending = sorted(rate_changes)
        waited = False  # a noted change found a pass open at its frame
        for f, p in zip(idx, poses, strict=True):
            if pending and f >= pending[0][0]:
                if self.tracks:
                    waited = True
                else:
                    noted, fps = pending.pop(0)
                    if waited:
                        log.warning("the frame rate change to %.4g fps noted at frame %d "
                                    "is applied at frame %d, the first with no pass open "
                                    "(these passes differ from the run's)", fps, noted, f)
                    waited = False
                    self.set_fps(int(f), fps)
            u = self.update(int(f), p)
            steps.extend(u.steps)
            passes.extend(u.passes)
        passes.extend(self.flush())
        steps.extend(self.flushed_steps)
        return steps, passes

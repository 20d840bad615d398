"""The live overlay: what a person watching the barn camera sees.

Drawing is split into small functions that draw one thing in place on a BGR ``uint8`` image
(``draw_pose``, ``draw_angles``, ``draw_track_label``, ``draw_footprint``,
``draw_score_badge``, ``draw_hud``) and :func:`annotate`, which draws a whole frame on a
*copy* (supervision style: ``annotate(frame, ...) -> frame``). What must outlive one frame
(foot prints of recent strikes, the score of a pass that just ended) lives in an
:class:`OverlayState` fed with each :class:`~gaitlive.gait.events.GaitUpdate`.

Three consumers use it:

* :class:`OverlaySink`, a thread of the live pipeline that shows the overlay in a window
  (OpenCV HighGUI) and/or writes it to a video file, dropping frames when it is busy so that
  drawing never slows inference;
* :func:`write_labelled_video`, the result movie of ``gaitlive analyze``;
* ``gaitlive view``, the remote viewer (:mod:`gaitlive.commands.view`).

Poses are the gaitlive layout, ``float32 (n_individuals, n_keypoints, 3)`` per frame with
x, y, likelihood; missing keypoints are NaN with likelihood 0.
"""

from __future__ import annotations

import bisect
import collections
import functools
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gaitlive.config import OverlaySettings, Profile
from gaitlive.gait.events import GaitUpdate, PassResult, StepEvent, TrackState

log = logging.getLogger(__name__)

__all__ = [
    "OverlayStyle",
    "OverlayState",
    "OverlaySink",
    "OverlayMode",
    "RemoteViewer",
    "ViewStats",
    "annotate",
    "bodypart_colours",
    "choose_overlay_mode",
    "compute_angles",
    "compute_scale_px",
    "display_available",
    "draw_angles",
    "draw_footprint",
    "draw_hud",
    "draw_pose",
    "draw_score_badge",
    "draw_stance",
    "draw_track_label",
    "marker_radius",
    "pass_pose_row",
    "temp_path",
    "score_colour",
    "write_labelled_video",
]

BGR = tuple[int, int, int]

_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_LEG_COLOURS: tuple[BGR, ...] = ((255, 200, 0), (255, 0, 220), (0, 200, 255), (120, 255, 120))
# features shown beside a bird: the first names matching these prefixes, in this order
_FEATURE_ORDER = ("cadence_hz", "stance_fraction_", "asym_stance_fraction_", "step_length_",
                  "speed_leg_s")
_FEATURE_SHORT = {"cadence_hz": "cad", "stance_fraction_": "stance ",
                  "asym_stance_fraction_": "asym ", "step_length_": "step ",
                  "speed_leg_s": "speed"}
_FEATURE_HIDDEN = ("duration_s",)


def _feature_lines(features: Mapping[str, float], n: int = 4) -> list[str]:
    """``name value`` labels of the most telling running features (at most ``n``)."""
    keys: list[str] = []
    for prefix in _FEATURE_ORDER:
        keys += [k for k in features if k.startswith(prefix) and k not in keys]
    keys += [k for k in features if k not in keys and k not in _FEATURE_HIDDEN]
    out = []
    for k in keys:
        v = features[k]
        if v is None or not math.isfinite(v):
            continue
        prefix = next((p for p in _FEATURE_ORDER if k.startswith(p)), None)
        name = k if prefix is None else _FEATURE_SHORT[prefix] + k[len(prefix):]
        name = name.replace("left_right", "L/R").replace("left", "L").replace("right", "R")
        out.append(f"{name} {v:.2f}")
        if len(out) == n:
            break
    return out


@dataclass(frozen=True)
class OverlayStyle:
    """How the overlay looks.

    Attributes
    ----------
    hide_below
        Keypoints with likelihood below this (or NaN) are not drawn at all.
    faded_alpha
        Opacity of keypoints whose likelihood is in ``[hide_below, pcutoff)``.
    marker_frac
        Keypoint radius as a fraction of the bird's leg length in pixels.
    min_radius, max_radius
        Bounds of the keypoint radius in pixels.
    score_hold_s
        How long a finished pass's score stays on screen.
    step_hold_s
        How long a foot print stays on screen after a strike.
    angles, features, ids
        Whether to draw joint angles, running features and bird ids.
    """

    hide_below: float = 0.1
    faded_alpha: float = 0.35
    marker_frac: float = 0.08
    min_radius: int = 2
    max_radius: int = 40
    score_hold_s: float = 4.0
    step_hold_s: float = 1.2
    angles: bool = True
    features: bool = True
    ids: bool = True


# --------------------------------------------------------------------------------------
# Colours, sizes, geometry
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _colours(n: int) -> tuple[BGR, ...]:
    ramp = np.linspace(0, 255, max(n, 1)).astype(np.uint8).reshape(-1, 1)
    cmap = cv2.applyColorMap(ramp, cv2.COLORMAP_RAINBOW).reshape(-1, 3)
    return tuple(tuple(int(c) for c in cmap[i]) for i in range(n))  # type: ignore[misc]


def bodypart_colours(n: int) -> list[BGR]:
    """``n`` distinct BGR colours along a rainbow, one per bodypart (DeepLabCut style)."""
    return list(_colours(n))


def score_colour(score: float | None, lo: float = 0.0, hi: float = 5.0) -> BGR:
    """BGR colour of a gait score: green at ``lo`` (sound), yellow halfway, red at ``hi``.

    ``None`` or NaN (an unscored pass) is grey.

    Examples
    --------
    >>> score_colour(0), score_colour(5)
    ((0, 200, 0), (0, 0, 230))
    """
    if score is None or not math.isfinite(score):
        return (160, 160, 160)
    f = min(max((float(score) - lo) / (hi - lo), 0.0), 1.0) if hi > lo else 0.0
    if f <= 0.5:  # green (0,200,0) -> yellow (0,220,230)
        g = f / 0.5
        return (0, int(round(200 + 20 * g)), int(round(230 * g)))
    g = (f - 0.5) / 0.5  # yellow (0,220,230) -> red (0,0,230)
    return (0, int(round(220 * (1 - g))), 230)


def compute_scale_px(pose: np.ndarray, profile: Profile) -> float:
    """Leg length of one bird in pixels, from the profile's ``gait.scale_segments``.

    Parameters
    ----------
    pose
        ``(n_keypoints, 3)`` x, y, likelihood of one individual.
    profile
        Gives the segments; their lengths are summed over the visible ones and divided by
        the number of legs (scaled up when some segments are missing).

    Returns
    -------
    float
        The leg length, NaN when no segment is visible.
    """
    segs = profile.gait.scale_segments
    if not segs:
        xy = pose[:, :2]
        ok = np.isfinite(xy).all(axis=1)
        if ok.sum() < 2:
            return float("nan")
        span = np.nanmax(xy[ok], axis=0) - np.nanmin(xy[ok], axis=0)
        return float(max(span) / 2)
    total, seen = 0.0, 0
    for a, b in segs:
        pa, pb = pose[profile.index(a), :2], pose[profile.index(b), :2]
        d = float(np.hypot(*(pa - pb)))
        if math.isfinite(d):
            total += d
            seen += 1
    if seen == 0:
        return float("nan")
    n_legs = max(len(profile.gait.legs), 1)
    return total * len(segs) / seen / n_legs


def marker_radius(scale_px: float, style: OverlayStyle | None = None) -> int:
    """Keypoint marker radius in pixels for a bird whose leg is ``scale_px`` long.

    Examples
    --------
    >>> marker_radius(100.0), marker_radius(200.0)
    (8, 16)
    """
    st = style or OverlayStyle()
    if not math.isfinite(scale_px) or scale_px <= 0:
        return max(st.min_radius, 4)
    return int(min(max(round(st.marker_frac * scale_px), st.min_radius), st.max_radius))


def compute_angles(poses: np.ndarray, profile: Profile) -> dict[str, np.ndarray]:
    """Joint angles of the profile (``angles: name -> [a, vertex, c]``) in degrees.

    Parameters
    ----------
    poses
        Any array ``(..., n_keypoints, 3)``: one individual's frame, a frame of several
        individuals or a whole series.

    Returns
    -------
    dict
        Angle name -> array of shape ``poses.shape[:-2]`` (a 0-d array for one frame of one
        individual); NaN where a keypoint is missing.
    """
    p = np.asarray(poses, dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    for name, (a, v, c) in profile.angles.items():
        pa, pv, pc = (p[..., profile.index(k), :2] for k in (a, v, c))
        u, w = pa - pv, pc - pv
        dot = (u * w).sum(-1)
        cross = u[..., 0] * w[..., 1] - u[..., 1] * w[..., 0]
        out[name] = np.degrees(np.abs(np.arctan2(cross, dot)))
    return out


def _visible(pose: np.ndarray, pcutoff: float, style: OverlayStyle) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """(drawn, solid) boolean masks over keypoints."""
    lik = np.nan_to_num(pose[:, 2].astype(np.float64), nan=0.0)
    finite = np.isfinite(pose[:, :2]).all(axis=1)
    drawn = finite & (lik >= style.hide_below)
    return drawn, drawn & (lik >= pcutoff)


def _fx(v: float) -> int:
    return int(round(v * _ONE))


def _text(image: np.ndarray, text: str, org: tuple[int, int], colour: BGR, scale: float,
          thickness: int = 1) -> None:
    """Text with a dark outline, readable on any background."""
    # the outline without anti-aliasing: 3-4x cheaper, and the AA text covers its edge
    cv2.putText(image, text, org, _FONT, scale, (0, 0, 0), thickness + 2, cv2.LINE_8)
    cv2.putText(image, text, org, _FONT, scale, colour, thickness, cv2.LINE_AA)


def _font_scale(image: np.ndarray) -> float:
    return max(0.35, image.shape[0] / 900.0)


# --------------------------------------------------------------------------------------
# Drawing primitives (in place)
# --------------------------------------------------------------------------------------


def draw_pose(image: np.ndarray, pose: np.ndarray, profile: Profile, *,
              scale_px: float = float("nan"), style: OverlayStyle | None = None,
              line_colour: BGR = (235, 235, 235)) -> np.ndarray:
    """Draw one bird's skeleton and keypoints in place.

    Keypoints at or above ``profile.pcutoff`` are solid; those in
    ``[style.hide_below, pcutoff)`` are drawn faded (blended at ``style.faded_alpha``); lower
    or NaN ones are not drawn, nor the skeleton edges touching them.

    Parameters
    ----------
    image
        BGR ``uint8 (H, W, 3)``, drawn on in place.
    pose
        ``(n_keypoints, 3)`` x, y, likelihood in ``profile.bodyparts`` order.
    scale_px
        The bird's leg length in pixels (marker size scales with it); NaN = compute it from
        the pose with :func:`compute_scale_px`.

    Returns
    -------
    numpy.ndarray
        ``image``.
    """
    st = style or OverlayStyle()
    pose = np.asarray(pose)
    if pose.shape != (profile.n_keypoints, 3):
        raise ValueError(f"draw_pose: expected a pose of shape ({profile.n_keypoints}, 3) for "
                         f"profile {profile.name!r}, got {pose.shape}")
    if not math.isfinite(scale_px):
        scale_px = compute_scale_px(pose, profile)
    r = marker_radius(scale_px, st)
    thick = max(1, int(round(r / 3)))
    drawn, solid = _visible(pose, profile.pcutoff, st)
    if not drawn.any():
        return image
    colours = bodypart_colours(profile.n_keypoints)
    edges = []
    for a, b in profile.skeleton:
        i, j = profile.index(a), profile.index(b)
        if drawn[i] and drawn[j]:
            edges.append((i, j, bool(solid[i] and solid[j])))

    def edge(target: np.ndarray, i: int, j: int, ox: int = 0, oy: int = 0) -> None:
        p1 = (_fx(pose[i, 0] - ox), _fx(pose[i, 1] - oy))
        p2 = (_fx(pose[j, 0] - ox), _fx(pose[j, 1] - oy))
        cv2.line(target, p1, p2, line_colour, thick, cv2.LINE_AA, _SHIFT)

    def dot(target: np.ndarray, k: int, ox: int = 0, oy: int = 0) -> None:
        c = (_fx(pose[k, 0] - ox), _fx(pose[k, 1] - oy))
        cv2.circle(target, c, r * _ONE, colours[k], -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(target, c, r * _ONE, (0, 0, 0), 1, cv2.LINE_AA, _SHIFT)

    # faded parts first, drawn on a copy of their bounding box and blended in, then the
    # solid ones on top
    faded_edges = [(i, j) for i, j, ok in edges if not ok]
    faded_dots = np.flatnonzero(drawn & ~solid)
    if faded_edges or len(faded_dots):
        idx = sorted({*faded_dots.tolist(), *(k for e in faded_edges for k in e)})
        pad = r + thick + 2
        h, w = image.shape[:2]
        x0 = max(int(np.floor(pose[idx, 0].min())) - pad, 0)
        y0 = max(int(np.floor(pose[idx, 1].min())) - pad, 0)
        x1 = min(int(np.ceil(pose[idx, 0].max())) + pad + 1, w)
        y1 = min(int(np.ceil(pose[idx, 1].max())) + pad + 1, h)
        if x1 > x0 and y1 > y0:
            roi = image[y0:y1, x0:x1]
            faint = roi.copy()
            for i, j in faded_edges:
                edge(faint, i, j, x0, y0)
            for k in faded_dots:
                dot(faint, k, x0, y0)
            cv2.addWeighted(faint, st.faded_alpha, roi, 1 - st.faded_alpha, 0, dst=roi)
    for i, j, ok in edges:
        if ok:
            edge(image, i, j)
    for k in np.flatnonzero(solid):
        dot(image, k)
    return image


def draw_angles(image: np.ndarray, pose: np.ndarray, profile: Profile,
                angles: Mapping[str, float] | None = None, *,
                scale_px: float = float("nan"), style: OverlayStyle | None = None) -> np.ndarray:
    """Write each joint angle (degrees) next to its vertex keypoint, in place.

    ``angles`` defaults to :func:`compute_angles` of ``pose``; angles whose vertex is not
    solid (below pcutoff) or whose value is NaN are skipped.
    """
    st = style or OverlayStyle()
    if angles is None:
        angles = {k: float(v) for k, v in compute_angles(pose, profile).items()}
    _, solid = _visible(pose, profile.pcutoff, st)
    if not math.isfinite(scale_px):
        scale_px = compute_scale_px(pose, profile)
    r = marker_radius(scale_px, st)
    fs = _font_scale(image) * 0.8
    for name, value in angles.items():
        if name not in profile.angles or value is None or not math.isfinite(value):
            continue
        v = profile.index(profile.angles[name][1])
        if not solid[v]:
            continue
        org = (int(round(pose[v, 0])) + r + 3, int(round(pose[v, 1])) + r // 2)
        _text(image, f"{value:.0f}", org, (255, 255, 255), fs)
    return image


def draw_track_label(image: np.ndarray, pose: np.ndarray, track: TrackState, profile: Profile,
                     *, style: OverlayStyle | None = None) -> np.ndarray:
    """Draw a bird's id, step count and running features above it, in place."""
    st = style or OverlayStyle()
    drawn, _ = _visible(pose, profile.pcutoff, st)
    if not drawn.any():
        return image
    xy = pose[drawn, :2]
    x0, y0 = float(np.min(xy[:, 0])), float(np.min(xy[:, 1]))
    fs = _font_scale(image)
    lines: list[tuple[str, float, int]] = []
    if st.ids:
        lines.append((f"#{track.individual}  {track.n_steps} steps", fs, 2))
    if st.features and track.features:
        parts = _feature_lines(track.features)
        if parts:
            lines.append(("  ".join(parts[:2]), fs * 0.75, 1))
            if len(parts) > 2:
                lines.append(("  ".join(parts[2:]), fs * 0.75, 1))
    y = int(y0) - 8
    w = image.shape[1]
    for text, scale, thick in reversed(lines):
        y = max(y, int(30 * scale) + 2)
        tw = cv2.getTextSize(text, _FONT, scale, thick + 2)[0][0]
        x = int(min(max(x0, 2), max(w - tw - 2, 2)))  # keep the label inside the frame
        _text(image, text, (x, y), (255, 255, 255), scale, thick)
        y -= int(30 * scale)
    return image


def draw_stance(image: np.ndarray, pose: np.ndarray, track: TrackState, profile: Profile, *,
                style: OverlayStyle | None = None) -> np.ndarray:
    """Underline each foot that is on the ground (``track.stance``) in its leg colour."""
    st = style or OverlayStyle()
    _, solid = _visible(pose, profile.pcutoff, st)
    r = marker_radius(track.scale_px if math.isfinite(track.scale_px)
                      else compute_scale_px(pose, profile), st)
    legs = list(profile.gait.legs)
    for leg, on in track.stance.items():
        if not on or leg not in profile.gait.legs:
            continue
        k = profile.index(profile.gait.legs[leg].foot)
        if not solid[k]:
            continue
        x, y = float(pose[k, 0]), float(pose[k, 1]) + r + 3
        colour = _LEG_COLOURS[legs.index(leg) % len(_LEG_COLOURS)]
        cv2.line(image, (_fx(x - 2 * r), _fx(y)), (_fx(x + 2 * r), _fx(y)), colour,
                 max(2, r // 3), cv2.LINE_AA, _SHIFT)
    return image


def draw_footprint(image: np.ndarray, xy: tuple[float, float], colour: BGR, size: float,
                   alpha: float = 1.0, flash: float = 0.0) -> np.ndarray:
    """A bird's foot print (three toes forward, one back) at ``xy``, in place.

    ``alpha`` fades the print out; ``flash`` in [0, 1] adds an expanding ring (a strike that
    just happened).
    """
    x, y = float(xy[0]), float(xy[1])
    if not (math.isfinite(x) and math.isfinite(y)) or alpha <= 0:
        return image
    s = max(size, 3.0)
    h, w = image.shape[:2]
    pad = int(s * 2.5) + 4
    x0, y0, x1, y1 = max(int(x) - pad, 0), max(int(y) - pad, 0), min(int(x) + pad, w), \
        min(int(y) + pad, h)
    if x1 <= x0 or y1 <= y0:
        return image
    roi = image[y0:y1, x0:x1]
    layer = roi.copy()
    cx, cy = x - x0, y - y0
    th = max(1, int(round(s / 4)))
    for ang in (-35.0, 0.0, 35.0, 180.0):  # toes, measured from "forward" = up
        length = s * (0.6 if ang == 180.0 else 1.0)
        t = math.radians(ang)
        ex, ey = cx + length * math.sin(t), cy - length * math.cos(t)
        cv2.line(layer, (_fx(cx), _fx(cy)), (_fx(ex), _fx(ey)), colour, th, cv2.LINE_AA, _SHIFT)
    if flash > 0:
        rr = s * (1.0 + 1.2 * (1 - flash))
        cv2.circle(layer, (_fx(cx), _fx(cy)), _fx(rr), colour, th, cv2.LINE_AA, _SHIFT)
    a = min(max(alpha, 0.0), 1.0)
    cv2.addWeighted(layer, a, roi, 1 - a, 0, dst=roi)
    return image


def draw_score_badge(image: np.ndarray, result: PassResult, xy: tuple[float, float],
                     profile: Profile, *, alpha: float = 1.0) -> np.ndarray:
    """A filled label with a finished pass's score, coloured by :func:`score_colour`.

    The colour is on the profile's scale (``profile.score.min_score`` green ...
    ``max_score`` red); an unscored pass is grey and says why.
    """
    fs = _font_scale(image) * 1.3
    if result.scored and result.score is not None and math.isfinite(result.score):
        text = f"#{result.individual} score {result.score:.1f}"
    else:
        text = f"#{result.individual} not scored"
    colour = score_colour(result.score if result.scored else None,
                          profile.score.min_score, profile.score.max_score)
    (tw, th), base = cv2.getTextSize(text, _FONT, fs, 2)
    h, w = image.shape[:2]
    pad = 8
    bw, bh = tw + 2 * pad, th + base + 2 * pad
    x = int(min(max(xy[0] - bw / 2, 0), max(w - bw, 0))) if math.isfinite(xy[0]) else 0
    y = int(min(max(xy[1] - bh / 2, 0), max(h - bh, 0))) if math.isfinite(xy[1]) else 0
    roi = image[y:y + bh, x:x + bw]
    layer = roi.copy()
    layer[:] = colour
    lum = 0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2]
    ink = (0, 0, 0) if lum > 110 else (255, 255, 255)
    cv2.putText(layer, text, (pad, pad + th), _FONT, fs, ink, 2, cv2.LINE_AA)
    a = min(max(alpha, 0.0), 1.0)
    cv2.addWeighted(layer, a, roi, 1 - a, 0, dst=roi)
    return image


def draw_hud(image: np.ndarray, hud: Mapping[str, Any]) -> np.ndarray:
    """The heads-up line at the top: camera and its state, fps, latency, dropped frames.

    Known keys (all optional): ``camera`` (id), ``state`` (e.g. ``"live"``,
    ``"reconnecting"``), ``fps``, ``latency_ms``, ``dropped``, ``frame``; any other key is
    appended as ``key=value``. The camera state is green when live, orange otherwise.
    """
    if not hud:
        return image
    parts: list[str] = []
    if "camera" in hud:
        parts.append(str(hud["camera"]))
    if "fps" in hud and hud["fps"] is not None:
        parts.append(f"{float(hud['fps']):.1f} fps")
    if "latency_ms" in hud and hud["latency_ms"] is not None:
        parts.append(f"latency {float(hud['latency_ms']):.0f} ms")
    if "dropped" in hud and hud["dropped"] is not None:
        parts.append(f"dropped {int(hud['dropped'])}")
    if "frame" in hud and hud["frame"] is not None:
        parts.append(f"frame {int(hud['frame'])}")
    for k, v in hud.items():
        if k not in ("camera", "state", "fps", "latency_ms", "dropped", "frame"):
            parts.append(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}")
    fs = _font_scale(image) * 0.9
    (_, th), base = cv2.getTextSize("Ag", _FONT, fs, 1)
    bar = th + base + 10
    roi = image[:bar]
    roi[:] = (roi.astype(np.uint16) * 2 // 5).astype(np.uint8)  # darken, keep the picture
    x = 8
    state = hud.get("state")
    if state is not None:
        ok = str(state).lower() in ("live", "ok", "running", "connected", "playing")
        colour: BGR = (80, 220, 80) if ok else (0, 165, 255)
        label = f"[{str(state).upper()}]"
        cv2.putText(image, label, (x, th + 5), _FONT, fs, colour, 1, cv2.LINE_AA)
        x += cv2.getTextSize(label + " ", _FONT, fs, 1)[0][0]
    cv2.putText(image, "  |  ".join(parts), (x, th + 5), _FONT, fs, (255, 255, 255), 1,
                cv2.LINE_AA)
    return image


# --------------------------------------------------------------------------------------
# State across frames, and the whole-frame annotator
# --------------------------------------------------------------------------------------


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

    Time is ``frame_index / fps`` so that a result movie looks the same on every run.

    Parameters
    ----------
    profile
        The species/view profile (legs give the foot keypoints and colours).
    fps
        Frame rate of the source, to convert frame indices to seconds.
    style
        Hold times of prints and badges.
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
            t = fi / self.fps if self.fps > 0 else 0.0
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
            colour = _LEG_COLOURS[legs.index(ev.foot) % len(_LEG_COLOURS)]
            t0 = ev.strike_frame / self.fps if self.fps > 0 else self.now
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


def annotate(image: np.ndarray, poses: np.ndarray | None, profile: Profile,
             update: GaitUpdate | None = None, hud: Mapping[str, Any] | None = None,
             state: OverlayState | None = None, style: OverlayStyle | None = None,
             frame_index: int | None = None) -> np.ndarray:
    """Draw the whole overlay of one frame on a copy of ``image``.

    Parameters
    ----------
    image
        BGR ``uint8 (H, W, 3)`` (grey ``(H, W)`` is converted); never modified.
    poses
        ``(n_individuals, n_keypoints, 3)`` or ``None`` (no inference this frame).
    profile
        Bodyparts, skeleton, angles, pcutoff and the score scale.
    update
        The gait stage's output for this frame: tracks (ids, angles, running features,
        scale), step events, finished passes. Without ``state`` it is drawn for this frame
        only; with ``state`` it is first ingested (foot prints and scores then persist).
    hud
        Heads-up values (see :func:`draw_hud`).
    state
        An :class:`OverlayState` carried across frames (the caller keeps it).
    style
        :class:`OverlayStyle` (default: the state's).
    frame_index
        The frame's index, the overlay's clock (default ``update.frame_index``).

    Returns
    -------
    numpy.ndarray
        The annotated copy.
    """
    st = style or (state.style if state is not None else OverlayStyle())
    out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    if poses is not None:
        poses = np.asarray(poses)
        if poses.ndim == 2:  # one individual, as dlclive returns for single-animal models
            poses = poses[None]
        if poses.ndim != 3 or poses.shape[1:] != (profile.n_keypoints, 3):
            raise ValueError(f"annotate: expected poses of shape (n_individuals, "
                             f"{profile.n_keypoints}, 3) for profile {profile.name!r}, got "
                             f"{poses.shape}")
    if state is None:
        state = OverlayState(profile, style=st)
    state.ingest(update, poses, frame_index=frame_index)
    # foot prints under everything
    for pr in state.prints:
        age = max(state.now - pr.t, 0.0)
        fade = 1.0 - age / st.step_hold_s if st.step_hold_s > 0 else 1.0
        flash = max(0.0, 1.0 - age / 0.3)
        draw_footprint(out, pr.xy, pr.colour, pr.size, alpha=0.25 + 0.75 * fade, flash=flash)
    tracks_by_row = {t.pose_row: t for t in state.tracks if t.pose_row >= 0}
    if poses is not None:
        for row in range(len(poses)):
            pose = poses[row]
            tr = tracks_by_row.get(row)
            scale = tr.scale_px if tr is not None else float("nan")
            draw_pose(out, pose, profile, scale_px=scale, style=st)
            if st.angles and profile.angles:
                draw_angles(out, pose, profile, tr.angles if tr and tr.angles else None,
                            scale_px=scale, style=st)
            if tr is not None:
                draw_stance(out, pose, tr, profile, style=st)
                draw_track_label(out, pose, tr, profile, style=st)
    placed: list[tuple[float, float]] = []
    step_y = 2.2 * 30 * _font_scale(out)  # about one badge height
    for b in state.badges:
        age = max(state.now - b.t, 0.0)
        alpha = min(1.0, 3.0 * (1.0 - age / st.score_hold_s)) if st.score_hold_s > 0 else 1.0
        x, y = b.xy if all(math.isfinite(v) for v in b.xy) else (out.shape[1] / 2,
                                                                  out.shape[0] / 2)
        while any(abs(x - px) < 6 * step_y and abs(y - py) < step_y for px, py in placed):
            y += step_y  # stack badges of birds that left at the same place
        placed.append((x, y))
        draw_score_badge(out, b.result, (x, y), profile, alpha=alpha)
    if hud:
        draw_hud(out, hud)
    return out


# --------------------------------------------------------------------------------------
# Where the overlay goes: window and/or video
# --------------------------------------------------------------------------------------


def display_available() -> bool:
    """Whether a window can be opened: on Linux, an X11 or Wayland display is set."""
    if os.name == "nt" or os.uname().sysname == "Darwin":
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@dataclass(frozen=True)
class OverlayMode:
    """Where ``gaitlive run`` sends the overlay: a window, a video file, both or neither."""

    window: bool
    video_path: Path | None
    reason: str = ""


def choose_overlay_mode(settings: OverlaySettings, headless: bool, *,
                        out_dir: str | os.PathLike[str] = "gaitlive-out",
                        display: bool | None = None) -> OverlayMode:
    """Decide between a window and a video file for the overlay.

    Parameters
    ----------
    settings
        ``overlay.window`` (``auto``: a window when a display is available; ``on``: a
        window, an error without a display; ``off``: no window) and ``overlay.video``
        (a video path; ``""`` means ``<out_dir>/overlay.mp4`` whenever there is no window).
    headless
        ``--headless``: never a window, whatever the config says.
    out_dir
        The run's output folder.
    display
        Whether a display is available (default: :func:`display_available`).

    Returns
    -------
    OverlayMode

    Raises
    ------
    ValueError
        ``overlay.window: on`` without a display and without ``--headless``.
    """
    has_display = display_available() if display is None else display
    if headless:
        window, reason = False, "--headless"
    elif settings.window == "off":
        window, reason = False, "overlay.window: off"
    elif settings.window == "on":
        if not has_display:
            raise ValueError("overlay.window: on, but no display is available (DISPLAY is not "
                             "set); expected overlay.window: auto or off, or --headless")
        window, reason = True, "overlay.window: on"
    else:
        window = has_display
        reason = "a display is available" if has_display else "no display (DISPLAY unset)"
    if settings.video:
        video: Path | None = Path(settings.video)
    elif not window:
        video = Path(out_dir) / "overlay.mp4"
    else:
        video = None
    return OverlayMode(window=window, video_path=video, reason=reason)


def temp_path(path: Path) -> Path:
    """A unique hidden temporary name beside ``path`` (same suffix), for writing a file
    completely before renaming it into place. Created files follow the umask (unlike
    ``tempfile.mkstemp``'s private 0600)."""
    return path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.part"
                          f"{path.suffix}")


def _fourcc_for(path: Path) -> str:
    return {".avi": "MJPG", ".mkv": "mp4v", ".mov": "mp4v"}.get(path.suffix.lower(), "mp4v")


class _VideoOut:
    """A cv2.VideoWriter that opens on the first frame and keeps its size."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = fps if fps and fps > 0 else 30.0
        self.writer: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.size = (image.shape[1], image.shape[0])
            fourcc = cv2.VideoWriter_fourcc(*_fourcc_for(self.path))
            self.writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, self.size)
            if not self.writer.isOpened():
                self.writer = None
                raise ValueError(f"cannot open video file {self.path} for writing (expected "
                                 f"a writable path ending in .mp4 or .avi)")
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size)
        self.writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None


class OverlaySink:
    """Shows and/or records the overlay in its own thread.

    :meth:`submit` never blocks: when the sink's queue is full the frame is dropped
    (counted in :attr:`dropped`) but its gait events are kept, so foot prints and pass
    scores still appear on the next drawn frame. With ``window=True`` an OpenCV window shows
    the overlay; 'q' or Esc in it (or closing it) sets :attr:`quit_event`, which the pipeline
    polls to stop.

    Parameters
    ----------
    profile
        The species/view profile.
    window
        Show an OpenCV HighGUI window.
    video_path
        Write the overlay to this video file (``.mp4``: mp4v, ``.avi``: MJPG), or ``None``.
    fps
        Frame rate of the source (the video's rate and the overlay's clock).
    queue_size
        Frames waiting to be drawn before new ones are dropped.
    title
        Window title.
    style
        :class:`OverlayStyle`.
    lossless
        Never drop: :meth:`submit` waits for room in the queue instead (for offline runs,
        ``--no-realtime``, where a complete overlay movie matters more than pace).
    """

    def __init__(self, profile: Profile, window: bool, video_path: Path | None, fps: float,
                 queue_size: int = 4, *, title: str = "gaitlive",
                 style: OverlayStyle | None = None, lossless: bool = False) -> None:
        if queue_size < 1:
            raise ValueError(f"OverlaySink: expected queue_size >= 1, got {queue_size}")
        self.profile = profile
        self.window = window
        self.video_path = Path(video_path) if video_path is not None else None
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.title = title
        self.lossless = lossless
        self.state = OverlayState(profile, self.fps, style or OverlayStyle())
        self.quit_event = threading.Event()
        self.dropped = 0
        self.drawn = 0
        self.error: BaseException | None = None
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(maxsize=queue_size)
        self._missed: collections.deque[tuple[GaitUpdate, np.ndarray | None]] = \
            collections.deque(maxlen=10000)
        self._closed = False
        self._window_open = False
        self._video = _VideoOut(self.video_path, self.fps) if self.video_path else None
        self._thread = threading.Thread(target=self._loop, name="overlay", daemon=True)
        self._thread.start()

    @property
    def quit_requested(self) -> bool:
        """The user pressed 'q'/Esc or closed the window."""
        return self.quit_event.is_set()

    def submit(self, image: np.ndarray, poses: np.ndarray | None,
               update: GaitUpdate | None = None, hud: Mapping[str, Any] | None = None,
               frame_index: int | None = None) -> bool:
        """Queue a frame for drawing; never blocks (unless the sink is ``lossless``).

        Returns
        -------
        bool
            ``True`` if queued, ``False`` if dropped (the sink is busy or closed).
        """
        if self._closed or image is None:
            return False
        item = (image, poses, update, dict(hud) if hud else None, frame_index)
        try:
            if self.lossless:
                while self._thread.is_alive():
                    try:
                        self._queue.put(item, timeout=0.5)
                        return True
                    except queue.Full:
                        continue
                raise queue.Full  # the drawing thread died: count it as a drop
            self._queue.put_nowait(item)
            return True
        except queue.Full:
            self.dropped += 1
            if update is not None and (update.steps or update.passes):
                self._missed.append((update, poses))
            return False

    def _loop(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                image, poses, update, hud, frame_index = item
                fi = frame_index if frame_index is not None else (
                    update.frame_index if update is not None else None)
                # events of dropped frames that came before this one, in order
                while self._missed and (fi is None or self._missed[0][0].frame_index < fi):
                    upd, p = self._missed.popleft()
                    self.state.ingest(upd, p)
                out = annotate(image, poses, self.profile, update, hud, self.state,
                               frame_index=frame_index)
                if self._video is not None:
                    self._video.write(out)
                if self.window:
                    self._show(out)
                self.drawn += 1
        except BaseException as e:  # report to the pipeline instead of dying silently
            log.exception("overlay thread failed")
            self.error = e
            self.quit_event.set()
        finally:
            if self._video is not None:
                self._video.close()
            if self.window:
                try:
                    cv2.destroyWindow(self.title)
                    cv2.waitKey(1)
                except cv2.error:
                    pass

    def _show(self, out: np.ndarray) -> None:
        if self.quit_event.is_set():
            return
        if not self._window_open:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO
                            | cv2.WINDOW_GUI_NORMAL)
            cv2.resizeWindow(self.title, out.shape[1], out.shape[0])
            self._window_open = True
        cv2.imshow(self.title, out)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), ord("Q"), 27):
            log.info("overlay: quit requested from the window")
            self.quit_event.set()
            return
        try:
            if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                log.info("overlay: window closed")
                self.quit_event.set()
        except cv2.error:
            self.quit_event.set()

    def close(self, timeout: float = 10.0) -> None:
        """Draw what is queued, close the window and finish the video file."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("overlay thread did not finish within %.1f s", timeout)

    def __enter__(self) -> OverlaySink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------
# Result movies
# --------------------------------------------------------------------------------------


def _records(items: Any) -> list[dict[str, Any]]:
    """Steps/passes given as dataclasses, dicts or a pandas DataFrame -> list of dicts."""
    if items is None:
        return []
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
        Step events (:class:`StepEvent`, dicts or a DataFrame with the ``_steps.csv``
        columns ``individual, pass_id, foot, strike_frame, lift_frame``): a foot print at
        each strike.
    passes
        Finished passes (:class:`PassResult` or ``_passes.csv`` rows): the bird's id, step
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
    pending = sorted(results, key=lambda r: r.start_frame)
    active: list[PassResult] = []
    rows = {(r.individual, r.pass_id): pass_pose_row(series, index, r.individual,
                                                     r.start_frame, r.end_frame,
                                                     profile.pcutoff, names)
            for r in results}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(out_path)
    out = _VideoOut(tmp, fps)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_video or None, unit="frame", desc=out_path.name)
    try:
        f = 0
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
            raise ValueError(f"write_labelled_video: no frame could be read from {video_path}")
        if len(index) and f <= int(np.max(index)):
            log.warning("%s has %d frames but the poses go to frame %d", video_path, f,
                        int(np.max(index)))
        out.close()
        os.replace(tmp, out_path)
    except BaseException:
        out.close()
        tmp.unlink(missing_ok=True)
        raise
    finally:
        cap.release()
        if bar is not None:
            bar.close()
    log.info("wrote %s (%d frames)", out_path, f)
    return out_path


# --------------------------------------------------------------------------------------
# Remote viewer (gaitlive view)
# --------------------------------------------------------------------------------------


@dataclass
class ViewStats:
    """What a :class:`RemoteViewer` run did."""

    frames_received: int = 0
    poses_received: int = 0
    steps_received: int = 0
    passes_received: int = 0
    rendered: int = 0
    with_pose: int = 0
    camera_id: str | None = None
    quit_by_user: bool = False
    lost: dict[str, int] = field(default_factory=dict)
    malformed: int = 0


class RemoteViewer:
    """Draws the overlay of a remote ``gaitlive run`` from its published messages.

    Subscribes to ``frame`` (JPEG images), ``pose``, ``step``, ``pass`` and ``status`` of
    one camera and draws the poses, foot prints and scores over the frames, as the live
    overlay does. A frame is drawn once its own poses have arrived or the next frame comes
    (then with the newest poses not after it). Without ``frame`` messages (``publish.jpeg``
    off) the poses are drawn on a dark canvas.

    Parameters
    ----------
    endpoint
        The publisher (or relay backend), e.g. ``tcp://barn-pc:5556``.
    profile
        The profile the remote pipeline runs (bodyparts, skeleton, angles, score scale).
    camera
        Camera id; ``None``: the first camera heard from.
    window
        Show an OpenCV window ('q'/Esc quits).
    out_path
        Also write the drawn frames to this video file.
    fps
        Frame rate of the stream (video rate and overlay clock); default: the ``fps`` in the
        publisher's status, else 30.
    draw
        ``False`` shows the frames as received (when the publisher already drew on them;
        a frame body with ``"drawn": true`` is always shown as received).
    security
        CURVE client settings (:class:`gaitlive.publish.keys.ClientSecurity`) or ``None``.
    canvas_size
        ``(width, height)`` of the dark canvas used when no frames arrive.
    """

    def __init__(self, endpoint: str, profile: Profile, *, camera: str | None = None,
                 window: bool = True, out_path: Path | None = None, fps: float | None = None,
                 draw: bool = True, security: Any = None,
                 canvas_size: tuple[int, int] = (640, 480), title: str = "gaitlive view"
                 ) -> None:
        from gaitlive.publish.subscriber import Subscriber

        self.profile = profile
        self.window = window
        self.out_path = Path(out_path) if out_path is not None else None
        self.fixed_fps = fps
        self.draw = draw
        self.title = title
        self.canvas_size = canvas_size
        self.sub = Subscriber(endpoint, ("frame", "pose", "step", "pass", "status"), camera,
                              security=security)
        self.camera = camera
        self.stats = ViewStats(camera_id=camera)
        self.state = OverlayState(profile, fps or 30.0)
        self.hud: dict[str, Any] = {"camera": camera or "?", "state": "waiting"}
        self._poses: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()
        self._steps: list[StepEvent] = []
        self._passes: list[PassResult] = []
        self._pending: tuple[int, np.ndarray] | None = None
        self._last_frame_t = time.monotonic()  # poses wait 1 s for frames, then a canvas
        self._last_size: tuple[int, int] | None = None
        self._video: _VideoOut | None = None
        self._window_open = False
        self._recv_times: collections.deque[float] = collections.deque(maxlen=60)
        self._style_plain = dataclass_replace(self.state.style, ids=False, features=False)
        #: the last image drawn (shown and/or written)
        self.last_output: np.ndarray | None = None
        self._closed = False

    # ---------------------------------------------------------------- messages
    def handle(self, msg: Any) -> None:
        """Take one decoded message (:class:`gaitlive.publish.messages.Message`)."""
        if self.camera is None:
            self.camera = msg.camera_id
            self.stats.camera_id = msg.camera_id
            self.hud["camera"] = msg.camera_id
            log.info("view: showing camera %s", msg.camera_id)
        if msg.camera_id != self.camera:
            return
        kind, body = msg.kind, msg.body
        if kind == "status":
            self.hud["state"] = body.get("state", "running")
            for key in ("fps", "latency_ms"):
                if isinstance(body.get(key), (int, float)):
                    self.hud[key] = float(body[key])
                    self.hud.pop("view fps", None)
            for key in ("dropped", "drops"):
                if isinstance(body.get(key), (int, float)):
                    self.hud["dropped"] = int(body[key])
            fps = body.get("fps")
            if self.fixed_fps is None and isinstance(fps, (int, float)) and fps > 0:
                self.state.fps = float(fps)
        elif kind == "pose":
            self.stats.poses_received += 1
            f = int(body["frame"])
            self._poses[f] = np.asarray(body["poses"])
            while len(self._poses) > 256:
                self._poses.popitem(last=False)
            if self._pending is not None and self._pending[0] == f:
                self._render(*self._pending)
                self._pending = None
            elif time.monotonic() - self._last_frame_t > 1.0:  # no images: a canvas
                w, h = self._last_size or self.canvas_size
                self._render(f, np.full((h, w, 3), 24, np.uint8))
        elif kind == "step":
            self.stats.steps_received += 1
            self._steps.append(msg.step())
        elif kind == "pass":
            self.stats.passes_received += 1
            self._passes.append(msg.pass_result())
        elif kind == "frame":
            self.stats.frames_received += 1
            img = cv2.imdecode(np.frombuffer(body["jpeg"], np.uint8), cv2.IMREAD_COLOR)
            if img is None:
                log.warning("view: frame %s is not a decodable JPEG", body.get("frame"))
                return
            self._last_frame_t = time.monotonic()
            self._last_size = (img.shape[1], img.shape[0])
            if self._pending is not None:
                self._render(*self._pending)
            if body.get("drawn") is True:  # the publisher drew the overlay already
                self._render(int(body["frame"]), img, drawn=True)
                return
            self._pending = (int(body["frame"]), img)
            if not self.draw or int(body["frame"]) in self._poses:
                self._render(*self._pending)
                self._pending = None

    def _pose_for(self, f: int) -> np.ndarray | None:
        if f in self._poses:
            return self._poses[f]
        older = [k for k in self._poses if f - 3 <= k < f]
        return self._poses[max(older)] if older else None

    def _render(self, f: int, img: np.ndarray, drawn: bool = False) -> None:
        now = time.monotonic()
        self._recv_times.append(now)
        if "fps" not in self.hud and len(self._recv_times) > 1:
            span = self._recv_times[-1] - self._recv_times[0]
            if span > 0:
                self.hud["view fps"] = round((len(self._recv_times) - 1) / span, 1)
        if self.draw and not drawn:
            poses = self._pose_for(f)
            tracks = []
            if poses is not None:
                self.stats.with_pose += 1
                ids = {e.individual for e in self._steps} | {p.individual for p in self._passes}
                ids |= set(range(len(poses)))
                tracks = [TrackState(individual=i, pass_id=-1, pose_row=i, complete=False)
                          for i in sorted(ids) if 0 <= i < len(poses)]
            upd = GaitUpdate(f, tracks, self._steps, self._passes)
            self._steps, self._passes = [], []
            lost = self.sub.lost.get("frame", 0) + self.sub.lost.get("pose", 0)
            hud = dict(self.hud, **({"lost": lost} if lost else {}))
            out = annotate(img, poses, self.profile, upd, hud, self.state,
                           style=self._style_plain)
        else:
            out = img
        self.last_output = out
        self.stats.rendered += 1
        if self.out_path is not None:
            if self._video is None:
                self._video = _VideoOut(self.out_path, self.fixed_fps or self.state.fps)
            self._video.write(out)
        if self.window:
            if not self._window_open:
                cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO
                                | cv2.WINDOW_GUI_NORMAL)
                cv2.resizeWindow(self.title, out.shape[1], out.shape[0])
                self._window_open = True
            cv2.imshow(self.title, out)
            if cv2.waitKey(1) & 0xFF in (ord("q"), ord("Q"), 27):
                self.stats.quit_by_user = True

    # ---------------------------------------------------------------- loop
    def run(self, duration_s: float | None = None, max_frames: int | None = None,
            idle_timeout_s: float | None = None) -> ViewStats:
        """Receive and draw until ``duration_s`` passed, ``max_frames`` were drawn, nothing
        arrived for ``idle_timeout_s``, or the user quit the window."""
        start = last_msg = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                if duration_s is not None and now - start >= duration_s:
                    break
                if idle_timeout_s is not None and now - last_msg >= idle_timeout_s:
                    log.info("view: nothing received for %.1f s", idle_timeout_s)
                    break
                if max_frames is not None and self.stats.rendered >= max_frames:
                    break
                if self.stats.quit_by_user:
                    break
                msg = self.sub.recv(timeout_s=0.05)
                if msg is not None:
                    last_msg = time.monotonic()
                    self.handle(msg)
                elif self.window:
                    if self._window_open and (cv2.waitKey(1) & 0xFF) in (ord("q"), ord("Q"), 27):
                        self.stats.quit_by_user = True
                    if self._window_open and cv2.getWindowProperty(
                            self.title, cv2.WND_PROP_VISIBLE) < 1:
                        self.stats.quit_by_user = True
            if self._pending is not None and (max_frames is None
                                              or self.stats.rendered < max_frames):
                self._render(*self._pending)
                self._pending = None
        finally:
            self.close()
        return self.stats

    def close(self) -> None:
        """Finish the video file, close the window and the socket (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._video is not None:
            self._video.close()
        if self._window_open:
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass
            self._window_open = False
        self.stats.lost = {k: v for k, v in self.sub.lost.items() if v}
        self.stats.malformed = self.sub.malformed
        self.sub.close()

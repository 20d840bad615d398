"""Drawing the overlay: small functions that draw one thing in place on a BGR ``uint8``
image (``draw_pose``, ``draw_angles``, ``draw_track_label``, ``draw_stance``,
``draw_footprint``, ``draw_score_badge``, ``draw_hud``) and :func:`annotate`, which draws a
whole frame on a *copy* (supervision style: ``annotate(frame, ...) -> frame``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from gaitlive.config import Profile
from gaitlive.gait.events import GaitUpdate, PassResult, TrackState
from gaitlive.overlay.geometry import compute_angles, compute_scale_px
from gaitlive.overlay.state import OverlayState
from gaitlive.overlay.style import (
    BGR,
    OverlayStyle,
    bodypart_colours,
    leg_colour,
    marker_radius,
    score_colour,
)

__all__ = ["annotate", "draw_angles", "draw_footprint", "draw_hud", "draw_pose",
           "draw_score_badge", "draw_stance", "draw_track_label"]

_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT
_FONT = cv2.FONT_HERSHEY_SIMPLEX
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
        colour = leg_colour(legs, leg)
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

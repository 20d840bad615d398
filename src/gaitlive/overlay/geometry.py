"""Pose geometry the overlay needs: a bird's size in pixels and its joint angles."""

from __future__ import annotations

import math

import numpy as np

from gaitlive.config import Profile

__all__ = ["compute_angles", "compute_scale_px"]


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

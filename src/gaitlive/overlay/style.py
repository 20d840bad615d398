"""How the overlay looks: :class:`OverlayStyle`, colours (bodyparts, legs, gait scores) and
marker sizes."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["BGR", "LEG_COLOURS", "OverlayStyle", "bodypart_colours", "leg_colour",
           "marker_radius", "score_colour"]

BGR = tuple[int, int, int]

#: colours of the legs (foot prints, stance marks), in the profile's leg order
LEG_COLOURS: tuple[BGR, ...] = ((255, 200, 0), (255, 0, 220), (0, 200, 255), (120, 255, 120))


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


def leg_colour(legs: list[str], leg: str) -> BGR:
    """The colour of ``leg``, one of the profile's ``legs`` (in order)."""
    return LEG_COLOURS[legs.index(leg) % len(LEG_COLOURS)]

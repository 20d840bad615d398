"""Gait features of a pass (or of a rolling window) from its history and its steps.

All distances are divided by the image scale (one leg length in pixels, from the
profile's ``scale_segments``), all times are in seconds, so the features do not depend on
the distance to the camera. Names use the profile's leg names (``left``/``right`` for
birds, ``LF``/``RF``/``LH``/``RH`` for cows); ``<a>_<b>`` features belong to a leg pair.

Features
--------
cadence_hz
    Steps per second: ``2 / mean stride time``, the strike-to-strike times of every leg
    pooled (two steps per stride, so a cow's four legs count like a bird's two). Strides
    over 1.6 times the median (a stance missed) or under 0.6 times it (a stance split in
    two) are left out.
stance_fraction_<leg>, swing_fraction_<leg>
    Stance duration / stride duration (duty factor), mean over the strides.
stride_time_<leg>
    Median strike-to-strike time, seconds.
step_length_<leg>
    Distance from the other foot's stance position to this foot's next stance position,
    in leg lengths (image plane; foreshortened in the rear view); only where the other
    foot's stance began after this foot's previous strike (no step over a missed stance),
    or, for a foot's first stance, within 0.8 of a median stride before it.
step_height_<leg>
    Largest distance of the swinging foot from the straight line between its two stance
    positions (the foot lift), in leg lengths.
hock_angle_ds_<leg>
    Mean angle at this leg's hock (a profile angle whose vertex is the hock) during double
    support of its pair, degrees.
double_support_<a>_<b>
    Fraction of the pair's stepping time with both feet on the ground, over the strides
    that both feet's stances cover (not the ends of a pass, where the other foot's
    unfinished stance is not listed, nor strides over a missed stance).
hock_feet_ratio_<a>_<b>
    Median of distance(hocks) / distance(feet) over the frames where the feet are apart
    (Fodor et al. 2023: lame birds walk with hocks close and feet wide; rear view).
lateral_sway
    Std of the body centre across the direction of travel (detrended), leg lengths; the
    sideways sway in the rear view, the vertical bob in the side view. The direction of
    travel is the least-squares trend of the body track, or the image's y axis when the
    bird moves less than ``MIN_TRAVEL`` leg lengths/s in the image.
head_bob
    Std of the head position relative to the body centre (detrended), leg lengths.
speed_leg_s
    Body centre speed in the image plane, leg lengths per second (in the rear view the
    bird walks away and this is small).
angle_mean_<name>, angle_rom_<name>
    Mean and range of motion (5th-95th percentile) of each profile angle, degrees.
stopped_s
    Time the bird stood still: stretches with every leg standing for longer than the
    longest accepted stride (1.6 x the median). ``lateral_sway``, ``head_bob``,
    ``speed_leg_s`` and the angles are measured without them (a bird that pauses in the
    corridor walks no slower and sways no less for it), on a clock that runs on without
    them.
asym_<feature>_<a>_<b>
    Left/right asymmetry of each per-leg feature: ``|f_a - f_b| / mean(f_a, f_b)``.
"""

from __future__ import annotations

import bisect
import logging
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gaitlive.gait.kernels import HIST_FIXED

log = logging.getLogger(__name__)

__all__ = ["HistoryLayout", "compute_pass_features", "stance_foothold", "PER_LEG_FEATURES"]

# image-plane body speed (leg lengths/s) below which the direction of travel is taken as
# the image's y axis (a bird walking straight away from a rear camera)
MIN_TRAVEL = 0.1
# residuals of sway and head bob beyond this many robust sigmas are clipped (gross misses)
OUTLIER_K = 3.0
PER_LEG_FEATURES = ("stance_fraction", "swing_fraction", "stride_time", "step_length",
                    "step_height", "hock_angle_ds")


@dataclass(frozen=True)
class HistoryLayout:
    """Column positions in a history array (see :mod:`gaitlive.gait.kernels`)."""

    legs: tuple[str, ...]
    angles: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]
    # for each leg, the index (into ``angles``) of the angle at its hock, or -1
    hock_angle: tuple[int, ...]

    def foot(self, leg: int) -> slice:
        c = HIST_FIXED + 4 * leg
        return slice(c, c + 2)

    def hock(self, leg: int) -> slice:
        c = HIST_FIXED + 4 * leg + 2
        return slice(c, c + 2)

    def angle(self, j: int) -> int:
        return HIST_FIXED + 4 * len(self.legs) + j


# plain-Python versions of the statistics for short Python lists (the per-stride values of
# the live rolling features: much cheaper than numpy's per-call overhead)
_PY_STAT = {np.median: statistics.median, np.mean: statistics.fmean, np.max: max}


def stance_foothold(hist: np.ndarray, layout: HistoryLayout, leg: int, a: int, b: int
                    ) -> np.ndarray:
    """Median position of ``leg``'s foot over frames a..b of a pass history whose first row
    is frame ``hist[0, 0]`` (the foothold of a stance); NaN where the foot was never seen."""
    f0 = hist[0, 0] if len(hist) else 0.0
    lo, hi = max(0, int(a - f0)), min(len(hist), int(b - f0) + 1)
    p = hist[lo:hi, layout.foot(leg)]
    p = p[np.isfinite(p).all(axis=1)]
    return np.median(p, axis=0) if len(p) else np.array([np.nan, np.nan])


def _nanstat(fn, a, default=np.nan):
    if isinstance(a, list) and fn in _PY_STAT:
        v = [x for x in a if math.isfinite(x)]
        return float(_PY_STAT[fn](v)) if v else default
    a = np.asarray(a, dtype=np.float64)
    if a.size == 0:
        return default
    a = a[np.isfinite(a)]
    return float(fn(a)) if a.size else default


def _both_down(sa: Sequence[tuple[int, int]], sb: Sequence[tuple[int, int]]
               ) -> list[tuple[int, int]]:
    """The frame intervals ``(first, last)`` when both legs stand, from each leg's stances
    ``(strike, lift)`` in time order (one merge pass; plain Python: a few stances)."""
    out = []
    i = j = 0
    while i < len(sa) and j < len(sb):
        lo, hi = max(sa[i][0], sb[j][0]), min(sa[i][1], sb[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if sa[i][1] < sb[j][1]:
            i += 1
        else:
            j += 1
    return out


def _all_down(steps: Sequence[Sequence[tuple[int, int]]]) -> list[tuple[int, int]]:
    """The frame intervals ``(first, last)`` when every leg stands (complete stances)."""
    if not steps or any(not st for st in steps):
        return []
    down = list(steps[0])
    for st in steps[1:]:
        down = _both_down(down, st)
    return down


def _double_support(sa: Sequence[tuple[int, int]], sb: Sequence[tuple[int, int]],
                    min_period: float, max_period: float
                    ) -> tuple[float, list[tuple[int, int]]]:
    """Double support of a leg pair from their stances ``(strike, lift)``.

    Counted over the strides of each leg (``min_period .. max_period`` frames) that the
    other leg's stances cover with accepted strides too: at the ends of a pass the other
    foot's unfinished stance is not listed, and over a missed stance it would count as
    swing. Without such a stride, over the frames from the later first strike to the
    earlier last lift.

    Returns
    -------
    tuple
        The fraction of time with both feet down (NaN if none is covered) and the
        intervals ``(first, last)`` with both feet down.
    """
    both = _both_down(sa, sb)

    def n_down(a: int, b: int) -> int:  # frames a..b-1 with both feet down
        return sum(max(0, min(hi, b - 1) - max(lo, a) + 1) for lo, hi in both
                   if lo < b and hi >= a)

    n_both = n_tot = 0
    for mine, other in ((sa, sb), (sb, sa)):
        ostrikes = [s for s, _l in other]
        # the other's strides that are not accepted (a missed or split stance)
        bad = [not min_period <= q - p <= max_period
               for p, q in zip(ostrikes[:-1], ostrikes[1:], strict=True)]
        for (s0, _l0), (s1, _l1) in zip(mine[:-1], mine[1:], strict=True):
            if not min_period <= s1 - s0 <= max_period:
                continue
            i0 = bisect.bisect_right(ostrikes, s0) - 1  # the other's strike at or before s0
            i1 = bisect.bisect_left(ostrikes, s1)  # ... at or after s1
            if i0 < 0 or i1 >= len(ostrikes) or any(bad[i0:i1]):
                continue
            n_both += n_down(s0, s1)
            n_tot += s1 - s0
    if n_tot:
        return n_both / n_tot, both
    a0, a1 = max(sa[0][0], sb[0][0]), min(sa[-1][1], sb[-1][1])
    if a1 < a0:
        return np.nan, both
    return n_down(a0, a1 + 1) / (a1 - a0 + 1), both


def _detrended_std(t: np.ndarray, v: np.ndarray) -> float:
    """Std of ``v`` about its linear trend in ``t``, with residuals beyond ``OUTLIER_K``
    robust sigmas (1.4826 x their median absolute deviation) clipped there: a pose model's
    few gross misses (a head put on another bird) do not make a bob, while a clean periodic
    signal (at most 1.5 of its robust sigmas from its median) is measured exactly."""
    ok = np.isfinite(v)
    if ok.sum() < 5:
        return np.nan
    p = np.polyfit(t[ok], v[ok], 1)
    r = v[ok] - np.polyval(p, t[ok])
    med = float(np.median(r))
    sig = 1.4826 * float(np.median(np.abs(r - med)))
    if sig > 0.0:
        r = np.clip(r, med - OUTLIER_K * sig, med + OUTLIER_K * sig)
    return float(np.std(r))


def compute_pass_features(hist: np.ndarray, layout: HistoryLayout,
                          steps: Sequence[Sequence[tuple[int, int]]], fps: float,
                          light: bool = False) -> dict[str, float]:
    """Compute every gait feature of a pass (or a window of one).

    Parameters
    ----------
    hist
        History rows of the pass, one per frame (column 0 is the frame index).
    layout
        Where each quantity is in ``hist``.
    steps
        For each leg, its complete stances ``(strike_frame, lift_frame)`` in time order.
    fps
        Frames per second.
    light
        Only the step-timing features (cadence, stance/swing fraction, stride time,
        double support and their asymmetries): what the live stage updates at every step.

    Returns
    -------
    dict
        Feature name -> value (NaN when it cannot be computed from this pass).
    """
    out: dict[str, float] = {}
    legs = layout.legs
    frames = hist[:, 0]
    f0 = frames[0] if len(frames) else 0.0
    # the median scale serves the distance features (not the light ones)
    scale = _nanstat(np.median, hist[:, 1]) if not light else np.nan
    out["duration_s"] = float(len(frames) / fps)
    # rows are consecutive frames (the stage writes one per frame)
    row_of = {int(f): i for i, f in enumerate(frames)} if not light else {}

    def scale_at(f: int) -> float:
        i = row_of.get(f)
        s = hist[i, 1] if i is not None else np.nan
        return float(s) if np.isfinite(s) else scale

    # a stride more than 1.6 times the median stride has a missed stance in it, one less
    # than 0.6 times the median a stance split in two: skip them
    periods = [b[0] - a[0] for st in steps for a, b in zip(st[:-1], st[1:], strict=True)]
    med_period = statistics.median(periods) if periods else np.nan
    max_period = 1.6 * float(med_period) if periods else np.inf
    min_period = 0.6 * float(med_period) if periods else 0.0
    per_leg: dict[str, list[float]] = {k: [] for k in PER_LEG_FEATURES}
    stance_pos = [[stance_foothold(hist, layout, i, a, b) for a, b in steps[i]] if not light
                  else []
                  for i in range(len(legs))]
    for i in range(len(legs)):
        st = steps[i]
        fr, strides, heights = [], [], []
        for j in range(len(st) - 1):
            (s0, l0), (s1, _) = st[j], st[j + 1]
            period = s1 - s0
            if period <= 0 or period > max_period or period < min_period:
                continue
            strides.append(period / fps)
            fr.append((l0 - s0 + 1) / period)
            if light:
                continue
            # swing from l0 to s1: bulge of the foot path off the chord between stances
            p0, p1 = stance_pos[i][j], stance_pos[i][j + 1]
            rows = [row_of[f] for f in range(l0 + 1, s1) if f in row_of]
            chord = p1 - p0
            n = np.hypot(*chord)
            if rows and np.isfinite(n):
                d = hist[rows, layout.foot(i)] - p0
                if n > 0:
                    dist = np.abs(d[:, 0] * chord[1] - d[:, 1] * chord[0]) / n
                else:
                    dist = np.hypot(d[:, 0], d[:, 1])
                h = _nanstat(np.max, dist)
                heights.append(h / scale_at(l0))
        sf = _nanstat(np.mean, fr)
        per_leg["stance_fraction"].append(sf)
        per_leg["swing_fraction"].append(1.0 - sf)
        stt = _nanstat(np.median, strides)
        per_leg["stride_time"].append(stt)
        per_leg["step_height"].append(_nanstat(np.median, heights))
    # step length, double support, hock angle at double support: per pair
    step_len: dict[int, list[float]] = {i: [] for i in range(len(legs))}
    hock_ds: dict[int, list[float]] = {i: [] for i in range(len(legs))}
    pair_feats: dict[str, float] = {}
    for a_name, b_name in layout.pairs:
        a, b = legs.index(a_name), legs.index(b_name)
        for me, other in ((a, b), (b, a)) if not light else ():
            for j, (s, _l) in enumerate(steps[me]):
                prev = [so for so, _lo in steps[other] if so < s]
                if not prev:
                    continue
                # a step is from the other foot's stance that began after this foot's
                # previous strike (the one before: a missed stance, a stride and a half)
                if j > 0 and prev[-1] <= steps[me][j - 1][0]:
                    continue
                if j == 0 and s - prev[-1] > 0.8 * med_period:
                    continue
                d = stance_pos[me][j] - stance_pos[other][len(prev) - 1]
                step_len[me].append(float(np.hypot(*d)) / scale_at(s))
        if steps[a] and steps[b]:
            ds, both = _double_support(steps[a], steps[b], min_period, max_period)
            pair_feats[f"double_support_{a_name}_{b_name}"] = ds
            if light:
                continue
            ds_rows = [row_of[f] for lo, hi in both for f in range(lo, hi + 1) if f in row_of]
            for me in (a, b):
                j = layout.hock_angle[me]
                if j >= 0 and ds_rows:
                    hock_ds[me].append(_nanstat(np.mean, hist[ds_rows, layout.angle(j)]))
        else:
            pair_feats[f"double_support_{a_name}_{b_name}"] = np.nan
        if light:
            continue
        # hock-feet distance ratio
        dh = hist[:, layout.hock(a)] - hist[:, layout.hock(b)]
        df = hist[:, layout.foot(a)] - hist[:, layout.foot(b)]
        dh = np.hypot(dh[:, 0], dh[:, 1])
        dfn = np.hypot(df[:, 0], df[:, 1])
        ok = np.isfinite(dh) & np.isfinite(dfn) & (dfn > 0.05 * scale)
        pair_feats[f"hock_feet_ratio_{a_name}_{b_name}"] = (
            float(np.median(dh[ok] / dfn[ok])) if ok.any() else np.nan)
    for i in range(len(legs)):
        per_leg["step_length"].append(_nanstat(np.median, step_len[i]))
        per_leg["hock_angle_ds"].append(_nanstat(np.mean, hock_ds[i]))

    # steps per second: two steps per stride, over the strides of every leg pooled (each
    # leg's own strike-to-strike times, so a stance missed at one end of one foot's track
    # does not stretch the time the others' strikes are counted over)
    ok_periods = [p for p in periods if min_period <= p <= max_period and p > 0]
    out["cadence_hz"] = (float(2.0 * fps * len(ok_periods) / sum(ok_periods)) if ok_periods
                         else np.nan)
    for name in PER_LEG_FEATURES:
        for i, leg in enumerate(legs):
            out[f"{name}_{leg}"] = float(per_leg[name][i])
    out.update(pair_feats)
    if light:
        for a_name, b_name in layout.pairs:
            for name in ("stance_fraction", "swing_fraction", "stride_time"):
                fa, fb = out[f"{name}_{a_name}"], out[f"{name}_{b_name}"]
                m = 0.5 * (abs(fa) + abs(fb))
                out[f"asym_{name}_{a_name}_{b_name}"] = (
                    float(abs(fa - fb) / m) if np.isfinite(m) and m > 0 else np.nan)
        return {k: v for k, v in out.items()
                if not k.startswith(("step_length", "step_height", "hock_angle"))}
    # the rest is measured while the bird walks: a stop (every leg standing for longer than
    # the longest accepted stride) is left out, and the clock runs on without it
    walk = np.ones(len(frames), bool)
    for lo, hi in _all_down(steps):
        if hi - lo + 1 > max_period:
            walk[(frames >= lo) & (frames <= hi)] = False
    out["stopped_s"] = float((~walk).sum() / fps)
    t = ((frames - f0) - np.cumsum(~walk)) / fps
    if not walk.all():  # the bird's size while it walks (it may stop near or far)
        scale = _nanstat(np.median, hist[walk, 1])
    body = np.where(walk[:, None], hist[:, 2:4], np.nan)
    ok = np.isfinite(body).all(axis=1)
    if ok.sum() >= 5 and np.isfinite(scale):
        disp = body[ok][-1] - body[ok][0]
        dur = (t[ok][-1] - t[ok][0]) or np.nan
        out["speed_leg_s"] = float(np.hypot(*disp) / dur / scale)
        # direction of travel: the trend of the body track (a least-squares line in time,
        # which a periodic sway hardly tilts; the track's principal axis is the sway itself
        # when a bird walking away from the camera hardly moves in the image); below
        # MIN_TRAVEL leg lengths/s in the image the bird sways across the image's x axis
        vx = np.polyfit(t[ok], body[ok, 0], 1)[0]
        vy = np.polyfit(t[ok], body[ok, 1], 1)[0]
        v = math.hypot(vx, vy)
        ux, uy = (vx / v, vy / v) if v > MIN_TRAVEL * scale else (0.0, 1.0)
        across = body[:, 0] * -uy + body[:, 1] * ux
        out["lateral_sway"] = _detrended_std(t, across) / scale
    else:
        out["speed_leg_s"] = np.nan
        out["lateral_sway"] = np.nan
    rel = hist[:, 4:6] - body
    bob = [_detrended_std(t, rel[:, 0]), _detrended_std(t, rel[:, 1])]
    out["head_bob"] = float(np.hypot(*bob) / scale) if np.isfinite(bob).all() else np.nan
    for j, name in enumerate(layout.angles):
        col = hist[walk, layout.angle(j)]
        out[f"angle_mean_{name}"] = _nanstat(np.mean, col)
        out[f"angle_rom_{name}"] = _nanstat(lambda v: np.percentile(v, 95) - np.percentile(v, 5),
                                            col)
    for a_name, b_name in layout.pairs:
        for name in PER_LEG_FEATURES:
            fa, fb = out[f"{name}_{a_name}"], out[f"{name}_{b_name}"]
            m = 0.5 * (abs(fa) + abs(fb))
            out[f"asym_{name}_{a_name}_{b_name}"] = (
                float(abs(fa - fb) / m) if np.isfinite(m) and m > 0 else np.nan)
    return out

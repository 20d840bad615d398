"""Plain numpy reference of the gait kernels (:mod:`gaitlive.gait.kernels`).

Same maths, same arguments, same in-place outputs, written for clarity with vectorised
numpy instead of loops. The tests run both on random poses and edge cases and require
equal results; ``tools/bench_gait.py`` times both.
"""

from __future__ import annotations

import warnings

import numpy as np

from gaitlive.gait.kernels import (
    CP_K,
    CP_K_LIFT,
    DRIFT_K,
    F_NOISE,
    F_NOISE_N,
    F_PEAK,
    F_SCALE,
    HIST_FIXED,
    I_CAND,
    I_CAND_LEN,
    I_CAND_START,
    I_SEEN_SWING,
    I_STATE,
    I_STRIKE,
    MAX_EXTEND,
    MAX_EXTEND_LIFT,
    MAX_SHIFT,
    MAX_SHIFT_LIFT,
    N_FSTATE,
    NOISE_GATE_REL,
    NOISE_K,
    NOISE_N_MAX,
    SPREAD,
    STANCE,
    SWING,
    UNKNOWN,
)

__all__ = ["skeleton_frame_ref", "gait_frame_ref"]


def _present_mask(pose: np.ndarray, pcutoff: float) -> np.ndarray:
    return (pose[:, 2] >= pcutoff) & np.isfinite(pose[:, 0]) & np.isfinite(pose[:, 1])


def skeleton_frame_ref(pose: np.ndarray, pcutoff: float, required_idx: np.ndarray,
                       angle_idx: np.ndarray, seg_idx: np.ndarray, n_scale_legs: float,
                       out_angles: np.ndarray, out_ratios: np.ndarray
                       ) -> tuple[int, bool, float]:
    """numpy version of :func:`gaitlive.gait.kernels.skeleton_frame`."""
    ok = _present_mask(pose, pcutoff)
    xy = pose[:, :2].astype(np.float64)
    n_present = int(ok.sum())
    complete = bool(np.all(ok[required_idx])) if len(required_idx) else True
    if len(angle_idx):
        a, v, c = angle_idx[:, 0], angle_idx[:, 1], angle_idx[:, 2]
        u = xy[a] - xy[v]
        w = xy[c] - xy[v]
        valid = ok[a] & ok[v] & ok[c] & np.any(u != 0, axis=1) & np.any(w != 0, axis=1)
        with np.errstate(invalid="ignore"):  # (missing or infinite points: masked below)
            cross = np.abs(u[:, 0] * w[:, 1] - u[:, 1] * w[:, 0])
            dot = np.sum(u * w, axis=1)
            out_angles[:] = np.where(valid, np.degrees(np.arctan2(cross, dot)), np.nan)
    scale = np.nan
    if len(seg_idx):
        a, b = seg_idx[:, 0], seg_idx[:, 1]
        valid = ok[a] & ok[b]
        lengths = np.where(valid, np.linalg.norm(xy[a] - xy[b], axis=1), np.nan)
        total = np.nansum(lengths)
        if valid.any() and total > 0:
            scale = total * len(seg_idx) / valid.sum() / n_scale_legs
        out_ratios[:] = lengths / scale
    return n_present, complete, float(scale)


def _dev_ref(ring: np.ndarray, f: int, half: int, k: float, leg: int, anchor: np.ndarray,
             sig2: float, floor2: float, fmin: int, fmax: int) -> float:
    """numpy version of :func:`gaitlive.gait.kernels._dev`."""
    R = ring.shape[0]
    half = half if k * sig2 > floor2 else 0
    frames = [g for g in range(f - half, f + half + 1) if fmin <= g <= fmax]
    p = ring[np.array(frames, dtype=np.int64) % R, leg] if frames else np.zeros((0, 2))
    p = p[np.isfinite(p).all(axis=1)]
    if len(p) == 0:
        return 0.0
    d = p.sum(axis=0) / len(p) - anchor
    c = max(k * sig2 / len(p), floor2)
    return float(min(d[0] * d[0] + d[1] * d[1] - c, c))


def _strike_cp_ref(ring, leg, anchor, lo, hi, sig2, floor2, fmin, fmax) -> int:
    """Strike change point: argmin over k in [lo, hi] of the suffix sum up to hi; trailing
    frames without a foot position are not candidates."""
    while hi > lo and not np.isfinite(ring[hi % ring.shape[0], leg]).all():
        hi -= 1
    g = [_dev_ref(ring, f, 1, CP_K, leg, anchor, sig2, floor2, fmin, fmax)
         for f in range(hi, lo - 1, -1)]
    acc = np.cumsum(g)  # acc[i]: frames hi - i .. hi; ties go to the latest frame
    return hi - int(np.argmin(acc))


def _lift_cp_ref(ring, leg, anchor, lo, hi, sig2, floor2, fmin, fmax) -> int:
    """Lift change point: argmin over l in [lo, hi] of the prefix sum from lo."""
    g = [_dev_ref(ring, f, 0, CP_K_LIFT, leg, anchor, sig2, floor2, fmin, fmax)
         for f in range(lo, hi + 1)]
    acc = np.cumsum(g)  # acc[i]: frames lo .. lo + i; ties go to the earliest frame
    return lo + int(np.argmin(acc))


def gait_frame_ref(t, pose, pcutoff, fps, required_idx, angle_idx, seg_idx, n_scale_legs,
                   foot_idx, hock_idx, body_idx, head_idx, params, ring, ring_scale,
                   istate, fstate, hist, row_t, row_u, events, tmp_angles, tmp_ratios):
    """numpy version of :func:`gaitlive.gait.kernels.gait_frame` (same arguments)."""
    R = ring.shape[0]
    n_legs = len(foot_idx)
    n_ang = len(angle_idx)
    half_med, half_fit = int(params[0]), int(params[1])
    stance_floor, stance_rel, hyst = params[2], params[3], params[4]
    min_stance, min_swing, decay, eps_min = int(params[5]), int(params[6]), params[7], params[8]
    restrike = int(params[9])
    delay = half_med + half_fit

    n_present, complete, scale = skeleton_frame_ref(pose, pcutoff, required_idx, angle_idx,
                                                    seg_idx, n_scale_legs, tmp_angles,
                                                    tmp_ratios)
    ok = _present_mask(pose, pcutoff)
    xy = pose[:, :2].astype(np.float64)
    slot = t % R
    ring_scale[slot] = scale
    row = hist[row_t]
    row[:] = np.nan
    row[0], row[1] = t, scale
    body_ok = body_idx[ok[body_idx]]
    row[2:4] = xy[body_ok].mean(axis=0) if len(body_ok) else np.nan
    row[4:6] = xy[head_idx] if head_idx >= 0 and ok[head_idx] else np.nan
    row[6], row[7] = n_present, float(complete)
    legs = np.full((n_legs, 4), np.nan)
    f_ok = ok[foot_idx]
    legs[f_ok, 0:2] = xy[foot_idx[f_ok]]
    h_ok = (hock_idx >= 0) & ok[np.maximum(hock_idx, 0)]
    legs[h_ok, 2:4] = xy[hock_idx[h_ok]]
    c = HIST_FIXED
    row[c:c + 4 * n_legs] = legs.ravel()
    ring[slot] = legs[:, 0:2]
    c += 4 * n_legs
    row[c:c + n_ang] = tmp_angles
    c_state, c_speed = c + n_ang, c + n_ang + n_legs
    row[c_state:c_state + n_legs] = UNKNOWN
    events[:] = -1

    u = t - delay
    if u < 0:
        return 0
    frames = np.arange(u - delay, u + delay + 1) % R
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        s_u = np.nanmedian(ring_scale[frames])
        if np.isfinite(s_u) and s_u > 0:
            fstate[F_SCALE] = s_u
        else:
            s_u = fstate[F_SCALE]
        # median filter: windows centred on u + k, k = -half_fit..half_fit
        ks = np.arange(-half_fit, half_fit + 1)
        win = (u + ks[:, None] + np.arange(-half_med, half_med + 1)[None, :]) % R
        filt = np.nanmedian(ring[win], axis=1)  # (n_fit, n_legs, 2)
    speeds = np.full(n_legs, np.nan)
    if np.isfinite(s_u) and s_u > 0:
        for leg in range(n_legs):
            good = np.isfinite(filt[:, leg, 0]) & np.isfinite(filt[:, leg, 1])
            if good.sum() < 2:
                continue
            k = ks[good].astype(np.float64)
            dk = k - k.mean()
            v = (dk @ (filt[good, leg] - filt[good, leg].mean(axis=0))) / (dk @ dk)
            speeds[leg] = np.hypot(v[0], v[1]) * fps / s_u
    max_speed = np.nanmax(speeds) if np.isfinite(speeds).any() else 0.0
    fstate[F_PEAK] = max(fstate[F_PEAK] * decay, max_speed)
    thr = max(stance_floor, stance_rel * fstate[F_PEAK])
    if np.isfinite(s_u) and s_u > 0:
        thr = max(thr, NOISE_K * 0.35 * np.sqrt(fstate[F_NOISE]) * fps / s_u)

    for leg in range(n_legs):
        sp, st = speeds[leg], istate[leg, I_STATE]
        if not np.isfinite(sp):
            cls = st
        elif st == STANCE:
            cls = SWING if sp > hyst * thr else STANCE
        else:
            cls = STANCE if sp < thr else SWING
        if cls in (st, UNKNOWN):
            istate[leg, I_CAND], istate[leg, I_CAND_LEN] = UNKNOWN, 0
        else:
            if istate[leg, I_CAND] == cls:
                istate[leg, I_CAND_LEN] += 1
            else:
                istate[leg, I_CAND], istate[leg, I_CAND_LEN] = cls, 1
                istate[leg, I_CAND_START] = u
            if istate[leg, I_CAND_LEN] >= (min_stance if cls == STANCE else min_swing):
                start = istate[leg, I_CAND_START]
                sig2 = fstate[F_NOISE]
                eps = 3.0 * np.sqrt(sig2)
                floor2 = 0.0
                if np.isfinite(s_u):
                    eps = max(eps, eps_min * s_u)
                    floor2 = (eps_min * s_u) ** 2
                oldest = t - R + 1
                ia = N_FSTATE + 2 * leg

                def near(f: int, anchor: np.ndarray, leg: int = leg, eps: float = eps) -> int:
                    p = ring[f % R, leg]
                    if not np.isfinite(p).all():
                        return -1
                    return int(np.hypot(*(p - anchor)) <= eps)

                if cls == STANCE:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)
                        anchor = np.nanmedian(ring[np.arange(max(start, oldest), t + 1) % R,
                                                   leg], axis=0)
                    fstate[ia:ia + 2] = anchor
                    if np.isfinite(anchor[0]):
                        start = _strike_cp_ref(ring, leg, anchor, max(start - MAX_EXTEND, oldest),
                                               min(start + MAX_SHIFT, t), sig2, floor2, oldest,
                                               t)
                        if istate[leg, I_SEEN_SWING] == 0 and np.isfinite(s_u):
                            # first stance: a strike if the foot was seen elsewhere before
                            for f in range(max(oldest, 0), start):
                                p = ring[f % R, leg]
                                if np.isfinite(p).all():
                                    if np.hypot(*(p - anchor)) > 0.1 * s_u:
                                        istate[leg, I_SEEN_SWING] = 1
                                    break
                            if istate[leg, I_SEEN_SWING] == 1:
                                f = start
                                while f > oldest and near(f - 1, anchor) == 1:
                                    f -= 1
                                start = f
                    istate[leg, I_STRIKE] = start if istate[leg, I_SEEN_SWING] == 1 else -1
                    if istate[leg, I_SEEN_SWING] == 1:
                        events[leg, 0] = start
                else:
                    istate[leg, I_SEEN_SWING] = 1
                    last = start - 1
                    s0 = istate[leg, I_STRIKE]
                    if st == STANCE:
                        lo = max(s0 if s0 >= 0 else last - R // 2, oldest)
                        if last >= lo:
                            with warnings.catch_warnings():
                                warnings.simplefilter("ignore", RuntimeWarning)
                                a = np.nanmedian(ring[np.arange(lo, last + 1) % R, leg], axis=0)
                            if np.isfinite(a[0]):
                                fstate[ia:ia + 2] = a
                        anchor = fstate[ia:ia + 2].copy()
                        drift = False
                        if last >= lo and np.isfinite(anchor[0]):
                            p = ring[np.arange(lo, last + 1) % R, leg]
                            p = p[np.isfinite(p).all(axis=1)]
                            if len(p):
                                d2 = (p[:, 0] - anchor[0]) ** 2 + (p[:, 1] - anchor[1]) ** 2
                                sp2 = float(np.median(d2)) / (2.0 * np.log(2.0))
                                if sp2 > SPREAD * sig2:
                                    sig2 = sp2
                                    # the foot drifted: keep the strike found at the start
                                    drift = restrike > 0 and sp2 > DRIFT_K * fstate[F_NOISE]
                        if s0 >= 0 and s0 > oldest and np.isfinite(anchor[0]) and not drift:
                            lo = max(s0 - MAX_EXTEND, oldest)
                            hi = min(s0 + restrike, last)
                            if hi >= lo:
                                istate[leg, I_STRIKE] = _strike_cp_ref(
                                    ring, leg, anchor, lo, hi, sig2, floor2, oldest, t)
                        if np.isfinite(anchor[0]):
                            lo = max(last - MAX_SHIFT_LIFT, istate[leg, I_STRIKE], oldest)
                            hi = min(last + MAX_EXTEND_LIFT, t)
                            if hi >= lo:
                                last = _lift_cp_ref(ring, leg, anchor, lo, hi, sig2, floor2,
                                                    oldest, t)
                    if st == STANCE and istate[leg, I_STRIKE] >= 0:
                        events[leg, 1] = max(last, istate[leg, I_STRIKE])
                        events[leg, 2] = istate[leg, I_STRIKE]
                    istate[leg, I_STRIKE] = -1
                istate[leg, I_STATE] = cls
                istate[leg, I_CAND], istate[leg, I_CAND_LEN] = UNKNOWN, 0
        if istate[leg, I_STATE] == STANCE and istate[leg, I_CAND_LEN] == 0 and \
                np.isfinite(sp) and sp < 0.5 * thr and np.isfinite(s_u):
            p, p0 = ring[u % R, leg], ring[(u - 1) % R, leg]
            if np.isfinite(p).all() and np.isfinite(p0).all():
                d2 = 0.25 * ((p[0] - p0[0]) ** 2 + (p[1] - p0[1]) ** 2)
                if d2 < max(4.5 * fstate[F_NOISE], (NOISE_GATE_REL * s_u) ** 2):
                    fstate[F_NOISE_N] = min(fstate[F_NOISE_N] + 1.0, NOISE_N_MAX)
                    fstate[F_NOISE] += (d2 - fstate[F_NOISE]) / fstate[F_NOISE_N]
        if row_u >= 0:
            hist[row_u, c_state + leg] = istate[leg, I_STATE]
            hist[row_u, c_speed + leg] = sp
    return int((events[:, :2] >= 0).sum())

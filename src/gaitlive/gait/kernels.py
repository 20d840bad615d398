"""numba kernels of the gait stage: skeleton maths and online foot-contact detection.

Every kernel works on one individual and one frame, in place on preallocated arrays
(a ring buffer of recent foot positions, a small integer/float state and the pass
history), so the hot path holds no Python objects. :mod:`gaitlive.gait.reference` has
the same maths in plain numpy; the tests check that both agree.

Layout of one history row (float64, one row per frame of a pass, see :func:`n_hist_cols`)::

    0 frame | 1 scale | 2,3 body x,y | 4,5 head x,y | 6 n_present | 7 complete
    then per leg: foot x, foot y, hock x, hock y            (4 * n_legs)
    then per angle: degrees                                  (n_angles)
    then per leg: stance state (0 unknown, 1 stance, 2 swing), written with a delay
    then per leg: foot speed, leg lengths per second (NaN if unknown)

Foot contact
------------
A foot is on the ground when it is nearly stationary in the image. Its track is gated by
likelihood, median filtered over ``2*half_med+1`` frames (rejects single-frame jumps),
and its velocity is the least-squares slope over ``2*half_fit+1`` filtered samples
(missing samples are skipped, which bridges short gaps). The speed is divided by the
image scale (leg length in pixels), so it is in leg lengths per second and does not
depend on the distance to the camera (rear view). A frame is classified
``delay = half_med + half_fit`` frames after it arrived. The stance threshold adapts to
the bird: ``max(stance_floor, stance_rel * peak, NOISE_K * noise speed)`` where ``peak``
is a decaying maximum of the foot speeds (a slow, lame bird swings its feet slowly) and
the noise speed follows from the keypoint noise; leaving a stance needs ``hysteresis``
times that. A new state must persist ``min_stance`` / ``min_swing`` frames (debounce).

The keypoint noise sigma is measured on the bird itself: the frame-to-frame jitter of a
foot in a confirmed stance (``var(p_u - p_u-1) = 2 sigma^2`` per axis), a running mean
over the first ``NOISE_N_MAX`` samples and then an exponential average, gated at ~1 % of
its own distribution.

Events are then refined on the foothold (the median raw foot position of the stance) as
change points: the strike is the frame k (from ``MAX_EXTEND`` frames before to
``MAX_SHIFT`` frames after the speed's guess) that minimises the sum over the frames from
k on of ``|p - foothold|^2 - c``, with ``c = max(CP_K sigma^2 / m, (foothold_eps *
scale)^2)``; p is the mean of m = 3 frames around each frame where the noise matters (the
slow last part of a swing in the rear view moves the foot < 1 px per frame, along the line
of sight). The lift is the frame that minimises the same sum up to it, on single frames
(``CP_K_LIFT``; a lift is abrupt), within ``MAX_SHIFT_LIFT`` frames before and
``MAX_EXTEND_LIFT`` after the speed's guess. The strike is reported when the stance is
confirmed and refined once more at the lift, on the whole stance (the ring holds 64
frames), moving at most ``restrike`` frames later (``gait.restrike_shift_s``; 0 in side
views, where a pose model's foot drifting during the stance would pull it late); the lift
event carries it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "HIST_FIXED",
    "n_hist_cols",
    "skeleton_frame",
    "gait_frame",
    "detections",
    "n_fstate",
    "UNKNOWN",
    "STANCE",
    "SWING",
]

HIST_FIXED = 8
UNKNOWN, STANCE, SWING = 0, 1, 2
# istate columns per leg
I_STATE, I_CAND, I_CAND_LEN, I_CAND_START, I_STRIKE, I_SEEN_SWING = 0, 1, 2, 3, 4, 5
N_ISTATE = 6
# fstate columns per individual: peak speed, last scale, keypoint noise variance (px^2 per
# axis, running mean), number of noise samples (capped), then per leg: stance anchor x, y
F_PEAK, F_SCALE, F_NOISE, F_NOISE_N = 0, 1, 2, 3
N_FSTATE = 4
NOISE_N_MAX = 50.0  # the noise mean becomes an EMA with rate 1/NOISE_N_MAX
# frames a strike may move later / earlier than the speed's guess when refined (the slow
# approach to a foothold looks like a stance to the speed)
MAX_SHIFT = 12
MAX_EXTEND = 6
# ... and a lift earlier / later (a lift is abrupt: the speed finds it within a few frames)
MAX_SHIFT_LIFT = 6
MAX_EXTEND_LIFT = 4
# change points (see _dev): a strike is refined on 3-frame mean positions (the slow
# approach to a foothold in the rear view), a lift on single frames (a lift is abrupt)
CP_K = 8.0
CP_K_LIFT = 5.0
# the spread of a stance around its foothold replaces the noise variance in the change
# points when it is more than SPREAD times larger (a rolling hoof, drifting keypoints)
SPREAD = 2.0
# ... and when it is more than DRIFT_K times the noise variance the foot drifted during the
# stance (a pose model's foot sliding): the whole stance's foothold is then no guide to
# where the foot landed, and where the strike may move later at the lift (restrike > 0,
# rear view) the strike found when the stance began is kept. (With restrike 0, side views,
# the refinement can only move the strike earlier, which helps on drifting model feet too.)
DRIFT_K = 3.0
NOISE_K = 4.0  # stance speed threshold >= this many sigmas of the noise speed
# the noise estimate accepts a frame-to-frame step (per axis, half the squared distance)
# below max(4.5 x its own variance, (NOISE_GATE_REL leg lengths)^2): the floor lets it
# grow from zero to a pose model's noise of several pixels
NOISE_GATE_REL = 0.03


def n_fstate(n_legs: int) -> int:
    """Length of the float state vector of an individual with ``n_legs`` legs."""
    return N_FSTATE + 2 * n_legs


def n_hist_cols(n_legs: int, n_angles: int) -> int:
    """Number of columns of a history row for ``n_legs`` legs and ``n_angles`` angles."""
    return HIST_FIXED + 4 * n_legs + n_angles + 2 * n_legs


@njit(cache=True)
def _present(pose, k, pcutoff):
    if k < 0:
        return False
    x = pose[k, 0]
    y = pose[k, 1]
    return pose[k, 2] >= pcutoff and x - x == 0.0 and y - y == 0.0  # finite: not NaN, not inf


@njit(cache=True)
def _leg_length(pose, pcutoff, seg_idx, n_scale_legs, out_len):
    """Leg length (px) of one pose: the sum of the scale segments' lengths over the legs,
    missing segments filled in by the mean of the present ones; NaN when none is present
    or the total is zero. Each segment's length (NaN if missing) goes to ``out_len``."""
    total = 0.0
    n_seg_present = 0
    n_seg = seg_idx.shape[0]
    for j in range(n_seg):
        a = seg_idx[j, 0]
        b = seg_idx[j, 1]
        out_len[j] = np.nan
        if _present(pose, a, pcutoff) and _present(pose, b, pcutoff):
            dx = float(pose[a, 0]) - float(pose[b, 0])
            dy = float(pose[a, 1]) - float(pose[b, 1])
            out_len[j] = math.sqrt(dx * dx + dy * dy)
            total += out_len[j]
            n_seg_present += 1
    if n_seg_present > 0 and total > 0.0:
        return total * n_seg / n_seg_present / n_scale_legs
    return np.nan


@njit(cache=True)
def skeleton_frame(pose, pcutoff, required_idx, angle_idx, seg_idx, n_scale_legs,
                   out_angles, out_ratios):
    """Skeleton of one individual in one frame.

    Parameters
    ----------
    pose : float32 (n_kp, 3)
        x, y, likelihood.
    pcutoff : float
        Keypoints with likelihood below it are missing.
    required_idx : int64 (n_req,)
        Keypoints the skeleton needs (``complete`` is true when all are present).
    angle_idx : int64 (n_angles, 3)
        (a, vertex, c) keypoint indices.
    seg_idx : int64 (n_seg, 2)
        Scale segments.
    n_scale_legs : float
        The scale is the sum of the segment lengths divided by this (one leg length).
    out_angles : float64 (n_angles,)
        Written: angle at the vertex in degrees, NaN when a point is missing or a
        segment has zero length.
    out_ratios : float64 (n_seg,)
        Written: each segment's length divided by the scale (scale-invariant).

    Returns
    -------
    n_present : int
    complete : bool
    scale : float
        Leg length in pixels; missing segments are filled in by the mean of the present
        ones; NaN when none is present or the total length is zero.
    """
    n_kp = pose.shape[0]
    n_present = 0
    for k in range(n_kp):
        if _present(pose, k, pcutoff):
            n_present += 1
    complete = True
    for j in range(required_idx.shape[0]):
        if not _present(pose, required_idx[j], pcutoff):
            complete = False
            break
    for j in range(angle_idx.shape[0]):
        a = angle_idx[j, 0]
        v = angle_idx[j, 1]
        c = angle_idx[j, 2]
        out_angles[j] = np.nan
        if _present(pose, a, pcutoff) and _present(pose, v, pcutoff) and \
                _present(pose, c, pcutoff):
            ux = float(pose[a, 0]) - float(pose[v, 0])
            uy = float(pose[a, 1]) - float(pose[v, 1])
            wx = float(pose[c, 0]) - float(pose[v, 0])
            wy = float(pose[c, 1]) - float(pose[v, 1])
            if (ux != 0.0 or uy != 0.0) and (wx != 0.0 or wy != 0.0):
                out_angles[j] = math.degrees(math.atan2(abs(ux * wy - uy * wx),
                                                        ux * wx + uy * wy))
    n_seg = seg_idx.shape[0]
    scale = _leg_length(pose, pcutoff, seg_idx, n_scale_legs, out_ratios)
    for j in range(n_seg):
        if out_ratios[j] == out_ratios[j]:
            out_ratios[j] = out_ratios[j] / scale if scale == scale else np.nan
    return n_present, complete, scale


@njit(cache=True)
def detections(poses, pcutoff, min_present, body_idx, seg_idx, n_scale_legs, rows_out,
               centres_out, counts_out, scales_out, masks_out, tmp_len):
    """Pose rows with at least ``min_present`` keypoints, their body centres and sizes.

    Parameters
    ----------
    poses : float32 (n_ind, n_kp, 3)
    body_idx : int64 (n_body,)
        Keypoints averaged for the centre (all present keypoints when none is present).
    seg_idx : int64 (n_seg, 2), n_scale_legs : float
        Scale segments and legs, as :func:`skeleton_frame`.
    rows_out : int64 (n_ind,), centres_out : float64 (n_ind, 2), counts_out : int64 (n_ind,),
    scales_out : float64 (n_ind,), masks_out : int64 (n_ind,)
        Written: row, centre, number of present keypoints, leg length (px; NaN unless
        every scale segment is present) and which body keypoints made the centre (bit j
        for ``body_idx[j]``; 0 when the centre is that of all present keypoints) of each
        detection. Centres of the same mask move with the bird; a change of mask moves
        the centre too.
    tmp_len : float64 (n_seg,)
        Scratch.

    Returns
    -------
    int
        Number of detections written.
    """
    n = 0
    for r in range(poses.shape[0]):
        pose = poses[r]
        cnt = 0
        for k in range(pose.shape[0]):
            if _present(pose, k, pcutoff):
                cnt += 1
        if cnt < min_present:
            continue
        sx, sy, m, mask = _centre_sum(pose, body_idx, pcutoff)
        masks_out[n] = mask
        if m == 0:
            for k in range(pose.shape[0]):
                if _present(pose, k, pcutoff):
                    sx += pose[k, 0]
                    sy += pose[k, 1]
                    m += 1
        rows_out[n] = r
        counts_out[n] = cnt
        scales_out[n] = _leg_length(pose, pcutoff, seg_idx, n_scale_legs, tmp_len)
        for j in range(tmp_len.shape[0]):
            if tmp_len[j] != tmp_len[j]:
                scales_out[n] = np.nan  # only whole legs: a partly seen leg is no size
                break
        centres_out[n, 0] = sx / m
        centres_out[n, 1] = sy / m
        n += 1
    return n


@njit(cache=True)
def _centre_sum(pose, idx, pcutoff):
    """Sums of x and y over the keypoints ``idx`` present above pcutoff, their count, and
    which they are (bit j for ``idx[j]``)."""
    sx = 0.0
    sy = 0.0
    m = 0
    mask = 0
    for j in range(idx.shape[0]):
        k = idx[j]
        if _present(pose, k, pcutoff):
            sx += pose[k, 0]
            sy += pose[k, 1]
            m += 1
            mask |= 1 << j
    return sx, sy, m, mask


@njit(cache=True)
def _insert_sorted(buf, m, v):
    """Insert v into the sorted buf[:m] (insertion sort step); return the new length."""
    j = m
    while j > 0 and buf[j - 1] > v:
        buf[j] = buf[j - 1]
        j -= 1
    buf[j] = v
    return m + 1


@njit(cache=True)
def _median_sorted(buf, m):
    """Median of the sorted buf[:m] (NaN when m == 0)."""
    if m == 0:
        return np.nan
    if m % 2 == 1:
        return buf[m // 2]
    return 0.5 * (buf[m // 2 - 1] + buf[m // 2])


@njit(cache=True)
def _nanmedian_window(ring, slot0, n, R, ch, co, buf):
    """Median of ring[(slot0 + i) % R, ch, co] for i < n, ignoring NaN (NaN if none)."""
    m = 0
    for i in range(n):
        v = ring[(slot0 + i) % R, ch, co]
        if v == v:
            m = _insert_sorted(buf, m, v)
    return _median_sorted(buf, m)


@njit(cache=True)
def _nanmedian_1d(ring, slot0, n, R, buf):
    """Median of ring[(slot0 + i) % R] for i < n, ignoring NaN (NaN if none)."""
    m = 0
    for i in range(n):
        v = ring[(slot0 + i) % R]
        if v == v:
            m = _insert_sorted(buf, m, v)
    return _median_sorted(buf, m)


@njit(cache=True)
def _near(ring, f, R, leg, ax, ay, eps):
    """1 if the raw foot position of frame f is within eps of (ax, ay), 0 if not, -1 if
    missing."""
    x = ring[f % R, leg, 0]
    y = ring[f % R, leg, 1]
    if x != x or y != y:
        return -1
    return 1 if math.hypot(x - ax, y - ay) <= eps else 0


@njit(cache=True)
def _anchor(ring, f0, f1, R, leg, buf):
    """Median raw foot position over frames f0..f1 (the stance foothold)."""
    n = f1 - f0 + 1
    ax = _nanmedian_window(ring, f0 % R, n, R, leg, 0, buf)
    ay = _nanmedian_window(ring, f0 % R, n, R, leg, 1, buf)
    return ax, ay


@njit(cache=True)
def _spread2(ring, f0, f1, R, leg, ax, ay, buf):
    """Spread of the raw foot positions of frames f0..f1 around (ax, ay), as a variance per
    axis: median squared distance / (2 ln 2) (for Gaussian noise of sigma^2 per axis the
    median squared distance is 2 ln 2 sigma^2). Includes the drift of a rolling foot,
    which the frame-to-frame noise estimate misses. 0 if no frame has a position."""
    m = 0
    for f in range(f0, f1 + 1):
        x = ring[f % R, leg, 0]
        y = ring[f % R, leg, 1]
        if x == x and y == y:
            v = (x - ax) * (x - ax) + (y - ay) * (y - ay)
            j = m
            while j > 0 and buf[j - 1] > v:
                buf[j] = buf[j - 1]
                j -= 1
            buf[j] = v
            m += 1
    if m == 0:
        return 0.0
    med = buf[m // 2] if m % 2 == 1 else 0.5 * (buf[m // 2 - 1] + buf[m // 2])
    return med / (2.0 * math.log(2.0))


@njit(cache=True)
def _dev(ring, f, half, k, R, leg, ax, ay, sig2, floor2, fmin, fmax):
    """Squared distance of the foot from its foothold (ax, ay) at frame f, minus what
    keypoint noise alone gives: negative when the foot is on the foothold.

    The position is the mean of the raw positions of frames f-half..f+half that are
    within [fmin, fmax] and not missing (m of them; ``half`` is 0 where the noise does
    not matter, ``k * sig2 <= floor2``), so its noise variance is ``sig2 / m`` per axis;
    the threshold is ``c = max(k * sig2 / m, floor2)``: a foot off its foothold by more
    than about ``sqrt((k - 2) / m)`` noise sigmas counts as off. The result is clipped to
    at most ``c`` (a single wrong keypoint far off counts like any frame off the foothold,
    not like hundreds). 0 when all are missing."""
    if k * sig2 <= floor2:
        half = 0
    sx = 0.0
    sy = 0.0
    m = 0
    for g in range(f - half, f + half + 1):
        if g < fmin or g > fmax:
            continue
        x = ring[g % R, leg, 0]
        y = ring[g % R, leg, 1]
        if x == x and y == y:
            sx += x
            sy += y
            m += 1
    if m == 0:
        return 0.0
    dx = sx / m - ax
    dy = sy / m - ay
    c = k * sig2 / m
    if c < floor2:
        c = floor2
    v = dx * dx + dy * dy - c
    return c if v > c else v  # clipped: a glitch of the track weighs like a frame off it


@njit(cache=True)
def _strike_cp(ring, R, leg, ax, ay, lo, hi, sig2, floor2, fmin, fmax):
    """Change point at a strike: the k in [lo, hi] that minimises ``sum_{f=k}^{hi}``
    :func:`_dev` (3-frame means, ``CP_K``), i.e. the foot sits on its foothold from k on
    (frames after ``hi`` add the same to every k). Ties go to the later frame. Frames at
    the top of the window without a foot position (the data ended, the foot is lost) are
    not candidates: they add nothing, so they would win every tie."""
    while hi > lo and (ring[hi % R, leg, 0] != ring[hi % R, leg, 0]
                       or ring[hi % R, leg, 1] != ring[hi % R, leg, 1]):
        hi -= 1
    best = hi
    best_v = 0.0
    acc = 0.0
    for f in range(hi, lo - 1, -1):
        acc += _dev(ring, f, 1, CP_K, R, leg, ax, ay, sig2, floor2, fmin, fmax)
        if f == hi or acc < best_v:
            best = f
            best_v = acc
    return best


@njit(cache=True)
def _lift_cp(ring, R, leg, ax, ay, lo, hi, sig2, floor2, fmin, fmax):
    """Change point at a lift: the l in [lo, hi] that minimises ``sum_{f=lo}^{l}``
    :func:`_dev` (single frames, ``CP_K_LIFT``), i.e. the foot sits on its foothold up
    to l. Ties go to the earlier frame."""
    best = lo
    best_v = 0.0
    acc = 0.0
    for f in range(lo, hi + 1):
        acc += _dev(ring, f, 0, CP_K_LIFT, R, leg, ax, ay, sig2, floor2, fmin, fmax)
        if f == lo or acc < best_v:
            best = f
            best_v = acc
    return best


@njit(cache=True)
def gait_frame(t, pose, pcutoff, fps, required_idx, angle_idx, seg_idx, n_scale_legs,
               foot_idx, hock_idx, body_idx, head_idx, params, ring, ring_scale,
               istate, fstate, hist, row_t, row_u, events, tmp_angles, tmp_ratios):
    """Process frame ``t`` of one individual: skeleton, history row and foot contact.

    Parameters
    ----------
    t : int
        Frame index (consecutive frames; pass an all-NaN pose for a frame without data).
    pose : float32 (n_kp, 3)
    params : float64 (10,)
        half_med, half_fit, stance_floor, stance_rel, hysteresis, min_stance, min_swing,
        peak_decay (per frame), foothold eps (fraction of the scale), frames the strike
        may move later when refined again at the lift.
    ring : float64 (R, n_legs, 2)
        Raw gated foot positions by ``frame % R`` (written at ``t``).
    ring_scale : float64 (R,)
        Scale by ``frame % R``.
    istate : int64 (n_legs, 6)
        Per leg: state, candidate state, candidate run length, candidate start frame,
        strike frame of the current stance (-1 if it began before tracking), whether a
        swing was seen.
    fstate : float64 (n_fstate(n_legs),)
        peak speed, last good scale, position noise, then per leg the stance foothold.
    hist : float64 (cap, n_cols)
        Pass history; row ``row_t`` is written for frame ``t`` and the stance state and
        foot speed of frame ``u = t - delay`` go to row ``row_u`` (skipped if < 0).
    events : int64 (n_legs, 3)
        Written: strike frame, lift frame, strike frame of the lifted stance (-1 = none).

    Returns
    -------
    int
        Number of strike and lift events written to ``events`` (0: none this frame). The
        contact state decided at this call is that of frame ``u = t - delay``.
    """
    R = ring.shape[0]
    n_legs = foot_idx.shape[0]
    n_ang = angle_idx.shape[0]
    half_med = int(params[0])
    half_fit = int(params[1])
    stance_floor = params[2]
    stance_rel = params[3]
    hyst = params[4]
    min_stance = int(params[5])
    min_swing = int(params[6])
    decay = params[7]
    eps_min = params[8]
    restrike = int(params[9])
    delay = half_med + half_fit

    # ---- skeleton and history row of frame t
    n_present, complete, scale = skeleton_frame(pose, pcutoff, required_idx, angle_idx,
                                                seg_idx, n_scale_legs, tmp_angles,
                                                tmp_ratios)
    slot = t % R
    ring_scale[slot] = scale
    row = hist[row_t]
    row[0] = t
    row[1] = scale
    bx, by, nb, _ = _centre_sum(pose, body_idx, pcutoff)
    row[2] = bx / nb if nb > 0 else np.nan
    row[3] = by / nb if nb > 0 else np.nan
    if _present(pose, head_idx, pcutoff):
        row[4] = pose[head_idx, 0]
        row[5] = pose[head_idx, 1]
    else:
        row[4] = np.nan
        row[5] = np.nan
    row[6] = n_present
    row[7] = 1.0 if complete else 0.0
    c = HIST_FIXED
    for leg in range(n_legs):
        f = foot_idx[leg]
        h = hock_idx[leg]
        if _present(pose, f, pcutoff):
            row[c] = pose[f, 0]
            row[c + 1] = pose[f, 1]
        else:
            row[c] = np.nan
            row[c + 1] = np.nan
        ring[slot, leg, 0] = row[c]
        ring[slot, leg, 1] = row[c + 1]
        if _present(pose, h, pcutoff):
            row[c + 2] = pose[h, 0]
            row[c + 3] = pose[h, 1]
        else:
            row[c + 2] = np.nan
            row[c + 3] = np.nan
        c += 4
    for j in range(n_ang):
        row[c + j] = tmp_angles[j]
    c_state = c + n_ang
    c_speed = c_state + n_legs
    for leg in range(n_legs):
        row[c_state + leg] = UNKNOWN
        row[c_speed + leg] = np.nan
        events[leg, 0] = -1
        events[leg, 1] = -1
        events[leg, 2] = -1

    # ---- contact state of frame u = t - delay
    u = t - delay
    if u < 0:
        return 0
    buf = np.empty(max(2 * (half_med + half_fit) + 1, R))
    # scale at u: median over the filter support, else the last good scale
    s_u = _nanmedian_1d(ring_scale, (u - delay) % R + R, 2 * delay + 1, R, buf)
    if s_u == s_u and s_u > 0.0:
        fstate[F_SCALE] = s_u
    else:
        s_u = fstate[F_SCALE]
    n_fit = 2 * half_fit + 1
    max_speed = 0.0
    speeds = np.empty(n_legs)
    for leg in range(n_legs):
        speeds[leg] = np.nan
        if not (s_u == s_u and s_u > 0.0):
            continue
        # filtered samples at u + k, k = -half_fit..half_fit, then their LS slope
        sk = 0.0
        sx = 0.0
        sy = 0.0
        m = 0
        ks = np.empty(n_fit)
        xs = np.empty(n_fit)
        ys = np.empty(n_fit)
        for i in range(n_fit):
            k = i - half_fit
            start = (u + k - half_med) % R + R
            mx = _nanmedian_window(ring, start, 2 * half_med + 1, R, leg, 0, buf)
            my = _nanmedian_window(ring, start, 2 * half_med + 1, R, leg, 1, buf)
            if mx == mx and my == my:
                ks[m] = k
                xs[m] = mx
                ys[m] = my
                sk += k
                sx += mx
                sy += my
                m += 1
        if m < 2:
            continue
        kb = sk / m
        xb = sx / m
        yb = sy / m
        skk = 0.0
        skx = 0.0
        sky = 0.0
        for i in range(m):
            dk = ks[i] - kb
            skk += dk * dk
            skx += dk * (xs[i] - xb)
            sky += dk * (ys[i] - yb)
        vx = skx / skk
        vy = sky / skk
        sp = math.sqrt(vx * vx + vy * vy) * fps / s_u
        speeds[leg] = sp
        if sp > max_speed:
            max_speed = sp
    peak = fstate[F_PEAK] * decay
    if max_speed > peak:
        peak = max_speed
    fstate[F_PEAK] = peak
    thr = stance_floor
    if stance_rel * peak > thr:
        thr = stance_rel * peak
    # ... and above the speed that keypoint noise alone produces (4 sigma of the slope of
    # a median-filtered least-squares fit, ~0.35 sigma_px per frame)
    if s_u == s_u and s_u > 0.0:
        noise_thr = NOISE_K * 0.35 * math.sqrt(fstate[F_NOISE]) * fps / s_u
        if noise_thr > thr:
            thr = noise_thr

    for leg in range(n_legs):
        sp = speeds[leg]
        st = istate[leg, I_STATE]
        if sp != sp:
            cls = st  # unknown speed: hold the state
        elif st == STANCE:
            cls = SWING if sp > hyst * thr else STANCE
        else:
            cls = STANCE if sp < thr else SWING
        if cls == st or cls == UNKNOWN:  # noqa: SIM109 (numba)
            istate[leg, I_CAND] = UNKNOWN
            istate[leg, I_CAND_LEN] = 0
        else:
            if istate[leg, I_CAND] == cls:
                istate[leg, I_CAND_LEN] += 1
            else:
                istate[leg, I_CAND] = cls
                istate[leg, I_CAND_LEN] = 1
                istate[leg, I_CAND_START] = u
            need = min_stance if cls == STANCE else min_swing
            if istate[leg, I_CAND_LEN] >= need:
                start = istate[leg, I_CAND_START]
                # events are refined on the foothold (the speed threshold alone cuts the
                # slow approach to it short): change points of the squared distance from
                # the foothold (see _dev), at least foothold_eps leg lengths
                sig2 = fstate[F_NOISE]
                eps = 3.0 * math.sqrt(sig2)
                floor2 = 0.0
                if s_u == s_u:
                    if eps < eps_min * s_u:
                        eps = eps_min * s_u
                    floor2 = (eps_min * s_u) ** 2
                oldest = t - R + 1
                ia = N_FSTATE + 2 * leg
                if cls == STANCE:
                    a0 = start if start > oldest else oldest  # within the ring
                    ax, ay = _anchor(ring, a0, t, R, leg, buf)
                    fstate[ia] = ax
                    fstate[ia + 1] = ay
                    if ax == ax:
                        lo = start - MAX_EXTEND
                        if lo < oldest:
                            lo = oldest
                        hi = start + MAX_SHIFT
                        if hi > t:
                            hi = t
                        start = _strike_cp(ring, R, leg, ax, ay, lo, hi, sig2, floor2,
                                           oldest, t)
                        if istate[leg, I_SEEN_SWING] == 0 and s_u == s_u:
                            # first stance of the track: a strike if the foot was seen
                            # elsewhere before (it moved into this foothold)
                            f = oldest
                            if f < 0:
                                f = 0
                            while f < start:
                                near = _near(ring, f, R, leg, ax, ay, 0.1 * s_u)
                                if near >= 0:
                                    if near == 0:
                                        istate[leg, I_SEEN_SWING] = 1
                                    break
                                f += 1
                            if istate[leg, I_SEEN_SWING] == 1:
                                # its speed may have been unknown (no scale yet): the
                                # strike is where the foot arrived on the foothold
                                f = start
                                while f > oldest and \
                                        _near(ring, f - 1, R, leg, ax, ay, eps) == 1:
                                    f -= 1
                                start = f
                    if istate[leg, I_SEEN_SWING] == 1:
                        istate[leg, I_STRIKE] = start
                        events[leg, 0] = start
                    else:
                        istate[leg, I_STRIKE] = -1  # stance began before we saw the foot
                else:
                    istate[leg, I_SEEN_SWING] = 1
                    last = start - 1
                    s0 = istate[leg, I_STRIKE]
                    if st == STANCE:
                        # the whole stance is known now: re-estimate its foothold on all
                        # its frames and refine the strike on it
                        lo = s0 if s0 >= 0 else last - R // 2
                        if lo < oldest:
                            lo = oldest
                        if last >= lo:
                            ax, ay = _anchor(ring, lo, last, R, leg, buf)
                            if ax == ax:
                                fstate[ia] = ax
                                fstate[ia + 1] = ay
                        ax = fstate[ia]
                        ay = fstate[ia + 1]
                        # the foot's spread around this foothold (noise and the drift of a
                        # rolling foot): a frame counts as off it beyond that
                        drift = False
                        if last >= lo and ax == ax:
                            sp2 = _spread2(ring, lo, last, R, leg, ax, ay, buf)
                            if sp2 > SPREAD * sig2:
                                sig2 = sp2
                                drift = restrike > 0 and sp2 > DRIFT_K * fstate[F_NOISE]
                        if s0 >= 0 and s0 > oldest and ax == ax and not drift:
                            lo = s0 - MAX_EXTEND
                            if lo < oldest:
                                lo = oldest
                            hi = s0 + restrike
                            if hi > last:
                                hi = last
                            if hi >= lo:
                                istate[leg, I_STRIKE] = _strike_cp(
                                    ring, R, leg, ax, ay, lo, hi, sig2, floor2, oldest, t)
                        if ax == ax:
                            lo = last - MAX_SHIFT_LIFT
                            if lo < istate[leg, I_STRIKE]:
                                lo = istate[leg, I_STRIKE]
                            if lo < oldest:
                                lo = oldest
                            hi = last + MAX_EXTEND_LIFT
                            if hi > t:
                                hi = t
                            if hi >= lo:
                                last = _lift_cp(ring, R, leg, ax, ay, lo, hi, sig2, floor2,
                                                oldest, t)
                    if st == STANCE and istate[leg, I_STRIKE] >= 0:
                        if last < istate[leg, I_STRIKE]:
                            last = istate[leg, I_STRIKE]
                        events[leg, 1] = last
                        events[leg, 2] = istate[leg, I_STRIKE]
                    istate[leg, I_STRIKE] = -1
                istate[leg, I_STATE] = cls
                istate[leg, I_CAND] = UNKNOWN
                istate[leg, I_CAND_LEN] = 0
        # keypoint noise: frame-to-frame jitter of the foot in a confirmed stance
        # (var(p_u - p_u-1) = 2 sigma^2 per axis); gated at ~1 % of that distribution
        if istate[leg, I_STATE] == STANCE and istate[leg, I_CAND_LEN] == 0 and \
                sp == sp and sp < 0.5 * thr and s_u == s_u:
            x = ring[u % R, leg, 0]
            y = ring[u % R, leg, 1]
            x0 = ring[(u - 1) % R, leg, 0]
            y0 = ring[(u - 1) % R, leg, 1]
            if x == x and y == y and x0 == x0 and y0 == y0:
                d2 = 0.25 * ((x - x0) ** 2 + (y - y0) ** 2)
                gate = 4.5 * fstate[F_NOISE]
                if gate < (NOISE_GATE_REL * s_u) ** 2:
                    gate = (NOISE_GATE_REL * s_u) ** 2
                if d2 < gate:
                    n = fstate[F_NOISE_N] + 1.0
                    if n > NOISE_N_MAX:
                        n = NOISE_N_MAX
                    fstate[F_NOISE_N] = n
                    fstate[F_NOISE] += (d2 - fstate[F_NOISE]) / n
        if row_u >= 0:
            hist[row_u, c_state + leg] = istate[leg, I_STATE]
            hist[row_u, c_speed + leg] = sp
    n_events = 0
    for leg in range(n_legs):
        if events[leg, 0] >= 0:
            n_events += 1
        if events[leg, 1] >= 0:
            n_events += 1
    return n_events

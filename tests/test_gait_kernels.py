"""The numba gait kernels against the numpy reference and analytic values."""

from __future__ import annotations

import numpy as np
import pytest

from gaitlive.config import GaitSettings, from_mapping, load_profile
from gaitlive.gait import kernels
from gaitlive.gait.reference import (
    _lift_cp_ref,
    _strike_cp_ref,
    gait_frame_ref,
    skeleton_frame_ref,
)
from gaitlive.gait.stage import RING, GaitLayout, kernel_params

PROFILE = load_profile("broiler-side")
LAY = GaitLayout.from_profile(PROFILE)
BP = {n: i for i, n in enumerate(PROFILE.bodyparts)}


def _skel(fn, pose):
    ang = np.zeros(len(LAY.angle_idx))
    rat = np.zeros(len(LAY.seg_idx))
    n, complete, scale = fn(pose.astype(np.float32), 0.5, LAY.required_idx, LAY.angle_idx,
                            LAY.seg_idx, LAY.n_scale_legs, ang, rat)
    return n, complete, scale, ang, rat


def _standing_pose() -> np.ndarray:
    """A hand-made bird: 3-4-5 legs, right angles at the hocks."""
    p = np.zeros((8, 3), np.float32)
    p[:, 2] = 1.0
    xy = {"head": (130, 40), "neck": (110, 60), "left_knee": (100, 100),
          "right_knee": (104, 100), "left_hock": (100, 130), "right_hock": (104, 130),
          "left_foot": (140, 130), "right_foot": (144, 130)}
    for n, v in xy.items():
        p[BP[n], :2] = v
    return p


def test_skeleton_analytic_angles_scale_and_ratios():
    n, complete, scale, ang, rat = _skel(kernels.skeleton_frame, _standing_pose())
    assert n == 8 and complete
    names = list(LAY.hist.angles)
    # knee (100,100) - hock (100,130) - foot (140,130): exactly 90 degrees
    assert ang[names.index("left_hock")] == pytest.approx(90.0, abs=1e-9)
    assert ang[names.index("right_hock")] == pytest.approx(90.0, abs=1e-9)
    # leg length = 30 + 40 = 70 px; ratios 30/70 and 40/70
    assert scale == pytest.approx(70.0, abs=1e-9)
    np.testing.assert_allclose(rat, [30 / 70, 40 / 70, 30 / 70, 40 / 70], atol=1e-12)


def test_skeleton_scale_invariant():
    p = _standing_pose()
    q = p.copy()
    q[:, :2] = p[:, :2] * 0.37 + np.array([211.0, -54.0], np.float32)
    a = _skel(kernels.skeleton_frame, p)
    b = _skel(kernels.skeleton_frame, q)
    np.testing.assert_allclose(a[3], b[3], atol=1e-3)
    np.testing.assert_allclose(a[4], b[4], atol=1e-5)
    assert b[2] == pytest.approx(0.37 * a[2], rel=1e-5)


@pytest.mark.parametrize("case", ["all_nan", "one_missing", "low_likelihood", "zero_length",
                                  "infinite"])
def test_skeleton_edge_cases_equal_reference(case):
    p = _standing_pose()
    if case == "all_nan":
        p[:, :2] = np.nan
        p[:, 2] = 0.0
    elif case == "one_missing":
        p[BP["left_hock"], :2] = np.nan
        p[BP["left_hock"], 2] = 0.0
    elif case == "low_likelihood":
        p[BP["left_foot"], 2] = 0.2
    elif case == "zero_length":
        p[BP["left_hock"], :2] = p[BP["left_knee"], :2]  # knee-hock has zero length
    elif case == "infinite":  # a broken pose file: inf is missing, like NaN
        p[BP["left_hock"], 0] = np.inf
    a = _skel(kernels.skeleton_frame, p)
    b = _skel(skeleton_frame_ref, p)
    assert a[0] == b[0] and a[1] == b[1]
    np.testing.assert_allclose(a[2], b[2], equal_nan=True)
    np.testing.assert_allclose(a[3], b[3], equal_nan=True, atol=1e-9)
    np.testing.assert_allclose(a[4], b[4], equal_nan=True, atol=1e-12)
    names = list(LAY.hist.angles)
    if case == "all_nan":
        assert a[0] == 0 and not a[1] and np.isnan(a[2]) and np.isnan(a[3]).all()
    if case in ("one_missing", "zero_length", "infinite"):
        assert np.isnan(a[3][names.index("left_hock")])
        assert a[3][names.index("right_hock")] == pytest.approx(90.0)
    if case == "infinite":
        assert a[0] == 7 and not a[1] and np.isfinite(a[2])
    if case == "one_missing":
        # the missing segments are filled in by the mean of the present ones
        # (left hock gone: both left segments) -> right leg 30 + 40, x 4 / 2 segments / 2 legs
        assert a[2] == pytest.approx((30 + 40) * 4 / 2 / 2)
        assert not a[1]
    if case == "zero_length":
        assert a[4][0] == 0.0


def _random_walk_poses(rng: np.random.Generator, n: int) -> np.ndarray:
    """Feet that alternate random stationary and moving spells, with noise, gaps, jumps."""
    p = np.tile(_standing_pose(), (n, 1, 1))
    for foot in ("left_foot", "right_foot"):
        k = BP[foot]
        pos = p[0, k, :2].astype(np.float64)
        t = 0
        while t < n:
            dur = int(rng.integers(3, 15))
            vel = rng.normal(0, 6, 2) if rng.random() < 0.5 else np.zeros(2)
            for _ in range(dur):
                if t >= n:
                    break
                pos = pos + vel
                p[t, k, :2] = pos
                t += 1
    p[:, :, :2] += rng.normal(0, 0.3, (n, 8, 2)).astype(np.float32)
    p[:, :, :2] += np.linspace(0, 150, n)[:, None, None].astype(np.float32)
    gone = rng.random((n, 8)) < 0.08
    p[gone, :2] = np.nan
    p[gone, 2] = 0.0
    low = rng.random((n, 8)) < 0.05
    p[low, 2] = 0.3
    jump = rng.random((n, 8)) < 0.02
    p[jump, :2] += 80.0
    p[rng.integers(0, n, 5)] = np.nan  # whole frames missing
    return p


def _run_kernel_and_reference(poses: np.ndarray, prof) -> int:
    """Feed ``poses`` to the numba kernel and the numpy reference side by side; assert
    equal events and states on every frame; return the number of events."""
    n = len(poses)
    params = kernel_params(prof, 30.0)
    lay = GaitLayout.from_profile(prof)
    a, b = _fresh_state(n), _fresh_state(n)
    n_events = 0
    for t in range(n):
        row_u = t - int(params[0] + params[1])
        out = []
        for fn, s in ((kernels.gait_frame, a), (gait_frame_ref, b)):
            out.append(fn(t, poses[t], 0.5, 30.0, lay.required_idx, lay.angle_idx,
                          lay.seg_idx, lay.n_scale_legs, lay.foot_idx, lay.hock_idx,
                          lay.body_idx, lay.head_idx, params, s["ring"], s["ring_scale"],
                          s["istate"], s["fstate"], s["hist"], t, row_u, s["events"],
                          s["tmp_angles"], s["tmp_ratios"]))
        assert out[0] == out[1] == int((a["events"][:, :2] >= 0).sum())  # events written
        np.testing.assert_array_equal(a["events"], b["events"], err_msg=f"frame {t}")
        np.testing.assert_array_equal(a["istate"], b["istate"], err_msg=f"frame {t}")
        n_events += int((a["events"] >= 0).sum())
    # inputs are float32: agree to float32 precision (events and states are exactly equal)
    np.testing.assert_allclose(a["hist"], b["hist"], rtol=1e-6, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(a["fstate"], b["fstate"], rtol=1e-6, atol=1e-6, equal_nan=True)
    return n_events


@pytest.mark.parametrize("restrike_s", [0.0, 0.4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gait_kernel_equals_reference_on_random_walks(seed, restrike_s):
    import dataclasses

    rng = np.random.default_rng(seed)
    poses = _random_walk_poses(rng, 260)
    # restrike_shift_s: side profiles keep the strike (0), the rear profile lets it move
    prof = dataclasses.replace(PROFILE, gait=dataclasses.replace(PROFILE.gait,
                                                                 restrike_shift_s=restrike_s))
    assert kernel_params(prof, 30.0)[9] == round(restrike_s * 30)
    assert _run_kernel_and_reference(poses, prof) > 10  # the walk made strikes and lifts


def test_gait_kernel_equals_reference_at_the_widest_windows_the_config_allows():
    """The longest filter, fit and debounce windows still fit the 64-frame foot history
    (a debounce of 100 frames used to write past the kernel's scratch buffer)."""
    import dataclasses

    g = dataclasses.replace(PROFILE.gait, smoothing_frames=31, fit_frames=31,
                            min_stance_frames=30, min_swing_frames=30)
    prof = dataclasses.replace(PROFILE, gait=g)
    assert 2 * sum(kernel_params(prof, 30.0)[:2]) + 1 <= RING
    # feet that stand and move in long spells, so the long debounces are passed
    rng = np.random.default_rng(7)
    p = np.tile(_standing_pose(), (400, 1, 1))
    for k, phase in ((BP["left_foot"], 0), (BP["right_foot"], 60)):
        x = p[0, k, 0]
        for t in range(400):
            if ((t + phase) // 60) % 2:
                x += 2.0
            p[t, k, 0] = x + rng.normal(0, 0.3)
    assert _run_kernel_and_reference(p, prof) >= 1
    for bad in ({"smoothing_frames": 33}, {"fit_frames": 33}, {"min_stance_frames": 31}):
        with pytest.raises(ValueError, match=list(bad)[0]):
            from_mapping(GaitSettings, bad, prefix="gait")


def test_gait_kernel_all_nan_stream_stays_unknown():
    params = kernel_params(PROFILE, 30.0)
    n_legs = len(LAY.foot_idx)
    pose = np.full((8, 3), np.nan, np.float32)
    pose[:, 2] = 0
    ring = np.full((RING, n_legs, 2), np.nan)
    istate = np.zeros((n_legs, kernels.N_ISTATE), np.int64)
    fstate = np.zeros(kernels.n_fstate(n_legs))
    hist = np.full((50, LAY.n_cols), np.nan)
    ev = np.full((n_legs, 3), -1, np.int64)
    for t in range(50):
        kernels.gait_frame(t, pose, 0.5, 30.0, LAY.required_idx, LAY.angle_idx, LAY.seg_idx,
                           LAY.n_scale_legs, LAY.foot_idx, LAY.hock_idx, LAY.body_idx,
                           LAY.head_idx, params, ring, np.full(RING, np.nan), istate, fstate,
                           hist, t, t - 3, ev, np.zeros(5), np.zeros(4))
        assert (ev == -1).all()
    assert (istate[:, kernels.I_STATE] == kernels.UNKNOWN).all()
    assert np.isnan(hist[:, 1]).all() and (hist[:, 6] == 0).all()


def test_detections_kernel_rows_centres_counts():
    poses = np.full((3, 8, 3), np.nan, np.float32)
    poses[:, :, 2] = 0.0
    poses[0] = _standing_pose()
    poses[2, BP["left_foot"]] = (10.0, 20.0, 0.9)
    poses[2, BP["right_foot"]] = (30.0, 40.0, 0.9)
    poses[2, BP["head"]] = (50.0, 60.0, 0.4)  # below pcutoff
    rows = np.zeros(3, np.int64)
    centres = np.zeros((3, 2))
    counts = np.zeros(3, np.int64)
    sizes = np.zeros(3)
    masks = np.zeros(3, np.int64)
    tmp = np.zeros(len(LAY.seg_idx))
    args = (LAY.body_idx, LAY.seg_idx, LAY.n_scale_legs, rows, centres, counts, sizes, masks,
            tmp)
    n = kernels.detections(poses, 0.5, 2, *args)
    assert n == 2 and rows[:2].tolist() == [0, 2] and counts[:2].tolist() == [8, 2]
    # which body keypoints made the centre: all three, and none (the fallback)
    assert masks[:2].tolist() == [0b111, 0]
    # body = neck, left_knee, right_knee; row 2 has none of them: mean of what is present
    np.testing.assert_allclose(centres[0], [(110 + 100 + 104) / 3, (60 + 100 + 100) / 3])
    np.testing.assert_allclose(centres[1], [20.0, 30.0])
    # leg length: as the skeleton kernel finds it; row 2 has no scale segment
    ref = skeleton_frame_ref(poses[0], 0.5, LAY.required_idx, LAY.angle_idx, LAY.seg_idx,
                             LAY.n_scale_legs, np.zeros(len(LAY.angle_idx)),
                             np.zeros(len(LAY.seg_idx)))
    assert sizes[0] == pytest.approx(ref[2], rel=1e-12) and np.isnan(sizes[1])
    assert kernels.detections(poses, 0.5, 3, *args) == 1
    poses[0, BP["left_knee"], 2] = 0.1  # the centre of neck and right knee: bits 0 and 2
    assert kernels.detections(poses, 0.5, 3, *args) == 1 and masks[0] == 0b101
    np.testing.assert_allclose(centres[0], [(110 + 104) / 2, (60 + 100) / 2])


def _fresh_state(n: int):
    n_legs = len(LAY.foot_idx)
    fstate = np.full(kernels.n_fstate(n_legs), np.nan)
    fstate[:kernels.N_FSTATE] = 0.0
    istate = np.zeros((n_legs, kernels.N_ISTATE), np.int64)
    istate[:, kernels.I_STRIKE] = -1
    return dict(ring=np.full((RING, n_legs, 2), np.nan), ring_scale=np.full(RING, np.nan),
                istate=istate, fstate=fstate, hist=np.full((n, LAY.n_cols), np.nan),
                events=np.full((n_legs, 3), -1, np.int64), tmp_angles=np.zeros(len(LAY.angle_idx)),
                tmp_ratios=np.zeros(len(LAY.seg_idx)))


@pytest.mark.parametrize("sigma", [0.3, 1.0])
def test_keypoint_noise_is_measured_on_standing_feet(sigma):
    """A bird standing still with Gaussian keypoint noise: the kernel's noise estimate (per
    axis, from the stance jitter of its feet) converges to the true sigma, in both
    implementations."""
    rng = np.random.default_rng(3)
    n = 300
    poses = np.repeat(_standing_pose()[None], n, axis=0)
    poses[:, :, :2] += rng.normal(0, sigma, (n, 8, 2)).astype(np.float32)
    params = kernel_params(PROFILE, 30.0)
    for fn in (kernels.gait_frame, gait_frame_ref):
        s = _fresh_state(n)
        for t in range(n):
            fn(t, poses[t], 0.5, 30.0, LAY.required_idx, LAY.angle_idx, LAY.seg_idx,
               LAY.n_scale_legs, LAY.foot_idx, LAY.hock_idx, LAY.body_idx, LAY.head_idx, params,
               s["ring"], s["ring_scale"], s["istate"], s["fstate"], s["hist"], t, t - 3,
               s["events"], s["tmp_angles"], s["tmp_ratios"])
        assert (s["istate"][:, kernels.I_STATE] == kernels.STANCE).all()
        assert np.sqrt(s["fstate"][kernels.F_NOISE]) == pytest.approx(sigma, rel=0.2)
        assert (s["events"] == -1).all()  # standing is neither a strike nor a lift


def _approach_ring(k0: int, v: float, sigma: float, rng) -> np.ndarray:
    """One foot: walks into its foothold (0, 0) at v px/frame, reaching it at frame k0,
    stays there until frame k0 + 20, then leaves at 4 px/frame; Gaussian noise."""
    ring = np.full((RING, 1, 2), np.nan)
    for f in range(RING):
        if f < k0:
            x = -(k0 - f) * v
        elif f <= k0 + 20:
            x = 0.0
        else:
            x = (f - k0 - 20) * 4.0
        ring[f, 0] = (x, 0.0) + rng.normal(0, sigma, 2)
    return ring


def test_strike_and_lift_change_points_exact_without_noise():
    rng = np.random.default_rng(0)
    ring = _approach_ring(20, 0.3, 0.0, rng)  # a slow approach: 0.3 px per frame
    anchor = np.zeros(2)
    for fn_s, fn_l in ((kernels._strike_cp, kernels._lift_cp), (None, None)):
        if fn_s is None:
            k = _strike_cp_ref(ring, 0, anchor, 14, 32, 0.0, 0.1 ** 2, 0, RING - 1)
            lift = _lift_cp_ref(ring, 0, anchor, 34, 45, 0.0, 0.1 ** 2, 0, RING - 1)
        else:
            k = fn_s(ring, RING, 0, 0.0, 0.0, 14, 32, 0.0, 0.1 ** 2, 0, RING - 1)
            lift = fn_l(ring, RING, 0, 0.0, 0.0, 34, 45, 0.0, 0.1 ** 2, 0, RING - 1)
        assert k == 20 and lift == 40


def test_strike_change_point_on_a_slow_noisy_approach():
    """The last part of a rear-view swing: 0.6 px per frame with 0.5 px keypoint noise.
    The strike and the (abrupt) lift are found within +-2 frames in nearly every trial,
    and both implementations agree on every trial."""
    rng = np.random.default_rng(1)
    hits = lift_hits = 0
    trials = 200
    for _ in range(trials):
        ring = _approach_ring(20, 0.6, 0.5, rng)
        anchor = np.median(ring[20:41, 0], axis=0)
        args = (14, 32, 0.25, 0.01, 0, RING - 1)
        k = kernels._strike_cp(ring, RING, 0, anchor[0], anchor[1], *args)
        assert k == _strike_cp_ref(ring, 0, anchor, *args)
        hits += abs(k - 20) <= 2
        lift = kernels._lift_cp(ring, RING, 0, anchor[0], anchor[1], 34, 45, 0.25, 0.01, 0,
                                RING - 1)
        assert lift == _lift_cp_ref(ring, 0, anchor, 34, 45, 0.25, 0.01, 0, RING - 1)
        lift_hits += abs(lift - 40) <= 2
    assert hits >= 0.95 * trials
    assert lift_hits >= 0.95 * trials

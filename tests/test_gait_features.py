"""Pass features (gaitlive.gait.features) against analytic ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from gaitlive.gait.features import HistoryLayout, compute_pass_features
from gaitlive.gait.kernels import n_hist_cols

FPS = 30.0
LAYOUT = HistoryLayout(legs=("left", "right"), angles=(), pairs=(("left", "right"),),
                       hock_angle=(-1, -1))


def _hist(n_frames: int) -> np.ndarray:
    """History rows of frames 0..n-1: scale 40 px, every position unknown."""
    hist = np.full((n_frames, n_hist_cols(2, 0)), np.nan)
    hist[:, 0] = np.arange(n_frames)
    hist[:, 1] = 40.0
    return hist


def _regular_steps(period: int, stance: int, n_left: int, n_right: int):
    """Left strikes at 10 + k * period, right ones half a stride later."""
    left = [(10 + k * period, 10 + k * period + stance - 1) for k in range(n_left)]
    right = [(10 + period // 2 + k * period, 10 + period // 2 + k * period + stance - 1)
             for k in range(n_right)]
    return [left, right]


@pytest.mark.parametrize("light", [False, True])
def test_cadence_is_two_steps_per_stride_whatever_each_foot_misses_at_the_ends(light):
    """A stride of 24 frames at 30 fps is 2.5 steps/s. The right foot's last stance was
    not seen (the bird left the image): the cadence must not change. Counting every strike
    over the span of all of them gave (6 + 4 - 1) / 120 frames = 2.25 steps/s."""
    period = 24
    full = compute_pass_features(_hist(200), LAYOUT, _regular_steps(period, 14, 6, 5), FPS,
                                 light=light)
    cut = compute_pass_features(_hist(200), LAYOUT, _regular_steps(period, 14, 6, 4), FPS,
                                light=light)
    assert full["cadence_hz"] == pytest.approx(2.0 * FPS / period, rel=1e-12)
    assert cut["cadence_hz"] == pytest.approx(2.0 * FPS / period, rel=1e-12)


def test_cadence_leaves_out_a_stride_with_a_missed_stance():
    """A stance missed mid-pass makes one stride twice as long: it is left out, so the
    cadence is that of the regular strides (21 and 27 frames alternate: mean 24)."""
    left = [(10, 20), (31, 41), (58, 68), (79, 89), (106, 116), (127, 137)]
    right = [(22, 32), (43, 53), (70, 80), (91, 101), (118, 128)]
    del right[2]  # the right stance at 70 was missed: a 48-frame stride 43 -> 91
    feats = compute_pass_features(_hist(200), LAYOUT, [left, right], FPS)
    periods = [21, 27, 21, 27, 21, 21, 27]  # left's five, right's 22->43 and 91->118
    assert feats["cadence_hz"] == pytest.approx(2.0 * FPS * len(periods) / sum(periods),
                                                rel=1e-12)


def test_cadence_is_nan_without_a_stride():
    feats = compute_pass_features(_hist(100), LAYOUT, [[(10, 20)], [(22, 32)]], FPS)
    assert np.isnan(feats["cadence_hz"])


@pytest.mark.parametrize("n_strides", [3, 5, 8])
@pytest.mark.parametrize("light", [False, True])
def test_double_support_does_not_depend_on_pass_length(n_strides, light):
    """Stance 18 of 30 frames, the right foot half a stride later: both feet are down
    2 x (0.6 - 0.5) = 0.2 of the time. Averaging from the first strike to the last lift
    counted the other foot's unlisted stances at the ends as swing: 0.154-0.186."""
    steps = _regular_steps(30, 18, n_strides, n_strides)
    feats = compute_pass_features(_hist(400), LAYOUT, steps, FPS, light=light)
    assert feats["double_support_left_right"] == pytest.approx(0.2, rel=1e-12)


def test_double_support_leaves_out_strides_over_a_missed_stance():
    steps = _regular_steps(30, 18, 8, 8)
    del steps[1][3]
    feats = compute_pass_features(_hist(400), LAYOUT, steps, FPS)
    assert feats["double_support_left_right"] == pytest.approx(0.2, rel=1e-12)


def _with_feet(hist: np.ndarray, steps, holds_x) -> np.ndarray:
    """The feet stand at x = holds_x[leg][k] (y 400) through their k-th stance."""
    for leg, (leg_steps, xs) in enumerate(zip(steps, holds_x, strict=True)):
        c = 8 + 4 * leg
        for (s, lift), x in zip(leg_steps, xs, strict=True):
            hist[s:lift + 1, c] = x
            hist[s:lift + 1, c + 1] = 400.0
    return hist


def test_step_length_skips_a_step_over_the_other_foot_s_missed_stance():
    """Footholds 40 px apart at a leg length of 40 px: every step is 1 leg length. The
    right foot's second stance was missed: the left foot's third stance has no step
    before it. Pairing it with the right foot's first stance gave 3 leg lengths (median
    2.0, asymmetry 0.67)."""
    steps = _regular_steps(30, 18, 3, 3)
    hist = _with_feet(_hist(200), steps, [[0.0, 80.0, 160.0], [40.0, 120.0, 200.0]])
    del steps[1][1]
    feats = compute_pass_features(hist, LAYOUT, steps, FPS)
    assert feats["step_length_left"] == pytest.approx(1.0, rel=1e-12)
    assert feats["step_length_right"] == pytest.approx(1.0, rel=1e-12)
    assert feats["asym_step_length_left_right"] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("travel_px", [0.0, 10.0, 200.0])
def test_lateral_sway_of_a_bird_walking_away_that_hardly_moves_in_the_image(travel_px):
    """A rear-view bird sways 8 px sideways (one cycle per second) while it moves
    travel_px up the image over 4 s: the sway is 8 / sqrt(2) / 40 leg lengths across the
    direction of travel. The track's principal axis was the sway itself below ~20 px of
    travel, and the sway came out as 0."""
    hist = _hist(120)
    t = np.arange(120) / FPS
    hist[:, 2] = 320.0 + 8.0 * np.sin(2.0 * np.pi * t)
    hist[:, 3] = 400.0 - travel_px * t / 4.0
    feats = compute_pass_features(hist, LAYOUT, [[], []], FPS)
    # the sway's std after the linear detrend (2 % under 8 / sqrt(2) over 4 cycles)
    x = hist[:, 2] - np.polyval(np.polyfit(t, hist[:, 2], 1), t)
    assert feats["lateral_sway"] == pytest.approx(np.std(x) / 40.0, rel=0.02)
    assert np.std(x) / 40.0 == pytest.approx(8.0 / np.sqrt(2.0) / 40.0, rel=0.025)


def test_head_bob_is_not_made_by_a_few_gross_misses():
    """The head bobs 4 px up and down (twice a second) about the body; a pose model puts
    it on another bird in 3 of 120 frames (200 px off). A clean periodic signal is
    measured exactly (the std about the trend: 4 / sqrt(2) px, in leg lengths); the misses
    used to raise it elevenfold (0.80 instead of 0.07 leg lengths) and with it the pass's
    score. Clipped at 3 robust sigmas they add a fifth."""
    hist = _hist(120)
    t = np.arange(120) / FPS
    hist[:, 2] = 320.0 + 30.0 * t
    hist[:, 3] = 300.0
    hist[:, 4] = hist[:, 2] + 60.0
    hist[:, 5] = 250.0 + 4.0 * np.sin(4.0 * np.pi * t)
    clean = compute_pass_features(hist, LAYOUT, [[], []], FPS)["head_bob"]
    rel = hist[:, 5] - 300.0
    exact = np.std(rel - np.polyval(np.polyfit(t, rel, 1), t)) / 40.0
    assert clean == pytest.approx(exact, rel=1e-9)
    assert exact == pytest.approx(4.0 / np.sqrt(2.0) / 40.0, rel=0.02)
    hist[[20, 61, 95], 5] += 200.0
    missed = compute_pass_features(hist, LAYOUT, [[], []], FPS)["head_bob"]
    assert clean < missed < 1.25 * clean


@pytest.mark.parametrize("view", ["side", "rear"])
def test_a_bird_that_stops_walks_no_slower_and_sways_no_less(view):
    """A bird that stands still for 2 s in the middle of its pass (both feet down, exact
    poses + 0.5 px noise): the speed, sway, head bob and angle means are measured while it
    walks, so they are the pass's own; before, the stop lowered the speed by a quarter and
    moved a severity-2 rear bird's score from 1.1 to 1.7."""
    from gaitlive.config import load_profile
    from gaitlive.gait.stage import GaitStage
    from gaitlive.synth import simulate_pass

    prof = load_profile(f"broiler-{view}")
    sp = simulate_pass(severity=2, view=view, seed=500)
    rng = np.random.default_rng(7)
    p = sp.poses.copy()
    p[..., :2] += rng.normal(0, 0.5, p[..., :2].shape).astype(np.float32)
    stances = {f: list(zip(sp.strikes[f], sp.lifts[f], strict=True)) for f in ("left", "right")}
    mid = (sp.start_frame + sp.end_frame) // 2
    t = next(t for t in range(mid, sp.end_frame)
             if all(any(s <= t <= lf for s, lf in stances[f]) for f in stances))
    hold = np.repeat(p[t:t + 1], 60, axis=0)  # frozen in double support, 2 s at 30 fps
    hold[..., :2] += rng.normal(0, 0.5, hold[..., :2].shape).astype(np.float32)
    stopped = np.concatenate([p[:t], hold, p[t:]])
    a = GaitStage(prof, fps=sp.fps).run_series(p)[1][0].features
    b = GaitStage(prof, fps=sp.fps).run_series(stopped)[1][0].features
    assert a["stopped_s"] == 0.0 and 1.9 <= b["stopped_s"] <= 2.4, b["stopped_s"]
    assert b["speed_leg_s"] == pytest.approx(a["speed_leg_s"], rel=0.05)
    assert b["lateral_sway"] == pytest.approx(a["lateral_sway"], rel=0.1)
    assert b["head_bob"] == pytest.approx(a["head_bob"], rel=0.1)
    assert b["cadence_hz"] == pytest.approx(a["cadence_hz"], rel=0.03)
    for name in prof.angles:
        assert b[f"angle_mean_{name}"] == pytest.approx(a[f"angle_mean_{name}"], abs=1.0)

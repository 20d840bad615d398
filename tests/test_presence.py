"""Presence gating on rendered scenes whose ground truth is known: when a blob moves, where
it is, lighting flicker, the hold after the last motion. Also on real footage (the dog
clip of the shared data folder)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from gaitlive.config import PresenceSettings
from gaitlive.presence import PresenceGate, grow_to

H, W = 240, 320
RX, RY = 24, 14  # the "bird": a bright ellipse with these radii


def background(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bg = rng.integers(60, 120, (H, W, 3)).astype(np.uint8)
    return cv2.GaussianBlur(bg, (5, 5), 0)


def render(bg: np.ndarray, rng: np.random.Generator, *, gain: float = 1.0,
           bird: tuple[int, int] | None = None) -> np.ndarray:
    """Background with sensor noise, a global brightness ``gain`` and maybe a bird."""
    im = bg.astype(np.float32) + rng.normal(0, 2.0, bg.shape)
    if bird is not None:
        cv2.ellipse(im, bird, (RX, RY), 0, 0, 360, (225, 225, 225), -1)
    return np.clip(im * gain, 0, 255).astype(np.uint8)


def settings(**kw) -> PresenceSettings:
    base = dict(history=300, var_threshold=25.0, min_area_fraction=0.004, downscale=4,
                margin=16, hold_frames=5, crop=True, crop_step=1)
    base.update(kw)
    return PresenceSettings(**base)


def bird_x(i: int, start: int) -> int:
    return 40 + (i - start) * 6


def test_empty_corridor_with_flicker_skips_inference():
    bg, rng = background(), np.random.default_rng(1)
    gate = PresenceGate(settings(), warmup_frames=10)
    runs = []
    for i in range(150):
        # 50 Hz-mains-like flicker plus two sudden 30 % brightness steps (lights switched)
        gain = 1.0 + 0.08 * np.sin(i * 2.1) + (0.3 if 60 <= i < 90 else 0.0)
        runs.append(gate.update(render(bg, rng, gain=gain)).run)
    assert all(runs[:10])  # warming up: inference runs
    assert not any(runs[10:])  # then nothing moves: all skipped
    assert gate.frames == 150 and gate.run_frames == 10 and gate.skipped_frames == 140


def test_moving_bird_runs_inference_with_a_crop_around_it_and_holds():
    bg, rng = background(), np.random.default_rng(2)
    hold = 5
    gate = PresenceGate(settings(hold_frames=hold), warmup_frames=10)
    start, stop = 40, 80  # the bird walks in view from frame 40 to 79, then is gone
    results = []
    for i in range(120):
        bird = (bird_x(i, start), 120) if start <= i < stop else None
        results.append(gate.update(render(bg, rng, bird=bird)))
    motion = [i for i, r in enumerate(results) if r.motion]
    assert motion[0] == start  # seen on its first frame
    assert set(range(start, stop)) <= set(motion)
    # the frame the bird vanishes, its old place is uncovered background: still motion
    last = max(motion)
    assert last <= stop
    runs = [i for i, r in enumerate(results) if r.run]
    assert runs == list(range(10)) + list(range(start, last + hold + 1))
    for i in range(start, stop):
        x1, x2, y1, y2 = results[i].crop
        bx, by = bird_x(i, start), 120
        # the crop contains the whole bird (rendered ground truth) ...
        assert x1 <= bx - RX and x2 >= bx + RX and y1 <= by - RY and y2 >= by + RY
        # ... and is not much more than the bird plus the margin (+ one downscaled pixel
        # per side and the motion trail of the previous frame)
        assert (x2 - x1) <= 2 * RX + 2 * 16 + 2 * 4 + 2 * 6 + 8
        assert (y2 - y1) <= 2 * RY + 2 * 16 + 2 * 4 + 8
    # during the hold the last crop is kept
    assert results[last + 1].crop == results[last].crop


def test_crop_off_gives_full_frame_inference():
    bg, rng = background(), np.random.default_rng(3)
    gate = PresenceGate(settings(crop=False), warmup_frames=5)
    res = [gate.update(render(bg, rng, bird=(60 + 5 * i, 100) if i >= 20 else None))
           for i in range(30)]
    assert all(r.run and r.crop is None for r in res[20:])
    assert all(r.motion for r in res[20:])


def test_small_blobs_below_min_area_are_ignored():
    bg, rng = background(), np.random.default_rng(4)
    # the 48x28 px ellipse covers ~1.4 % of the frame; require 3 %
    gate = PresenceGate(settings(min_area_fraction=0.03), warmup_frames=5)
    res = [gate.update(render(bg, rng, bird=(40 + 6 * i, 120) if i >= 20 else None))
           for i in range(40)]
    assert not any(r.run for r in res[5:])


def test_global_lighting_change_relearns_instead_of_running():
    bg, rng = background(), np.random.default_rng(5)
    gate = PresenceGate(settings(), warmup_frames=5)
    for _ in range(30):
        gate.update(render(bg, rng))
    # a different scene (camera bumped, another background): most of the frame changes
    yy, xx = np.mgrid[0:H, 0:W]
    checker = ((yy // 40 + xx // 40) % 2 * 120 - 60)[..., None]
    other = np.clip(bg.astype(np.int16) + checker, 0, 255).astype(np.uint8)
    res = [gate.update(render(other, rng)) for _ in range(10)]
    assert res[0].lighting_change and not res[0].run
    assert not any(r.run for r in res)


def test_reset_forgets_the_background():
    bg, rng = background(), np.random.default_rng(6)
    gate = PresenceGate(settings(), warmup_frames=3)
    for _ in range(20):
        gate.update(render(bg, rng))
    gate.reset()
    assert gate.frames == 0
    assert all(gate.update(render(bg, rng)).run for _ in range(3))  # warming up again
    assert not gate.update(render(bg, rng)).run


@pytest.mark.shared
def test_real_dog_clip_is_present_while_the_dog_walks(shared_data):
    clip = shared_data / "dog-walk" / "dog_clip.avi"
    cap = cv2.VideoCapture(str(clip))
    gate = PresenceGate(settings(margin=32, hold_frames=15), warmup_frames=10)
    n = motion = 0
    crops = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        r = gate.update(frame)
        n += 1
        motion += r.motion
        if r.crop is not None:
            x1, x2, y1, y2 = r.crop
            assert 0 <= x1 < x2 <= frame.shape[1] and 0 <= y1 < y2 <= frame.shape[0]
            crops.append((x2 - x1) * (y2 - y1) / (frame.shape[0] * frame.shape[1]))
    assert n == 296
    # a dog walks through the whole clip: motion is found on most frames, and the crop
    # is smaller than the frame on average
    assert motion > 0.5 * (n - 10)
    assert np.mean(crops) < 0.9


def test_pale_bird_slightly_darker_than_the_floor_is_motion_not_shadow():
    # a white bird on pale litter: 12 % darker than the floor, same colour - what MOG2's
    # shadow label used to swallow (the gate then never saw pale synthetic birds)
    rng = np.random.default_rng(7)
    bg = np.full((H, W, 3), 200, np.uint8)
    gate = PresenceGate(settings(), warmup_frames=10)
    res = []
    for i in range(60):
        im = bg.astype(np.float32) + rng.normal(0, 2.0, bg.shape)
        if i >= 30:
            cv2.ellipse(im, (bird_x(i, 30), 120), (RX, RY), 0, 0, 360, (176, 176, 176), -1)
        res.append(gate.update(np.clip(im, 0, 255).astype(np.uint8)))
    assert not any(r.motion for r in res[10:30])
    assert all(r.motion for r in res[30:])


def pose_at(cx: int, cy: int, likelihood: float = 0.9, n: int = 8) -> np.ndarray:
    """One individual's ``n`` keypoints spread over the bird's ellipse."""
    xs = np.linspace(cx - RX, cx + RX, n)
    ys = np.linspace(cy - RY, cy + RY, n)
    return np.stack([xs, ys, np.full(n, likelihood)], axis=1)[None]


def test_a_bird_that_stops_stays_present_while_its_pose_is_confident():
    bg, rng = background(8), np.random.default_rng(8)
    gate = PresenceGate(settings(hold_frames=3, margin=16), warmup_frames=5, pcutoff=0.6)
    res = []
    for i in range(60):
        # walks in from frame 10, stands still at x=130 from frame 25
        x = bird_x(min(i, 25), 10)
        r = gate.update(render(bg, rng, bird=(x, 120) if i >= 10 else None))
        res.append(r)
        # the pose model finds it confidently until frame 45, then with low likelihood
        gate.observe(pose_at(x, 120, 0.9 if i < 45 else 0.3) if r.run and i >= 10 else None)
    assert all(r.run for r in res[10:46])  # standing still, but its pose holds it present
    assert not any(r.run for r in res[47:])  # pose lost and no motion: skipped
    x1, x2, y1, y2 = res[40].crop  # the pose box grown by the margin, not the whole frame
    assert (x1, x2, y1, y2) == (bird_x(25, 10) - RX - 16, bird_x(25, 10) + RX + 16,
                                120 - RY - 16, 120 + RY + 16)


def test_pose_tracking_needs_enough_confident_keypoints_and_can_be_off():
    bg, rng = background(9), np.random.default_rng(9)
    for kw, keypoints, expect in ((dict(track_min_keypoints=4), 3, False),
                                  (dict(track_min_keypoints=3), 3, True),
                                  (dict(track_pose=False), 8, False)):
        gate = PresenceGate(settings(hold_frames=0, **kw), warmup_frames=3)
        for _ in range(10):
            gate.update(render(bg, rng))
        gate.observe(pose_at(100, 100)[:, :keypoints])
        assert gate.update(render(bg, rng)).run is expect, kw


def test_a_crop_grows_to_min_crop_inside_the_frame():
    bg, rng = background(10), np.random.default_rng(10)
    gate = PresenceGate(settings(hold_frames=0, margin=16, min_crop=(200, 100)),
                        warmup_frames=3)
    for _ in range(10):
        gate.update(render(bg, rng))
    # a bird in the middle: its pose box + margin is 2*24+32 = 80 px wide -> 200 x 100
    gate.observe(pose_at(160, 120))
    assert gate.update(render(bg, rng)).crop == (60, 260, 70, 170)
    # at the frame's left edge the grown crop is shifted inside the frame
    gate.observe(pose_at(30, 120))
    assert gate.update(render(bg, rng)).crop == (0, 200, 70, 170)


def test_crop_sides_round_up_to_crop_step_inside_the_frame():
    # 70 x 50 -> 96 x 64 about the centre
    assert grow_to((100, 170, 50, 100), (), 640, 480, 32) == (87, 183, 43, 107)
    # already multiples: unchanged
    assert grow_to((0, 64, 0, 32), (), 640, 480, 32) == (0, 64, 0, 32)
    # never beyond the frame: 630 -> 640 (not 640 + 32), 100 -> 128 shifted inside
    assert grow_to((5, 635, 0, 100), (), 640, 480, 32) == (0, 640, 0, 128)
    # the minimum wins over a smaller rounded side: 80 -> 96 < 200; 80 -> 96 > 50
    assert grow_to((100, 180, 100, 180), (200, 50), 640, 480, 32) == (40, 240, 92, 188)


def test_the_gate_gives_few_crop_shapes_with_crop_step():
    bg, rng = background(11), np.random.default_rng(11)
    gate = PresenceGate(settings(hold_frames=0, margin=16, crop_step=32), warmup_frames=3)
    for _ in range(10):
        gate.update(render(bg, rng))
    shapes = set()
    for cx in range(60, 260, 7):
        pose = pose_at(cx, 120)
        pose[0, :, 0] += np.linspace(0, cx % 13, pose.shape[1])  # the box width varies
        gate.observe(pose)
        x1, x2, y1, y2 = gate.update(render(bg, rng)).crop
        assert (x2 - x1) % 32 == 0 and (y2 - y1) % 32 == 0, (x1, x2, y1, y2)
        shapes.add((x2 - x1, y2 - y1))
    assert 1 <= len(shapes) <= 2


def test_bird_scale_levels():
    from gaitlive.presence import MIN_SCALE, bird_scale

    assert bird_scale(100, 170) == 1.0 and bird_scale(170, 170) == 1.0
    assert bird_scale(340, 170) == 0.5  # exactly twice: one octave
    assert bird_scale(171, 170) == 2 ** -0.25  # just over: the first level
    assert bird_scale(350, 170) == 2 ** -1.25  # 350/170 > 2: the next level down
    assert bird_scale(10_000, 170) == MIN_SCALE
    assert bird_scale(300, 0) == 1.0 and bird_scale(float("nan"), 170) == 1.0
    for size in (171, 240, 300, 340, 500, 900):
        s = bird_scale(size, 170)
        assert size * s <= 170 < size * s * 2 ** 0.25  # the fewest steps that fit


def _large_bird_gate(resize: float = 1.0):
    """A gate (bird_size 20, margin 16, min_crop 100x60, crop_step 8) after it saw the
    48 px bird of :func:`pose_at` for a full size window: its last result and the gate."""
    from gaitlive.presence import SIZE_WINDOW

    bg, rng = background(12), np.random.default_rng(12)
    gate = PresenceGate(settings(hold_frames=0, margin=16, min_crop=(100, 60), crop_step=8,
                                 bird_size=20), warmup_frames=3, resize=resize)
    for _ in range(10):
        gate.update(render(bg, rng))
    pose = pose_at(160, 120)
    for _ in range(SIZE_WINDOW):
        gate.observe(pose)
        res = gate.update(render(bg, rng))
    return res, gate


def test_a_large_bird_gets_a_scaled_crop_with_scaled_margin_and_min_crop():
    """``bird_size``: a bird whose confident keypoints span more than it is scaled down by
    the gate's ``scale``, and margin, min_crop and crop_step (network pixels) grow by
    1 / scale in frame pixels, so the network sees the crop it was trained on."""
    # pose_at spans 2*RX = 48 px: 48 / 20 = 2.4 -> scale 2^(-5/4) = 0.42 (48 * 0.42 = 20.2
    # > 20 -> one more level: 2^(-6/4) = 0.354)
    res, gate = _large_bird_gate()
    k = 2 ** -1.5
    assert res.scale == k and gate.scale == k
    x1, x2, y1, y2 = res.crop
    # the pose box (48 x 28) + margin 16 / k = 45 px per side -> 138 x 118, rounded up to
    # multiples of 8 / k = 23 px (138, 138), then at least min_crop / k = 283 x 170
    assert (x2 - x1, y2 - y1) == (283, 170)
    assert x1 <= 160 - RX and x2 >= 160 + RX and y1 <= 120 - RY and y2 >= 120 + RY
    # off (0): scale 1, the crop as before
    bg, rng, pose = background(12), np.random.default_rng(12), pose_at(160, 120)
    gate = PresenceGate(settings(hold_frames=0, margin=16, min_crop=(100, 60), crop_step=8),
                        warmup_frames=3)
    for _ in range(10):
        gate.update(render(bg, rng))
    gate.observe(pose)
    res = gate.update(render(bg, rng))
    # 48 + 32 = 80 -> min_crop 100; 28 + 32 = 60 -> rounded to 64
    assert res.scale == 1.0 and (res.crop[1] - res.crop[0], res.crop[3] - res.crop[2]) == (100, 64)


def test_the_gate_sizes_crops_for_the_runners_model_resize():
    """The settings are in pixels of the network's input, which sees a frame pixel at
    ``model.resize``: with resize 0.5 the bird above (48 px, 24 px in the network) needs
    only scale 2^(-1/2), and the crop in frame pixels is the same as at resize 1 with scale
    2^(-3/2): the network sees the same input."""
    res, _ = _large_bird_gate(resize=0.5)
    assert res.scale == 2 ** -0.5
    assert (res.crop[1] - res.crop[0], res.crop[3] - res.crop[2]) == (283, 170)
    with pytest.raises(ValueError, match="resize"):
        PresenceGate(settings(), resize=0.0)


def test_before_a_pose_the_moving_blob_sizes_the_bird():
    bg, rng = background(13), np.random.default_rng(13)
    gate = PresenceGate(settings(hold_frames=5, bird_size=25), warmup_frames=10)
    results = [gate.update(render(bg, rng, bird=(bird_x(i, 20), 120) if i >= 20 else None))
               for i in range(40)]
    # the blob is 36-64 px wide (MOG2 absorbs part of a slow bird's inside; the motion
    # trail adds some): 1.4-2.6 x bird_size -> levels 2^-0.75 .. 2^-1.5 of 2^(-k/4)
    scales = {r.scale for r in results[20:] if r.run}
    assert scales and all(2 ** -1.5 <= s <= 2 ** -0.75 for s in scales), scales
    assert all(round(-4 * np.log2(s), 9).is_integer() for s in scales)
    assert all(r.scale == 1.0 for r in results[:20])  # nothing seen yet


def test_capped_scale_levels():
    from gaitlive.presence import MIN_SCALE, capped_scale

    assert capped_scale(320, 240, 1.0, 0) == 1.0 and capped_scale(640, 480, 0.5, 0) == 0.5
    assert capped_scale(320, 240, 1.0, 320 * 240) == 1.0  # exactly at the cap: as it is
    # 640 x 480 = 4 x (320 x 240): one octave, i.e. four levels
    assert capped_scale(640, 480, 1.0, 320 * 240) == 0.5
    assert capped_scale(640, 480, 2 ** -0.25, 320 * 240) == 0.5  # a bird scale counts
    assert capped_scale(100_000, 100_000, 1.0, 1) == MIN_SCALE
    for w, h, cap in ((416, 448, 135_000), (640, 256, 135_000), (640, 480, 100_000)):
        s = capped_scale(w, h, 1.0, cap)
        # the fewest 2^(-1/4) steps that fit
        assert w * h * s * s <= cap < w * h * (s * 2 ** 0.25) ** 2


def test_max_input_pixels_caps_wide_crops_and_warm_up_frames():
    """Two birds far apart make a crop the frame's width, and warm-up frames are whole
    frames: with ``max_input_pixels`` both come scaled down to the cap; a one-bird crop
    under it is left alone."""
    bg, rng = background(14), np.random.default_rng(14)
    cap = 120 * 100
    gate = PresenceGate(settings(hold_frames=0, max_input_pixels=cap), warmup_frames=3)
    res = [gate.update(render(bg, rng)) for _ in range(10)]
    # warm-up: whole 320 x 240 frames, scaled to fit (76800 px at 2^-1.5: 9600 px)
    assert all(r.crop is None and r.scale == 2 ** -1.5 for r in res[:3])
    one = gate.update(render(bg, rng, bird=(80, 120)))
    x1, x2, y1, y2 = one.crop
    assert (x2 - x1) * (y2 - y1) <= cap and one.scale == 1.0
    im = render(bg, rng, bird=(40, 60))
    cv2.ellipse(im, (280, 180), (RX, RY), 0, 0, 360, (225, 225, 225), -1)
    two = gate.update(im)
    x1, x2, y1, y2 = two.crop
    area = (x2 - x1) * (y2 - y1)
    assert x2 - x1 > 250 and area > cap  # both birds are in the crop ...
    assert area * two.scale ** 2 <= cap < area * (two.scale * 2 ** 0.25) ** 2  # ... scaled
    # off: the same wide crop runs as it is
    gate = PresenceGate(settings(hold_frames=0), warmup_frames=3)
    assert all(gate.update(render(bg, rng)).scale == 1.0 for _ in range(10))
    gate.update(render(bg, rng, bird=(80, 120)))
    assert gate.update(im).scale == 1.0

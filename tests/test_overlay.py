"""The live overlay: pixel-level checks of the drawing functions, the overlay sink (video file
and a real HighGUI window under Xvfb) and result movies."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from gaitlive.config import OverlaySettings, load_profile
from gaitlive.gait.events import GaitUpdate, PassResult, StepEvent, TrackState
from gaitlive.overlay import (
    OverlaySink,
    OverlayState,
    OverlayStyle,
    annotate,
    bodypart_colours,
    choose_overlay_mode,
    compute_angles,
    compute_scale_px,
    draw_footprint,
    draw_hud,
    draw_pose,
    draw_score_badge,
    marker_radius,
    score_colour,
    write_labelled_video,
)

PROFILE = load_profile("broiler-side")
COLOURS = bodypart_colours(PROFILE.n_keypoints)
HEAD = PROFILE.index("head")
# side-view bird in leg-length units, origin between the feet; the leg (knee-hock-foot) of
# each side is 0.5 + 0.5 long, so the leg length is exactly L
SHAPE = {"head": (1.0, -2.2), "neck": (0.6, -1.5), "left_knee": (-0.3, -1.0),
         "right_knee": (0.3, -1.0), "left_hock": (-0.6, -0.6), "right_hock": (0.0, -0.6),
         "left_foot": (-0.3, -0.2), "right_foot": (0.3, -0.2)}


def bird(cx: float, cy: float, L: float, lik: float = 0.95) -> np.ndarray:
    """One bird's pose (8, 3) whose leg is exactly L pixels long."""
    p = np.zeros((PROFILE.n_keypoints, 3), np.float32)
    for i, b in enumerate(PROFILE.bodyparts):
        p[i] = (cx + SHAPE[b][0] * L, cy + SHAPE[b][1] * L, lik)
    return p


def black(w: int = 640, h: int = 480) -> np.ndarray:
    return np.zeros((h, w, 3), np.uint8)


def run_length(img: np.ndarray, x: int, y: int, colour) -> int:
    """Width of the painted (non-black) run on row y through (x, y), which must be
    ``colour`` (the centre of a keypoint marker)."""
    assert tuple(img[y, x]) == tuple(colour), f"pixel ({x}, {y}) is {img[y, x]}, not {colour}"
    row = img[y].any(axis=1)
    lo = x
    while lo > 0 and row[lo - 1]:
        lo -= 1
    hi = x
    while hi + 1 < len(row) and row[hi + 1]:
        hi += 1
    return hi - lo + 1


def mode_colour(img: np.ndarray, x: float, y: float, r: int = 12) -> tuple[int, ...]:
    """The most common colour in a (2r+1)^2 patch around (x, y)."""
    patch = img[max(int(y) - r, 0):int(y) + r + 1, max(int(x) - r, 0):int(x) + r + 1]
    colours, counts = np.unique(patch.reshape(-1, 3), axis=0, return_counts=True)
    return tuple(int(c) for c in colours[np.argmax(counts)])


# ------------------------------------------------------------------------------------
# geometry
# ------------------------------------------------------------------------------------


def test_scale_px_is_the_leg_length():
    # each leg: knee-hock = hypot(0.3, 0.4) = 0.5, hock-foot = hypot(0.3, 0.4) = 0.5
    assert compute_scale_px(bird(300, 300, 80), PROFILE) == pytest.approx(80.0, abs=1e-3)
    p = bird(300, 300, 80)
    p[PROFILE.index("left_foot"), :2] = np.nan  # one segment missing: still the leg length
    assert compute_scale_px(p, PROFILE) == pytest.approx(80.0, abs=1e-3)
    p[:, :2] = np.nan
    assert np.isnan(compute_scale_px(p, PROFILE))


def test_angles_exact():
    p = bird(300, 300, 100)
    k, h, f = (PROFILE.index(n) for n in ("right_knee", "right_hock", "right_foot"))
    p[h, :2] = (300, 300)
    p[k, :2] = (300, 200)  # straight up
    p[f, :2] = (400, 300)  # to the right: 90 degrees
    a = compute_angles(p, PROFILE)
    assert float(a["right_hock"]) == pytest.approx(90.0)
    p[f, :2] = (300, 400)  # straight down: 180
    assert float(compute_angles(p, PROFILE)["right_hock"]) == pytest.approx(180.0)
    series = np.stack([p, p])[:, None]  # (2, 1, 8, 3)
    assert compute_angles(series, PROFILE)["right_hock"].shape == (2, 1)
    p[f, :2] = np.nan
    assert np.isnan(compute_angles(p, PROFILE)["right_hock"])


# ------------------------------------------------------------------------------------
# drawing: pixel level
# ------------------------------------------------------------------------------------


def test_keypoint_is_drawn_where_it_should_be():
    img = black()
    pose = bird(320, 400, 100)
    out = draw_pose(img, pose, PROFILE)
    for k in range(PROFILE.n_keypoints):
        x, y = int(round(pose[k, 0])), int(round(pose[k, 1]))
        assert tuple(out[y, x]) == COLOURS[k], PROFILE.bodyparts[k]
    # nothing far from the bird
    assert not out[:, :100].any() and not out[:100].any()


def test_low_likelihood_keypoint_is_not_drawn_and_mid_is_faded():
    style = OverlayStyle()
    pose = bird(320, 400, 100)
    hx, hy = int(round(pose[HEAD, 0])), int(round(pose[HEAD, 1]))
    pose[HEAD, 2] = 0.05  # below hide_below: not drawn, nor the head-neck edge
    out = draw_pose(black(), pose, PROFILE, style=style)
    assert not out[hy - 3:hy + 4, hx - 3:hx + 4].any()
    pose[HEAD, :2] = np.nan  # NaN: not drawn either (and no crash)
    pose[HEAD, 2] = 0.0
    out2 = draw_pose(black(), pose, PROFILE, style=style)
    assert np.array_equal(out, out2)
    pose = bird(320, 400, 100)
    pose[HEAD, 2] = 0.3  # below pcutoff 0.5: faded
    out = draw_pose(black(), pose, PROFILE, style=style)
    expected = np.asarray(COLOURS[HEAD], float) * style.faded_alpha
    assert np.abs(out[hy, hx].astype(float) - expected).max() <= 1.0
    assert out[hy, hx].any()
    # the solid keypoints around it are unaffected by the fading
    n = PROFILE.index("neck")
    assert tuple(out[int(round(pose[n, 1])), int(round(pose[n, 0]))]) == COLOURS[n]


def test_marker_size_scales_with_the_bird():
    small, big = bird(150, 300, 50), bird(420, 420, 150)
    img = draw_pose(black(), small, PROFILE)
    img = draw_pose(img, big, PROFILE)
    r_small, r_big = marker_radius(50.0), marker_radius(150.0)
    assert r_big == 3 * r_small
    ws = run_length(img, int(small[HEAD, 0]), int(small[HEAD, 1]), COLOURS[HEAD])
    wb = run_length(img, int(big[HEAD, 0]), int(big[HEAD, 1]), COLOURS[HEAD])
    # a disc of radius r, its 1 px outline and anti-aliasing: 2r + 3 pixels wide
    assert (ws, wb) == (2 * r_small + 3, 2 * r_big + 3)
    # the track's scale_px, when given, wins over the pose's own
    img = draw_pose(black(), small, PROFILE, scale_px=150.0)
    assert run_length(img, int(small[HEAD, 0]), int(small[HEAD, 1]),
                      COLOURS[HEAD]) == 2 * r_big + 3


def test_score_colour_green_sound_red_lame():
    b0, g0, r0 = score_colour(0)
    b5, g5, r5 = score_colour(5)
    assert g0 > 150 and r0 < 50 and b0 < 50
    assert r5 > 150 and g5 < 50 and b5 < 50
    b, g, r = score_colour(2.5)  # halfway: yellow
    assert g > 150 and r > 150 and b < 50
    assert score_colour(None) == score_colour(float("nan")) == (160, 160, 160)
    # on the profile's scale: cow5 runs 1..5
    assert score_colour(1, 1, 5) == score_colour(0, 0, 5)


@pytest.mark.parametrize(("score", "channel"), [(0.0, 1), (5.0, 2)])
def test_score_badge_pixels(score, channel):
    img = black()
    res = PassResult(7, 1, 0, 10, 6, score=score, scored=True)
    draw_score_badge(img, res, (320, 240), PROFILE)
    painted = img[img.any(axis=2)]
    # the badge background is the score colour: the most common painted colour
    colours, counts = np.unique(painted, axis=0, return_counts=True)
    bg = colours[np.argmax(counts)]
    assert tuple(int(c) for c in bg) == score_colour(score)
    assert int(np.argmax(bg)) == channel  # 1 = green for 0, 2 = red for 5


def test_footprint_and_hud_draw():
    img = draw_footprint(black(), (100.0, 100.0), (255, 200, 0), 20.0)
    assert img[100, 100].any() and img[85, 100].any()  # the middle toe points up
    assert not img[300:, 300:].any()
    base = np.full((480, 640, 3), 200, np.uint8)
    hud = draw_hud(base.copy(), {"camera": "cam0", "state": "live", "fps": 29.9,
                                 "latency_ms": 40, "dropped": 3})
    assert (hud[2, 600] < 200).all()  # the bar darkens the picture under it
    assert (hud[:25, :640] > 200).all(axis=2).any()  # white text
    assert (hud[5:25, :60, 1] > 200).any()  # [LIVE] in green
    assert np.array_equal(hud[100:], base[100:])


# ------------------------------------------------------------------------------------
# annotate + state over frames
# ------------------------------------------------------------------------------------


def _track(individual=3, row=0, L=100.0, **kw) -> TrackState:
    return TrackState(individual=individual, pass_id=1, pose_row=row, complete=True,
                      scale_px=L, **kw)


def test_annotate_draws_on_a_copy():
    img = np.full((480, 640, 3), 50, np.uint8)
    before = img.copy()
    out = annotate(img, bird(320, 400, 100)[None], PROFILE,
                   GaitUpdate(0, [_track(features={"cadence_hz": 2.0})]), {"fps": 30.0})
    assert np.array_equal(img, before)
    assert out is not img and not np.array_equal(out, img)
    grey = annotate(img[..., 0], None, PROFILE)  # grey input becomes BGR
    assert grey.shape == (480, 640, 3)
    one = annotate(img, bird(320, 400, 100), PROFILE)  # (n_kp, 3): a single animal
    assert np.array_equal(one, annotate(img, bird(320, 400, 100)[None], PROFILE))
    with pytest.raises(ValueError, match=r"shape \(n_individuals, 8, 3\).*got \(1, 5, 3\)"):
        annotate(img, np.zeros((1, 5, 3), np.float32), PROFILE)


def test_step_print_and_pass_score_persist_then_expire():
    style = OverlayStyle(step_hold_s=1.0, score_hold_s=2.0, angles=False, ids=False)
    state = OverlayState(PROFILE, fps=10.0, style=style)
    pose = bird(320, 300, 100)
    lf = PROFILE.index("left_foot")
    fx, fy = float(pose[lf, 0]), float(pose[lf, 1])
    img = black()
    # frame 0: strike of the left foot
    annotate(img, pose[None], PROFILE,
             GaitUpdate(0, [_track()], [StepEvent(3, 1, "left", "strike", 0)]), None, state)
    assert len(state.prints) == 1 and state.prints[0].xy == (fx, fy)
    # frame 5: the bird moved away; the print stays where the foot struck
    moved = bird(500, 300, 100)[None]
    out = annotate(img, moved, PROFILE, GaitUpdate(5, [_track()]), None, state)
    print_px = out[int(fy) - 6, int(fx)]  # on the middle toe
    assert print_px.any()
    # frame 11 (1.1 s): gone
    out = annotate(img, moved, PROFILE, GaitUpdate(11, [_track()]), None, state)
    assert not state.prints and not out[int(fy) - 6, int(fx)].any()
    # pass end: badge at the bird's last position, held for 2 s
    res = PassResult(3, 1, 0, 12, 6, score=0.0, scored=True)
    out = annotate(img, None, PROFILE, GaitUpdate(12, [], [], [res]), None, state)
    lx, ly = state.last_xy[3]
    assert mode_colour(out, lx, ly) == score_colour(0.0)
    out = annotate(img, None, PROFILE, GaitUpdate(25, []), None, state)  # 1.3 s: full
    assert mode_colour(out, lx, ly) == score_colour(0.0)
    out = annotate(img, None, PROFILE, GaitUpdate(31, []), None, state)  # 1.9 s: fading
    b, g, r = mode_colour(out, lx, ly)
    assert 0 < g < 200 and b == r == 0
    out = annotate(img, None, PROFILE, GaitUpdate(33, []), None, state)
    assert not state.badges and not out.any()


# ------------------------------------------------------------------------------------
# where the overlay goes
# ------------------------------------------------------------------------------------


def test_choose_overlay_mode():
    auto = OverlaySettings()
    m = choose_overlay_mode(auto, headless=False, display=True)
    assert m.window and m.video_path is None
    m = choose_overlay_mode(auto, headless=False, display=False, out_dir="o")
    assert not m.window and m.video_path == Path("o/overlay.mp4")
    m = choose_overlay_mode(auto, headless=True, display=True, out_dir="o")
    assert not m.window and m.video_path == Path("o/overlay.mp4")
    m = choose_overlay_mode(OverlaySettings(window="on", video="x.avi"), False, display=True)
    assert m.window and m.video_path == Path("x.avi")
    m = choose_overlay_mode(OverlaySettings(window="off"), False, display=True, out_dir="o")
    assert not m.window and m.video_path == Path("o/overlay.mp4")
    with pytest.raises(ValueError, match="overlay.window: on"):
        choose_overlay_mode(OverlaySettings(window="on"), False, display=False)


def _frames(n: int, w: int = 640, h: int = 480):
    rng = np.random.default_rng(0)
    base = rng.integers(40, 90, (h, w, 3), dtype=np.uint8)
    for i in range(n):
        yield i, base.copy(), bird(100 + 3 * i, 400, 100)[None]


def test_sink_writes_video_and_counts_drops(tmp_path):
    out = tmp_path / "overlay.avi"
    sink = OverlaySink(PROFILE, window=False, video_path=out, fps=30.0, queue_size=1)
    res = PassResult(0, 1, 0, 150, 8, score=5.0, scored=True)
    submitted = 0
    for i, img, poses in _frames(200, 1280, 720):
        upd = GaitUpdate(i, [_track(0)], [], [res] if i == 150 else [])
        sink.submit(img, poses, upd, {"fps": 30.0, "camera": "cam0", "state": "live"})
        submitted += 1
    time.sleep(1.0)  # let the queue drain, then one last frame that is surely drawn
    i, img, poses = 200, np.zeros((720, 1280, 3), np.uint8), None
    assert sink.submit(img, poses, GaitUpdate(i, []), {"camera": "cam0"})
    submitted += 1
    sink.close()
    assert not sink.quit_requested and sink.error is None
    assert sink.dropped > 0, "a burst into a 1-frame queue must drop frames"
    assert sink.dropped + sink.drawn == submitted
    cap = cv2.VideoCapture(str(out))
    n, last = 0, None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        n, last = n + 1, frame
    assert n == sink.drawn
    assert last is not None and last.shape == (720, 1280, 3)
    # the pass of frame 150 shows its red score on the last frame even if frame 150 itself
    # was dropped (the sink keeps the events of dropped frames)
    red = (last[..., 2] > 180) & (last[..., 1] < 70) & (last[..., 0] < 70)
    assert red.sum() > 500


def test_lossless_sink_draws_every_frame(tmp_path):
    out = tmp_path / "all.avi"
    sink = OverlaySink(PROFILE, window=False, video_path=out, fps=30.0, queue_size=1,
                       lossless=True)
    for i, img, poses in _frames(60, 320, 240):
        assert sink.submit(img, poses, GaitUpdate(i, [_track(0)]), None)
    sink.close()
    assert (sink.drawn, sink.dropped) == (60, 0)
    assert int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT)) == 60


def test_a_sink_with_the_gait_clock_keeps_its_movie_in_real_time(tmp_path):
    """With the gait stage's clock the movie holds each drawn frame for the source time
    since the one before: frames dropped upstream (2-4 here) are made up, a camera that
    halved its rate (from frame 8) gets each frame twice, a long gap is held 2 s at most."""
    from gaitlive.gait.clock import FrameClock

    clock = FrameClock(30.0)
    clock.retime(8, 15.0)
    out = tmp_path / "clock.avi"
    sink = OverlaySink(PROFILE, window=False, video_path=out, fps=30.0, lossless=True,
                       clock=clock)
    frames = {i: (img, poses) for i, img, poses in _frames(20, 320, 240)}
    indices = [0, 1, 5, 6, 7, 8, 9, 10, 400]
    for i in indices:
        img, poses = frames[min(i, 19)]
        assert sink.submit(img, poses, GaitUpdate(i, [_track(0)]), None, frame_index=i)
    sink.close()
    # 1 + 1 + 4 (frames 2-5) + 1 + 1 + 1 (frame 8 keeps its 30 fps time) + 2 + 2 + 60
    want = 1 + 1 + 4 + 1 + 1 + 1 + 2 + 2 + 60
    assert sink.drawn == len(indices)
    assert int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT)) == want


# ------------------------------------------------------------------------------------
# result movies
# ------------------------------------------------------------------------------------


def _write_video(path: Path, n: int, w: int = 320, h: int = 240, fps: float = 10.0) -> None:
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for i in range(n):
        img = np.full((h, w, 3), 60, np.uint8)
        cv2.putText(img, str(i), (10, h - 10), cv2.FONT_HERSHEY_SIMPLEX, 1, (200, 200, 200))
        wr.write(img)
    wr.release()


def test_write_labelled_video(tmp_path):
    video = tmp_path / "clip.avi"
    _write_video(video, 30)
    poses = np.stack([bird(60 + 4 * i, 200, 60)[None] for i in range(30)])
    steps = pd.DataFrame({"individual": [0, 0], "pass_id": [1, 1], "foot": ["left", "right"],
                          "strike_frame": [5, 9], "lift_frame": [8, 14]})
    passes = pd.DataFrame({"individual": [0], "pass_id": [1], "start_frame": [0],
                           "end_frame": [20], "n_steps": [2], "cadence_hz": [2.0],
                           "stance_fraction_left": [0.6], "stance_fraction_right": [0.6],
                           "score": [5.0]})
    out = write_labelled_video(video, poses, tmp_path / "res" / "clip_labelled.avi", PROFILE,
                               steps, passes)
    assert out.is_file() and not list(out.parent.glob(".*"))
    cap = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    assert len(frames) == 30
    # frame 3: head keypoint in its colour (MJPEG: within a tolerance)
    x, y = (int(round(v)) for v in poses[3, 0, HEAD, :2])
    assert np.abs(frames[3][y, x].astype(int) - COLOURS[HEAD]).max() < 60
    # frames 20..: the red score badge (the head keypoint is red too)
    def red(f):
        return int(((f[..., 2] > 180) & (f[..., 1] < 80) & (f[..., 0] < 80)).sum())
    assert red(frames[21]) > red(frames[19]) + 300
    # the tables' files (as gaitlive analyze writes them) give the same movie
    steps.to_csv(tmp_path / "clip_steps.csv", index=False)
    passes.to_csv(tmp_path / "clip_passes.csv", index=False)
    again = write_labelled_video(video, poses, tmp_path / "res" / "from_files.avi", PROFILE,
                                 tmp_path / "clip_steps.csv", str(tmp_path / "clip_passes.csv"))
    cap = cv2.VideoCapture(str(again))
    for f in frames:
        ok, g = cap.read()
        assert ok and np.array_equal(f, g)
    with pytest.raises(FileNotFoundError, match="nope_steps.csv: table not found"):
        write_labelled_video(video, poses, tmp_path / "res" / "x.avi", PROFILE,
                             tmp_path / "nope_steps.csv")


def test_write_labelled_video_bad_input(tmp_path):
    video = tmp_path / "clip.avi"
    _write_video(video, 3)
    with pytest.raises(ValueError, match=r"shape \(n_frames, n_individuals, 8, 3\)"):
        write_labelled_video(video, np.zeros((3, 1, 5, 3)), tmp_path / "o.avi", PROFILE)
    with pytest.raises(FileNotFoundError, match="nope.avi"):
        write_labelled_video(tmp_path / "nope.avi", np.zeros((3, 1, 8, 3)), tmp_path / "o.avi",
                             PROFILE)
    (tmp_path / "bad.avi").write_bytes(b"not a video")
    with pytest.raises(ValueError, match="bad.avi"):
        write_labelled_video(tmp_path / "bad.avi", np.zeros((3, 1, 8, 3)),
                             tmp_path / "o.avi", PROFILE)
    assert not (tmp_path / "o.avi").exists() and not list(tmp_path.glob(".o.*"))


# ------------------------------------------------------------------------------------
# the real window
# ------------------------------------------------------------------------------------


WINDOW_BLACK = 3  # exit status of _window_child: the window was never painted


def _window_child(display: str, shot: str) -> int:
    """In a process of its own: open the overlay window, check on screenshots that it shows
    every bodypart colour, then that 'q' in it asks to quit. Returns 0, or WINDOW_BLACK when
    the window stayed black (OpenCV's Qt HighGUI now and then never paints a new window on
    a loaded machine, and then no later window of that process either: opencv-python issue
    362); an assertion error is a failure."""
    sink = OverlaySink(PROFILE, window=True, video_path=None, fps=30.0, queue_size=4,
                       title="gaitlive-test")
    img = np.full((480, 640, 3), 70, np.uint8)
    pose = bird(320, 400, 100)
    try:
        deadline = time.monotonic() + 20
        wid = ""
        while time.monotonic() < deadline and not wid:
            sink.submit(img, pose[None], GaitUpdate(0, [_track(0)]), {"camera": "cam0"})
            time.sleep(0.1)
            r = subprocess.run(["xdotool", "search", "--name", "gaitlive-test"],
                               capture_output=True, text=True)
            wid = r.stdout.split()[0] if r.stdout.split() else ""
        assert wid, "the overlay window did not appear"
        # the window paints on its own time (seconds on a loaded machine): keep feeding it
        # and take screenshots until every bodypart colour is on screen, or 30 s
        start = time.monotonic()
        while True:
            for _ in range(10):
                sink.submit(img, pose[None], GaitUpdate(0, [_track(0)]), {"camera": "cam0"})
                time.sleep(0.05)
            subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-draw_mouse", "0", "-f",
                            "x11grab", "-video_size", "1280x800", "-i", display,
                            "-frames:v", "1", shot], check=True, timeout=30)
            screen = cv2.imread(shot)
            assert screen is not None
            hits = [int(np.all(np.abs(screen.astype(int) - c) <= 2, axis=2).sum())
                    for c in COLOURS]
            if min(hits) >= 10 or time.monotonic() > start + 30:
                break
            if time.monotonic() > start + 15 and screen.max() <= 16:
                return WINDOW_BLACK
        # every bodypart colour is on screen (the window shows the overlay)
        for k, c in enumerate(COLOURS):
            assert hits[k] >= 10, f"{PROFILE.bodyparts[k]} colour {c} not on screen"
        # 'q' in the window asks to quit
        subprocess.run(["xdotool", "windowactivate", "--sync", wid], timeout=10,
                       capture_output=True)
        subprocess.run(["xdotool", "key", "--window", wid, "q"], check=True, timeout=10)
        deadline = time.monotonic() + 10
        while not sink.quit_requested and time.monotonic() < deadline:
            sink.submit(img, pose[None], None, None)
            time.sleep(0.05)
        assert sink.quit_requested
    finally:
        sink.close()
    assert sink.error is None
    return 0


@pytest.mark.gui
def test_window_under_xvfb_screenshot_and_quit(xvfb_display, tmp_path):
    """The overlay window shows the overlay and quits on 'q'. Each try is a new process
    (the Qt fault above blackens every window of a process); a window that stays black in
    three processes in a row is a failure, not the fault (about 1 start in 3-5 under load)."""
    import os
    import sys

    if shutil.which("ffmpeg") is None or shutil.which("xdotool") is None:
        pytest.skip("needs ffmpeg (x11grab) and xdotool")
    child = ("import sys; sys.path.insert(0, sys.argv[1]); import test_overlay as t; "
             "sys.exit(t._window_child(sys.argv[2], sys.argv[3]))")
    for attempt in range(3):
        r = subprocess.run([sys.executable, "-c", child, str(Path(__file__).parent),
                            xvfb_display, str(tmp_path / f"screen{attempt}.png")],
                           env={**os.environ, "DISPLAY": xvfb_display}, capture_output=True,
                           text=True, timeout=180)
        if r.returncode != WINDOW_BLACK:
            break
    assert r.returncode == 0, (f"try {attempt + 1} of 3: exit {r.returncode} "
                               f"({'window never painted' if r.returncode == WINDOW_BLACK else 'failed'})"
                               f"\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")


# ------------------------------------------------------------------------------------
# gaitlive view: a real publisher on loopback, the viewer CLI headless
# ------------------------------------------------------------------------------------


def test_view_cli_headless_draws_published_stream(tmp_path):
    import sys

    from gaitlive.config import PublishSettings
    from gaitlive.publish import Publisher

    settings = PublishSettings(endpoint="tcp://127.0.0.1:0", side_channel="tcp://127.0.0.1:0",
                               journal=str(tmp_path / "journal.sqlite"), jpeg=True,
                               heartbeat_s=0.2)
    out = tmp_path / "view.avi"
    bg = np.full((360, 480, 3), 90, np.uint8)
    with Publisher(settings, "cam7", model="test").start() as pub:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gaitlive.cli", "view", pub.endpoint, "--camera", "cam7",
             "--profile", "broiler-side", "--headless", "--out", str(out), "--frames", "60",
             "--idle-timeout", "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        i = 0
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            pose = bird(100 + (i % 60) * 4, 300, 70)[None]
            pub.publish_pose(i, time.monotonic(), time.time(), pose, PROFILE.bodyparts)
            ok, jpg = cv2.imencode(".jpg", bg, [cv2.IMWRITE_JPEG_QUALITY, 90])
            pub.publish_frame(i, jpg.tobytes())
            if i % 10 == 5:
                pub.publish_step(StepEvent(0, 1, "left", "strike", i))
            if i % 30 == 20:
                pub.publish_pass(PassResult(0, 1, i - 20, i, 6, score=5.0, scored=True,
                                            camera_id="cam7"))
            if i % 10 == 0:
                pub.publish_status({"fps": 30.0, "latency_ms": 25.0, "state": "live"})
            i += 1
            time.sleep(1 / 60)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "view cam7: drew 60 frames" in stdout
    cap = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    assert len(frames) == 60 and frames[0].shape == (360, 480, 3)
    # poses drawn over the published frames: the neck colour at the neck of that frame
    neck = PROFILE.index("neck")
    drawn = 0
    for f in frames:
        near = np.all(np.abs(f.astype(int) - COLOURS[neck]) < 40, axis=2)
        drawn += near.sum() > 20
    assert drawn >= 50
    # a pass score badge (red, score 5) appears, and the heads-up line says LIVE
    red = [int(((f[..., 2] > 180) & (f[..., 1] < 70) & (f[..., 0] < 70)).sum()) for f in frames]
    assert max(red) > 1000
    hud = frames[-1][:30, :60].astype(int)
    assert ((hud[..., 1] > 180) & (hud[..., 2] < 150)).sum() > 10  # [LIVE] in green


def test_viewer_pairs_frames_with_their_poses():
    from gaitlive.overlay import RemoteViewer
    from gaitlive.publish import messages as M

    seq = iter(range(1, 1000))

    def msg(kind, body):
        header = M.encode_header("pub", "epoch", next(seq), time.monotonic(), time.time())
        return M.decode(M.encode(kind, "cam0", header, body))

    bg = np.full((240, 320, 3), 80, np.uint8)
    jpg = cv2.imencode(".png", bg)[1].tobytes()  # lossless, so "as received" is exact
    pose = bird(150, 200, 50)[None]
    v = RemoteViewer("tcp://127.0.0.1:1", PROFILE, camera="cam0", window=False)
    try:
        v.handle(msg("frame", M.frame_body(0, jpg)))
        assert v.stats.rendered == 0  # waits for its poses
        v.handle(msg("pose", M.pose_body(0, 0.0, 0.0, pose, PROFILE.bodyparts)))
        assert v.stats.rendered == 1 and v.stats.with_pose == 1
        x, y = (int(round(c)) for c in pose[0, HEAD, :2])
        assert tuple(v.last_output[y, x]) == COLOURS[HEAD]
        v.handle(msg("frame", dict(M.frame_body(1, jpg), drawn=True)))  # drawn by the run
        assert v.stats.rendered == 2 and np.array_equal(v.last_output, bg)
        v.handle(msg("frame", M.frame_body(2, jpg)))  # no poses for 2: drawn with frame 0's
        v.handle(msg("frame", M.frame_body(9, jpg)))  # ... when the next frame comes
        assert v.stats.rendered == 3 and tuple(v.last_output[y, x]) == COLOURS[HEAD]
        v.handle(msg("pass", M.pass_body(PassResult(0, 1, 0, 9, 5, score=0.0, scored=True))))
        v.handle(msg("pose", M.pose_body(9, 0.0, 0.0, pose, PROFILE.bodyparts)))
        assert v.stats.rendered == 4
        assert mode_colour(v.last_output, *v.state.last_xy[0]) == score_colour(0.0)
        # track ids from the publisher: row 1 is bird 7 (row 0 untracked), so bird 7's
        # pass badge goes beside row 1's pose, not beside a row numbered 7
        moved = bird(240, 110, 40)[None]  # away from bird 0's badge
        two = np.concatenate([bird(60, 120, 30)[None], moved])
        v.handle(msg("pass", M.pass_body(PassResult(7, 2, 0, 12, 5, score=4.0, scored=True))))
        v.handle(msg("frame", M.frame_body(12, jpg)))
        v.handle(msg("pose", M.pose_body(12, 0.0, 0.0, two, PROFILE.bodyparts,
                                         individuals=[-1, 7])))
        assert v.stats.rendered == 5
        x7, y7 = v.state.last_xy[7]
        assert abs(x7 - np.nanmean(moved[0, :, 0])) < 1 and abs(y7 - np.nanmean(moved[0, :, 1])) < 1
        assert mode_colour(v.last_output, x7, y7) == score_colour(4.0)
    finally:
        v.close()


def test_viewer_times_frames_by_the_run_s_source_rate_not_its_varying_gait_fps():
    """The viewer's overlay clock follows ``source_fps`` from the run's status messages
    (and its changes), not ``fps``, the gait loop's recent rate: at frame 9000 a status
    fps of 30.2 after 29.8 moved the clock 4 s back and reset the overlay (the score
    badges vanished; review, 2026-12-07)."""
    from gaitlive.overlay import RemoteViewer
    from gaitlive.publish import messages as M

    seq = iter(range(1, 10000))

    def msg(kind, body):
        header = M.encode_header("pub", "epoch", next(seq), time.monotonic(), time.time())
        return M.decode(M.encode(kind, "cam0", header, body))

    def status(fps, source_fps):
        return msg("status", {"state": "live", "camera_id": "cam0", "model": "m",
                              "pass_seq": 0, "published": {}, "queue_drops": 0,
                              "fps": fps, "source_fps": source_fps})

    bg = np.full((240, 320, 3), 80, np.uint8)
    jpg = cv2.imencode(".png", bg)[1].tobytes()
    pose = bird(150, 200, 50)[None]
    v = RemoteViewer("tcp://127.0.0.1:1", PROFILE, camera="cam0", window=False)
    try:
        v.handle(status(29.8, 25.0))
        for f in (9000, 9001):
            v.handle(msg("pose", M.pose_body(f, 0.0, 0.0, pose, PROFILE.bodyparts)))
            v.handle(msg("frame", M.frame_body(f, jpg)))
        assert v.state.now == pytest.approx(9001 / 25.0)
        v.handle(msg("pass", M.pass_body(PassResult(0, 1, 8900, 9001, 5, score=5.0,
                                                     scored=True))))
        v.handle(status(30.2, 25.0))  # the gait loop a little faster: no jump
        v.handle(msg("pose", M.pose_body(9002, 0.0, 0.0, pose, PROFILE.bodyparts)))
        v.handle(msg("frame", M.frame_body(9002, jpg)))
        assert v.state.now == pytest.approx(9002 / 25.0) and v.state.badges
        # the camera halves its rate: frames after the change are 1/12.5 s apart
        v.handle(status(12.4, 12.5))
        v.handle(msg("pose", M.pose_body(9012, 0.0, 0.0, pose, PROFILE.bodyparts)))
        v.handle(msg("frame", M.frame_body(9012, jpg)))
        assert v.state.now == pytest.approx(9002 / 25.0 + 10 / 12.5) and v.state.badges
    finally:
        v.close()


def test_stance_underlines_the_grounded_foot():
    from gaitlive.overlay import draw_stance

    pose = bird(320, 300, 100)
    r = marker_radius(100.0)
    lf, rf = PROFILE.index("left_foot"), PROFILE.index("right_foot")
    img = draw_stance(black(), pose, _track(stance={"left": True, "right": False}), PROFILE)
    below = lambda k: img[int(pose[k, 1]) + r + 3, int(pose[k, 0])]  # noqa: E731
    assert below(lf).any() and not below(rf).any()


def test_close_returns_when_the_drawing_thread_died_with_a_full_queue(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the video's folder should be")
    sink = OverlaySink(PROFILE, window=False, video_path=blocker / "overlay.mp4", fps=30.0,
                       queue_size=2)
    for i, img, poses in _frames(20):
        sink.submit(img, poses, GaitUpdate(i, []))
        time.sleep(0.01)
    sink._thread.join(5)
    assert not sink._thread.is_alive() and sink.error is not None  # died on the first frame
    assert sink._queue.full()
    done = threading.Event()
    closer = threading.Thread(target=lambda: (sink.close(timeout=2.0), done.set()), daemon=True)
    closer.start()
    assert done.wait(5.0), "close() blocked on the full queue of a dead thread"


def _view(*args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    import sys

    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "gaitlive.cli", "view", "tcp://127.0.0.1:1",
                        "--profile", "broiler-side", "--headless", *args],
                       capture_output=True, text=True, timeout=timeout)
    return r, time.monotonic() - t0


def test_view_out_is_checked_before_anything_arrives(tmp_path):
    # no publisher: the old viewer waited the whole --duration and only then failed (or
    # overwrote the existing video); each of these is a one-line error at once
    existing = tmp_path / "yesterday.avi"
    existing.write_bytes(b"an earlier recording")
    (tmp_path / "folder.avi").mkdir()
    (tmp_path / "notes.txt").write_text("a file")
    for out, what in ((tmp_path / "v.txt", "expected a video file name ending in .mp4 or .avi"),
                      (tmp_path / "folder.avi", "is a folder"),
                      (tmp_path / "notes.txt" / "v.avi", "is a file, not a folder"),
                      (existing, "the file already exists; give another name, or --force")):
        r, took = _view("--out", str(out), "--duration", "30")
        err = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(err) == 1, (out, r.stderr)
        assert err[0].startswith(f"gaitlive view: error: --out {out}: ") and what in err[0], err
        assert took < 25, (out, took)
    assert existing.read_bytes() == b"an earlier recording"
    assert not (tmp_path / "v.txt").exists()
    r, _ = _view("--out", str(tmp_path / "new" / "v.mp4"), "--force", "--duration", "0.3")
    assert r.returncode == 1 and "nothing to draw" in r.stderr  # a new folder is fine
    r, _ = _view("--force", "--frames", "1")  # --force without --out: said, not ignored
    assert r.returncode == 2 and "--out" in r.stderr


def test_view_force_replaces_an_existing_video_only_once_frames_are_drawn(tmp_path):
    from gaitlive.overlay import RemoteViewer
    from gaitlive.publish import messages as M

    out = tmp_path / "view.avi"
    out.write_bytes(b"an earlier recording")
    with pytest.raises(ValueError, match="already exists"):
        RemoteViewer("tcp://127.0.0.1:1", PROFILE, camera="cam0", window=False, out_path=out)
    # --force with nothing received: the earlier file is kept
    r, _ = _view("--out", str(out), "--force", "--duration", "0.3")
    assert r.returncode == 1 and out.read_bytes() == b"an earlier recording"
    v = RemoteViewer("tcp://127.0.0.1:1", PROFILE, camera="cam0", window=False, out_path=out,
                     overwrite=True)
    assert out.read_bytes() == b"an earlier recording"  # nothing written yet
    bg = np.full((240, 320, 3), 80, np.uint8)
    jpg = cv2.imencode(".jpg", bg)[1].tobytes()
    try:
        for i in range(3):
            header = M.encode_header("pub", "epoch", i + 1, time.monotonic(), time.time())
            v.handle(M.decode(M.encode("frame", "cam0", header,
                                       dict(M.frame_body(i, jpg), drawn=True))))
    finally:
        v.close()
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 3


def test_video_out_keeps_the_last_row_and_column_of_odd_sized_frames(tmp_path):
    from gaitlive.overlay.video import VideoOut

    img = np.zeros((49, 65, 3), np.uint8)
    img[-1, :] = 255
    img[:, -1] = 255
    out = VideoOut(tmp_path / "odd.mp4", 10.0)
    for _ in range(3):
        out.write(img)
    out.close()
    cap = cv2.VideoCapture(str(tmp_path / "odd.mp4"))
    ok, got = cap.read()
    cap.release()
    assert ok and got.shape == (50, 66, 3)
    assert got[48, 10].mean() > 200 and got[10, 64].mean() > 200

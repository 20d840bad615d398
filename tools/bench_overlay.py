"""Benchmark the live overlay: drawing cost per frame and what submitting costs the pipeline.

Usage: ``.venv/bin/python tools/bench_overlay.py [--frames 300]``

Reports, for 640x480 and 1280x720 frames, the time of :func:`gaitlive.overlay.annotate`
(1 and 3 birds with tracks, foot prints, a score badge and the heads-up line) as a ratio of
two baselines measured in the same run on the same frames: ``image.copy()`` (the least any
overlay costs) and a JPEG encode at quality 75 (what ``publish.jpeg`` costs per frame).
Then the time of :meth:`gaitlive.overlay.OverlaySink.submit` (what the pipeline thread
pays; drawing happens in the sink's thread) while the sink is saturated.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from gaitlive.config import load_profile
from gaitlive.gait.events import GaitUpdate, PassResult, StepEvent, TrackState
from gaitlive.overlay import OverlaySink, OverlayState, annotate

SHAPE = {"head": (1.0, -2.2), "neck": (0.6, -1.5), "left_knee": (-0.3, -1.0),
         "right_knee": (0.3, -1.0), "left_hock": (-0.6, -0.6), "right_hock": (0.0, -0.6),
         "left_foot": (-0.3, -0.2), "right_foot": (0.3, -0.2)}


def bird(profile, cx: float, cy: float, L: float) -> np.ndarray:
    p = np.zeros((profile.n_keypoints, 3), np.float32)
    for i, b in enumerate(profile.bodyparts):
        p[i] = (cx + SHAPE[b][0] * L, cy + SHAPE[b][1] * L, 0.9)
    p[0, 2] = 0.3  # one faded keypoint, as in real footage
    return p


def timed(fn, n: int) -> float:
    """Median seconds of ``fn()`` over ``n`` calls (after 5 warm-up calls)."""
    for _ in range(5):
        fn()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def _annotator(profile, img: np.ndarray, poses: np.ndarray, tracks: list[TrackState]):
    """A call that annotates the next frame: a strike every 10 frames, a pass every 60."""
    state = OverlayState(profile, 30.0)
    hud = {"camera": "cam0", "state": "live", "fps": 30.0, "latency_ms": 40, "dropped": 0}
    counter = [0]

    def one() -> None:
        f = counter[0]
        counter[0] += 1
        steps = [StepEvent(0, 1, "left", "strike", f)] if f % 10 == 0 else []
        passes = [PassResult(9, 1, 0, f, 6, score=2.0, scored=True)] if f % 60 == 0 else []
        annotate(img, poses, profile, GaitUpdate(f, tracks, steps, passes), hud, state)

    return one


def bench_size(profile, w: int, h: int, n: int) -> list[str]:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    scale = h / 480
    t_copy = timed(lambda: img.copy(), n)
    t_jpeg = timed(lambda: cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 75]), n)
    rows = [f"{w}x{h}: baseline image.copy() {t_copy * 1e3:.3f} ms, "
            f"JPEG encode {t_jpeg * 1e3:.2f} ms"]
    for n_birds in (1, 3):
        poses = np.stack([bird(profile, (150 + 180 * i) * scale, 380 * scale, 90 * scale)
                          for i in range(n_birds)])
        tracks = [TrackState(i, 1, i, True, features={"cadence_hz": 2.0,
                                                        "stance_fraction_left": 0.6,
                                                        "stance_fraction_right": 0.6},
                             n_steps=5, scale_px=90 * scale) for i in range(n_birds)]
        one = _annotator(profile, img, poses, tracks)
        t = timed(one, n)
        rows.append(f"  annotate {n_birds} bird(s): {t * 1e3:.2f} ms/frame = "
                    f"{t / t_copy:.0f}x copy, {t / t_jpeg:.2f}x JPEG encode, "
                    f"max {1 / t:.0f} fps on one core")
    return rows


def bench_submit(profile, n: int, out: Path) -> list[str]:
    img = np.random.default_rng(1).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    poses = bird(profile, 400, 600, 150)[None]
    sink = OverlaySink(profile, window=False, video_path=out, fps=30.0, queue_size=4)
    ts = []
    try:
        for f in range(n):
            upd = GaitUpdate(f, [TrackState(0, 1, 0, True, scale_px=150.0)])
            t0 = time.perf_counter()
            sink.submit(img, poses, upd, {"camera": "cam0"})
            ts.append(time.perf_counter() - t0)
    finally:
        sink.close()
    a = np.asarray(ts) * 1e6
    return [f"OverlaySink.submit (1280x720, sink saturated, writing {out.suffix}): median "
            f"{np.median(a):.1f} us, 99th percentile {np.percentile(a, 99):.1f} us; "
            f"{sink.drawn} drawn, {sink.dropped} dropped of {n}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--out", default="/tmp/bench_overlay.avi")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    profile = load_profile("broiler-side")
    print(f"OpenCV {cv2.__version__}, {args.frames} frames per measurement, 1 OpenCV thread")
    for w, h in ((640, 480), (1280, 720)):
        print("\n".join(bench_size(profile, w, h, args.frames)))
    print("\n".join(bench_submit(profile, args.frames, Path(args.out))))
    Path(args.out).unlink(missing_ok=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Benchmark pose inference: ms per frame of the bundled model on 640x480 frames.

    .venv/bin/python tools/bench_pose.py [--model models/gaitlive-corridor] [--video V]
                                         [--frames 200] [--device auto] [--json out.json]

Every configuration runs on the same decoded frames, in the same process, one after the
other; the baseline is dlclive itself on the whole 640x480 frame (``DLCLive.get_pose`` at
the model's own resolution, torch's default thread count) and every row reports its ratio
to that baseline:

* ``dlclive``: the baseline;
* ``gaitlive-frame``: :func:`gaitlive.pose.load_runner` with the default config's model
  settings (resize 1.0, ``model.threads: 1``) on the whole frame, also with 2 threads;
* ``gaitlive-crop``: the same on a ``presence.min_crop`` (320x240) crop around the frame
  centre: what the live pipeline runs per frame with the default config (the presence gate
  crops to the bird, at least ``min_crop``), also with 1 and 2 torch threads;
* ``gaitlive-crop-400x300``: a larger crop (a big bird close to the camera);
* ``gaitlive-half``: the whole frame at resize 0.5 (the default before fine-tune 5).

Figures go to docs/model.md. Frames come from ``--video`` (default: the demo video, else
the openfield-mouse video in ../shared/data, resized to 640x480 if needed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _frames(video: Path, n: int) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise SystemExit(f"{video}: cannot open video")
    out = []
    while len(out) < n:
        ok, f = cap.read()
        if not ok:
            if not out:
                raise SystemExit(f"{video}: no frames")
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        if f.shape[:2] != (480, 640):
            f = cv2.resize(f, (640, 480), interpolation=cv2.INTER_AREA)
        out.append(f)
    cap.release()
    return out


def _time(fn, frames: list[np.ndarray], warm: int = 5) -> dict[str, float]:
    for f in frames[:warm]:
        fn(f)
    t = []
    for f in frames:
        t0 = time.perf_counter()
        fn(f)
        t.append(time.perf_counter() - t0)
    a = np.asarray(t) * 1000
    return {"mean_ms": float(a.mean()), "p50_ms": float(np.median(a)),
            "p95_ms": float(np.percentile(a, 95)), "fps": float(1000 / a.mean())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT / "models" / "gaitlive-corridor"))
    p.add_argument("--video", default=None)
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", default=None, help="write the results here")
    a = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import torch
    from dlclive import DLCLive

    from gaitlive.config import load_config
    from gaitlive.pose import find_model_file, load_runner

    video = Path(a.video) if a.video else ROOT / "models" / "demo" / "corridor-demo.mp4"
    if not video.is_file():
        video = ROOT.parent / "shared" / "data" / "openfield-mouse" / "videos" / "m3v1mp4.mp4"
    frames = _frames(video, a.frames)
    device = a.device if a.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    default_threads = torch.get_num_threads()
    results: dict[str, dict[str, float]] = {}

    cfg = load_config(overrides={"model.path": a.model})
    live = DLCLive(str(find_model_file(a.model)), model_type="pytorch", device=device,
                   single_animal=False)
    live.init_inference(frames[0])
    results["dlclive"] = _time(live.get_pose, frames)
    live.close()

    def runner_case(name: str, threads: int | None = None,
                    crop: tuple[int, int, int, int] | None = None, **kw: object) -> None:
        # model.threads (the default config's 1 unless given; 0 = torch's default)
        s = dataclasses.replace(cfg.model, device=device, warmup_frames=0,
                                threads=cfg.model.threads if threads is None else threads,
                                **kw)
        with load_runner(a.model, s) as r:
            r.init(frames[0])
            results[name] = _time(lambda f: r.get_pose(f, crop=crop), frames)
        torch.set_num_threads(default_threads)

    cw, ch = cfg.presence.min_crop
    centre = (320 - cw // 2, 320 + cw // 2, 240 - ch // 2, 240 + ch // 2)
    runner_case("gaitlive-frame")
    runner_case("gaitlive-crop", crop=centre)
    runner_case("gaitlive-crop-1thread", threads=1, crop=centre)
    runner_case("gaitlive-crop-2threads", threads=2, crop=centre)
    runner_case("gaitlive-frame-2threads", threads=2)
    runner_case("gaitlive-crop-400x300", crop=(120, 520, 90, 390))
    runner_case("gaitlive-half", resize=0.5)

    base = results["dlclive"]["mean_ms"]
    print(f"\nmodel {a.model} | video {video.name} 640x480 | {a.frames} frames | device "
          f"{device} | torch threads default {default_threads} | {platform.processor() or ''}")
    print(f"{'case':<20} {'mean ms':>8} {'p50 ms':>8} {'p95 ms':>8} {'fps':>7} {'vs dlclive':>10}")
    for k, v in results.items():
        v["ratio_vs_dlclive"] = v["mean_ms"] / base
        print(f"{k:<20} {v['mean_ms']:8.2f} {v['p50_ms']:8.2f} {v['p95_ms']:8.2f} "
              f"{v['fps']:7.1f} {v['ratio_vs_dlclive']:10.2f}")
    if a.json:
        Path(a.json).write_text(json.dumps(
            {"model": a.model, "video": str(video), "device": device,
             "model_resize": cfg.model.resize, "model_threads": cfg.model.threads, "min_crop": [cw, ch],
             "torch_threads_default": default_threads, "cpu_count": os.cpu_count(),
             "load_avg": os.getloadavg(), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

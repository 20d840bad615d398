"""Render the bundled demo clip ``models/demo/corridor-demo.mp4`` and its truth files.

One seeded command, deterministic::

    .venv/bin/python tools/make_demo.py            # writes models/demo/corridor-demo.*

Side view, 640x480 at 30 fps, five broiler passes of different severities (Kestin 0-3.5)
separated by stretches of empty corridor, with background birds now and then. Writes
``corridor-demo.mp4``, ``corridor-demo.h5/.csv`` (exact keypoints, DeepLabCut format),
``corridor-demo_truth.json`` and ``corridor-demo_truth_steps.csv``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from gaitlive.paths import DEMO_DIR  # noqa: E402
from gaitlive.synth import simulate_sequence  # noqa: E402
from gaitlive.synth.export import write_video_set  # noqa: E402
from gaitlive.synth.render import scene_for  # noqa: E402

SEED = 29
SEVERITIES = [0.0, 2.0, 1.0, 3.5, 0.5]
MAX_MB = 8.0
DEFOCUS = 0.7


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEMO_DIR, help="output folder (models/demo)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--stem", default="corridor-demo")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    seq = simulate_sequence(severities=SEVERITIES, view="side", species="broiler", fps=30.0,
                            seed=args.seed, width=640, height=480, gap_s=(1.5, 3.0),
                            background=0.4)
    # a slightly soft lens keeps the mp4v file small (sensor noise and litter texture are
    # what the encoder spends its bits on)
    scene = scene_for(seq)
    scene.look = dataclasses.replace(scene.look, defocus_sigma=DEFOCUS)
    paths = write_video_set(seq, args.out, args.stem, progress=True, scene=scene,
                            extra={"command": f"tools/make_demo.py --seed {args.seed}",
                                   "defocus_sigma": DEFOCUS})
    mb = paths["mp4"].stat().st_size / 1e6
    print(f"{paths['mp4']}: {seq.n_frames} frames ({seq.n_frames / seq.fps:.1f} s), "
          f"{mb:.2f} MB, {time.perf_counter() - t0:.1f} s")
    for p in seq.passes:
        who = "background" if p.background else "corridor"
        print(f"  bird{p.individual + 1} ({who}) pass {p.pass_id}: severity {p.severity:.1f}, "
              f"frames {p.start_frame}-{p.end_frame}, cadence {p.cadence_hz:.2f} steps/s, "
              f"stance fraction L {p.stance_fraction['left']:.2f} "
              f"R {p.stance_fraction['right']:.2f}")
    if mb > MAX_MB:
        print(f"warning: {paths['mp4']} is {mb:.1f} MB (> {MAX_MB} MB)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

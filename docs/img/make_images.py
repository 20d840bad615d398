"""Regenerate the README screenshots ``docs/img/overlay.png`` and ``docs/img/report.png``.

Run from the repository root: ``.venv/bin/python docs/img/make_images.py`` (about a minute).

1. ``gaitlive synth video``: a synthetic side-view corridor clip with two passes (a sound
   bird, severity 0.5, and a lame one, severity 3.5) and its truth keypoints;
2. the live overlay exactly as ``gaitlive run`` draws it (the gait stage and score model fed
   frame by frame, :class:`gaitlive.overlay.OverlayState` carrying foot prints and scores),
   two frames side by side: the lame bird mid-pass, and the moment its pass is scored;
3. ``gaitlive analyze`` of the truth poses and ``gaitlive report``; the lame bird's pass
   report becomes ``report.png``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from gaitlive.config import load_profile
from gaitlive.dlcio import read_pose
from gaitlive.gait.stage import GaitStage
from gaitlive.overlay import OverlayState, annotate
from gaitlive.paths import PROJECT_ROOT
from gaitlive.score import load_score_model

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, "-m", "gaitlive.cli"]


def main() -> None:
    prof = load_profile("broiler-side")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run(CLI + ["synth", "video", "--out", str(tmp), "--passes", "2",
                              "--severity", "0.5,3.5", "--seed", "11", "--background", "0",
                              "--gap", "0.3", "0.5", "--stem", "doc"], check=True)
        data = read_pose(tmp / "doc.h5")
        stage = GaitStage(prof, 30.0, load_score_model(PROJECT_ROOT / "models/score-side.json"))
        state = OverlayState(prof, 30.0)
        cap = cv2.VideoCapture(str(tmp / "doc.mp4"))
        hud = {"camera": "cam0", "state": "live", "fps": 30.0, "latency_ms": 38, "dropped": 0}
        mid, scored = None, None
        for i in range(data.n_frames):
            ok, img = cap.read()
            if not ok:
                break
            upd = stage.update(i, data.poses[i])
            out = annotate(img, data.poses[i], prof, upd, hud, state)
            if i == 520:
                mid = out
            if any(p.individual == 1 for p in upd.passes):
                scored = out
                break
        assert mid is not None and scored is not None, "the clip changed: pick other frames"
        cv2.imwrite(str(HERE / "overlay.png"), np.hstack([mid, scored]))
        res = tmp / "res"
        subprocess.run(CLI + ["analyze", str(tmp / "doc.h5"), "--out", str(res), "--fps", "30",
                              "--profile", "broiler-side"], check=True)
        subprocess.run(CLI + ["report", str(res), "--poses", str(tmp), "--profile",
                              "broiler-side"], check=True)
        shutil.copy(res / "report" / "doc_bird1_pass1.png", HERE / "report.png")
        shutil.copy(res / "report" / "doc_summary.png", HERE / "report-summary.png")
    print("wrote", HERE / "overlay.png", HERE / "report.png", HERE / "report-summary.png")


if __name__ == "__main__":
    main()

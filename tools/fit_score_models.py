"""Fit the default score models on the synthetic world (seeded; one command).

    .venv/bin/python tools/fit_score_models.py            # writes models/score-{side,rear}.json

For each view it simulates passes (gaitlive.synth.simulate_pass, broilers and turkeys,
severities drawn uniformly in [0, 5], Kestin class = rounded severity), renders them and
runs ``gaitlive analyze`` on the videos with the bundled pose model (45 passes per view,
about 70 minutes on 2 CPU cores, kept in ``--work`` so a rerun only fits) and runs the
gait stage on the truth poses plus 1 px keypoint noise of 120 more (seconds): the default
``--poses both``, what the shipped models are fitted on, so they know the poses the
shipped pipeline makes and exact ones. ``--poses model`` or ``truth`` takes one of them.
It fits the cumulative-link model on the pass features and prints its 5-fold
cross-validated agreement, which goes into the model's ``meta``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def simulate_features(view: str, n: int, seed: int, noise_px: float = 1.0,
                      model_path: str | None = None, work: Path | None = None):
    """Pass features and severities of ``n`` simulated passes: from the truth poses plus
    ``noise_px`` of noise, or, with ``model_path``, from that pose model's poses of the
    rendered passes (as ``gaitlive analyze`` makes them; videos and poses are kept in
    ``work``, and poses found there are used again)."""
    from gaitlive.config import load_profile
    from gaitlive.gait.stage import GaitStage
    from gaitlive.synth import simulate_pass

    profile = load_profile(f"broiler-{view}")
    rng = np.random.default_rng(seed)
    rows, sev = [], []
    for i in range(n):
        s = float(rng.uniform(0, 5))
        species = "turkey" if i % 4 == 3 else "broiler"
        sp = simulate_pass(severity=s, view=view, species=species, seed=seed * 10000 + i)
        if model_path is not None:
            from eval_gait_on_video import _stage_on_video

            assert work is not None
            _, passes = _stage_on_video(sp, profile, None, work, f"{view}-fit-{seed}-{i}",
                                        model_path, reuse=True)
        else:
            poses = sp.poses.copy()
            poses[..., :2] += rng.normal(0, noise_px, poses[..., :2].shape).astype(np.float32)
            _, passes = GaitStage(profile, fps=sp.fps).run_series(poses)
        if not passes:
            continue
        best = max(passes, key=lambda p: p.n_steps)
        if best.n_steps < profile.gait.min_steps or \
                best.features.get("cadence_hz", 0.0) > profile.gait.max_cadence_hz:
            continue  # passes the stage does not score (as gaitlive score fit)
        rows.append(best.features)
        sev.append(s)
    return rows, np.array(sev)


def main(argv: list[str] | None = None) -> int:
    import pandas as pd

    from gaitlive.paths import MODELS_DIR
    from gaitlive.score import (
        compute_agreement,
        cross_validated_predictions,
        feature_columns,
        fit_score_model,
        format_agreement,
    )

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--poses", choices=("both", "model", "truth"), default="both",
                    help="fit on the pose model's poses of rendered passes and on truth "
                         "poses plus noise (default: the shipped models), or on one of them")
    ap.add_argument("--n", type=int, default=120, help="truth-pose passes per view")
    ap.add_argument("--n-model", type=int, default=45,
                    help="rendered passes per view posed by --model")
    ap.add_argument("--model", default=str(MODELS_DIR / "gaitlive-corridor"),
                    help="pose model for --poses model/both")
    ap.add_argument("--work", default=str(MODELS_DIR.parent / "build" / "fit-score-work"),
                    help="folder for the rendered passes and their poses (kept: a rerun "
                         "takes the poses found there)")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", default=str(MODELS_DIR))
    args = ap.parse_args(argv)
    if args.poses in ("model", "both"):
        from gaitlive.pose import ModelError, read_model_card

        try:  # before an hour of rendering
            read_model_card(args.model)
        except ModelError as e:
            ap.error(f"--model: {e}")
    for view in ("side", "rear"):
        t0 = time.time()
        v = 0 if view == "side" else 1
        rows, sev, what = [], np.zeros(0), []
        if args.poses in ("model", "both"):
            r, s = simulate_features(view, args.n_model, args.seed + 1000 + v,
                                     model_path=args.model, work=Path(args.work))
            rows, sev = rows + r, np.concatenate([sev, s])
            what.append(f"{len(r)} rendered passes posed by {Path(args.model).name} "
                        f"(seed {args.seed + 1000 + v})")
        if args.poses in ("truth", "both"):
            r, s = simulate_features(view, args.n, args.seed + v)
            rows, sev = rows + r, np.concatenate([sev, s])
            what.append(f"{len(r)} truth-pose passes with 1 px keypoint noise "
                        f"(seed {args.seed + v})")
        df = pd.DataFrame(rows)
        feats = feature_columns(df)
        X = df[feats].to_numpy(float)
        y = np.clip(np.round(sev), 0, 5).astype(int)
        classes = list(range(6))
        pred = cross_validated_predictions(X, y, feats, folds=5, classes=classes)
        ag = compute_agreement(pred, y, labels=classes)
        from scipy.stats import spearmanr

        model = fit_score_model(X, y, feats, classes=classes)
        rho_sev = float(spearmanr(model.predict(X)[0], sev).statistic)
        meta = {"fitted_on": f"gaitlive.synth simulate_pass, {view} view: "
                             + " and ".join(what),
                "label": "round(severity) (Kestin 0-5)", "n": int(len(y)), "l2": 1.0,
                "cv": {k: v for k, v in ag.items() if k != "confusion"},
                "cv_confusion": ag["confusion"], "spearman_severity_in_sample": rho_sev,
                "tool": "tools/fit_score_models.py"}
        model.meta = meta
        path = model.save(f"{args.out}/score-{view}.json")
        print(f"== {view}: {len(y)} passes, {len(feats)} features, {time.time() - t0:.0f} s")
        print(format_agreement(ag))
        print(f"in-sample Spearman(expected score, severity) = {rho_sev:.3f}")
        print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

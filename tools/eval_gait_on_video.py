"""Evaluate the gait stage against exact synthetic truth: from truth poses (+ noise) or from
the bundled pose model's poses on rendered video.

    # truth poses with keypoint noise (fast, no model needed): the table in docs/gait.md
    .venv/bin/python tools/eval_gait_on_video.py --poses truth --noise 0 0.5 1

    # rendered video -> bundled DLC-Live model -> gait stage (slow; needs the model)
    .venv/bin/python tools/eval_gait_on_video.py --poses model --model models/gaitlive-corridor \\
        --passes 2 --out eval-gait
    # ... again on the pose files of that run (only the gait stage runs: fast)
    .venv/bin/python tools/eval_gait_on_video.py --poses model --passes 2 --out eval-gait --reuse
    # another camera rate: passes simulated at 60 fps, strikes within +-4 frames (--tol)
    .venv/bin/python tools/eval_gait_on_video.py --poses truth --fps 60

For every view (side, rear) and severity 0..5 it simulates passes
(:func:`gaitlive.synth.simulate_pass`, seeds from ``--seed``), gets poses (truth + noise,
or renders the pass to video with :func:`gaitlive.synth.export.write_video_set` and runs
:func:`gaitlive.analyze.analyze_file`, i.e. DLC-Live inference as ``gaitlive analyze`` does)
and reports per view: strike F1 within +-2 frames (complete stances; ``strike_f1_in_view``
counts only stances during which the whole bird is in the image; ``strike_f1_visible``, on
rendered video, only strikes whose knee, hock and foot an annotator could see on every frame
within +-2 of the strike: in the image and not behind a post, the fence or another bird,
from the render's ``<stem>_truth_visible.csv``), cadence error, stance-fraction error,
passes found and Spearman(score, severity).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from gaitlive.gait.metrics import match_events


def _stage_on_poses(poses, profile, fps, model):
    from gaitlive.gait.stage import GaitStage

    steps, passes = GaitStage(profile, fps=fps, score_model=model).run_series(poses)
    # one per stance (a stance joined to the previous one repeats its strike: min_swing_s)
    stances = sorted({(s.foot, s.strike_frame) for s in steps if s.kind == "lift"})
    return stances, passes


def _stage_on_video(sp, profile, model, out: Path, stem: str, model_path: str | None,
                    reuse: bool = False):
    from gaitlive.analyze import analyze_file
    from gaitlive.config import load_config
    from gaitlive.synth.export import write_video_set

    cached = out / "analysis" / f"{stem}.h5"
    if reuse and cached.exists():
        # the model's poses of an earlier run: only the gait stage runs again
        res = analyze_file(cached, out / "analysis-reuse", profile, fps=sp.fps,
                           score_model=model, movie=False,
                           frame_size=(sp.camera.width, sp.camera.height))
        stances = sorted({(s.foot, s.strike_frame) for s in res.steps if s.kind == "lift"})
        return stances, res.passes
    paths = write_video_set(sp, out, stem)
    # the run config's model and presence settings (the bundled model at full resolution on
    # the presence crop), as gaitlive analyze and gaitlive run
    overrides = {"model.path": model_path} if model_path else {}
    cfg = load_config(overrides=overrides)
    res = analyze_file(paths["mp4"], out / "analysis", profile, fps=sp.fps, score_model=model,
                       model_path=model_path, model_settings=cfg.model,
                       presence=cfg.presence, movie=False)
    stances = sorted({(s.foot, s.strike_frame) for s in res.steps if s.kind == "lift"})
    return stances, res.passes


def truth_visible(sp, out: Path, stem: str) -> np.ndarray:
    """Bool ``(n_frames, 8)``: which of the pass's keypoints (first individual) an annotator
    could see, from ``<stem>_truth_visible.csv``; rendered again (images discarded) when a
    ``--reuse`` folder predates that file."""
    from gaitlive.synth.export import read_visible, write_visible

    path = out / f"{stem}_truth_visible.csv"
    if not path.exists():
        from gaitlive.synth import render_frames

        vis = np.zeros(sp.poses.shape[:3], bool)
        for fr in render_frames(sp):
            vis[fr.index] = fr.visible
        write_visible(path, vis, sp.individuals)
    return read_visible(path)[0][:, 0]


def _seen(strikes, detected, leg_visible: np.ndarray, tol: int = 2):
    """The true strikes whose leg is visible on every frame within ``tol`` of the strike,
    and the detected strikes not within ``tol`` frames of a dropped one."""
    n = len(leg_visible)
    keep = [s for s in strikes if leg_visible[max(0, s - tol):min(n, s + tol + 1)].all()]
    drop = [s for s in strikes if s not in keep]
    return keep, [d for d in detected if not any(abs(d - x) <= tol for x in drop)]


def stance_drift(poses: np.ndarray, sp, pcutoff: float) -> list[float]:
    """How far each foot's keypoint wanders during each true stance, in leg lengths.

    For every complete truth stance (strike..lift) of each foot: the largest distance of the
    detected foot (likelihood >= pcutoff) from its median position over the stance,
    divided by the bird's true leg length (knee-hock-foot, median over the pass). A
    perfect pose model gives 0 (the foot does not move while it stands); the stance test
    tolerates about ``foothold_eps`` plus a few noise sigmas."""
    names = list(sp.bodyparts)
    truth = sp.poses[:, 0]
    out: list[float] = []
    legs = [np.linalg.norm(truth[:, names.index(f"{ft}_knee"), :2]
                           - truth[:, names.index(f"{ft}_hock"), :2], axis=1)
            + np.linalg.norm(truth[:, names.index(f"{ft}_hock"), :2]
                             - truth[:, names.index(f"{ft}_foot"), :2], axis=1)
            for ft in ("left", "right")]
    leg = float(np.nanmedian(np.concatenate(legs)))
    for foot in ("left", "right"):
        f = names.index(f"{foot}_foot")
        for s0, s1 in zip(sp.strikes[foot], sp.lifts[foot], strict=False):
            if s1 <= s0 or s1 >= len(poses):
                continue
            seg = poses[s0:s1 + 1, 0, f]
            seg = seg[(seg[:, 2] >= pcutoff) & np.isfinite(seg[:, 0])]
            if len(seg) < 3:
                continue
            med = np.median(seg[:, :2], axis=0)
            out.append(float(np.max(np.linalg.norm(seg[:, :2] - med, axis=1)) / leg))
    return out


def _in_view(strikes, lifts, detected, inview: np.ndarray, tol: int = 2):
    """The true strikes of stances during which the whole bird is in the image (every
    keypoint visible from strike to lift), and the detected strikes not within ``tol``
    frames of a dropped one: the stances a gait stage can be asked to find (a bird half
    out of the image at the corridor's ends has no skeleton)."""
    keep = [s for s, lf in zip(strikes, lifts, strict=False)
            if lf < len(inview) and inview[s:lf + 1].all()]
    drop = [s for s in strikes if s not in keep]
    return keep, [d for d in detected if not any(abs(d - x) <= tol for x in drop)]


def oracle_strike_hits(poses: np.ndarray, sp, profile, noise: float, tol: int,
                       ) -> tuple[int, int]:
    """How many true strikes the stage's own change point (:func:`gaitlive.gait.kernels.
    _strike_cp`, the refinement every strike gets) places within ``tol`` frames when it is
    told what the stage has to estimate: the true stance's foothold (median of the noisy
    foot positions over the true stance), the true keypoint noise ``noise`` and a search
    window around the true strike (the stage's floor, ``gait.foothold_eps`` leg lengths,
    kept). A bound on what timing from foot positions can reach at
    that noise, whatever the stance test: returns (hits, strikes)."""
    from gaitlive.gait import kernels
    from gaitlive.gait.stage import GaitLayout

    n = len(poses)
    hits = total = 0
    # the stage's floor: foothold_eps leg lengths (leg = scale segments / legs on the
    # exact poses, as the stage measures it; median over the stance and the half second
    # before it)
    lay = GaitLayout.from_profile(profile)
    seg = sp.poses[:, 0][:, lay.seg_idx, :2]
    with warnings.catch_warnings():  # missing segments count as the mean of the others
        warnings.simplefilter("ignore", RuntimeWarning)
        leg_px = (np.nanmean(np.linalg.norm(seg[:, :, 0] - seg[:, :, 1], axis=-1), axis=1)
                  * len(lay.seg_idx) / lay.n_scale_legs)
    for foot in ("left", "right"):
        k = profile.bodyparts.index(f"{foot}_foot")
        ring = np.full((n, 1, 2), np.nan)
        seen = poses[:, 0, k, 2] > 0
        ring[seen, 0] = poses[seen, 0, k, :2]
        for s, lift in zip(sp.strikes[foot], sp.lifts[foot], strict=True):
            if lift >= n or not seen[s:lift + 1].any():
                continue
            ax, ay = np.nanmedian(ring[s:lift + 1, 0], axis=0)
            lo = max(0, s - kernels.MAX_EXTEND)
            hi = min(lift, s + kernels.MAX_SHIFT)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                leg = np.nanmedian(leg_px[max(0, s - 15):lift + 1])
            if not leg > 0:
                continue  # no leg in view (a foot alone at the edge): no scale, as the stage
            floor2 = (profile.gait.foothold_eps * leg) ** 2
            cp = kernels._strike_cp(ring, n, 0, ax, ay, lo, hi, noise * noise, floor2, 0,
                                    n - 1)
            hits += abs(cp - s) <= tol
            total += 1
    return hits, total


def evaluate(view: str, *, poses_from: str, noise: float, seeds: list[int],
             size: tuple[int, int] = (640, 480),
             model_path: str | None = None, out: Path | None = None,
             reuse: bool = False, fps: float = 30.0, tol: int = 2) -> dict:
    from scipy.stats import spearmanr

    from gaitlive.config import load_profile
    from gaitlive.paths import MODELS_DIR
    from gaitlive.score import load_score_model
    from gaitlive.synth import simulate_pass

    profile = load_profile(f"broiler-{view}")
    model = load_score_model(MODELS_DIR / f"score-{view}.json")
    tot = np.zeros(3, int)
    tot_view = np.zeros(3, int)  # stances of a bird wholly in view
    tot_seen = np.zeros(3, int)  # strikes whose leg an annotator could see (video only)
    cad, sf, scores, sev, drift = [], [], [], [], []
    gts, preds = [], []  # keypoints of model poses against the truth
    oracle = np.zeros(2, int)  # truth poses: strikes the oracle change point times right
    found = expected = 0
    for severity in range(6):
        for seed in seeds:
            sp = simulate_pass(severity=severity, view=view, seed=seed, width=size[0],
                               height=size[1], fps=fps)
            expected += 1
            if poses_from == "truth":
                p = sp.poses.copy()
                rng = np.random.default_rng(seed + 1000)
                p[..., :2] += rng.normal(0, noise, p[..., :2].shape).astype(np.float32)
                stances, passes = _stage_on_poses(p, profile, sp.fps, model)
                drift += stance_drift(p, sp, profile.pcutoff)
                oracle += oracle_strike_hits(p, sp, profile, noise, tol)
            else:
                assert out is not None
                stem = f"{view}-s{severity}-{seed}" + ("" if fps == 30.0 else f"-{fps:g}fps")
                stances, passes = _stage_on_video(sp, profile, model, out, stem, model_path,
                                                  reuse)
                from gaitlive.dlcio import read_pose

                mp = read_pose(out / "analysis" / f"{stem}.h5").poses
                drift += stance_drift(mp, sp, profile.pcutoff)
                t = sp.poses[:, 0]
                # the truth keypoints an annotator could see (in the image, nothing in
                # front), as in the held-out set of the model card
                seen = (t[..., 2] > 0) & truth_visible(sp, out, stem)[:len(t)]
                keep = seen.any(axis=1) & (np.arange(len(t)) < len(mp))
                gts.append(np.where(seen[..., None], t[..., :2], np.nan)[keep])
                preds.append(mp[:len(t), 0][keep[:len(mp)]])
            # the pass that overlaps the truth most
            passes = [q for q in passes if q.end_frame >= sp.start_frame
                      and q.start_frame <= sp.end_frame]
            inview = (sp.poses[:, 0, :, 2] > 0).all(axis=1)
            vis = truth_visible(sp, out, stem) if poses_from == "model" else None
            if not passes:
                stances = []  # the pass was not found: every true strike is missed
            else:
                found += 1
                q = max(passes, key=lambda q: q.n_steps)
            for foot in ("left", "right"):
                det = [f for ft, f in stances if ft == foot]
                tot += match_events(sp.strikes[foot], det, tol)
                tot_view += match_events(*_in_view(sp.strikes[foot], sp.lifts[foot], det,
                                                   inview, tol), tol)
                if vis is not None:
                    leg = [profile.bodyparts.index(f"{foot}_{k}") for k in ("knee", "hock",
                                                                             "foot")]
                    tot_seen += match_events(*_seen(sp.strikes[foot], det,
                                                    vis[:, leg].all(axis=1), tol), tol)
                if passes:
                    sf.append(abs(q.features[f"stance_fraction_{foot}"]
                                  - sp.stance_fraction[foot]))
            if not passes:
                continue
            cad.append(abs(q.features["cadence_hz"] - sp.cadence_hz) / sp.cadence_hz)
            if q.scored:
                scores.append(q.score)
                sev.append(severity)
    f1 = 2 * tot[0] / max(1, 2 * tot[0] + tot[1] + tot[2])
    f1_view = 2 * tot_view[0] / max(1, 2 * tot_view[0] + tot_view[1] + tot_view[2])
    f1_seen = 2 * tot_seen[0] / max(1, 2 * tot_seen[0] + tot_seen[1] + tot_seen[2])
    kp = None
    if gts:
        from gaitlive.offline.evaluate import compute_pose_metrics

        m = compute_pose_metrics(np.concatenate(gts), np.concatenate(preds), profile.bodyparts,
                                 pcutoff=profile.pcutoff, bootstrap=0)
        kp = {"frames": m.n_frames, "rmse_px": round(m.rmse, 2),
              "rmse_pcutoff_px": round(m.rmse_pcutoff, 2), "pck@0.1": round(m.pck, 4),
              "pck_min_bodypart": round(min(v["pck"] for v in m.per_bodypart.values()), 4),
              "detected": round(m.detected, 4)}
    rho = float(spearmanr(scores, sev).statistic) if len(set(sev)) > 1 else float("nan")
    return {"view": view, "poses": poses_from, "noise_px": noise, "fps": fps,
            "tol_frames": tol, "passes": expected,
            "found": found, "strike_f1": round(float(f1), 3), "tp_fp_fn": tot.tolist(),
            "strike_f1_in_view": round(float(f1_view), 3),
            # truth poses: share of true strikes that the change point times within tol
            # when told the true foothold and noise (oracle_strike_hits)
            "strike_oracle_within_tol": (round(float(oracle[0] / oracle[1]), 3)
                                         if oracle[1] else None),
            "tp_fp_fn_in_view": tot_view.tolist(),
            "strike_f1_visible": round(float(f1_seen), 3) if poses_from == "model" else None,
            "tp_fp_fn_visible": tot_seen.tolist() if poses_from == "model" else None,
            "cadence_err_max": round(float(np.nanmax(cad)), 3) if cad else None,
            "cadence_err_mean": round(float(np.nanmean(cad)), 3) if cad else None,
            "stance_fraction_err_max": round(float(np.nanmax(sf)), 3) if sf else None,
            "stance_fraction_err_mean": round(float(np.nanmean(sf)), 3) if sf else None,
            "scored": len(scores), "spearman_score_severity": round(rho, 3),
            # foot keypoint's wander during a true stance, leg lengths (median, p90)
            "stance_drift_median": round(float(np.median(drift)), 3) if drift else None,
            "stance_drift_p90": round(float(np.percentile(drift, 90)), 3) if drift else None,
            "keypoints": kp}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--poses", choices=("truth", "model"), default="truth")
    ap.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.5, 1.0],
                    help="keypoint noise sigmas in px (truth poses)")
    ap.add_argument("--passes", type=int, default=3, help="seeds per severity and view")
    ap.add_argument("--seed", type=int, default=500)
    ap.add_argument("--model", default=None, help="DLC-Live model (--poses model)")
    ap.add_argument("--out", default="eval-gait", help="work folder for rendered videos")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--size", default="640x480", metavar="WxH",
                    help="image size of the simulated passes (the bird scales with it)")
    ap.add_argument("--reuse", action="store_true",
                    help="--poses model: reuse the pose files of an earlier run in --out "
                         "(only the gait stage runs again)")
    ap.add_argument("--fps", type=float, default=30.0, help="frame rate of the passes")
    ap.add_argument("--tol", type=int, default=None,
                    help="strike tolerance in frames (default: 2 at 30 fps, the same time "
                         "at --fps)")
    args = ap.parse_args(argv)
    if not args.fps > 0:
        ap.error(f"--fps {args.fps}: expected a positive frame rate")
    if args.tol is not None and args.tol < 0:
        ap.error(f"--tol {args.tol}: expected a tolerance of 0 or more frames")
    tol = args.tol if args.tol is not None else max(1, int(round(2 * args.fps / 30.0)))
    seeds = list(range(args.seed, args.seed + args.passes))
    try:
        size = tuple(int(v) for v in args.size.lower().split("x"))
        if len(size) != 2 or min(size) < 16:
            raise ValueError
    except ValueError:
        ap.error(f"--size {args.size!r}: expected WIDTHxHEIGHT in pixels, e.g. 1280x960")
    rows = []
    noises = args.noise if args.poses == "truth" else [0.0]
    for view in ("side", "rear"):
        for noise in noises:
            r = evaluate(view, poses_from=args.poses, noise=noise, seeds=seeds, size=size,
                         model_path=args.model, out=Path(args.out), reuse=args.reuse,
                         fps=args.fps, tol=tol)
            r["size"] = list(size)
            rows.append(r)
            print(json.dumps(r), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

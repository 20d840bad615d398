"""The synthetic corridor world: exact truth, pixels where the truth says, files, CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from gaitlive.cli import main as cli_main
from gaitlive.dlcio import read_collected_data, read_pose
from gaitlive.synth import BODYPARTS, simulate_pass, simulate_sequence
from gaitlive.synth.export import read_visible, write_project, write_truth, write_visible
from gaitlive.synth.kinematics import HEAD, LFOOT, LHOCK, RFOOT, RHOCK
from gaitlive.synth.render import FEATHER, LEG, bird_look, render_frames
from gaitlive.synth.world import make_camera

FOOT_KP = {"left": LFOOT, "right": RFOOT}


# --------------------------------------------------------------------------------------
# truth without rendering
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("view", ["side", "rear"])
def test_pass_layout_and_missing_convention(view):
    p = simulate_pass(severity=1.0, view=view, seed=11)
    assert p.poses.dtype == np.float32 and p.poses.ndim == 4
    assert p.poses.shape[1:] == (1, 8, 3)
    lk = p.poses[..., 2]
    assert set(np.unique(lk)) <= {0.0, 1.0}
    missing = lk == 0
    assert np.isnan(p.poses[..., 0][missing]).all() and np.isnan(p.poses[..., 1][missing]).all()
    inside = ~missing
    xy = p.poses[..., :2][inside]
    assert (xy[:, 0] >= -0.5).all() and (xy[:, 0] <= 639.5).all()
    assert (xy[:, 1] >= -0.5).all() and (xy[:, 1] <= 479.5).all()
    vis = lk.max(axis=(1, 2)) > 0
    assert vis[p.start_frame] and vis[p.end_frame]
    assert not vis[:p.start_frame].any() and not vis[p.end_frame + 1:].any()


@pytest.mark.parametrize("view,severity", [("side", 0.0), ("side", 3.0), ("rear", 1.5)])
def test_stance_foot_is_fixed_and_moves_outside_stance(view, severity):
    p = simulate_pass(severity=severity, view=view, seed=5)
    walk = p.actors[0].walk
    n_checked = 0
    for foot, k in FOOT_KP.items():
        assert len(p.strikes[foot]) == len(p.lifts[foot]) >= 2
        for s, lf in zip(p.strikes[foot], p.lifts[foot], strict=True):
            assert lf >= s
            world = walk.keypoints[s:lf + 1, k]
            assert (world == world[0]).all(), "the stance foot slid in the world"
            img = p.poses[s:lf + 1, 0, k, :2]
            assert (img == img[0]).all(), "the stance foot moved in the image"
            assert walk.keypoints[s:lf + 1, k, 2].max() == 0.0  # on the floor
            # one frame before the strike and after the lift the foot is swinging
            assert not np.array_equal(walk.keypoints[s - 1, k], world[0])
            assert not np.array_equal(walk.keypoints[lf + 1, k], world[0])
            assert walk.keypoints[s - 1, k, 2] > 0 and walk.keypoints[lf + 1, k, 2] > 0
            n_checked += 1
    assert n_checked >= 4


def test_truth_cadence_and_stance_fraction_match_events():
    p = simulate_pass(severity=2.0, view="side", seed=8)
    tr = p.truth
    strikes = sorted(p.strikes["left"] + p.strikes["right"])
    assert p.cadence_hz == pytest.approx((len(strikes) - 1) * p.fps
                                         / (strikes[-1] - strikes[0]), rel=1e-12)
    # feet alternate
    feet = [f for s in strikes for f in ("left", "right") if s in p.strikes[f]]
    assert all(a != b for a, b in zip(feet[:-1], feet[1:], strict=True))
    for foot in ("left", "right"):
        s, lf = p.strikes[foot], p.lifts[foot]
        fr = [(lf[i] - s[i] + 1) / (s[i + 1] - s[i]) for i in range(len(s) - 1)]
        assert p.stance_fraction[foot] == pytest.approx(np.mean(fr), rel=1e-12)
        # stance fraction is close to the walk's duty factor (frame quantisation aside)
        duty = tr.nominal[f"duty_{foot}"]
        assert abs(p.stance_fraction[foot] - duty) < 0.08
    assert tr.nominal["cadence_hz"] == pytest.approx(p.cadence_hz, rel=0.12)
    assert len(tr.step_lengths_m) == len(strikes) - 1
    assert np.allclose(np.array(tr.step_lengths_rel) * tr.leg_length_m, tr.step_lengths_m)


def test_head_holds_still_then_thrusts():
    p = simulate_pass(severity=0.5, view="side", seed=2, fps=60.0)
    w = p.actors[0].walk
    head = w.keypoints[:, HEAD] @ w.path_dir  # along the path, world metres
    body = w.along
    still = np.abs(np.diff(head)) < 1e-12  # still in the world (to rounding)
    assert still.mean() > 0.2  # holds for a good part of each step
    assert (np.diff(body)[still] > 0).all()  # while the body walks on
    # ... then thrusts forward faster than the body
    assert np.diff(head).max() > 1.5 * np.diff(body).max()
    # one bob per step: runs of still frames ~ number of steps
    runs = np.sum(still[1:] & ~still[:-1])
    steps = p.truth.nominal["cadence_hz"] * len(head) / p.fps
    assert abs(runs - steps) <= 2


def test_pecking_moves_only_the_head():
    a = simulate_sequence(passes=1, view="side", seed=3, pecking=0.0)
    b = simulate_sequence(passes=1, view="side", seed=3, pecking=1.0)
    assert np.array_equal(a.poses[..., 1:, :], b.poses[..., 1:, :], equal_nan=True)
    assert [p.strikes for p in a.passes] == [p.strikes for p in b.passes]
    head_a = a.actors[0].walk.keypoints[:, HEAD, 2]
    head_b = b.actors[0].walk.keypoints[:, HEAD, 2]
    bird = b.actors[0].bird
    assert head_a.min() > 2 * bird.head_radius  # walking head carriage
    assert head_b.min() < 1.5 * bird.head_radius  # down at the litter


def test_severity_slows_the_walk_and_lengthens_stance():
    # same seed: same camera, bird and random draws; only the severity changes
    res = []
    for sev in (0.0, 1.5, 3.0, 4.5):
        p = simulate_pass(severity=sev, view="side", seed=21, direction=1)
        neck = p.poses[:, 0, 1, 0]
        ok = np.isfinite(neck)
        px_per_frame = np.polyfit(np.flatnonzero(ok), neck[ok], 1)[0]
        duty = np.mean([p.stance_fraction["left"], p.stance_fraction["right"]])
        res.append((px_per_frame, duty, p.cadence_hz, np.mean(p.truth.step_lengths_rel),
                    p.truth.nominal["sway_m"]))
    speed, duty, cadence, step, sway = (np.array(c) for c in zip(*res, strict=True))
    assert (np.diff(speed) < 0).all() and speed[-1] < 0.45 * speed[0]
    assert (np.diff(duty) > 0).all() and duty[-1] - duty[0] > 0.1
    # cadence: a little quicker at moderate lameness (Caplen et al. 2012), slow when severe
    assert cadence[-1] < 0.85 * cadence[0] and cadence[1] > cadence[0]
    assert (np.diff(step) < 0).all()
    assert (np.diff(sway) > 0).all()


def test_lameness_lowers_hock_feet_distance_ratio():
    """Fodor et al. 2023: lower hock-feet distance ratio in double support when lame."""
    ratios = []
    for sev in (0.0, 2.0, 4.0):
        p = simulate_pass(severity=sev, view="rear", seed=6)
        w = p.actors[0].walk
        both = w.stance.all(axis=1) & np.isfinite(w.keypoints).all(axis=(1, 2))
        kp = w.keypoints[both]
        lat = np.cross([0.0, 0.0, 1.0], w.path_dir)
        hocks = np.abs((kp[:, LHOCK] - kp[:, RHOCK]) @ lat)
        feet = np.abs((kp[:, LFOOT] - kp[:, RFOOT]) @ lat)
        ratios.append(float(np.mean(hocks / feet)))
    assert ratios[0] > ratios[1] > ratios[2]


def test_rear_view_bird_shrinks_walking_away():
    p = simulate_pass(severity=0.5, view="rear", seed=3)
    po = p.poses[:, 0]
    full = np.flatnonzero((po[:, :, 2] > 0).all(axis=1))
    assert len(full) > 60

    def leg_px(f: int) -> float:
        k = po[f, :, :2]
        return float(np.linalg.norm(k[2] - k[4]) + np.linalg.norm(k[4] - k[6])
                     + np.linalg.norm(k[3] - k[5]) + np.linalg.norm(k[5] - k[7])) / 2

    early, late = full[:10], full[-10:]
    assert np.mean([leg_px(f) for f in early]) > 1.6 * np.mean([leg_px(f) for f in late])
    # walking away: the feet climb up the image towards the vanishing point
    assert np.nanmean(po[late, 6:8, 1]) < np.nanmean(po[early, 6:8, 1]) - 50


def test_sequence_passes_gaps_and_background_bird():
    from gaitlive.synth.world import _project_actor

    s = simulate_sequence(passes=3, view="side", seed=29, background=1.0, gap_s=(1.0, 1.5))
    assert s.poses.shape[1:] in ((2, 8, 3), (3, 8, 3))
    main = [p for p in s.passes if p.individual == 0]
    bg = [p for p in s.passes if p.individual >= 1]
    assert len(main) == 3 and len(bg) >= 1 and all(p.background for p in bg)
    # every bird's truth is its own: background birds that overlap in time get different
    # individuals, so none overwrites another's poses
    for a in s.actors:
        got = s.poses[a.frame0:a.frame0 + a.n_frames, a.individual]
        np.testing.assert_array_equal(np.nan_to_num(got),
                                      np.nan_to_num(_project_actor(s.camera, a.walk)))
    bgs = sorted((a.individual, a.frame0, a.frame0 + a.n_frames) for a in s.actors
                 if a.background)
    for (i, _, e), (j, b0, _) in zip(bgs[:-1], bgs[1:], strict=True):
        assert i != j or e <= b0
    for a, b in zip(main[:-1], main[1:], strict=True):
        assert b.start_frame - a.end_frame > s.fps  # an empty corridor stretch
        gap = s.poses[a.end_frame + 1:b.start_frame, 0, :, 2]
        assert (gap == 0).all()
    assert (s.poses[:main[0].start_frame, 0, :, 2] == 0).all()
    # the background bird walks further from the camera: fewer pixels per metre of bird
    def size(p, ind):
        k = s.poses[p.start_frame:p.end_frame + 1, ind]
        return np.nanmedian(np.linalg.norm(k[:, 0, :2] - k[:, 6, :2], axis=1)) / p.size
    assert size(bg[0], 1) < 0.8 * size(main[0], 0)


def test_same_seed_same_truth_different_seed_differs():
    a = simulate_sequence(passes=2, view="side", seed=4, background=0.5)
    b = simulate_sequence(passes=2, view="side", seed=4, background=0.5)
    c = simulate_sequence(passes=2, view="side", seed=5, background=0.5)
    assert a.poses.tobytes() == b.poses.tobytes()
    assert [p.to_dict() for p in a.passes] == [p.to_dict() for p in b.passes]
    assert a.poses.shape != c.poses.shape or a.poses.tobytes() != c.poses.tobytes()


def test_lens_distortion_projection_inverts_pixel_rays():
    rng = np.random.default_rng(0)
    cam0 = make_camera("side", 3, 640, 480)
    for k1 in (0.0, -0.15, -0.3):
        cam = dataclasses.replace(cam0, k1=k1)
        rays = cam.pixel_rays()
        px = np.stack([rng.integers(0, 640, 50), rng.integers(0, 480, 50)], axis=1)
        pts = cam.C + rays[px[:, 1], px[:, 0]] * rng.uniform(0.5, 4.0, (50, 1))
        uv, z = cam.project(pts)
        assert (z > 0).all()
        assert np.abs(uv - px).max() < 1e-6
    # barrel distortion pulls off-centre points towards the image centre
    flat = dataclasses.replace(cam0, k1=0.0)
    p = flat.C + flat.pixel_rays()[10, 10] * 2.0
    bent = dataclasses.replace(cam0, k1=-0.3).project(p)[0]
    assert np.hypot(*(bent - [cam0.cx, cam0.cy])) < np.hypot(*(np.array([10, 10])
                                                                - [cam0.cx, cam0.cy]))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="severity must be in"):
        simulate_pass(severity=6.0)
    with pytest.raises(ValueError, match="view must be one of"):
        simulate_pass(severity=1.0, view="top")
    with pytest.raises(ValueError, match="species"):
        simulate_sequence(species="duck")


# --------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------


def _chroma(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, float)
    return c / c.sum()


@pytest.mark.parametrize("view", ["side", "rear"])
def test_keypoints_are_drawn_where_the_truth_says(view):
    p = simulate_pass(severity=1.0, view=view, seed=7, plumage="white")
    look = bird_look(p.actors[0], p.seed)
    leg, feather = _chroma(look.colours[LEG]), _chroma(look.colours[FEATHER])
    assert np.abs(leg - feather).max() > 0.08  # distinguishable materials
    frames = np.linspace(p.start_frame + 25, p.end_frame - 25, 5).astype(int) \
        if view == "side" else np.linspace(p.start_frame + 20, p.start_frame + 90, 5).astype(int)
    n_checked = 0
    for fr in render_frames(p, frames, debug=True):
        img = fr.image.astype(float)
        for k, mat in ((LHOCK, leg), (RHOCK, leg), (LFOOT, leg), (RFOOT, leg),
                       (HEAD, feather)):
            x, y, lk = p.poses[fr.index, 0, k]
            if lk == 0 or not fr.unoccluded[0, k]:
                continue  # outside the image, or behind another part (e.g. the far leg)
            px = img[int(round(y)), int(round(x))]
            if np.array_equal(px, [128, 128, 128]):
                pytest.fail(f"frame {fr.index}: {BODYPARTS[k]} at ({x:.1f}, {y:.1f}) "
                            f"is background")
            if k != HEAD or view == "side":  # from behind, the head is seen through feathers
                assert np.abs(_chroma(px) - mat).max() < 0.03, (fr.index, BODYPARTS[k], px)
            n_checked += 1
        # a pixel far from the bird is the plain background
        assert np.array_equal(fr.image[2, 2], [128, 128, 128])
    assert n_checked >= 15


def test_rendering_is_deterministic_and_frame_order_free():
    s = simulate_sequence(passes=1, view="side", seed=12, width=320, height=240,
                          background=1.0)
    f = s.passes[0].start_frame + 20
    a = {r.index: r.image for r in render_frames(s, [f - 2, f - 1, f])}
    b = next(render_frames(s, [f])).image
    assert np.array_equal(a[f], b)
    assert not np.array_equal(a[f - 1], a[f])
    s2 = simulate_sequence(passes=1, view="side", seed=13, width=320, height=240)
    c = next(render_frames(s2, [min(f, s2.n_frames - 1)])).image
    assert not np.array_equal(b, c)


def test_a_small_rear_view_frame_renders_at_the_requested_size_with_the_bird_visible():
    """One frame of a 200x150 rear-view turkey clip: the requested size and type, and the
    bird in it (visible keypoints, inside the image)."""
    s = simulate_sequence(passes=1, view="rear", species="turkey", seed=2, width=200,
                          height=150)
    f = s.passes[0].start_frame + 10
    r = next(render_frames(s, [f]))
    assert r.image.shape == (150, 200, 3) and r.image.dtype == np.uint8
    assert r.visible.shape == (1, 8) and r.visible.sum() >= 4
    xy = s.poses[f, 0, r.visible[0].astype(bool), :2]
    assert ((xy >= 0) & (xy < (200, 150))).all()


# --------------------------------------------------------------------------------------
# files and CLI
# --------------------------------------------------------------------------------------


def test_pose_and_truth_files_read_back(tmp_path: Path):
    s = simulate_sequence(passes=2, view="side", seed=29, background=1.0)
    paths = write_truth(s, tmp_path, "clip")
    df = pd.read_hdf(paths["h5"])
    assert list(df.columns.names) == ["scorer", "individuals", "bodyparts", "coords"]
    assert df.columns.get_level_values(0)[0] == "synth-truth"
    assert list(dict.fromkeys(df.columns.get_level_values(2))) == list(BODYPARTS)
    assert len(df) == s.n_frames
    csv = pd.read_csv(paths["csv"], header=[0, 1, 2, 3], index_col=0)
    assert np.allclose(csv.to_numpy(), df.to_numpy(), equal_nan=True)
    back = read_pose(paths["h5"])
    assert np.array_equal(back.poses, s.poses, equal_nan=True)
    assert back.individuals == tuple(f"bird{i + 1}" for i in range(s.poses.shape[1]))
    assert len(back.individuals) >= 2
    meta = json.loads(paths["json"].read_text())
    assert meta["n_frames"] == s.n_frames and meta["bodyparts"] == list(BODYPARTS)
    p0 = meta["passes"][0]
    for key in ("individual", "pass_id", "severity", "view", "species", "plumage",
                "start_frame", "end_frame", "strikes", "lifts", "cadence_hz",
                "stance_fraction_left", "stance_fraction_right", "step_lengths_px",
                "step_lengths_rel"):
        assert key in p0
    steps = pd.read_csv(paths["steps"])
    assert len(steps) == sum(len(p.strikes["left"]) + len(p.strikes["right"])
                             for p in s.passes)


def test_cli_synth_video(tmp_path: Path):
    rc = cli_main(["synth", "video", "--out", str(tmp_path), "--passes", "1", "--seed", "3",
                   "--severity", "0.5", "--size", "160x120", "--fps", "15",
                   "--background", "0", "--gap", "0.2", "0.4"])
    assert rc == 0
    stem = "synth-side-s3"
    meta = json.loads((tmp_path / f"{stem}_truth.json").read_text())
    cap = cv2.VideoCapture(str(tmp_path / f"{stem}.mp4"))
    n = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        assert img.shape == (120, 160, 3)
        n += 1
    assert n == meta["n_frames"] > 30
    assert meta["passes"][0]["severity"] == 0.5
    poses = read_pose(tmp_path / f"{stem}.h5").poses
    assert poses.shape == (n, 1, 8, 3)
    # which keypoints an annotator could see, as the renderer decided it
    vis, inds = read_visible(tmp_path / f"{stem}_truth_visible.csv")
    assert vis.shape == (n, 1, 8) and inds == ["bird1"]
    assert not (vis & ~(poses[..., 2] > 0)).any()  # never outside the image
    assert vis.any(axis=(1, 2)).sum() > 10
    s = simulate_sequence(passes=1, severities=[0.5], view="side", seed=3, width=160,
                          height=120, fps=15, background=0.0, gap_s=(0.2, 0.4))
    f = int(np.flatnonzero(vis.any(axis=(1, 2)))[5])
    assert np.array_equal(next(render_frames(s, [f])).visible, vis[f])
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind
    # the same clip again: refused without --force, nothing touched
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    argv = ["synth", "video", "--out", str(tmp_path), "--passes", "1", "--seed", "3",
            "--severity", "1", "--size", "160x120", "--fps", "15", "--gap", "0.2", "0.4"]
    assert cli_main(argv) == 2
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    assert cli_main([*argv, "--force"]) == 0
    meta = json.loads((tmp_path / f"{stem}_truth.json").read_text())
    assert meta["passes"][0]["severity"] == 1.0


def test_visible_file_round_trip_and_errors(tmp_path: Path):
    rng = np.random.default_rng(0)
    vis = rng.random((7, 2, 8)) > 0.5
    path = write_visible(tmp_path / "c_truth_visible.csv", vis, ("bird1", "bird2"))
    back, inds = read_visible(path)
    assert np.array_equal(back, vis) and inds == ["bird1", "bird2"]
    with pytest.raises(ValueError, match=r"c_truth_visible\.csv: visible must be"):
        write_visible(path, vis[:, :1], ("bird1", "bird2"))
    bad = tmp_path / "bad.csv"
    bad.write_text("frame,who,head\n0,bird1,1\n")
    with pytest.raises(ValueError, match=r"bad\.csv: expected columns"):
        read_visible(bad)


def test_cli_rejects_bad_values(tmp_path: Path, capsys):
    assert cli_main(["synth", "video", "--out", str(tmp_path), "--size", "big"]) == 2
    assert "--size" in capsys.readouterr().err
    assert cli_main(["synth", "video", "--out", str(tmp_path), "--severity", "7"]) == 2
    assert "--severity: values must be in [0, 5]" in capsys.readouterr().err
    for seed in ("-1", str(2 ** 32)):  # would alias another seed's clip
        assert cli_main(["synth", "video", "--out", str(tmp_path), "--seed", seed]) == 2
        assert f"--seed: expected 0 to {2 ** 32 - 1}, got {seed}" in capsys.readouterr().err
    assert cli_main(["synth", "project", "--out", str(tmp_path), "--views", "top"]) == 2
    assert "top" in capsys.readouterr().err
    # one severity per pass that disagrees with --passes, and stems that leave --out
    assert cli_main(["synth", "video", "--out", str(tmp_path), "--severity", "1,2",
                     "--passes", "3"]) == 2
    assert "lists 2 passes but --passes is 3" in capsys.readouterr().err
    for stem in ("../escape", "sub/clip", ".hidden"):
        assert cli_main(["synth", "video", "--out", str(tmp_path / "o"), "--stem", stem]) == 2
        assert f"--stem {stem!r}: expected a plain file name stem" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob("escape*"))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert cli_main(["synth", "video", "--out", str(blocker / "sub"), "--passes", "1",
                     "--size", "64x48"]) == 2
    err = capsys.readouterr().err
    assert "a-file" in err and "cannot write the output" in err
    assert blocker.read_text() == "not a folder"


def test_cli_synth_project_is_a_deeplabcut_project(tmp_path: Path):
    out = tmp_path / "proj"
    rc = cli_main(["synth", "project", "--out", str(out), "--frames", "10", "--seed", "1",
                   "--frames-per-clip", "5", "--scale", "0.5"])
    assert rc == 0
    import deeplabcut  # noqa: F401  (slow import: one test only)
    from deeplabcut.generate_training_dataset.trainingsetmanipulation import (
        merge_annotateddatasets,
    )
    from deeplabcut.utils import auxiliaryfunctions

    cfg = auxiliaryfunctions.read_config(str(out / "config.yaml"))
    assert cfg["bodyparts"] == list(BODYPARTS) and cfg["engine"] == "pytorch"
    assert cfg["scorer"] == "synth" and Path(cfg["project_path"]) == out.resolve()
    assert len(cfg["video_sets"]) == 2
    for v in cfg["video_sets"]:
        assert Path(v).is_file()
    (out / "training-datasets").mkdir()
    data = merge_annotateddatasets(cfg, out / "training-datasets")
    assert data is not None and len(data) == 10
    assert list(dict.fromkeys(data.columns.get_level_values(1))) == list(BODYPARTS)
    # images are half size and labels lie inside them
    for folder in sorted((out / "labeled-data").iterdir()):
        lf = read_collected_data(folder / "CollectedData_synth.h5")
        for im, xy in zip(lf.images, lf.xy, strict=True):
            img = cv2.imread(str(folder / im))
            h, w = img.shape[:2]
            assert w <= 400 and h <= 300
            ok = np.isfinite(xy[:, 0])
            assert ok.sum() >= 4
            assert (xy[ok, 0] >= -0.5).all() and (xy[ok, 0] <= w).all()
            assert (xy[ok, 1] >= -0.5).all() and (xy[ok, 1] <= h).all()
    assert cli_main(["synth", "project", "--out", str(out), "--frames", "2"]) == 2


def test_project_is_the_same_with_parallel_workers(tmp_path: Path):
    a = write_project(tmp_path / "a", frames=4, frames_per_clip=2, seed=5, scale=0.5)
    b = write_project(tmp_path / "b", frames=4, frames_per_clip=2, seed=5, scale=0.5,
                      workers=2)
    assert a.n_frames == b.n_frames == 4 and a.n_clips == b.n_clips == 2
    files = sorted(p.relative_to(tmp_path / "a")
                   for p in (tmp_path / "a" / "labeled-data").rglob("*") if p.is_file())
    assert len(files) == 2 * (2 + 2)  # per clip: 2 images + CollectedData .h5/.csv
    for f in files:
        if f.suffix in (".png", ".csv"):
            assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_project_force_replaces_cleanly_and_keeps_the_earlier_one(tmp_path: Path):
    """--force gives the new project alone (no earlier frames mixed in), and the earlier
    one, trained shuffles included, is kept beside it."""
    out = tmp_path / "p"
    write_project(out, frames=4, frames_per_clip=2, seed=5, scale=0.25)
    (out / "dlc-models-pytorch").mkdir()
    (out / "dlc-models-pytorch" / "snapshot-010.pt").write_bytes(b"weights")
    before = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert cli_main(["synth", "project", "--out", str(out), "--frames", "2",
                     "--frames-per-clip", "2", "--seed", "6", "--scale", "0.5",
                     "--force"]) == 0
    kept = list(tmp_path.glob("p-previous-*"))
    assert len(kept) == 1
    assert sorted(p.relative_to(kept[0]) for p in kept[0].rglob("*") if p.is_file()) == before
    assert not (out / "dlc-models-pytorch").exists()
    folders = sorted((out / "labeled-data").iterdir())
    assert len(folders) == 1
    imgs = sorted(folders[0].glob("*.png"))
    assert len(imgs) == 2 and len(read_collected_data(
        folders[0] / "CollectedData_synth.h5").images) == 2


def test_edge_clips_show_the_bird_entering_or_leaving(tmp_path: Path, capsys):
    """``edges=1``: every clip's frames are centred on the bird partly in the image, so
    each clip has labelled frames with some keypoints in view and the rest outside it (NaN),
    next to the image border; the side view's bird enters or leaves at the left or right."""
    s = write_project(tmp_path / "e", frames=8, frames_per_clip=4, seed=11, scale=0.25,
                      views=("side",), edges=1.0)
    assert s.n_clips == 2
    for folder in sorted((tmp_path / "e" / "labeled-data").iterdir()):
        lf = read_collected_data(folder / "CollectedData_synth.h5")
        w = cv2.imread(str(folder / lf.images[0])).shape[1]
        n = np.isfinite(lf.xy[..., 0]).sum(axis=1)
        part = (n >= 1) & (n < len(BODYPARTS))
        assert part.any(), (folder.name, n)
        xs = lf.xy[part][..., 0]
        near = (np.nanmin(xs, axis=1) < 0.2 * w) | (np.nanmax(xs, axis=1) > 0.8 * w)
        assert near.all(), (folder.name, xs)
    assert json.loads((tmp_path / "e" / "synth_project.json").read_text())["edges"] == 1.0
    assert cli_main(["synth", "project", "--out", str(tmp_path / "x"), "--edges", "1.5"]) == 2
    assert "--edges must be in [0, 1], got 1.5" in capsys.readouterr().err


@pytest.mark.parametrize("severity", [4.0, 5.0])
def test_every_foot_swings_between_its_stances(severity):
    """The truth's stances of one foot never overlap and leave at least one frame of swing
    (a lame bird's right foot strikes a varying time after its left)."""
    for view in ("side", "rear"):
        for seed in range(20):
            sp = simulate_pass(severity=severity, view=view, seed=seed)
            for foot in ("left", "right"):
                strikes, lifts = np.asarray(sp.strikes[foot]), np.asarray(sp.lifts[foot])
                assert (strikes[1:] - lifts[:-1] >= 2).all(), (view, seed, foot)


def test_truth_cadence_counts_the_steps_whose_stance_is_not_listed():
    """Side view, 15 fps, severity 5 (seed 87): 19 strikes are listed (stances partly out of
    view are not) but the bird made 21 steps between the first and the last: 20 intervals
    in 222 frames = 1.351 steps/s (counting the listed ones gave 1.216)."""
    sp = simulate_pass(severity=5.0, view="side", seed=87, fps=15)
    strikes = sorted(sp.strikes["left"] + sp.strikes["right"])
    # every stance onset of the walk itself (the simulator's per-frame stance of each foot),
    # listed or not, between the first and the last listed strike
    st = sp.actors[0].walk.stance.astype(bool)
    onsets = sorted(int(f) for j in range(st.shape[1])
                    for f in np.flatnonzero(st[1:, j] & ~st[:-1, j]) + 1)
    made = [f for f in onsets if strikes[0] <= f <= strikes[-1]]
    assert set(strikes) <= set(made) and len(strikes) < len(made)  # some are not listed
    assert sp.passes[0].cadence_hz == pytest.approx(
        (len(made) - 1) * 15 / (strikes[-1] - strikes[0]))
    assert (len(strikes), len(made), strikes[-1] - strikes[0]) == (19, 21, 222)  # docstring


@pytest.mark.parametrize("seed", range(0, 40, 3))
def test_rear_view_birds_walk_between_the_side_walls(seed):
    """Body and feet stay inside the corridor's half-width for the whole walk (a heading
    drawn at random used to take 1 in 5 birds into a wall)."""
    for severity in (0.0, 5.0):
        sp = simulate_pass(severity=severity, view="rear", seed=seed)
        kp = sp.actors[0].walk.keypoints  # world metres (n, 8, 3); y across the corridor
        assert np.nanmax(np.abs(kp[..., 1])) < sp.corridor["half_width"], (seed, severity)

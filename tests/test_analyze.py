"""`gaitlive analyze` on DeepLabCut pose files, multi-animal files and the cow CSVs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gaitlive.cli import main
from gaitlive.dlcio import PoseData, write_pose
from gaitlive.synth import BODYPARTS, simulate_pass

STEP_COLS = ["individual", "pass_id", "foot", "strike_frame", "lift_frame"]
PASS_COLS = ["individual", "pass_id", "start_frame", "end_frame", "n_steps", "cadence_hz",
             "stance_fraction_left", "stance_fraction_right", "score"]


def test_analyze_dlc_h5_single_animal(tmp_path, capsys):
    sp = simulate_pass(severity=1, view="side", seed=21)
    h5 = write_pose(tmp_path / "in" / "bird.h5",
                    PoseData(poses=sp.poses, bodyparts=BODYPARTS, scorer="DLC_test"))
    rc = main(["analyze", str(h5), "--profile", "broiler-side", "--fps", "30",
               "--out", str(tmp_path / "out")])
    assert rc == 0, capsys.readouterr().err
    steps = pd.read_csv(tmp_path / "out" / "bird_steps.csv")
    passes = pd.read_csv(tmp_path / "out" / "bird_passes.csv")
    assert list(steps.columns[:5]) == STEP_COLS
    assert set(PASS_COLS) <= set(passes.columns) and "hock_feet_ratio_left_right" in passes
    assert len(passes) == 1 and passes.loc[0, "scored"] and 0 <= passes.loc[0, "score"] <= 5
    for foot in ("left", "right"):
        det = steps.loc[steps.foot == foot, "strike_frame"].to_numpy()
        hits = sum(np.abs(det - t).min() <= 2 for t in sp.strikes[foot])
        assert hits >= len(sp.strikes[foot]) - 1
        # one row per stance: no provisional or superseded rows besides the real ones
        assert len(det) == len(set(det)) <= len(sp.strikes[foot])
        assert all(np.abs(np.asarray(sp.strikes[foot]) - d).min() <= 2 for d in det)
    # the passes table carries what the stage computed
    assert passes.loc[0, "cadence_hz"] == pytest.approx(sp.cadence_hz, rel=0.05)
    assert "1 passes (1 scored)" in capsys.readouterr().out


def test_analyze_multi_animal_csv_with_gaps(tmp_path, capsys):
    a = simulate_pass(severity=0, view="side", seed=22, direction=1)
    b = simulate_pass(severity=2, view="side", seed=23, direction=-1)
    n = a.n_frames + 60 + b.n_frames
    poses = np.full((n, 2, 8, 3), np.nan, np.float32)
    poses[..., 2] = 0
    poses[:a.n_frames, 0] = a.poses[:, 0]
    poses[a.n_frames + 60:, 1] = b.poses[:, 0]  # an empty corridor between the two
    data = PoseData(poses=poses, bodyparts=BODYPARTS, individuals=("bird1", "bird2"),
                    scorer="DLC_ma", multi_animal=True)
    write_pose(tmp_path / "ma.h5", data)  # writes ma.csv too
    rc = main(["analyze", str(tmp_path / "ma.csv"), "--profile", "broiler-side",
               "--out", str(tmp_path / "out")])
    assert rc == 0, capsys.readouterr().err
    passes = pd.read_csv(tmp_path / "out" / "ma_passes.csv")
    assert len(passes) == 2 and passes.pass_id.tolist() == [0, 1]
    assert passes.start_frame[1] >= a.n_frames + 60
    steps = pd.read_csv(tmp_path / "out" / "ma_steps.csv")
    assert set(steps.pass_id) == {0, 1}


def test_analyze_errors_name_the_input(tmp_path, capsys):
    rc = main(["analyze", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "o")])
    assert rc == 2 and "missing.h5: input not found" in capsys.readouterr().err
    (tmp_path / "x.txt").write_text("hello")
    rc = main(["analyze", str(tmp_path / "x.txt"), "--out", str(tmp_path / "o")])
    assert rc == 2 and "unsupported input '.txt'" in capsys.readouterr().err
    sp = simulate_pass(severity=0, view="side", seed=1)
    bp = tuple(f"p{i}" for i in range(8))
    write_pose(tmp_path / "other.h5", PoseData(poses=sp.poses, bodyparts=bp))
    rc = main(["analyze", str(tmp_path / "other.h5"), "--out", str(tmp_path / "o")])
    assert rc == 2 and "lack the profile 'broiler-side' bodyparts" in capsys.readouterr().err


@pytest.mark.shared
def test_cow_passes_features_fit_and_compare(shared_data, tmp_path, capsys):
    cow = shared_data / "cow-lameness-sample"
    files = sorted((cow / "03_2023_keypoints").glob("*.csv"))
    assert len(files) == 20
    out = tmp_path / "cow"
    rc = main(["analyze", *map(str, files), "--profile", "cow-side", "--fps", "25",
               "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    passes = pd.read_csv(out / "passes.csv", dtype={"video": str})
    assert len(passes) == 20 and passes.video.tolist()[0] == "001"
    # a cow stride takes about 28 frames: 2 steps per 28 frames at 25 fps ~ 1.8 steps/s
    assert passes.cadence_hz.between(1.2, 2.4).all()
    assert (passes.n_steps >= 10).all()
    assert passes.stance_fraction_LH.between(0.4, 0.85).all()
    rc = main(["score", "fit", str(out / "passes.csv"), str(cow / "example_dataset.csv"),
               "--out", str(tmp_path / "cow-model"), "--folds", "20",
               "--min-score", "1", "--max-score", "5"])
    text = capsys.readouterr().out
    assert rc == 0 and "leave-one-out" in text and "20 passes joined" in text
    rc = main(["analyze", *map(str, files), "--profile", "cow-side", "--fps", "25",
               "--score-model", str(tmp_path / "cow-model.json"), "--out", str(out)])
    assert rc == 0
    capsys.readouterr()
    rc = main(["score", "compare", str(out / "passes.csv"), str(cow / "example_dataset.csv")])
    text = capsys.readouterr().out
    assert rc == 0 and "weighted kappa" in text and (out / "passes_confusion.png").exists()


def test_analyze_video_with_a_real_dlclive_export(tmp_path, capsys):
    """The video path: real DLC-Live inference (a tiny PyTorch export with random weights),
    the poses saved in DeepLabCut format, the tables and the labelled movie."""
    cv2 = pytest.importorskip("cv2")
    testing = pytest.importorskip("gaitlive.testing")
    model = testing.make_tiny_pytorch_export(tmp_path / "model")
    video = tmp_path / "clip.mp4"
    vw = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (128, 96))
    rng = np.random.default_rng(0)
    for i in range(20):
        img = np.full((96, 128, 3), 40, np.uint8)
        cv2.circle(img, (10 + 5 * i, 50), 8, (220, 220, 220), -1)
        img = cv2.add(img, rng.integers(0, 20, img.shape, dtype=np.uint8))
        vw.write(img)
    vw.release()
    rc = main(["analyze", str(video), "--model", str(model), "--out", str(tmp_path / "out")])
    assert rc == 0, capsys.readouterr().err
    out = tmp_path / "out"
    from gaitlive.dlcio import read_pose

    poses = read_pose(out / "clip.h5")
    assert poses.poses.shape[0] == 20 and poses.bodyparts == BODYPARTS
    assert (out / "clip.csv").exists()
    assert list(pd.read_csv(out / "clip_steps.csv").columns[:5]) == STEP_COLS
    assert set(PASS_COLS) <= set(pd.read_csv(out / "clip_passes.csv").columns)
    cap = cv2.VideoCapture(str(out / "clip_labeled.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 20
    cap.release()

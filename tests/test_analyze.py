"""`gaitlive analyze` on DeepLabCut pose files, multi-animal files and the cow CSVs."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from gaitlive.cli import main
from gaitlive.dlcio import PoseData, read_pose, write_pose
from gaitlive.synth import BODYPARTS, simulate_pass
from gaitlive.testing import make_tiny_pytorch_export

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
    assert "1 pass (1 scored)" in capsys.readouterr().out


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
    model = make_tiny_pytorch_export(tmp_path / "model")
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


# --------------------------------------------------------------------------------------
# Bad input, clashing outputs and interruption (reviewer defects)
# --------------------------------------------------------------------------------------


def _write_clip(path, n_frames=20, size=(128, 96), fps=25.0):
    """A real mp4 (OpenCV): a bright disc moving over a noisy floor."""

    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    rng = np.random.default_rng(0)
    for i in range(n_frames):
        img = np.full((h, w, 3), 40, np.uint8)
        cv2.circle(img, (10 + (5 * i) % (w - 20), h // 2), 8, (220, 220, 220), -1)
        vw.write(cv2.add(img, rng.integers(0, 20, img.shape, dtype=np.uint8)))
    vw.release()
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A tiny real DLC-Live PyTorch export (random weights), shared by the video tests."""
    return make_tiny_pytorch_export(tmp_path_factory.mktemp("tiny") / "model")


def _one_line_error(capsys, *names):
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "H5F.c" not in err
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(lines) == 1, err
    for name in names:
        assert name in lines[0], err
    return lines[0]


def test_analyze_video_keeps_a_pose_file_it_did_not_write(tmp_path, tiny_model, capsys):
    """`gaitlive synth video --out D` leaves the truth D/<stem>.h5 beside D/<stem>.mp4:
    analysing the video into D must not replace it; its own earlier output it does."""
    from gaitlive.dlcio import read_pose

    d = tmp_path / "D"
    video = _write_clip(d / "clip.mp4")
    sp = simulate_pass(severity=0, view="side", seed=2)
    truth = write_pose(d / "clip.h5", PoseData(poses=sp.poses, bodyparts=BODYPARTS,
                                               scorer="synth-truth"))
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    rc = main(["analyze", str(video), "--model", str(tiny_model), "--out", str(d)])
    assert rc == 2
    line = _one_line_error(capsys, str(truth), "'synth-truth'", "--out")
    assert "exists" in line
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before  # nothing touched
    # a file at the pose file's place that is no pose file at all: refused as well
    e = tmp_path / "E"
    _write_clip(e / "clip.mp4")
    (e / "clip.csv").write_text("my notes, not poses\n")
    rc = main(["analyze", str(e / "clip.mp4"), "--model", str(tiny_model), "--out", str(e)])
    assert rc == 2
    assert "cannot be read as a pose file" in _one_line_error(capsys, str(e / "clip.csv"))
    assert (e / "clip.csv").read_text() == "my notes, not poses\n"
    # its own output (scorer 'gaitlive') is replaced on a re-run into the same folder
    out = tmp_path / "out"
    for _ in range(2):
        rc = main(["analyze", str(video), "--model", str(tiny_model), "--out", str(out),
                   "--no-movie"])
        assert rc == 0, capsys.readouterr().err
    assert read_pose(out / "clip.h5").scorer == read_pose(out / "clip.csv").scorer == "gaitlive"
    assert read_pose(out / "clip.h5").n_frames == 20
    assert read_pose(truth).scorer == "synth-truth"


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_analyze_interrupted_video_keeps_partial_outputs(tmp_path, tiny_model, sig):
    """Ctrl-C or SIGTERM during a long video: the poses so far and the steps and passes of
    those frames are written, and the exit status is 130 with a message saying where."""
    import re
    import signal
    import subprocess
    import sys
    import time

    from gaitlive.dlcio import read_pose

    video = _write_clip(tmp_path / "long.mp4", n_frames=1500)
    out = tmp_path / "out"
    errfile = tmp_path / "stderr.txt"
    with open(errfile, "wb") as errf:  # a file, not a pipe: nothing races to read it
        proc = subprocess.Popen(
            [sys.executable, "-m", "gaitlive.cli", "analyze", str(video), "--model",
             str(tiny_model), "--out", str(out)],
            stdout=subprocess.PIPE, stderr=errf,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    try:
        # tqdm's progress on stderr: "long.mp4:  1%|   | 12/1500 [..."
        while not any(int(n) >= 5 for n in re.findall(rb"(\d+)/1500 \[",
                                                      errfile.read_bytes())):
            assert proc.poll() is None, errfile.read_text(errors="replace")
            assert time.monotonic() < deadline, "no progress from gaitlive analyze"
            time.sleep(0.02)
        proc.send_signal(getattr(signal, sig))
        stdout, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = errfile.read_text(errors="replace")
    assert proc.returncode == 130, text
    m = re.search(rf"interrupted: {sig} received: stopped \S*long.mp4 at frame (\d+)", text)
    assert m, text
    n = int(m.group(1))
    assert 5 <= n < 1500
    assert str(out / "long.h5") in text and str(out / "long_passes.csv") in text
    poses = read_pose(out / "long.h5")
    assert poses.n_frames == n and read_pose(out / "long.csv").n_frames == n
    assert list(pd.read_csv(out / "long_steps.csv").columns[:5]) == STEP_COLS
    passes = pd.read_csv(out / "long_passes.csv")
    assert set(PASS_COLS) <= set(passes.columns)
    assert (passes.end_frame < n).all()
    assert not (out / "long_labeled.mp4").exists()
    assert b"long.mp4: " in stdout  # the usual summary of what was written


def test_analyze_refuses_inputs_with_the_same_stem(tmp_path, capsys):
    sp = simulate_pass(severity=1, view="side", seed=3)
    data = PoseData(poses=sp.poses, bodyparts=BODYPARTS, scorer="DLC_x")
    a = write_pose(tmp_path / "a" / "day1.h5", data)
    b = write_pose(tmp_path / "b" / "day1.h5", data)
    out = tmp_path / "X"
    rc = main(["analyze", str(a), str(b), "--fps", "30", "--out", str(out)])
    assert rc == 2
    assert "same stem 'day1'" in _one_line_error(capsys, str(a), str(b))
    # the .h5 and its .csv twin
    rc = main(["analyze", str(a), str(a.with_suffix(".csv")), "--fps", "30", "--out", str(out)])
    assert rc == 2
    _one_line_error(capsys, str(a), str(a.with_suffix(".csv")), "same stem")
    assert not out.exists()  # refused before any work
    rc = main(["analyze", str(a), str(tmp_path / "b" / "day1.csv"), "--fps", "30",
               "--out", str(out)])
    assert rc == 2 and not out.exists()
    capsys.readouterr()


def test_analyze_checks_every_input_before_analysing_any(tmp_path, capsys):
    sp = simulate_pass(severity=1, view="side", seed=4)
    good = write_pose(tmp_path / "good.h5",
                      PoseData(poses=sp.poses, bodyparts=BODYPARTS, scorer="DLC_x"))
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    out = tmp_path / "X"
    for bad, why in (("missing.h5", "input not found"),
                     ("notes.txt", "unsupported input '.txt'"),
                     ("empty.mp4", "the file is empty"),
                     ("garbage.mp4", "cannot be read as a video")):
        rc = main(["analyze", str(good), str(tmp_path / bad), "--fps", "30",
                   "--out", str(out)])
        assert not out.exists() or not any(out.iterdir())  # not even good.h5 analysed
        assert rc == 2
        assert why in _one_line_error(capsys, str(tmp_path / bad), "nothing was analysed")
    for fps in ("0", "nan", "1e9"):  # 1e9 used to try to allocate terabytes
        assert main(["analyze", str(good), "--fps", fps, "--out", str(out)]) == 2
        assert "--fps: expected a frame rate > 0 and <= 1000" in capsys.readouterr().err
    rc = main(["analyze", str(good), "--fps", "30", "--out", str(out)])
    assert rc == 0 and (out / "good_passes.csv").exists()


def test_analyze_out_that_is_a_file(tmp_path, capsys):
    sp = simulate_pass(severity=1, view="side", seed=5)
    good = write_pose(tmp_path / "good.h5",
                      PoseData(poses=sp.poses, bodyparts=BODYPARTS, scorer="DLC_x"))
    f = tmp_path / "results"
    f.write_text("a file, not a folder")
    rc = main(["analyze", str(good), "--out", str(f)])
    assert rc == 2 and "is a file, not a folder" in _one_line_error(capsys, f"--out {f}")
    rc = main(["analyze", str(good), "--out", str(f / "sub")])
    assert rc == 2 and "is a file, not a folder" in _one_line_error(capsys, str(f / "sub"))
    assert f.read_text() == "a file, not a folder"


def test_analyze_unreadable_pose_files_give_one_line_errors(tmp_path, capsys):
    sp = simulate_pass(severity=1, view="side", seed=6)
    good = write_pose(tmp_path / "good.h5",
                      PoseData(poses=sp.poses, bodyparts=BODYPARTS, scorer="DLC_x"))
    empty_h5 = tmp_path / "empty.h5"
    empty_h5.write_bytes(b"")
    trunc = tmp_path / "trunc.h5"
    trunc.write_bytes(good.read_bytes()[:5000])
    empty_csv = tmp_path / "empty.csv"
    empty_csv.write_text("")
    # a DeepLabCut CSV with text in a coordinate cell: named, not read as a gap
    lines = good.with_suffix(".csv").read_text().splitlines()
    cells = lines[10].split(",")
    cells[4] = "abc"
    lines[10] = ",".join(cells)
    text_csv = tmp_path / "text.csv"
    text_csv.write_text("\n".join(lines) + "\n")
    for path, why in ((empty_h5, "empty"), (trunc, "not a readable HDF5 file"),
                      (empty_csv, "empty"), (text_csv, "'abc' is not a number")):
        rc = main(["analyze", str(path), "--fps", "30", "--out", str(tmp_path / "o")])
        assert rc == 2
        line = _one_line_error(capsys, str(path), "expected")
        assert why in line
    rc = main(["analyze", str(good), "--profile", "cow-side", "--fps", "30",
               "--out", str(tmp_path / "o")])
    assert rc == 2
    line = _one_line_error(capsys, str(good), "'cow-side'", "--profile")
    assert "lack the profile 'cow-side' bodyparts" in line


def test_a_truncated_video_is_analysed_as_far_as_it_decodes_and_says_so(tmp_path, tiny_model,
                                                                        caplog):

    video = tmp_path / "cut.avi"
    vw = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (128, 96))
    rng = np.random.default_rng(1)
    for _ in range(60):
        vw.write(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))
    vw.release()
    data = video.read_bytes()
    video.write_bytes(data[:len(data) // 3])  # a copy cut short
    with caplog.at_level("WARNING", logger="gaitlive"):
        rc = main(["analyze", str(video), "--model", str(tiny_model), "--out",
                   str(tmp_path / "out"), "--no-movie"])
    assert rc == 0
    n = read_pose(tmp_path / "out" / "cut.h5").n_frames
    assert 0 < n < 60
    assert f"only {n} of the 60 frames its header announces could be decoded" in caplog.text


def _write_video(path, n: int = 3, size=(640, 480)):

    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, size)
    for _ in range(n):
        vw.write(np.zeros((size[1], size[0], 3), np.uint8))
    vw.release()
    return path


def test_source_video_of_a_pose_file(tmp_path):
    from gaitlive.analyze import source_video

    (tmp_path / "walkDLC_resnet50_birdsDec7shuffle1_500000.h5").touch()
    (tmp_path / "walk.h5").touch()
    (tmp_path / "other.h5").touch()
    assert source_video(tmp_path / "walk.h5") is None
    video = _write_video(tmp_path / "walk.mp4")
    assert source_video(tmp_path / "walkDLC_resnet50_birdsDec7shuffle1_500000.h5") == video
    assert source_video(tmp_path / "walk.h5") == video
    assert source_video(tmp_path / "other.h5") is None
    # gaitlive analyze's own outputs: <stem>.h5 beside <stem>_labeled.mp4
    labelled = _write_video(tmp_path / "other_labeled.mp4")
    assert source_video(tmp_path / "other.h5") == labelled


def test_analyze_pose_file_takes_the_frame_rate_of_its_source_video(tmp_path, capsys):

    sp = simulate_pass(severity=1, view="side", seed=21)
    h5 = write_pose(tmp_path / "walkDLC_resnet50_xDec7shuffle1_1000.h5",
                    PoseData(poses=sp.poses, bodyparts=BODYPARTS))
    vw = cv2.VideoWriter(str(tmp_path / "walk.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 60.0,
                         (640, 480))
    vw.write(np.zeros((480, 640, 3), np.uint8))
    vw.release()
    assert main(["analyze", str(h5), "--profile", "broiler-side", "--out",
                 str(tmp_path / "out")]) == 0
    assert "steps at 60 fps" in capsys.readouterr().out


def test_analyze_pose_file_knows_where_a_bird_leaves_the_image(tmp_path, capsys, caplog):
    """The bird vanishes mid-image for 3 frames after it lost its upper keypoints (behind
    a post): with the frame size (--frame-size, or the source video beside the pose file)
    its pass goes on; without it the stage cannot tell it from walking out: two passes."""
    sp = simulate_pass(severity=2, view="side", seed=1)
    poses = sp.poses.copy()
    poses[145:150, :, :6, 2] = 0.0
    poses[150:153] = np.nan
    h5 = write_pose(tmp_path / "in" / "walk.h5", PoseData(poses=poses, bodyparts=BODYPARTS))

    def n_passes(*extra: str) -> int:
        out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
        assert main(["analyze", str(h5), "--profile", "broiler-side", "--out", str(out),
                     *extra]) == 0, capsys.readouterr().err
        return len(pd.read_csv(out / "walk_passes.csv"))

    assert n_passes() == 2
    assert "frame size unknown (no source video beside it, no --frame-size)" in caplog.text
    assert n_passes("--frame-size", "640x480") == 1
    assert "of the keypoints lie outside the frame size" not in caplog.text
    assert n_passes("--frame-size", "320x240") == 2  # too small: the bird left it
    assert "of the keypoints lie outside the frame size 320x240 given" in caplog.text
    _write_video(tmp_path / "in" / "walk.mp4")
    assert n_passes() == 1
    assert main(["analyze", str(h5), "--out", str(tmp_path / "o"), "--frame-size",
                 "640x0"]) == 2
    assert "--frame-size 640x0: expected WIDTHxHEIGHT in pixels" in capsys.readouterr().err


def test_a_rate_change_noted_inside_a_pass_times_the_steps_where_the_stage_applied_it(
        tmp_path, capsys, caplog):
    """A poses.h5 notes a rate change at a frame where, with these poses, a pass is open
    (another profile, or a pass the live run had ended at a reconnect): the stage applies
    it after the pass, says so, and the steps table's times follow the stage's clock, not
    the noted frame (they differed by up to 2.5 s; review, 2026-12-07)."""
    import logging

    sp = simulate_pass(severity=1, view="side", seed=21)
    n = sp.n_frames + 60
    poses = np.full((n, 1, 8, 3), np.nan, np.float32)
    poses[..., 2] = 0
    poses[:sp.n_frames] = sp.poses
    data = PoseData(poses=poses, bodyparts=BODYPARTS, scorer="DLC_test", fps=30.0)
    noted = sp.n_frames // 2
    data.meta["rate_changes"] = [(noted, 15.0)]
    h5 = write_pose(tmp_path / "in" / "live.h5", data)
    with caplog.at_level(logging.WARNING, logger="gaitlive.gait.stage"):
        rc = main(["analyze", str(h5), "--profile", "broiler-side", "--out",
                   str(tmp_path / "out")])
    assert rc == 0, capsys.readouterr().err
    [warn] = [r.getMessage() for r in caplog.records if "noted at frame" in r.getMessage()]
    applied = int(warn.split("applied at frame ")[1].split(",")[0])
    passes = pd.read_csv(tmp_path / "out" / "live_passes.csv")
    assert len(passes) == 1 and passes.loc[0, "start_frame"] < noted
    assert applied > passes.loc[0, "end_frame"] > noted
    steps = pd.read_csv(tmp_path / "out" / "live_steps.csv")
    assert (steps.strike_frame > noted).sum() >= 4  # the pass went on after the note
    np.testing.assert_allclose(steps.strike_s, steps.strike_frame / 30.0, rtol=1e-9)
    np.testing.assert_allclose(steps.lift_s, steps.lift_frame / 30.0, rtol=1e-9)
    assert passes.loc[0, "cadence_hz"] == pytest.approx(sp.cadence_hz, rel=0.05)


def test_a_re_run_keeps_the_earlier_results_and_a_bad_input_leaves_no_folder(tmp_path,
                                                                             capsys, caplog):
    """Analysing into a folder that holds this input's earlier results moves them to
    previous/<time>/ first (an interrupted re-run had replaced complete results with
    partial ones); a pose file that cannot be read leaves no empty --out folder behind
    (walkthrough, 2026-12-07)."""
    import logging

    sp = simulate_pass(severity=1, view="side", seed=21)
    h5 = write_pose(tmp_path / "in" / "bird.h5",
                    PoseData(poses=sp.poses, bodyparts=BODYPARTS, scorer="DLC_test"))
    out = tmp_path / "out"
    args = ["analyze", str(h5), "--profile", "broiler-side", "--fps", "30", "--out", str(out)]
    assert main(args) == 0, capsys.readouterr().err
    first = {n: (out / n).read_bytes() for n in ("bird_steps.csv", "bird_passes.csv")}
    (out / "notes.txt").write_text("mine")
    with caplog.at_level(logging.WARNING, logger="gaitlive.analyze"):
        assert main(args) == 0, capsys.readouterr().err
    [prev] = list((out / "previous").iterdir())
    assert {n: (prev / n).read_bytes() for n in first} == first
    assert sorted(p.name for p in prev.iterdir()) == sorted(first)
    assert (out / "bird_steps.csv").is_file() and (out / "notes.txt").read_text() == "mine"
    assert any("were moved to" in r.getMessage() for r in caplog.records)
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"not really" * 20)
    rc = main(["analyze", str(bad), "--profile", "broiler-side", "--out",
               str(tmp_path / "never")])
    assert rc == 2 and "bad.h5" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_reanalysing_part_of_a_batch_updates_the_folders_passes_table(tmp_path, capsys):
    """passes.csv is the table of every pass in the folder: re-analysing one of its inputs
    replaces that input's rows (its own tables went to previous/) and keeps the others'."""
    inp = tmp_path / "in"
    for stem, sev, seed in (("a", 1, 21), ("b", 4, 22)):
        sp = simulate_pass(severity=sev, view="side", seed=seed)
        write_pose(inp / f"{stem}.h5", PoseData(poses=sp.poses, bodyparts=BODYPARTS,
                                                scorer="DLC_test"))
    out = tmp_path / "out"
    args = ["--profile", "broiler-side", "--fps", "30", "--out", str(out)]
    assert main(["analyze", str(inp / "a.h5"), str(inp / "b.h5"), *args]) == 0
    first = pd.read_csv(out / "passes.csv", dtype={"video": str})
    assert list(first.video) == ["a", "b"]
    # a re-recorded a.h5 (another bird), analysed alone into the same folder
    sp = simulate_pass(severity=5, view="side", seed=23)
    write_pose(inp / "a.h5", PoseData(poses=sp.poses, bodyparts=BODYPARTS, scorer="DLC_test"))
    assert main(["analyze", str(inp / "a.h5"), *args]) == 0, capsys.readouterr().err
    now = pd.read_csv(out / "passes.csv", dtype={"video": str})
    a_new = pd.read_csv(out / "a_passes.csv", dtype={"video": str})
    assert sorted(now.video) == ["a", "b"]
    pd.testing.assert_frame_equal(now[now.video == "b"].reset_index(drop=True),
                                  first[first.video == "b"].reset_index(drop=True))
    pd.testing.assert_frame_equal(now[now.video == "a"].reset_index(drop=True), a_new)
    assert not np.allclose(a_new.cadence_hz, first[first.video == "a"].cadence_hz)
    assert list((out / "previous").glob("*/a_passes.csv"))

"""Export and the bundled model: the card, loading through the live code path, accuracy on
freshly rendered synthetic frames, and dlclive's own benchmark tool on a real video."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from gaitlive.cli import main
from gaitlive.config import load_config
from gaitlive.offline.export import write_model_card
from gaitlive.paths import DEFAULT_MODEL, PROJECT_ROOT
from gaitlive.pose import find_model_file, load_runner, read_model_card
from gaitlive.testing import make_tiny_dlc_project


def test_export_needs_a_trained_shuffle(tmp_path, capsys):
    proj = make_tiny_dlc_project(tmp_path / "dots", n=4)
    assert main(["export", str(proj), "--to", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "gaitlive export: error:" in err and "shuffle 1 is not trained" in err \
        and "gaitlive train" in err
    assert main(["export", str(tmp_path / "nothing"), "--to", str(tmp_path / "m")]) == 2
    assert "not a DeepLabCut project" in capsys.readouterr().err


@pytest.fixture(scope="module")
def trained_project(tmp_path_factory) -> Path:
    """A tiny real DeepLabCut project trained for one epoch: something to export."""
    proj = make_tiny_dlc_project(tmp_path_factory.mktemp("trained") / "dots", n=8)
    assert main(["train", str(proj), "--epochs", "1", "--batch-size", "4", "--no-pretrained",
                 "--widen-factor", "0.125", "--heatmap-stride", "8", "--save-epochs", "1",
                 "--eval-interval", "1", "--threads", "1"]) == 0
    return proj


def test_export_refuses_a_model_folder_unless_forced(trained_project, tmp_path, capsys):
    """A folder that holds a model is refused; --force replaces that model's own files (card,
    weights, held-out and evaluation files) and keeps every other file."""
    model = tmp_path / "model"
    assert main(["export", str(trained_project), "--to", str(model)]) == 0
    capsys.readouterr()
    for name in ("heldout-metrics.csv", "heldout-gallery.jpg", "evaluation/metrics.csv",
                 "evaluation/gallery.png", "notes.txt", "keepme.pt"):
        (model / name).parent.mkdir(exist_ok=True)
        (model / name).write_text(f"old {name}")
    card = (model / "model.yaml").read_bytes()
    weights = (model / "model.pt").read_bytes()
    # again, without --force: refused, nothing touched
    assert main(["export", str(trained_project), "--to", str(model), "--name", "new"]) == 2
    err = capsys.readouterr().err
    assert f"--to {model}: already holds a model (model.yaml, keepme.pt, model.pt)" in err
    assert "--force" in err
    assert (model / "model.yaml").read_bytes() == card
    assert (model / "model.pt").read_bytes() == weights
    assert (model / "heldout-metrics.csv").is_file() and not (model / "new.pt").exists()
    # a bare .pt (no card) is a model too
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "keepme.pt").write_bytes(weights)
    assert main(["export", str(trained_project), "--to", str(bare)]) == 2
    assert "already holds a model (keepme.pt)" in capsys.readouterr().err
    # --force: the old model's files go, the user's stay
    assert main(["export", str(trained_project), "--to", str(model), "--name", "new",
                 "--force"]) == 0
    left = sorted(str(p.relative_to(model)) for p in model.rglob("*"))
    assert left == ["keepme.pt", "model.yaml", "new.pt", "notes.txt"]
    assert (model / "keepme.pt").read_text() == "old keepme.pt"
    new = read_model_card(model)
    assert new.file == "new.pt" and new.raw["name"] == "new"
    with load_runner(model) as r:
        assert r.get_pose(np.zeros((64, 96, 3), np.uint8)).shape == (1, 2, 3)
    # a file where the folder should be
    (tmp_path / "afile").write_text("x")
    assert main(["export", str(trained_project), "--to", str(tmp_path / "afile")]) == 2
    assert "is a file; expected a model folder" in capsys.readouterr().err


def test_export_rejects_bad_resize_and_metrics(trained_project, tmp_path, capsys):
    """--resize must be a finite factor > 0 and --metrics a metrics.csv with rows; both are
    checked before anything is written."""
    model = tmp_path / "model"
    for bad in ("-1", "0", "inf", "nan"):
        assert main(["export", str(trained_project), "--to", str(model),
                     "--resize", bad]) == 2
        assert f"--resize {bad}: expected a finite scale factor > 0" in \
            capsys.readouterr().err
    header_only = tmp_path / "header.csv"
    header_only.write_text("split,bodypart,n,rmse_px,pck,detected\n")
    unrelated = tmp_path / "unrelated.csv"
    unrelated.write_text("frame,x,y\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    text = tmp_path / "text.csv"
    text.write_text("split,bodypart,rmse_px\ntest,all,many\n")
    # an exported model's metrics (gaitlive evaluate --model) name no snapshot: another
    # model's figures must not reach this model's card
    unnamed = tmp_path / "unnamed.csv"
    unnamed.write_text("split,bodypart,n,rmse_px,pck,shuffle,snapshot,snapshot_sha256\n"
                       "heldout,all,10,3.3,0.89,,,\n")
    for f, why in ((header_only, "no rows"), (unrelated, "lack ['split', 'bodypart']"),
                   (empty, "lack ['split', 'bodypart']"),
                   (text, "line 2: rmse_px: expected a number, got 'many'"),
                   (unnamed, "does not say which snapshot it measured")):
        assert main(["export", str(trained_project), "--to", str(model),
                     "--metrics", str(f)]) == 2
        err = capsys.readouterr().err
        assert f"--metrics {f}: " in err and why in err, err
        assert f in (text, unnamed) or "(columns split, bodypart, n, rmse_px" in err
    assert not model.exists()
    # the library checks resize too
    from gaitlive.offline.export import export_project

    with pytest.raises(ValueError, match=r"--resize -0.5: expected a finite scale factor"):
        export_project(trained_project, model, resize=-0.5)
    assert not model.exists()


def test_model_card_round_trip(tmp_path):
    from gaitlive.testing import make_tiny_pytorch_export

    folder = make_tiny_pytorch_export(tmp_path / "m", ["a", "b", "c"])
    write_model_card(folder, {"metrics": {"x": 1}, "name": "m", "engine": "pytorch",
                              "file": "tiny.pt", "bodyparts": ["a", "b", "c"],
                              "skeleton": [["a", "b"]], "input_size": [320, 240],
                              "resize": 0.5, "date": "2026-01-01"})
    text = (folder / "model.yaml").read_text()
    assert text.index("name:") < text.index("bodyparts:") < text.index("metrics:")
    card = read_model_card(folder)
    assert card.input_size == (320, 240) and card.resize == 0.5
    assert card.skeleton == (("a", "b"),) and card.metrics == {"x": 1}
    (folder / "model.yaml").write_text(yaml.safe_dump({"skeleton": [["a", "zz"]]}))
    with pytest.raises(ValueError, match=r"skeleton\[0\]: expected two of"):
        read_model_card(folder)


# -- the bundled model ---------------------------------------------------------------------


def test_bundled_model_card_matches_the_default_config():
    cfg = load_config()
    card = read_model_card(DEFAULT_MODEL)
    assert card.engine == "pytorch"
    assert card.bodyparts == cfg.profile.bodyparts  # broiler-side order and spelling
    assert set(map(tuple, map(sorted, card.skeleton))) == \
        set(map(tuple, map(sorted, cfg.profile.skeleton)))
    assert card.resize == cfg.model.resize
    assert card.input_size == (round(640 * card.resize), round(480 * card.resize))
    assert card.raw["precision_stored"] == "FP16"
    pt = find_model_file(DEFAULT_MODEL)
    assert pt.stat().st_size < 10e6  # a few MB
    raw = torch.load(pt, weights_only=True)
    assert all(v.dtype == torch.float16 for v in raw["pose"].values() if v.is_floating_point())
    assert raw["config"]["data"]["train"]["hflip"] in (None, False)
    held = card.metrics["heldout"]
    assert set(held["per_bodypart"]) == set(card.bodyparts)
    assert "reproduce" in card.raw and "train_bundled_model.py" in card.raw["reproduce"]


def test_bundled_model_on_new_synthetic_frames():
    """Passes rendered with seeds the model never saw (one side, one rear view), at 640x480,
    through the model and presence-crop settings of configs/default.yaml: nearly all keypoints
    within 20% of the bird's size (measured 0.97 and 0.99; the held-out PCK@0.1 is in the
    model card)."""
    from gaitlive.offline.evaluate import compute_pose_metrics
    from gaitlive.presence import crop_around
    from gaitlive.synth import simulate_pass
    from gaitlive.synth.render import render_frames

    cfg = load_config()
    gt, pred = [], []
    with load_runner(DEFAULT_MODEL, cfg.model) as r:
        for seed, view in ((424243, "side"), (424244, "rear")):
            seq = simulate_pass(severity=1.0, view=view, species="broiler", seed=seed,
                                width=640, height=480)
            idx = np.linspace(seq.start_frame + 10, seq.end_frame - 10, 10).round()
            for fr in render_frames(seq, idx.astype(int).tolist()):
                truth = seq.poses[fr.index, 0, :, :2].astype(float)
                truth[~fr.visible[0]] = np.nan
                gt.append(truth)
                # the crop the live presence gate gives a moving bird: its box + margin,
                # at least presence.min_crop
                h, w = fr.image.shape[:2]
                crop = crop_around(truth, cfg.presence.margin, cfg.presence.min_crop, w, h,
                                   cfg.presence.crop_step) \
                    if cfg.presence.crop else None
                pred.append(r.get_pose(fr.image, crop=crop)[0])
    m = compute_pose_metrics(np.array(gt), np.array(pred), cfg.profile.bodyparts,
                             pcutoff=cfg.profile.pcutoff, pck_fraction=0.2)
    assert m.n_frames == 20
    assert m.pck >= 0.9, m.as_dict()
    assert m.detected >= 0.8, m.as_dict()


@pytest.mark.slow
def test_dlc_live_benchmark_runs_the_bundled_model_on_real_video(shared_data, tmp_path):
    """dlclive's own tool (dlc-live-benchmark) loads the exported .pt and analyses a real
    640x480 video (the first 60 frames of the openfield-mouse session)."""
    exe = shutil.which("dlc-live-benchmark") or str(PROJECT_ROOT / ".venv" / "bin" /
                                                    "dlc-live-benchmark")
    src = cv2.VideoCapture(str(shared_data / "openfield-mouse" / "videos" / "m3v1mp4.mp4"))
    clip = tmp_path / "clip.mp4"
    out = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 480))
    for _ in range(60):
        ok, frame = src.read()
        assert ok
        out.write(frame)
    out.release()
    src.release()
    pt = find_model_file(DEFAULT_MODEL)
    proc = subprocess.run([exe, str(pt), str(clip), "pytorch", "cpu", "--save-poses",
                           "--save-dir", str(tmp_path / "bench"), "--no-sys-info"],
                          capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    h5 = list((tmp_path / "bench").glob("clip_poses_*.h5"))
    assert len(h5) == 1
    df = pd.read_hdf(h5[0])
    assert len(df) == 60
    names = " ".join(map(str, df.columns))
    for b in read_model_card(DEFAULT_MODEL).bodyparts:
        assert b in names
    assert list((tmp_path / "bench").glob("benchmark_*.pickle"))


@pytest.mark.slow
def test_analyze_real_video_frames_with_bundled_model(shared_data):
    """The bundled model on real (non-bird) footage, 350x370: runs, right shape, finite
    coordinates near the frame (a smoke test of the live path on real video)."""
    cap = cv2.VideoCapture(str(shared_data / "dog-walk" / "dog_clip.avi"))
    with load_runner(Path(DEFAULT_MODEL), load_config().model) as r:
        for _ in range(10):
            ok, frame = cap.read()
            assert ok
            pose = r.get_pose(frame)
            assert pose.shape == (1, 8, 3)
            assert np.all(np.isfinite(pose))
            assert np.all((pose[0, :, 2] >= 0) & (pose[0, :, 2] <= 1))
            # (location refinement may put a point a little outside the frame)
            h, w = frame.shape[:2]
            assert np.all(np.abs(pose[0, :, 0] - w / 2) < w) and \
                np.all(np.abs(pose[0, :, 1] - h / 2) < h)
    cap.release()


@pytest.mark.slow
def test_train_bundled_model_tool_runs_every_stage(tmp_path):
    """tools/train_bundled_model.py end to end on tiny data: stage 1 from random weights,
    two fine-tuning rounds (each from the previous round's export), held-out evaluation and
    the card; a rerun resumes, and a project rendered with other settings is refused."""
    tool = PROJECT_ROOT / "tools" / "train_bundled_model.py"
    work, out = tmp_path / "work", tmp_path / "model"
    args = [str(tool), "--work", str(work), "--out", str(out), "--frames", "24",
            "--heldout-frames", "12", "--epochs", "1", "--fine-tune", "24:5:1:1e-3",
            "--fine-tune", "16:6:1:1e-3:8"]
    python = str(PROJECT_ROOT / ".venv" / "bin" / "python")
    run = subprocess.run([python, *args], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "fine-tuning from " + str(work / "stage1-export") in run.stderr
    assert "fine-tuning from " + str(work / "finetune1-export") in run.stderr
    card = read_model_card(out)
    rounds = card.raw["fine_tunes"]
    assert [r["data"]["seed"] for r in rounds] == [5, 6]
    assert [r["data"]["frames_per_clip"] for r in rounds] == [12, 8]
    assert card.raw["training_data"]["seed"] == 2024
    assert "--fine-tune 16:6:1:1e-3:8" in card.raw["reproduce"]
    assert "--out" not in card.raw["reproduce"] and "--work" not in card.raw["reproduce"]
    assert set(card.metrics["heldout"]["per_bodypart"]) == set(card.bodyparts)
    assert (out / "heldout-metrics.csv").is_file() and (out / "heldout-gallery.jpg").is_file()
    with load_runner(out) as r:
        assert r.get_pose(np.zeros((480, 640, 3), np.uint8)).shape == (1, 8, 3)
    # the same command again: every stage is found done, nothing is re-rendered or retrained
    again = subprocess.run([python, *args], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "not re-rendered" in again.stderr and "training cspnext_s" not in again.stderr
    # another seed for an existing project folder: refused, the folder is kept
    bad = subprocess.run([python, *args[:-1], "16:7:1:1e-3:8"], capture_output=True,
                         text=True, timeout=600)
    assert bad.returncode != 0
    assert str(work / "finetune2-project") in bad.stderr and "'seed': (6, 7)" in bad.stderr
    assert (work / "finetune2-project" / "config.yaml").is_file()
    # one more round, at full resolution with half its clips at the image's edges,
    # continued from the exported model: only that round is rendered and trained; the card
    # keeps the earlier rounds and the new resize
    out2 = tmp_path / "model2"
    more = [*args, "--fine-tune", "12:8:1:1e-3:6:1.0:0.5"]
    more[more.index("--out") + 1] = str(out2)
    cont = subprocess.run([python, *more, "--continue-from", str(out)], capture_output=True,
                          text=True, timeout=600)
    assert cont.returncode == 0, cont.stderr[-3000:]
    assert "fine-tuning from " + str(out) in cont.stderr
    assert "stage 1: trained" not in cont.stderr
    card2 = read_model_card(out2)
    assert [r["data"]["seed"] for r in card2.raw["fine_tunes"]] == [5, 6, 8]
    assert card2.raw["fine_tunes"][2]["data"]["scale"] == 1.0
    assert card2.raw["fine_tunes"][2]["data"]["edges"] == 0.5
    assert "edges" not in card2.raw["fine_tunes"][1]["data"]
    assert card2.resize == 1.0 and card2.input_size == (640, 480)
    assert "--continue-from" not in card2.raw["reproduce"]
    assert "--fine-tune 12:8:1:1e-3:6:1.0:0.5" in card2.raw["reproduce"]
    # a card whose rounds are not this command's: refused, naming the round
    other = [*more[:-1], "12:8:1:1e-3:6:1.0:0.5"]
    other[other.index("24:5:1:1e-3")] = "24:9:1:1e-3"
    wrong = subprocess.run([python, *other, "--continue-from", str(out)],
                           capture_output=True, text=True, timeout=600)
    assert wrong.returncode != 0 and "round 1" in wrong.stderr
    # --reevaluate: the held-out metrics measured again as the default config runs the
    # model and rewritten in its card; weights, rounds and the rest of the card stay
    weights = (out2 / "gaitlive-corridor.pt").read_bytes()
    card2.raw["metrics"]["heldout"]["rmse_px"] = -1.0
    from gaitlive.offline.export import write_model_card

    write_model_card(out2, card2.raw)
    reev = subprocess.run([python, str(tool), "--work", str(work), "--heldout-frames", "12",
                           "--reevaluate", str(out2)], capture_output=True, text=True,
                          timeout=600)
    assert reev.returncode == 0, reev.stderr[-3000:]
    card3 = read_model_card(out2)
    assert card3.metrics["heldout"]["rmse_px"] >= 0
    assert "presence.bird_size" in card3.metrics["heldout"]["note"]
    assert card3.raw["fine_tunes"] == card2.raw["fine_tunes"]
    assert card3.metrics["internal_test_split"] == card2.metrics["internal_test_split"]
    assert (out2 / "gaitlive-corridor.pt").read_bytes() == weights


def test_bundled_model_on_a_larger_image_with_bird_size_scaling():
    """A rear pass rendered at 1280x960 (twice the pixels the model was trained on: near
    the camera the bird is 2-3 x its training size). With ``presence.bird_size`` the crop is
    scaled down (``PresenceResult.scale`` -> ``get_pose(scale=...)``) and the keypoints come
    back in frame pixels; without it the model misses far more keypoints."""
    import math

    from gaitlive.offline.evaluate import compute_pose_metrics
    from gaitlive.presence import bird_scale, crop_around
    from gaitlive.synth import simulate_pass
    from gaitlive.synth.render import render_frames

    cfg = load_config()
    p = cfg.presence
    assert p.bird_size > 0
    seq = simulate_pass(severity=1.0, view="rear", species="broiler", seed=424245,
                        width=1280, height=960)
    idx = np.linspace(seq.start_frame + 5, seq.start_frame + 60, 10).round().astype(int)
    gt, on, off, scales = [], [], [], []
    with load_runner(DEFAULT_MODEL, cfg.model) as r:
        for fr in render_frames(seq, idx.tolist()):
            truth = seq.poses[fr.index, 0, :, :2].astype(float)
            truth[~fr.visible[0]] = np.nan
            gt.append(truth)
            h, w = fr.image.shape[:2]
            size = float(np.nanmax(np.nanmax(truth, axis=0) - np.nanmin(truth, axis=0)))
            k = bird_scale(size, p.bird_size)
            scales.append(k)
            # the crop the gate gives it: margin, min_crop and crop_step scaled by 1 / k
            crop = crop_around(truth, round(p.margin / k),
                               tuple(math.ceil(v / k) for v in p.min_crop), w, h,
                               max(1, round(p.crop_step / k)))
            on.append(r.get_pose(fr.image, crop=crop, scale=k)[0])
            crop = crop_around(truth, p.margin, p.min_crop, w, h, p.crop_step)
            off.append(r.get_pose(fr.image, crop=crop)[0])
    assert min(scales) <= 0.6  # the bird is well over bird_size here
    m_on, m_off = (compute_pose_metrics(np.array(gt), np.array(x), cfg.profile.bodyparts,
                                        pcutoff=cfg.profile.pcutoff) for x in (on, off))
    assert m_on.pck >= 0.9 and m_on.detected >= 0.9, m_on.as_dict()
    assert m_on.pck >= m_off.pck + 0.1, (m_on.as_dict(), m_off.as_dict())

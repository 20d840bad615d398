"""Training and evaluation: metrics against analytic truth, bad projects, and real
DeepLabCut training (tiny generated project; the real openfield-mouse project in a slow
test)."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from gaitlive.cli import main
from gaitlive.offline.evaluate import (
    compare_pose_metrics,
    compute_body_length,
    compute_pose_metrics,
    parse_body_length,
    write_metrics_csv,
)
from gaitlive.offline.project import ProjectError, open_project, validate_labels
from gaitlive.testing import make_tiny_dlc_project

BODYPARTS = ["nose", "tail"]


def make_project(root: Path, n: int = 12) -> Path:
    return make_tiny_dlc_project(root, n=n, bodyparts=BODYPARTS)


# -- metrics against analytic truth ---------------------------------------------------------


def test_metrics_exact():
    gt = np.array([[[0, 0], [30, 40]],  # extent: diagonal 50
                   [[10, 10], [10, 110]]], float)  # extent 100
    pred = np.zeros((2, 2, 3))
    pred[..., :2] = gt
    pred[..., 2] = 0.9
    pred[0, 0, :2] += (3, 4)  # error 5 (= 0.1 * 50: inside PCK@0.1)
    pred[1, 1, :2] += (0, 12)  # error 12 (> 0.1 * 100)
    pred[1, 1, 2] = 0.2  # below pcutoff
    m = compute_pose_metrics(gt, pred, ["a", "b"], pcutoff=0.5, pck_fraction=0.1)
    assert m.rmse == pytest.approx(np.sqrt((25 + 144) / 4))
    assert m.rmse_pcutoff == pytest.approx(np.sqrt(25 / 3))
    assert m.pck == 0.75 and m.detected == 0.75
    assert m.per_bodypart["a"]["rmse"] == pytest.approx(np.sqrt(25 / 2))
    assert m.per_bodypart["b"]["pck"] == 0.5
    assert m.mean_body_length == 75.0
    # segments instead of extent: a-b length (50 and 100), same here
    m2 = compute_pose_metrics(gt, pred, ["a", "b"], body_length="a-b")
    assert m2.pck == m.pck


def test_metrics_missing_predictions_and_labels(tmp_path):
    gt = np.array([[[0, 0], [np.nan, np.nan]], [[0, 0], [4, 3]]], float)
    pred = np.array([[[1, 0, 0.9], [5, 5, 0.9]], [[np.nan, np.nan, 0], [4, 3, 0.9]]])
    m = compute_pose_metrics(gt, pred, ["a", "b"], pcutoff=0.5, pck_fraction=0.5)
    assert m.n_keypoints == 3  # the unlabelled keypoint does not count
    assert m.rmse == pytest.approx(np.sqrt(1 / 2))  # RMSE over predicted keypoints
    assert m.detected == pytest.approx(2 / 3)  # the missing prediction is not detected
    # frame 0 has one labelled keypoint: no body length, no PCK; frame 1: a missed, b hit
    assert m.per_bodypart["a"]["pck"] == 0.0 and m.per_bodypart["b"]["pck"] == 1.0
    assert m.pck == 0.5
    csv = write_metrics_csv(tmp_path / "m.csv", {"test": m}, ["a", "b"])
    df = pd.read_csv(csv)
    assert list(df.bodypart) == ["all", "a", "b"] and df.n.tolist() == [3, 2, 1]


def test_metrics_bootstrap_intervals(tmp_path):
    """Frame-bootstrap intervals: exact where every frame is alike, and wide where one
    gross miss carries the RMSE (the interval then spans with and without that frame)."""
    n = 40
    gt = np.zeros((n, 2, 2))
    gt[:, 1] = (30, 40)  # extent 50 px
    pred = np.zeros((n, 2, 3))
    pred[..., :2] = gt
    pred[..., 2] = 0.9
    pred[:, 0, 0] += 3.0  # every frame: error 3 on a, 0 on b
    m = compute_pose_metrics(gt, pred, ["a", "b"], pcutoff=0.5)
    assert m.ci95["all"]["rmse"] == pytest.approx((np.sqrt(4.5), np.sqrt(4.5)))
    assert m.ci95["a"]["pck"] == (1.0, 1.0) and m.ci95["b"]["rmse"] == (0.0, 0.0)
    pred[7, 1, 1] += 100.0  # one frame: b 100 px off
    m = compute_pose_metrics(gt, pred, ["a", "b"], pcutoff=0.5)
    lo, hi = m.ci95["all"]["rmse"]
    assert m.rmse == pytest.approx(np.sqrt((9 * n + 100 ** 2) / (2 * n)))
    assert lo == pytest.approx(np.sqrt(4.5))  # some resamples miss frame 7
    assert lo < m.rmse < hi
    assert m.ci95 == compute_pose_metrics(gt, pred, ["a", "b"], pcutoff=0.5).ci95  # seeded
    assert compute_pose_metrics(gt, pred, ["a", "b"], bootstrap=0).ci95 == {}
    assert m.as_dict()["ci95"]["rmse_px"] == [round(lo, 2), round(hi, 2)]
    df = pd.read_csv(write_metrics_csv(tmp_path / "m.csv", {"test": m}, ["a", "b"]))
    assert df.loc[0, "rmse_px_lo"] == pytest.approx(lo, abs=1e-3)
    assert df.loc[2, "pck"] == pytest.approx(1 - 1 / n, abs=1e-4)
    assert df.loc[2, "pck_lo"] < df.loc[2, "pck"] < df.loc[2, "pck_hi"] + 1e-9


def test_compare_two_models_paired():
    """B fixes A's 3 px error on bodypart a in every frame: B better on RMSE, exactly; the
    PCK (all hits for both) shows no difference; too few resamples is an error."""
    n = 30
    gt = np.zeros((n, 2, 2))
    gt[:, 1] = (30, 40)
    a = np.concatenate([gt, np.full((n, 2, 1), 0.9)], axis=-1)
    b = a.copy()
    a[:, 0, 0] += 3.0
    diffs = {(d.bodypart, d.metric): d for d in compare_pose_metrics(gt, a, b, ["a", "b"])}
    d = diffs[("a", "rmse")]
    assert (d.a, d.b, d.diff, d.low, d.high) == (3.0, 0.0, -3.0, -3.0, -3.0)
    assert d.verdict == "B better"
    assert diffs[("all", "rmse")].diff == pytest.approx(-np.sqrt(4.5))
    assert diffs[("all", "pck")].verdict == "no clear difference"
    assert diffs[("b", "rmse")].verdict == "no clear difference"
    back = {(d.bodypart, d.metric): d for d in compare_pose_metrics(gt, b, a, ["a", "b"])}
    assert back[("a", "rmse")].verdict == "A better"
    with pytest.raises(ValueError, match="at least 100 resamples"):
        compare_pose_metrics(gt, a, b, ["a", "b"], bootstrap=10)


def test_body_length_specs():
    gt = np.array([[[0, 0], [3, 4], [3, 10]]], float)
    assert compute_body_length(gt, None)[0] == pytest.approx(np.hypot(3, 10))
    segs = parse_body_length("a-b,b-c", ["a", "b", "c"])
    assert segs == [(0, 1), (1, 2)]
    assert compute_body_length(gt, segs)[0] == pytest.approx(5 + 6)
    with pytest.raises(ValueError, match="unknown bodypart 'x'"):
        parse_body_length("a-x", ["a", "b"])
    with pytest.raises(ValueError, match="expected 'extent' or segments"):
        parse_body_length("a", ["a", "b"])


# -- bad projects ---------------------------------------------------------------------------


def test_bad_projects(tmp_path, capsys):
    with pytest.raises(ProjectError, match="not a DeepLabCut project"):
        open_project(tmp_path / "none")
    proj = make_project(tmp_path / "p", n=4)
    info = validate_labels(open_project(proj))
    assert info.n_labelled == 4 and info.image_sizes == {(96, 64): 4}
    # placeholders were filled in
    cfg = yaml.safe_load((proj / "config.yaml").read_text())
    assert cfg["project_path"] == str(proj)
    assert list(cfg["video_sets"]) == [str(proj / "videos" / "clip.mp4")]

    # corrupt image
    bad = proj / "labeled-data" / "clip" / "img002.png"
    good = bad.read_bytes()
    bad.write_bytes(b"\x89PNG garbage")
    with pytest.raises(ProjectError, match="img002.png: corrupt or unreadable image"):
        validate_labels(open_project(proj))
    bad.write_bytes(good)

    # labels naming a bodypart the config does not list
    cfg["bodyparts"] = ["nose"]
    (proj / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ProjectError, match=r"bodyparts \['tail'\] that are not in"):
        validate_labels(open_project(proj))

    # no labels at all; through the CLI: exit 2 and a message naming the project
    empty = tmp_path / "empty"
    (empty / "labeled-data").mkdir(parents=True)
    cfg["bodyparts"] = BODYPARTS
    (empty / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", str(empty), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "gaitlive train: error:" in err and "no labels" in err and str(empty) in err
    assert main(["train", str(proj), "--epochs", "0"]) == 2
    assert "--epochs: expected an integer >= 1" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "none")]) == 2
    assert "not a DeepLabCut project" in capsys.readouterr().err


# -- real DeepLabCut training -------------------------------------------------------------------


def test_train_evaluate_export_tiny_project(tmp_path, capsys):
    """Real DLC training of a tiny net for 2 epochs, resume to 3, evaluate, export, load."""
    from gaitlive.pose import load_runner, read_model_card

    proj = make_project(tmp_path / "dots", n=12)
    args = ["train", str(proj), "--epochs", "2", "--batch-size", "4", "--no-pretrained",
            "--widen-factor", "0.125", "--heatmap-stride", "8", "--save-epochs", "1",
            "--eval-interval", "1", "--threads", "1"]
    assert main(args) == 0
    out = capsys.readouterr()
    assert "sbatch " in out.err and "--resume" in out.err
    train_dir = next(proj.glob("dlc-models-pytorch/iteration-0/*/train"))
    pc = yaml.safe_load((train_dir / "pytorch_config.yaml").read_text())
    assert pc["data"]["train"]["hflip"] is None
    assert pc["train_settings"]["weight_init"]["snapshot_path"].endswith("random-init.pt")
    assert pc["model"]["backbone"]["widen_factor"] == 0.125
    assert len(pc["model"]["heads"]["bodypart"]["heatmap_config"]["strides"]) == 2
    assert "trained 2 epochs" in out.out

    assert main(args[:3] + ["3"] + args[4:] + ["--resume"]) == 0
    assert "trained 3 epochs" in capsys.readouterr().out
    assert (train_dir / "snapshot-003.pt").is_file() or \
        (train_dir / "snapshot-best-003.pt").is_file()

    assert main(["evaluate", str(proj), "--out", str(tmp_path / "ev")]) == 0
    text = capsys.readouterr().out
    assert "train: 9 frames" in text and "test: 3 frames" in text
    df = pd.read_csv(tmp_path / "ev" / "metrics.csv")
    assert set(df.split) == {"train", "test"} and set(df.bodypart) == {"all", *BODYPARTS}
    assert (df.rmse_px >= 0).all()
    gallery = cv2.imread(str(tmp_path / "ev" / "gallery.png"))
    assert gallery is not None and gallery.shape[1] >= 320

    model = tmp_path / "models" / "dots"
    assert main(["export", str(proj), "--to", str(model), "--half",
                 "--metrics", str(tmp_path / "ev" / "metrics.csv")]) == 0
    card = read_model_card(model)
    assert card.bodyparts == tuple(BODYPARTS) and card.skeleton == (("nose", "tail"),)
    assert card.input_size == (96, 64) and card.raw["precision_stored"] == "FP16"
    assert card.metrics["test"]["all"]["n"] == 6.0
    with load_runner(model) as r:
        img = cv2.imread(str(proj / "labeled-data" / "clip" / "img000.png"))
        pose = r.get_pose(img)
    assert pose.shape == (1, 2, 3)
    # the exported model, run live, on the project's frames
    assert main(["evaluate", str(proj), "--model", str(model), "--out",
                 str(tmp_path / "ev2")]) == 0
    assert "heldout: 12 frames" in capsys.readouterr().out
    # ... and on crops around the labelled animal, as the live presence crop feeds it
    assert main(["evaluate", str(proj), "--model", str(model), "--crop-margin", "8",
                 "--crop-step", "32", "--out", str(tmp_path / "ev3"), "--no-gallery"]) == 0
    assert "heldout: 12 frames" in capsys.readouterr().out
    assert main(["evaluate", str(proj), "--model", str(model), "--crop-margin", "-1"]) == 2
    assert "crop_margin: expected a number of pixels >= 0, got -1" in capsys.readouterr().err
    assert main(["evaluate", str(proj), "--model", str(model), "--min-crop", "0", "64"]) == 2
    assert "--min-crop 0 64: expected two positive pixel sizes W H" in capsys.readouterr().err
    assert main(["evaluate", str(proj), "--model", str(model), "--crop-step", "32"]) == 2
    assert "--crop-step 32: expected a positive number of pixels, used with --crop-margin" \
        in capsys.readouterr().err
    # --bird-size: a bird larger than it (here every labelled animal) is scaled down
    assert main(["evaluate", str(proj), "--model", str(model), "--crop-margin", "8",
                 "--bird-size", "4", "--out", str(tmp_path / "ev4"), "--no-gallery"]) == 0
    assert "heldout: 12 frames" in capsys.readouterr().out
    assert main(["evaluate", str(proj), "--model", str(model), "--bird-size", "100"]) == 2
    assert "--bird-size 100: expected a number of pixels >= 0, used with --crop-margin" \
        in capsys.readouterr().err
    # --max-input-pixels: a crop larger than it runs scaled down
    assert main(["evaluate", str(proj), "--model", str(model), "--crop-margin", "8",
                 "--max-input-pixels", "500", "--out", str(tmp_path / "ev5"),
                 "--no-gallery"]) == 0
    assert "heldout: 12 frames" in capsys.readouterr().out
    assert main(["evaluate", str(proj), "--model", str(model), "--max-input-pixels", "-5",
                 "--crop-margin", "8"]) == 2
    assert "--max-input-pixels -5: expected a number of pixels >= 0, used with --crop-margin" \
        in capsys.readouterr().err
    # --compare: a second model on the same frames, paired (here the model itself: no
    # difference at all, and every interval is exactly 0)
    assert main(["evaluate", str(proj), "--model", str(model), "--compare", str(model),
                 "--out", str(tmp_path / "ev6"), "--no-gallery"]) == 0
    assert "B minus A, 95 % paired-bootstrap interval" in capsys.readouterr().out
    cmp = pd.read_csv(tmp_path / "ev6" / "compare.csv")
    assert set(cmp.verdict) == {"no clear difference"} and (cmp.b_minus_a.fillna(0) == 0).all()
    assert main(["evaluate", str(proj), "--compare", str(model)]) == 2
    assert "give the first with --model" in capsys.readouterr().err


@pytest.mark.slow
def test_openfield_mouse_train_evaluate_export_analyze(shared_data, tmp_path, capsys):
    """The real openfield-mouse project (someone else's labels) through the same commands;
    the exported model then analyses frames of the project's real video."""
    from gaitlive.pose import load_runner

    proj = tmp_path / "openfield"
    shutil.copytree(shared_data / "openfield-mouse", proj)
    assert main(["train", str(proj), "--epochs", "3", "--batch-size", "4", "--no-pretrained",
                 "--widen-factor", "0.125", "--heatmap-stride", "8", "--threads", "1",
                 "--eval-interval", "3", "--save-epochs", "3"]) == 0
    assert main(["evaluate", str(proj), "--out", str(tmp_path / "ev")]) == 0
    out = capsys.readouterr().out
    assert "train: 110 frames" in out and "test: 6 frames" in out
    df = pd.read_csv(tmp_path / "ev" / "metrics.csv")
    assert set(df.bodypart) == {"all", "snout", "leftear", "rightear", "tailbase"}
    rmse_test = float(df[(df.split == "test") & (df.bodypart == "all")].rmse_px.iloc[0])
    assert 0 <= rmse_test < 800  # recorded in docs/model.md; 3 CPU epochs do not learn much
    model = tmp_path / "of-model"
    assert main(["export", str(proj), "--to", str(model), "--half"]) == 0
    cap = cv2.VideoCapture(str(proj / "videos" / "m3v1mp4.mp4"))
    with load_runner(model) as r:
        for _ in range(5):
            ok, frame = cap.read()
            assert ok
            pose = r.get_pose(frame)
            assert pose.shape == (1, 4, 3)
            assert np.all((pose[0, :, 0] >= 0) & (pose[0, :, 0] < 640))
    cap.release()


def test_snapshot_and_sbatch_helpers(tmp_path):
    from gaitlive.offline.project import set_backbone_size
    from gaitlive.offline.train import TrainOptions, latest_snapshot, sbatch_command

    for name in ("snapshot-005.pt", "snapshot-best-012.pt", "snapshot-010.pt",
                 "snapshot-detector-020.pt", "random-init.pt"):
        (tmp_path / name).write_bytes(b"")
    path, epoch = latest_snapshot(tmp_path)
    assert (path.name, epoch) == ("snapshot-best-012.pt", 12)
    cmd = sbatch_command(Path("/data/proj"), TrainOptions(epochs=50, pretrained=False,
                                                          widen_factor=0.25, crop_size=(320, 240)))
    assert cmd.startswith("sbatch ") and "--gres=gpu:1" in cmd
    for part in ("gaitlive train /data/proj", "--epochs 50", "--device cuda", "--resume",
                 "--no-pretrained", "--widen-factor 0.25", "--crop-size 320x240"):
        assert part in cmd
    cfg = {"model": {"backbone": {"type": "ResNet"}, "backbone_output_channels": 2048,
                     "heads": {}}}
    with pytest.raises(ProjectError, match="need a CSPNeXt backbone"):
        set_backbone_size(cfg, widen_factor=0.5)
    with pytest.raises(ProjectError, match="heatmap_stride: expected 8 or 16"):
        set_backbone_size({"model": {"backbone_output_channels": 8, "backbone": {},
                                     "heads": {"b": {"heatmap_config": {
                                         "channels": [8, 2], "kernel_size": [3],
                                         "strides": [2]}}}}}, heatmap_stride=4)


def test_fine_tune_starts_from_an_exported_model(tmp_path, capsys):
    """--init-weights: real DLC training that starts from a DLC-Live export's weights
    (fp16 export, heads kept), the way a user fine-tunes the bundled model on own frames."""
    import torch

    from gaitlive.testing import make_tiny_pytorch_export

    proj = make_project(tmp_path / "dots", n=12)
    export = make_tiny_pytorch_export(tmp_path / "base", BODYPARTS, widen_factor=0.125,
                                      heatmap_stride=8, half=True, seed=3)
    args = ["train", str(proj), "--epochs", "1", "--batch-size", "4", "--no-pretrained",
            "--widen-factor", "0.125", "--heatmap-stride", "8", "--save-epochs", "1",
            "--eval-interval", "1", "--threads", "1", "--init-weights", str(export)]
    assert main(args) == 0
    capsys.readouterr()
    train_dir = next(proj.glob("dlc-models-pytorch/iteration-0/*/train"))
    pc = yaml.safe_load((train_dir / "pytorch_config.yaml").read_text())
    assert pc["train_settings"]["weight_init"]["snapshot_path"].endswith("random-init.pt")
    init = torch.load(train_dir / "init-weights.pt", map_location="cpu")["model"]
    pt = next(Path(export).glob("*.pt"))
    exported = torch.load(pt, map_location="cpu", weights_only=False)["pose"]
    assert init.keys() == exported.keys()
    k = next(k for k, v in exported.items() if v.is_floating_point() and v.numel() > 8)
    assert init[k].dtype == torch.float32
    assert torch.equal(init[k], exported[k].float())
    snap = next(p for p in (train_dir / "snapshot-001.pt", train_dir / "snapshot-best-001.pt")
                if p.is_file())
    trained = torch.load(snap, map_location="cpu", weights_only=False)["model"]
    rand = torch.load(train_dir / "random-init.pt", map_location="cpu")["model"]

    def dist(a, b):
        return sum(float((a[n].float() - b[n].float()).abs().sum()) for n in a
                   if a[n].is_floating_point())

    # training started from the exported weights, not from the random initialisation
    assert dist(trained, init) < 0.2 * dist(trained, rand)


def test_fine_tune_rejects_a_file_that_is_not_a_model(tmp_path):
    proj = make_project(tmp_path / "dots", n=12)
    bad = tmp_path / "weights.pt"
    bad.write_bytes(b"not a torch file")
    assert main(["train", str(proj), "--epochs", "1", "--no-pretrained",
                 "--init-weights", str(bad)]) == 2

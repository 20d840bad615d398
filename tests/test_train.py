"""Training and evaluation: metrics against analytic truth, bad projects, and real
DeepLabCut training (tiny generated project; the real openfield-mouse project in a slow
test)."""

from __future__ import annotations

import os
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
from gaitlive.offline.project import (
    ProjectError,
    ensure_dlc_config,
    open_project,
    validate_labels,
)
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
    text = (proj / "config.yaml").read_text()
    info = validate_labels(open_project(proj))
    assert info.n_labelled == 4 and info.image_sizes == {(96, 64): 4}
    assert (proj / "config.yaml").read_text() == text  # opening and validating: read only
    # DeepLabCut's placeholders are filled in by ensure_dlc_config
    assert ensure_dlc_config(info)
    cfg = yaml.safe_load((proj / "config.yaml").read_text())
    assert cfg["project_path"] == str(proj)
    assert cfg["video_sets"] == {str(proj / "videos" / "clip.mp4"): {"crop": "0, 96, 0, 64"}}
    assert ensure_dlc_config(open_project(proj)) == {}  # nothing missing: not written

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

    # a bodypart listed in config.yaml that the labels have no columns for (DeepLabCut
    # failed on it with a numpy concatenation error)
    cfg["bodyparts"] = [*BODYPARTS, "ear"]
    (proj / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ProjectError, match=r"no label file has columns for bodyparts "
                                           r"\['ear'\] that"):
        validate_labels(open_project(proj))
    cfg["bodyparts"] = BODYPARTS
    (proj / "config.yaml").write_text(yaml.safe_dump(cfg))
    # ... while a file lacking a column another file has is fine (DeepLabCut merges them)
    second = proj / "labeled-data" / "clip2"
    shutil.copytree(proj / "labeled-data" / "clip", second)
    h5_2 = next(second.glob("CollectedData_*.h5"))
    df2 = pd.read_hdf(h5_2)
    df2 = df2.drop(columns="tail", level="bodyparts")
    df2.index = pd.MultiIndex.from_tuples([("labeled-data", "clip2", t[-1]) for t in df2.index])
    df2.to_hdf(h5_2, key="df_with_missing")
    h5_2.with_suffix(".csv").unlink(missing_ok=True)
    assert validate_labels(open_project(proj)).n_labelled == 8
    shutil.rmtree(second)

    # labels only as CSV (DeepLabCut trains from the .h5: the folder was silently left out)
    h5 = next((proj / "labeled-data" / "clip").glob("CollectedData_*.h5"))
    kept = h5.read_bytes()
    h5.unlink()
    from gaitlive.offline.train import check_h5_labels

    with pytest.raises(ProjectError, match=r"\['clip'\] hold CollectedData_\w+\.csv but no "
                                           r"\.h5.*convertcsv2h5"):
        check_h5_labels(open_project(proj))
    # a corrupt .h5: one line, not HDF5's C back trace
    h5.write_bytes(b"not hdf5")
    with pytest.raises(ProjectError) as e:
        validate_labels(open_project(proj))
    assert str(e.value) == (f"{h5}: cannot read DeepLabCut labels (not a readable HDF5 file: "
                            f"truncated, or not HDF5)")
    h5.write_bytes(kept)

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
    assert "sbatch " in out.err and "--resume" not in out.err  # a fresh run: none
    train_dir = next(proj.glob("dlc-models-pytorch/iteration-0/*/train"))
    pc = yaml.safe_load((train_dir / "pytorch_config.yaml").read_text())
    assert pc["data"]["train"]["hflip"] is None
    assert pc["train_settings"]["weight_init"]["snapshot_path"].endswith("random-init.pt")
    assert pc["model"]["backbone"]["widen_factor"] == 0.125
    assert len(pc["model"]["heads"]["bodypart"]["heatmap_config"]["strides"]) == 2
    assert "trained 2 epochs" in out.out

    assert main(args[:3] + ["3"] + args[4:] + ["--resume"]) == 0
    out = capsys.readouterr()
    assert "trained 3 epochs" in out.out and "--resume" in _sbatch_argv(out.err)
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
    # metrics.csv says what it evaluated; the card says what was exported
    snap = df.snapshot.iloc[0]
    assert (df.shuffle == 1).all() and snap in {"snapshot-003.pt", "snapshot-best-003.pt"}
    assert card.raw["training"]["snapshot"] == snap
    # those metrics are refused for another snapshot, before any export work
    other = tmp_path / "models" / "other"
    assert main(["export", str(proj), "--to", str(other), "--snapshot", "0",
                 "--metrics", str(tmp_path / "ev" / "metrics.csv")]) == 2
    err = capsys.readouterr().err
    assert f"--metrics were computed on shuffle 1, snapshot {snap}, but this export is " \
        "shuffle 1, snapshot snapshot-001.pt" in err, err
    assert not other.exists()
    # ... and so are another project's metrics (other bodyparts), and metrics older than
    # the snapshot (a later run of the shuffle has snapshots of the same names)
    foreign = tmp_path / "ev" / "foreign.csv"
    df.assign(bodypart=df.bodypart.replace({"nose": "snout"})).to_csv(foreign, index=False)
    assert main(["export", str(proj), "--to", str(other), "--metrics", str(foreign)]) == 2
    err = capsys.readouterr().err
    assert f"--metrics {foreign}: rows for bodyparts ['snout'] that" in err, err
    snap_file = next(proj.glob(f"dlc-models-pytorch/*/*/train/{snap}"))
    kept = snap_file.read_bytes()
    snap_file.write_bytes(kept + b"a later run")  # same name, other weights
    assert main(["export", str(proj), "--to", str(other), "--metrics",
                 str(tmp_path / "ev" / "metrics.csv")]) == 2
    err = capsys.readouterr().err
    assert f"--metrics were computed on another {snap} (SHA-256 " in err, err
    assert "from a later training run of the shuffle" in err
    snap_file.write_bytes(kept)
    os.utime(snap_file)  # a copy newer than its metrics (cp -r) is still the same snapshot
    sha = pd.read_csv(tmp_path / "ev" / "metrics.csv", dtype=str).snapshot_sha256
    assert sha.nunique() == 1 and len(sha.iloc[0]) == 16
    assert main(["export", str(proj), "--to", str(other), "--metrics", str(tmp_path)]) == 2
    assert "is a folder; expected its metrics.csv" in capsys.readouterr().err
    assert not other.exists()
    with load_runner(model) as r:
        img = cv2.imread(str(proj / "labeled-data" / "clip" / "img000.png"))
        pose = r.get_pose(img)
    assert pose.shape == (1, 2, 3)
    # --compare with a model of other bodyparts: refused before the first model runs
    from gaitlive.testing import make_tiny_pytorch_export

    mouse = make_tiny_pytorch_export(tmp_path / "mouse", ["snout", "tailbase"])
    assert main(["evaluate", str(proj), "--model", str(model), "--compare", str(mouse),
                 "--out", str(tmp_path / "evc")]) == 2
    assert "bodyparts ['nose', 'tail'] are not predicted by" in capsys.readouterr().err
    assert not (tmp_path / "evc").exists()
    # the exported model, run live, on the project's frames
    assert main(["evaluate", str(proj), "--model", str(model), "--out",
                 str(tmp_path / "ev2")]) == 0
    assert "heldout: 12 frames" in capsys.readouterr().out
    # evaluated again into the same folder: the earlier results are kept in previous/
    first = (tmp_path / "ev2" / "metrics.csv").read_bytes()
    assert main(["evaluate", str(proj), "--model", str(model), "--pck", "0.2", "--out",
                 str(tmp_path / "ev2")]) == 0
    kept = list((tmp_path / "ev2" / "previous").glob("*/metrics.csv"))
    assert [k.read_bytes() for k in kept] == [first]
    assert (kept[0].parent / "gallery.png").is_file()
    assert (tmp_path / "ev2" / "metrics.csv").read_bytes() != first
    # ... and on crops around the labelled animal, as the live presence crop feeds it
    assert main(["evaluate", str(proj), "--model", str(model), "--crop-margin", "8",
                 "--crop-step", "32", "--out", str(tmp_path / "ev3"), "--no-gallery"]) == 0
    assert "heldout: 12 frames" in capsys.readouterr().out
    # --live: the same crops from a run config's presence section, exactly
    live_cfg = tmp_path / "live.yaml"
    live_cfg.write_text("presence:\n  margin: 8\n  crop_step: 32\n  min_crop: []\n"
                        "  bird_size: 0\n  max_input_pixels: 0\n")
    assert main(["evaluate", str(proj), "--model", str(model), "--live", "--config",
                 str(live_cfg), "--out", str(tmp_path / "ev3l"), "--no-gallery"]) == 0
    assert "crop margin 8, min none, step 32" in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "ev3l" / "metrics.csv").equals(
        pd.read_csv(tmp_path / "ev3" / "metrics.csv"))
    for bad, why in ((["--live", "--crop-margin", "8"], "--live takes --crop-margin from the "
                      "run config; give either --live or --crop-margin"),
                     (["--config", str(live_cfg)], "used with --live"),
                     (["--live", "--config", str(tmp_path / "none.yaml")], "none.yaml")):
        assert main(["evaluate", str(proj), "--model", str(model), *bad]) == 2, bad
        assert why in capsys.readouterr().err, bad
    assert not pd.read_csv(tmp_path / "ev2" / "metrics.csv").equals(
        pd.read_csv(tmp_path / "ev3" / "metrics.csv"))  # the crop matters here
    assert main(["evaluate", str(proj), "--live"]) == 2
    assert "give it with --model" in capsys.readouterr().err
    assert main(["evaluate", str(proj), "--model", str(model), "--crop-margin", "-1"]) == 2
    assert "--crop-margin -1: expected a number of pixels >= 0" in capsys.readouterr().err
    assert main(["evaluate", str(proj), "--crop-margin", "8"]) == 2  # was silently ignored
    assert "--crop-margin 8: only with --model (an exported model run on crops" in \
        capsys.readouterr().err
    assert main(["evaluate", str(proj), "--model", str(model), "--crop-margin", "8",
                 "--min-crop", "0", "64"]) == 2
    assert "--min-crop 0 64: expected two positive pixel sizes W H" in capsys.readouterr().err
    assert main(["evaluate", str(proj), "--model", str(model), "--crop-step", "32"]) == 2
    assert "--crop-step 32: only with --crop-margin (or --live)" in capsys.readouterr().err
    # --bird-size: a bird larger than it (here every labelled animal) is scaled down
    assert main(["evaluate", str(proj), "--model", str(model), "--crop-margin", "8",
                 "--bird-size", "4", "--out", str(tmp_path / "ev4"), "--no-gallery"]) == 0
    assert "heldout: 12 frames" in capsys.readouterr().out
    assert main(["evaluate", str(proj), "--model", str(model), "--bird-size", "100"]) == 2
    assert "--bird-size 100: only with --crop-margin (or --live)" in capsys.readouterr().err
    assert main(["evaluate", str(proj), "--model", str(model), "--crop-margin", "8",
                 "--bird-size", "-1"]) == 2
    assert "--bird-size -1: expected a number of pixels >= 0" in capsys.readouterr().err
    # --max-input-pixels: a crop larger than it runs scaled down
    assert main(["evaluate", str(proj), "--model", str(model), "--crop-margin", "8",
                 "--max-input-pixels", "500", "--out", str(tmp_path / "ev5"),
                 "--no-gallery"]) == 0
    assert "heldout: 12 frames" in capsys.readouterr().out
    assert main(["evaluate", str(proj), "--model", str(model), "--max-input-pixels", "-5",
                 "--crop-margin", "8"]) == 2
    assert "--max-input-pixels -5: expected a number of pixels >= 0" in capsys.readouterr().err
    # --compare: a second model on the same frames, paired (here the model itself: no
    # difference at all, and every interval is exactly 0)
    assert main(["evaluate", str(proj), "--model", str(model), "--compare", str(model),
                 "--out", str(tmp_path / "ev6"), "--no-gallery"]) == 0
    assert "B minus A, 95 % paired-bootstrap interval" in capsys.readouterr().out
    cmp = pd.read_csv(tmp_path / "ev6" / "compare.csv")
    assert set(cmp.verdict) == {"no clear difference"} and (cmp.b_minus_a.fillna(0) == 0).all()
    assert main(["evaluate", str(proj), "--compare", str(model)]) == 2
    assert "give the first with --model" in capsys.readouterr().err


def test_evaluate_refuses_bad_settings_before_any_work(tmp_path, capsys):
    """A bad --body-length (a bodypart the project lacks) or --resize is refused before
    DeepLabCut evaluates anything or a model runs: nothing is written."""
    from gaitlive.testing import make_tiny_pytorch_export

    proj = make_project(tmp_path / "dots", n=8)
    assert main(["train", str(proj), "--epochs", "1", "--batch-size", "4", "--no-pretrained",
                 "--widen-factor", "0.125", "--heatmap-stride", "8", "--save-epochs", "1",
                 "--eval-interval", "1", "--threads", "1"]) == 0
    capsys.readouterr()
    config = (proj / "config.yaml").read_bytes()
    for spec, why in (("head-tail", "unknown bodypart 'head'; expected one of ['nose', 'tail']"),
                      ("nose", "expected 'extent' or segments like 'a-b,c-d'")):
        assert main(["evaluate", str(proj), "--body-length", spec, "--out",
                     str(tmp_path / "ev")]) == 2
        err = capsys.readouterr().err
        assert f"gaitlive evaluate: error: --body-length: {why}" in err, err
    assert not (tmp_path / "ev").exists() and not any(proj.glob("evaluation-results*"))
    assert (proj / "config.yaml").read_bytes() == config
    model = make_tiny_pytorch_export(tmp_path / "model", BODYPARTS, heatmap_stride=8)
    assert main(["evaluate", str(proj), "--model", str(model), "--body-length", "head-tail",
                 "--out", str(tmp_path / "ev2")]) == 2
    assert "--body-length: unknown bodypart 'head'" in capsys.readouterr().err
    for bad in ("0", "-1", "nan"):
        assert main(["evaluate", str(proj), "--model", str(model), "--resize", bad,
                     "--out", str(tmp_path / "ev2")]) == 2
        assert f"--resize {bad}: expected a finite scale factor > 0" in capsys.readouterr().err
    assert not (tmp_path / "ev2").exists()


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
    for part in ("gaitlive train /data/proj", "--epochs 50", "--device cuda",
                 "--no-pretrained", "--widen-factor 0.25", "--crop-size 320x240"):
        assert part in cmd
    assert "--resume" not in cmd
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
    # ... and the exported model's card says which model it was fine-tuned from
    assert main(["export", str(proj), "--to", str(tmp_path / "tuned")]) == 0
    from gaitlive.pose import read_model_card

    card = read_model_card(tmp_path / "tuned")
    assert card.raw["training"]["init_weights"] == str(pt.resolve())  # its weights file


def test_fine_tune_rejects_a_file_that_is_not_a_model(tmp_path, capsys):
    """One line naming the file, before any training dataset or model folder is made."""
    proj = make_project(tmp_path / "dots", n=12)
    before = sorted(p.relative_to(proj) for p in proj.rglob("*"))
    bad = tmp_path / "weights.pt"
    bad.write_bytes(b"not a torch file")
    assert main(["train", str(proj), "--epochs", "1", "--no-pretrained",
                 "--init-weights", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"gaitlive train: error: {bad}: --init-weights: not a PyTorch model file" in err
    assert "Traceback" not in err
    assert sorted(p.relative_to(proj) for p in proj.rglob("*")) == before


# -- repeated runs, fine-tuning architecture, config.yaml, the sbatch line -----------------

TINY = ["--batch-size", "4", "--no-pretrained", "--widen-factor", "0.125", "--heatmap-stride",
        "8", "--save-epochs", "1", "--eval-interval", "1", "--threads", "1"]


def _sbatch_argv(err: str) -> list[str]:
    """The ``gaitlive train`` argv inside the printed ``sbatch --wrap=...`` line."""
    import shlex

    line = next(ln.strip() for ln in err.splitlines() if ln.strip().startswith("sbatch "))
    wrap = next(a for a in shlex.split(line) if a.startswith("--wrap="))[len("--wrap="):]
    argv = shlex.split(wrap)
    assert argv[:2] == ["gaitlive", "train"]
    return argv[1:]


def _snapshots(train_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(train_dir.glob("snapshot*.pt"))}


def test_fresh_run_moves_the_earlier_run_aside(tmp_path, capsys):
    """Training again without --resume: the earlier run's snapshots and log move, byte for
    byte, to a dated folder, the new run starts at epoch 0 and a later --resume continues
    the new run; a new width remakes random-init.pt; --resume with another width than the
    snapshot's is a one-line error."""
    import torch

    proj = make_project(tmp_path / "dots", n=12)
    assert main(["train", str(proj), "--epochs", "1", *TINY]) == 0
    assert main(["train", str(proj), "--epochs", "2", *TINY, "--resume"]) == 0
    capsys.readouterr()
    train_dir = next(proj.glob("dlc-models-pytorch/iteration-0/*/train"))
    first_run = _snapshots(train_dir)
    assert max(first_run) in ("snapshot-best-002.pt", "snapshot-002.pt")

    assert main(["train", str(proj), "--epochs", "1", *TINY]) == 0
    out = capsys.readouterr()
    assert "trained 1 epochs" in out.out and "earlier run" in out.out
    (moved,) = train_dir.glob("previous-*")
    assert _snapshots(moved) == first_run  # nothing renamed over, nothing lost
    assert (moved / "learning_stats.csv").is_file() and (moved / "pytorch_config.yaml").is_file()
    assert set(_snapshots(train_dir)) <= {"snapshot-001.pt", "snapshot-best-001.pt"}
    assert main(["train", str(proj), "--epochs", "2", *TINY, "--resume"]) == 0
    assert "trained 2 epochs" in capsys.readouterr().out
    assert _snapshots(moved) == first_run

    # another width, same shuffle: the random initialisation is made for it again
    wide = [a if a != "0.125" else "0.25" for a in TINY]
    assert main(["train", str(proj), "--epochs", "1", *wide]) == 0
    capsys.readouterr()
    assert len(list(train_dir.glob("previous-*"))) == 2
    rand = torch.load(train_dir / "random-init.pt", map_location="cpu")["model"]
    snap = next(iter(sorted(train_dir.glob("snapshot*.pt"))))
    trained = torch.load(snap, map_location="cpu", weights_only=False)["model"]
    assert {k: v.shape for k, v in rand.items()} == {k: v.shape for k, v in trained.items()}
    # resuming it as the narrow net: one line naming the snapshot, nothing changed
    before = _snapshots(train_dir)
    assert main(["train", str(proj), "--epochs", "2", *TINY, "--resume"]) == 2
    err = capsys.readouterr().err
    assert "--resume: the snapshot does not fit" in err and snap.name in err
    assert len(err.strip().splitlines()) == 1
    assert _snapshots(train_dir) == before


def test_fine_tune_takes_the_architecture_from_the_model(tmp_path, capsys):
    """--init-weights without --widen-factor/--heatmap-stride trains the model's
    architecture (as the README's fine-tune command needs); a conflicting value and other
    bodyparts are one-line errors, before anything is written."""
    from gaitlive.testing import make_tiny_pytorch_export

    proj = make_project(tmp_path / "dots", n=12)
    config_text = (proj / "config.yaml").read_text()
    export = make_tiny_pytorch_export(tmp_path / "base", BODYPARTS, widen_factor=0.125,
                                      heatmap_stride=8, half=True, seed=3)
    other = make_tiny_pytorch_export(tmp_path / "other", ["nose", "tail", "foot"],
                                     widen_factor=0.125, heatmap_stride=8)
    base = ["train", str(proj), "--epochs", "1", "--batch-size", "4", "--threads", "1",
            "--save-epochs", "1", "--eval-interval", "1"]

    assert main([*base, "--init-weights", str(other)]) == 2
    err = capsys.readouterr().err
    assert "--init-weights" in err and "['nose', 'tail', 'foot']" in err
    assert "['nose', 'tail']" in err and len(err.strip().splitlines()) == 1
    assert main([*base, "--init-weights", str(export), "--heatmap-stride", "16"]) == 2
    err = capsys.readouterr().err
    assert "--init-weights" in err and "--heatmap-stride 8" in err
    assert "--heatmap-stride 16" in err and len(err.strip().splitlines()) == 1
    assert (proj / "config.yaml").read_text() == config_text
    assert not (proj / "dlc-models-pytorch").exists()

    assert main([*base, "--init-weights", str(export)]) == 0
    err = capsys.readouterr().err
    train_dir = next(proj.glob("dlc-models-pytorch/iteration-0/*/train"))
    pc = yaml.safe_load((train_dir / "pytorch_config.yaml").read_text())
    assert pc["model"]["backbone"]["widen_factor"] == 0.125
    assert len(pc["model"]["heads"]["bodypart"]["heatmap_config"]["strides"]) == 2
    argv = _sbatch_argv(err)
    assert "--widen-factor" in argv and "--heatmap-stride" in argv
    assert argv[argv.index("--init-weights") + 1] == str(export.resolve())


def test_config_yaml_is_kept(tmp_path, capsys):
    """evaluate/export/train that fail write nothing; training adds only what DeepLabCut
    needs: the user's entries (an unmounted video path) and comments stay; a new entry gets
    its video's real size."""
    proj = make_project(tmp_path / "dots", n=12)
    cfg_path = proj / "config.yaml"
    text = cfg_path.read_text()
    start = text.index("video_sets:")
    end = text.index("bodyparts:")
    text = ("# barn 3 project\n" + text[:start] + "# cameras on the NAS\nvideo_sets:\n"
            "  /mnt/nas/barn/clip.mp4:\n    crop: 0, 1920, 0, 1080  # full HD\n" + text[end:])
    cfg_path.write_text(text)
    assert main(["evaluate", str(proj)]) == 2
    assert main(["export", str(proj), "--to", str(tmp_path / "m")]) == 2
    assert main(["train", str(proj), "--epochs", "1", "--resume"]) == 2
    capsys.readouterr()
    assert cfg_path.read_text() == text

    assert main(["train", str(proj), "--epochs", "1", *TINY]) == 0
    capsys.readouterr()
    new = cfg_path.read_text()
    assert new == text.replace("WILL BE AUTOMATICALLY UPDATED", str(proj))  # project_path only
    assert main(["evaluate", str(proj), "--out", str(tmp_path / "ev"), "--no-gallery"]) == 0
    assert "train: 9 frames" in capsys.readouterr().out  # DeepLabCut found the labels
    assert cfg_path.read_text() == new

    # a labelled folder no entry names: added with its frames' size, not another entry's
    text = new.replace("/mnt/nas/barn/clip.mp4", "/mnt/nas/barn/cam9.mp4")
    cfg_path.write_text(text)
    added = ensure_dlc_config(open_project(proj))
    assert added == {"video_sets": {str(proj / "videos" / "clip.mp4"): {"crop": "0, 96, 0, 64"}}}
    cfg = yaml.safe_load(cfg_path.read_text())
    assert cfg["video_sets"] == {"/mnt/nas/barn/cam9.mp4": {"crop": "0, 1920, 0, 1080"},
                                 str(proj / "videos" / "clip.mp4"): {"crop": "0, 96, 0, 64"}}
    assert "# full HD" in cfg_path.read_text() and "# barn 3 project" in cfg_path.read_text()

    # a project moved elsewhere: evaluate and export set its path, comments kept
    moved = tmp_path / "moved" / "dots"
    shutil.move(proj, moved)
    assert main(["evaluate", str(moved), "--out", str(tmp_path / "ev2"), "--no-gallery"]) == 0
    assert "train: 9 frames" in capsys.readouterr().out
    text = (moved / "config.yaml").read_text()
    assert "# full HD" in text and "# barn 3 project" in text and "# cameras on the NAS" in text
    assert yaml.safe_load(text)["project_path"] == str(moved)
    assert main(["export", str(moved), "--to", str(tmp_path / "m")]) == 0
    assert (moved / "config.yaml").read_text() == text


def test_sbatch_line_reproduces_the_options():
    """The printed cluster command, parsed back by the CLI, gives the run's options (only
    where it runs differs: cuda, 6 loader processes); --resume only for a resumed run."""
    import shlex

    from gaitlive.cli import build_parser
    from gaitlive.commands.train import options_from_args
    from gaitlive.offline.train import TrainOptions, sbatch_command, sbatch_unreproduced

    opts = TrainOptions(net="cspnext_m", epochs=30, batch_size=6, device="cpu", pretrained=False,
                        shuffle=2, resume=False, widen_factor=0.25, deepen_factor=0.33,
                        heatmap_stride=8, lr=0.0005, seed=7, save_epochs=3, eval_interval=5,
                        workers=0, crop_size=(320, 240), color=False, threads=1,
                        init_weights="/models/gaitlive-corridor")
    for resume in (False, True):
        o = TrainOptions(**{**vars(opts), "resume": resume})
        line = sbatch_command(Path("/data/my proj"), o)
        wrap = next(a for a in shlex.split(line) if a.startswith("--wrap="))[len("--wrap="):]
        args = build_parser().parse_args(shlex.split(wrap)[1:])
        assert args.project == "/data/my proj"
        assert options_from_args(args) == TrainOptions(**{**vars(o), "device": "cuda",
                                                          "workers": 6})
        assert ("--resume" in shlex.split(wrap)) is resume
    assert sbatch_unreproduced(opts) == []
    assert sbatch_unreproduced(TrainOptions(rotation=5.0, extra={"a.b": 1})) == [
        "rotation", "extra"]


@pytest.mark.parametrize(("args", "why"), [
    (["--widen-factor", "-1"], "--widen-factor: expected a finite number > 0, got -1.0"),
    (["--deepen-factor", "0"], "--deepen-factor: expected a finite number > 0, got 0.0"),
    (["--lr", "nan"], "--lr: expected a finite number > 0, got nan"),
    (["--save-epochs", "0"], "--save-epochs: expected an integer >= 1, got 0"),
    (["--workers", "-1"], "--workers: expected an integer >= 0, got -1"),
    (["--seed", "-1"], "--seed: expected a random seed from 0 to 4294967295, got -1"),
    (["--crop-size", "8x8"], "--crop-size: expected WIDTHxHEIGHT like 320x240, at least "
                             "32x32, got '8x8'")])
def test_bad_training_options_are_refused_before_any_work(tmp_path, capsys, args, why):
    proj = make_project(tmp_path / "p", n=4)
    before = sorted(p.relative_to(proj) for p in proj.rglob("*"))
    assert main(["train", str(proj), "--epochs", "1", *args]) == 2
    assert f"gaitlive train: error: {why}" in capsys.readouterr().err
    assert sorted(p.relative_to(proj) for p in proj.rglob("*")) == before  # nothing written


# -- options checked before any work: --device, --net, --resume, evaluate --out ----------


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _trained(tmp_path: Path, capsys) -> tuple[Path, Path]:
    proj = make_project(tmp_path / "dots", n=8)
    assert main(["train", str(proj), "--epochs", "1", *TINY]) == 0
    capsys.readouterr()
    return proj, next(proj.glob("dlc-models-pytorch/iteration-0/*/train"))


def test_bad_device_or_net_leaves_a_trained_project_as_it_was(tmp_path, capsys):
    """On a trained project, a --device that is not a torch device or not on this machine
    (cuda:99: no machine has it) or a --net DeepLabCut does not know is a one-line error
    before anything happens: the earlier run is not moved aside."""
    proj, train_dir = _trained(tmp_path, capsys)
    before = _tree(proj)
    bad_args = [(["--device", "gpu"], "--device gpu: expected a torch device: auto, cpu, "
                                      "cuda, cuda:N or mps"),
                (["--device", "cuda:99"], "--device cuda:99: "),
                (["--net", "cspnext_ss"], "--net cspnext_ss: not a DeepLabCut net type for "
                                          "the PyTorch engine (did you mean cspnext_s?)")]
    if not __import__("torch").cuda.is_available():
        bad_args.append((["--device", "cuda"], "--device cuda: CUDA is not available here"))
    for bad, why in bad_args:
        assert main(["train", str(proj), "--epochs", "1", *TINY, *bad]) == 2
        err = capsys.readouterr().err
        assert f"gaitlive train: error: {why}" in err, err
        assert len(err.strip().splitlines()) == 1
        assert _tree(proj) == before and not list(train_dir.glob("previous-*"))


def test_train_refusals_on_a_trained_shuffle_move_nothing(tmp_path, capsys, monkeypatch):
    """Found by a CLI walkthrough: each of these used to move the earlier run aside first
    (leaving the shuffle without a snapshot to evaluate or export) and then fail, run out
    of memory, or do something else than asked."""
    proj, train_dir = _trained(tmp_path, capsys)
    before = _tree(proj)
    for args, why in (
            (["--epochs", "1", "--crop-size", "9999x9999"],
             "--crop-size 9999x9999: larger than the labelled images of"),  # 24 GB, killed
            (["--epochs", "1", "--pretrained"], None),  # offline: no ImageNet weights
            (["--epochs", "2", "--resume", "--net", "resnet_50"],  # was ignored
             "--resume --net resnet_50: shuffle 1 trains cspnext_s"),
            (["--epochs", "1", "--resume"],  # was a silent no-op that rewrote the config
             "has already trained 1 epochs; --epochs is the total, expected more than 1")):
        if why is None:  # as on an offline machine, whatever this one's network
            import gaitlive.offline.train as train_mod

            monkeypatch.setattr(train_mod, "hub_reachable", lambda *a, **k: False)
            for var in ("HF_HUB_OFFLINE", "HTTPS_PROXY", "https_proxy", "HF_ENDPOINT"):
                monkeypatch.delenv(var, raising=False)
            why = "--pretrained: the DeepLabCut model hub (huggingface.co) cannot be reached"
        tiny = [a for a in TINY if a != "--no-pretrained"] if "--pretrained" in args else TINY
        assert main(["train", str(proj), *tiny, *args]) == 2, args
        err = capsys.readouterr().err
        assert why in err and len(err.strip().splitlines()) == 1, err
        assert _tree(proj) == before and not list(train_dir.glob("previous-*")), args


def test_a_run_that_fails_before_its_first_snapshot_gives_the_earlier_run_back(tmp_path,
                                                                                capsys):
    """DeepLabCut refuses the model when training starts (here an unknown backbone): the
    earlier run, moved aside for the new one, is moved back with its configuration."""
    import dataclasses

    from gaitlive.offline.train import TrainOptions, train_project
    from gaitlive.pose import read_model_card

    proj, train_dir = _trained(tmp_path, capsys)
    snaps = _snapshots(train_dir)
    config = (train_dir / "pytorch_config.yaml").read_bytes()
    stats = (train_dir / "learning_stats.csv").read_bytes()
    opts = TrainOptions(epochs=1, threads=1, widen_factor=0.125, pretrained=False,
                        batch_size=2, heatmap_stride=8, progress=False,
                        extra={"model.backbone.type": "NoSuchBackbone"})
    with pytest.raises(KeyError, match="NoSuchBackbone"):
        train_project(proj, opts)
    assert _snapshots(train_dir) == snaps and snaps
    assert (train_dir / "pytorch_config.yaml").read_bytes() == config
    assert (train_dir / "learning_stats.csv").read_bytes() == stats
    assert not list(train_dir.glob("previous-*"))
    # a failed fine-tune: its record of the weights it started from goes to failed-*, so
    # the restored (randomly initialised) run's card does not name them
    assert main(["export", str(proj), "--to", str(tmp_path / "m")]) == 0
    with pytest.raises(KeyError, match="NoSuchBackbone"):
        train_project(proj, dataclasses.replace(opts, init_weights=str(tmp_path / "m")))
    assert _snapshots(train_dir) == snaps
    assert not (train_dir / "init-weights.json").exists()
    failed = list(train_dir.glob("failed-*"))
    assert len(failed) == 1 and (failed[0] / "init-weights.json").is_file()
    assert main(["export", str(proj), "--to", str(tmp_path / "m2")]) == 0
    assert "init_weights" not in read_model_card(tmp_path / "m2").raw["training"]


def test_evaluate_without_snapshots_points_at_the_earlier_run(tmp_path, capsys):
    proj, train_dir = _trained(tmp_path, capsys)
    aside = train_dir / "previous-20261207-120000"
    aside.mkdir()
    for snap in train_dir.glob("snapshot*.pt"):
        snap.rename(aside / snap.name)
    assert main(["evaluate", str(proj)]) == 2
    err = capsys.readouterr().err
    assert f"{train_dir}: no snapshots; train it ('gaitlive train {proj}'); an earlier " \
        f"run is in {aside} (move all its files, pytorch_config.yaml included, back into " \
        f"train/ to use it)" in err, err


def test_resume_without_a_snapshot_is_an_error(tmp_path, capsys):
    proj, train_dir = _trained(tmp_path, capsys)
    for snap in train_dir.glob("snapshot*.pt"):
        snap.unlink()
    before = _tree(proj)
    assert main(["train", str(proj), "--epochs", "2", *TINY, "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"gaitlive train: error: --resume: no snapshot in {train_dir} to resume from; run " \
        "without --resume to start training" in err, err
    assert _tree(proj) == before and not any(train_dir.glob("snapshot*.pt"))


def test_resume_after_a_start_killed_before_its_first_snapshot(tmp_path, capsys, caplog):
    """A fresh start moves the earlier run aside and is SIGKILLed before its first snapshot
    (nothing of it can move the run back). ``--resume`` then continues that earlier run: a
    refused --resume moves nothing, an accepted one moves it back (the killed start's files
    to failed-*) and trains on from its last epoch."""
    import signal
    import subprocess
    import sys
    import time

    proj, train_dir = _trained(tmp_path, capsys)
    snaps = _snapshots(train_dir)
    assert snaps
    code = ("import sys; from gaitlive.cli import main; "
            "sys.exit(main(['train', sys.argv[1], '--epochs', '3', *sys.argv[2:]]))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(proj), *TINY],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(train_dir.glob("previous-*")) and proc.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    (aside,) = train_dir.glob("previous-*")
    assert not any(train_dir.glob("snapshot*.pt")), "killed too late: it saved a snapshot"
    assert _snapshots(aside) == snaps
    # refused (--epochs not above the epoch trained): one line, nothing moved
    before = _tree(proj)
    assert main(["train", str(proj), "--epochs", "1", *TINY, "--resume"]) == 2
    err = capsys.readouterr().err
    assert "has already trained 1 epochs" in err and aside.name in err, err
    assert _tree(proj) == before
    # accepted: the earlier run is back and goes on to epoch 2
    caplog.clear()
    assert main(["train", str(proj), "--epochs", "2", *TINY, "--resume"]) == 0
    out = capsys.readouterr()
    assert "trained 2 epochs" in out.out, out.out
    assert "resuming that run" in caplog.text and str(aside) in caplog.text, caplog.text
    assert not aside.exists() and not list(train_dir.glob("previous-*"))
    assert "training cspnext_s for 1 epochs" in caplog.text  # epoch 2 only: resumed
    assert "snapshot-best-002.pt" in _snapshots(train_dir)


def test_evaluate_checks_out_and_device_first_and_runs_a_model_on_the_device(tmp_path, capsys):
    """evaluate: --out a file (or under one) and a --device that is not a device are
    one-line errors before any evaluation; with --model the --device is used (not silently
    the CPU): cuda:99 is refused, cpu runs."""
    proj, _ = _trained(tmp_path, capsys)
    before = _tree(proj)
    (tmp_path / "afile").write_text("x")
    for out in (tmp_path / "afile", tmp_path / "afile" / "ev"):
        assert main(["evaluate", str(proj), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"gaitlive evaluate: error: --out {out}: {tmp_path / 'afile'} is a file, not " \
            "a folder" in err, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["evaluate", str(proj), "--device", "gpu", "--out", str(tmp_path / "ev")]) == 2
    assert "gaitlive evaluate: error: --device gpu: expected a torch device" \
        in capsys.readouterr().err
    assert not (tmp_path / "ev").exists() and _tree(proj) == before
    assert not any(proj.glob("evaluation-results*"))
    model = tmp_path / "model"
    assert main(["export", str(proj), "--to", str(model)]) == 0
    capsys.readouterr()
    for dev in ("gpu", "cuda:99"):
        assert main(["evaluate", str(proj), "--model", str(model), "--device", dev,
                     "--out", str(tmp_path / "ev")]) == 2
        assert f"gaitlive evaluate: error: --device {dev}: " in capsys.readouterr().err
    assert main(["evaluate", str(proj), "--model", str(model), "--out", str(tmp_path / "afile"),
                 "--device", "cpu"]) == 2
    assert "--out" in capsys.readouterr().err
    assert not (tmp_path / "ev").exists()
    assert main(["evaluate", str(proj), "--model", str(model), "--device", "cpu", "--out",
                 str(tmp_path / "ev"), "--no-gallery"]) == 0
    assert "heldout: 8 frames" in capsys.readouterr().out


def test_train_a_file_that_is_not_a_project_and_evaluate_help(tmp_path, capsys):
    notes = tmp_path / "f.txt"
    notes.write_text("some notes\n")
    assert main(["train", str(notes), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert f"gaitlive train: error: {notes}: not a DeepLabCut project; expected a project " \
        "folder with config.yaml, or its config.yaml" in err, err
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "output folder for metrics.csv and gallery.png (default: the shuffle's DeepLabCut " \
        "evaluation folder" in out and "with --model: MODEL/evaluation)" in out

"""The pose runner: real dlclive on real (tiny) PyTorch and TensorFlow exports."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from gaitlive.config import ModelSettings
from gaitlive.pose import (
    ModelError,
    compute_dynamic_crop,
    detect_engine,
    load_runner,
    read_model_card,
)
from gaitlive.testing import POULTRY_BODYPARTS, make_tiny_pytorch_export, make_tiny_tf_export


@pytest.fixture(scope="module")
def pt_model(tmp_path_factory) -> Path:
    return make_tiny_pytorch_export(tmp_path_factory.mktemp("pt") / "tiny", POULTRY_BODYPARTS,
                                    skeleton=[("head", "neck")], seed=3)


@pytest.fixture(scope="module")
def tf_model(tmp_path_factory) -> Path:
    return make_tiny_tf_export(tmp_path_factory.mktemp("tf") / "tiny", POULTRY_BODYPARTS,
                               stride=8)


def _frame(seed: int = 0, h: int = 240, w: int = 320) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (0, 0), 3)
    cv2.circle(img, (w // 3, h // 2), 25, (40, 200, 230), -1)
    return img


def _blocks(h: int = 240, w: int = 320) -> tuple[np.ndarray, dict[int, tuple[float, float]]]:
    """Black BGR image with one bright 8x8 block per colour channel, aligned to the 8 px
    grid; returns the image and, per RGB channel, the block's cell centre (the analytic
    answer of the tiny TF model)."""
    img = np.zeros((h, w, 3), np.uint8)
    cells = {0: (10, 5), 1: (3, 20), 2: (30, 12)}  # rgb channel -> (col, row)
    for rgb, (cx, cy) in cells.items():
        img[cy * 8:(cy + 1) * 8, cx * 8:(cx + 1) * 8, 2 - rgb] = 255  # BGR order
    return img, {c: (cx * 8 + 4.0, cy * 8 + 4.0) for c, (cx, cy) in cells.items()}


# -- PyTorch ---------------------------------------------------------------------------


def test_pytorch_export_loads_and_predicts_full_frame(pt_model):
    assert detect_engine(pt_model) == "pytorch"
    r = load_runner(pt_model, ModelSettings(warmup_frames=1))
    try:
        assert r.engine == "pytorch" and r.device == "cpu"
        assert r.bodyparts == POULTRY_BODYPARTS
        img = _frame()
        first = r.init(img)
        pose = r.get_pose(img)
        assert pose.shape == (1, 8, 3) and pose.dtype == np.float32
        np.testing.assert_allclose(pose, first, atol=1e-4)  # deterministic
        assert np.all((pose[..., 0] >= 0) & (pose[..., 0] < 320))
        assert np.all((pose[..., 1] >= 0) & (pose[..., 1] < 240))
        st = r.stats
        assert st["frames"] == 1 and st["mean_ms"] > 0 and st["fps"] > 0
    finally:
        r.close()
    with pytest.raises(RuntimeError, match="closed"):
        r.get_pose(img)


def test_crop_returns_full_frame_coordinates(pt_model):
    img = _frame(1, 480, 640)
    crop = (200, 456, 96, 352)  # x1, x2, y1, y2
    with load_runner(pt_model, ModelSettings(warmup_frames=0)) as r:
        on_crop = r.get_pose(img, crop=crop)
        assert r.last_crop == crop
        sub = np.ascontiguousarray(img[96:352, 200:456])
        direct = r.get_pose(sub)
    expected = direct.copy()
    expected[..., 0] += 200
    expected[..., 1] += 96
    np.testing.assert_allclose(on_crop, expected, atol=1e-3)
    # static crop from the settings: the same
    with load_runner(pt_model, ModelSettings(warmup_frames=0, cropping=crop)) as r:
        np.testing.assert_allclose(r.get_pose(img), expected, atol=1e-3)


def test_resize_maps_back_to_full_frame(pt_model):
    img = _frame(2, 480, 640)
    with load_runner(pt_model, ModelSettings(warmup_frames=0, resize=0.5)) as r:
        half = r.get_pose(img)
    small = cv2.resize(img, (320, 240))
    with load_runner(pt_model, ModelSettings(warmup_frames=0)) as r:
        direct = r.get_pose(small)
    np.testing.assert_allclose(half[..., :2], direct[..., :2] * 2, atol=1e-3)
    np.testing.assert_allclose(half[..., 2], direct[..., 2], atol=1e-5)


def test_dlclive_dynamic_cropper_fails_and_ours_works(pt_model):
    """dlclive 1.1.0's PyTorch DynamicCropper gets an unbatched CHW tensor and raises; our
    runner crops the frame itself around the last pose."""
    from dlclive import DLCLive

    img = _frame(3, 480, 640)
    pt = next(pt_model.glob("*.pt"))
    live = DLCLive(str(pt), model_type="pytorch", device="cpu",
                   top_down_dynamic={"type": "DynamicCropper", "threshold": 0.0, "margin": 10})
    with pytest.raises(RuntimeError, match="batch size 1"):
        live.init_inference(img)

    settings = ModelSettings(warmup_frames=0, dynamic_crop=True, dynamic_crop_threshold=0.0,
                             dynamic_crop_margin=30)
    with load_runner(pt_model, settings) as r, \
            load_runner(pt_model, ModelSettings(warmup_frames=0)) as plain:
        p0 = r.get_pose(img)
        assert r.last_crop is None  # first frame: whole image
        win = compute_dynamic_crop(p0, img.shape[:2], 0.0, 30)
        assert win is not None
        x1, x2, y1, y2 = win
        assert x1 == max(0, int(np.floor(p0[0, :, 0].min())) - 30)
        assert x2 == min(640, int(np.ceil(p0[0, :, 0].max())) + 31)
        p1 = r.get_pose(img)
        assert r.last_crop == win
        expected = plain.get_pose(np.ascontiguousarray(img[y1:y2, x1:x2]))
        expected[..., 0] += x1
        expected[..., 1] += y1
        np.testing.assert_allclose(p1, expected, atol=1e-3)
        # a per-call crop overrides the dynamic window; reset() forgets it
        r.get_pose(img, crop=(0, 320, 0, 240))
        assert r.last_crop == (0, 320, 0, 240)
        r.reset()
        r.settings = ModelSettings(warmup_frames=0)  # dynamic off: whole frame again
        r.get_pose(img)
        assert r.last_crop is None


def test_dynamic_crop_lost_animal_goes_back_to_full_frame():
    pose = np.zeros((1, 8, 3), np.float32)
    pose[..., 2] = 0.1
    assert compute_dynamic_crop(pose, (480, 640), 0.5, 10) is None
    pose[0, 2] = (100.4, 50.6, 0.9)
    pose[0, 5] = (630.0, 470.0, 0.8)
    assert compute_dynamic_crop(pose, (480, 640), 0.5, 20) == (80, 640, 30, 480)


def test_half_precision_export_is_smaller_and_loads(tmp_path):
    full = make_tiny_pytorch_export(tmp_path / "full", seed=5)
    half = make_tiny_pytorch_export(tmp_path / "half", seed=5, half=True)
    s_full = next(full.glob("*.pt")).stat().st_size
    s_half = next(half.glob("*.pt")).stat().st_size
    assert s_half < 0.6 * s_full
    raw = torch.load(next(half.glob("*.pt")), weights_only=True)
    assert all(v.dtype == torch.float16 for v in raw["pose"].values() if v.is_floating_point())
    img = _frame(4)
    with load_runner(full, ModelSettings(warmup_frames=0)) as a, \
            load_runner(half, ModelSettings(warmup_frames=0)) as b:
        pa, pb = a.get_pose(img), b.get_pose(img)
    # fp16-rounded weights, fp32 compute: nearly the same answer
    assert np.median(np.abs(pa[..., :2] - pb[..., :2])) < 2.0


# -- TensorFlow ------------------------------------------------------------------------


def test_tf_export_through_the_same_code_path(tf_model):
    assert detect_engine(tf_model) == "tensorflow"
    img, truth = _blocks()
    with load_runner(tf_model, ModelSettings(warmup_frames=1)) as r:
        assert r.engine == "tensorflow"
        assert r.bodyparts == POULTRY_BODYPARTS
        pose = r.init(img)
        assert pose.shape == (1, 8, 3) and pose.dtype == np.float32
        for k in range(8):
            assert tuple(pose[0, k, :2]) == truth[k % 3], POULTRY_BODYPARTS[k]
            assert pose[0, k, 2] > 0.99
        # crop aligned to the stride: same answer, full-frame coordinates
        cropped = r.get_pose(img, crop=(16, 320, 8, 240))
        np.testing.assert_array_equal(cropped, pose)
        # a crop that excludes the red block: the red bodyparts lose confidence
        no_red = r.get_pose(img, crop=(0, 64, 0, 240))
        assert no_red[0, 0, 2] < 0.01 and no_red[0, 1, 2] > 0.99
        assert tuple(no_red[0, 1, :2]) == truth[1]


def test_tf_dynamic_crop_and_resize(tf_model):
    img, truth = _blocks(480, 640)  # blocks are 8 px; at resize 0.5 they are 4 px
    big = cv2.resize(img, (1280, 960), interpolation=cv2.INTER_NEAREST)  # blocks 16 px
    settings = ModelSettings(warmup_frames=0, resize=0.5, dynamic_crop=True,
                             dynamic_crop_threshold=0.5, dynamic_crop_margin=32)
    with load_runner(tf_model, settings) as r:
        p0 = r.get_pose(big)
        for k in range(3):
            assert tuple(p0[0, k, :2]) == (truth[k][0] * 2, truth[k][1] * 2)
        win = compute_dynamic_crop(p0, big.shape[:2], 0.5, 32)
        # green block leftmost (x = 2 * 28), red block topmost (y = 2 * 44), minus the margin
        assert win is not None and win[0] == 24 and win[2] == 2 * 44 - 32
        p1 = r.get_pose(big)
        assert r.last_crop == win
        # the crop is not aligned to the model's grid: within one output cell (16 px)
        for k in range(3):
            assert np.hypot(*(p1[0, k, :2] - p0[0, k, :2])) <= 16


# -- model card and bad inputs -----------------------------------------------------------


def test_model_card_from_yaml_and_from_dlc_config(pt_model, tf_model, tmp_path):
    card = read_model_card(pt_model)
    assert card.engine == "pytorch" and card.bodyparts == POULTRY_BODYPARTS
    assert card.skeleton == (("head", "neck"),) and card.net == "cspnext_s"
    # without model.yaml: from the DLC config inside the .pt
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "m.pt").write_bytes(next(pt_model.glob("*.pt")).read_bytes())
    c2 = read_model_card(bare)
    assert c2.bodyparts == POULTRY_BODYPARTS and c2.skeleton == () and c2.file == "m.pt"
    c3 = read_model_card(tf_model)
    assert c3.engine == "tensorflow" and c3.bodyparts == POULTRY_BODYPARTS


def test_bad_model_paths(tmp_path, pt_model):
    with pytest.raises(ModelError, match="does not exist"):
        load_runner(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("hi")
    with pytest.raises(ModelError, match=r"no model found.*notes\.txt.*pose_cfg\.yaml"):
        load_runner(empty)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "model.pt").write_bytes(b"not a torch file")
    with pytest.raises(ModelError, match=r"cannot be read as a DeepLabCut-Live PyTorch "
                                         r"export \(not a torch file: corrupt, truncated"):
        load_runner(junk)  # was a bare KeyError number: '(174812789)'
    (junk / "model.pt").write_bytes(b"")
    with pytest.raises(ModelError, match=r"\(not a torch file: corrupt, truncated"):
        load_runner(junk)
    torch.save({"config": {"x": __import__("fractions").Fraction(1, 3)}, "pose": {}},
               junk / "model.pt")
    with pytest.raises(ModelError, match=r"\(a torch file holding objects other than tensors"):
        load_runner(junk)
    other = tmp_path / "other"
    other.mkdir()
    torch.save({"weights": torch.zeros(3)}, other / "x.pt")
    with pytest.raises(ModelError, match="'config' and 'pose'"):
        load_runner(other)
    with pytest.raises(ModelError, match="not a model file"):
        load_runner(empty / "notes.txt")
    with pytest.raises(ModelError, match="model.engine is 'tensorflow'"):
        load_runner(pt_model, ModelSettings(engine="tensorflow"))
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="CUDA is not available"):
            load_runner(pt_model, ModelSettings(device="cuda"))
    two = tmp_path / "two"
    two.mkdir()
    for n in ("a.pt", "b.pt"):
        (two / n).write_bytes(next(pt_model.glob("*.pt")).read_bytes())
    with pytest.raises(ModelError, match="2 '.pt' files"):
        load_runner(two)
    # a card whose bodyparts disagree with the model
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "m.pt").write_bytes(next(pt_model.glob("*.pt")).read_bytes())
    (wrong / "model.yaml").write_text(yaml.safe_dump({"bodyparts": ["a", "b"]}))
    with pytest.raises(ModelError, match="disagree"):
        load_runner(wrong)


def test_malformed_model_card_values(pt_model, tmp_path, capsys):
    """A model.yaml value of the wrong kind: a ModelError (a ValueError: one CLI line) naming
    the card, the key, the value and what was expected; no TypeError traceback."""
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "m.pt").write_bytes(next(pt_model.glob("*.pt")).read_bytes())
    card = folder / "model.yaml"
    cases = [
        ("input_size: 640", r"input_size: expected \[width, height\] in whole pixels > 0.*"
                            r"got 640"),
        ("input_size: [320, -2]", r"input_size: expected \[width, height\].*got \[320, -2\]"),
        ("input_size: [a, b]", r"input_size: expected \[width, height\].*got \['a', 'b'\]"),
        ("resize: half", r"resize: expected a finite scale factor > 0.*got 'half'"),
        ("resize: 0", r"resize: expected a finite scale factor > 0.*got 0"),
        ("resize: -1", r"resize: expected a finite scale factor > 0.*got -1"),
        ("resize: .nan", r"resize: expected a finite scale factor > 0.*got nan"),
        ("skeleton: 5", r"skeleton: expected a list of \[a, b\] pairs.*got 5"),
        ("skeleton: [head]", r"skeleton\[0\]: expected two of.*got 'head'"),
        ("bodyparts: head", r"bodyparts: expected a list of bodypart names, got 'head'"),
        ("metrics: [1, 2]", r"metrics: expected a mapping, got \[1, 2\]"),
        ("training_data: 3", r"training_data: expected a mapping, got 3"),
        ("[1, 2]", r"expected a mapping of card keys.*got list"),
    ]
    for text, message in cases:
        card.write_text(text + "\n")
        with pytest.raises(ModelError, match=rf"^{re.escape(str(card))}: {message}"):
            read_model_card(folder)
    # through the CLI: one line, exit 2
    from gaitlive.cli import main
    from gaitlive.testing import make_tiny_dlc_project

    proj = make_tiny_dlc_project(tmp_path / "p", n=2, bodyparts=POULTRY_BODYPARTS[:3])
    card.write_text("input_size: 640\n")
    assert main(["evaluate", str(proj), "--model", str(folder), "--no-gallery"]) == 2
    err = capsys.readouterr().err
    assert "model.yaml: input_size: expected [width, height]" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    # a valid card still reads
    card.write_text("input_size: [320, 240]\nresize: 0.5\nskeleton: [[head, neck]]\n")
    c = read_model_card(folder)
    assert c.input_size == (320, 240) and c.resize == 0.5 and c.skeleton == (("head", "neck"),)


def test_runner_refuses_a_resize_that_is_not_positive(pt_model):
    for bad in (0.0, -0.5, float("inf"), float("nan")):
        with pytest.raises(ModelError, match=r"model\.resize: expected a finite scale factor "
                                             r"> 0"):
            load_runner(pt_model, ModelSettings(resize=bad, warmup_frames=0))


def test_bad_frames_and_crops(pt_model):
    with load_runner(pt_model, ModelSettings(warmup_frames=0)) as r:
        with pytest.raises(ValueError, match="expected an image"):
            r.get_pose(np.zeros((0, 0, 3), np.uint8))
        with pytest.raises(ValueError, match=r"crop: expected \(x1, x2, y1, y2\)"):
            r.get_pose(_frame(), crop=(1, 2, 3))
        # a crop outside the frame: nothing to analyse -> all keypoints missing
        out = r.get_pose(_frame(), crop=(1000, 1100, 0, 50))
        assert out.shape == (1, 8, 3)
        assert np.all(np.isnan(out[..., :2])) and np.all(out[..., 2] == 0)


def test_cli_error_for_bad_model(tmp_path, capsys):
    """A real project and a model path that is no model: one line naming the path."""
    from gaitlive.cli import main
    from gaitlive.testing import make_tiny_dlc_project

    proj = make_tiny_dlc_project(tmp_path / "p", n=2, bodyparts=POULTRY_BODYPARTS[:3])
    for bad, why in ((tmp_path / "nope", "model path does not exist"),
                     (proj / "config.yaml", "not a model file")):
        rc = main(["evaluate", str(proj), "--model", str(bad), "--no-gallery"])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith(f"gaitlive evaluate: error: {bad}: {why}; expected "
                                          f"a DeepLabCut-Live export"), err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "nope").exists()


def test_multi_animal_model_passes_through(tmp_path):
    """A multi-animal bottom-up DLC model (heatmaps + part-affinity fields, 3 individuals)
    returns (n_detections, n_kp, 3), cropping offsets applied to every individual."""
    model = make_tiny_pytorch_export(tmp_path / "ma", ["a", "b", "c", "d"], individuals=3,
                                     seed=1)
    assert read_model_card(model).individuals == 3
    img = _frame(5, 240, 320)
    with load_runner(model, ModelSettings(warmup_frames=0)) as r:
        pose = r.get_pose(img)
        assert pose.dtype == np.float32 and pose.shape[1:] == (4, 3)
        assert 1 <= pose.shape[0] <= 3
        sub = np.ascontiguousarray(img[40:200, 60:300])
        direct = r.get_pose(sub)
        cropped = r.get_pose(img, crop=(60, 300, 40, 200))
    assert cropped.shape == direct.shape
    np.testing.assert_allclose(cropped[..., 0], direct[..., 0] + 60, atol=1e-3)
    np.testing.assert_allclose(cropped[..., 1], direct[..., 1] + 40, atol=1e-3)

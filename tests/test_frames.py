"""``gaitlive frames``: DeepLabCut's k-means frame picking into a DLC project.

Videos are written with OpenCV in the tests: a static corridor with a dark "bird" that
shows up briefly at three places, so the number of distinct scenes a selection covers is
known exactly.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from gaitlive.offline.frames import (
    FrameSelectionError,
    compute_frame_picks,
    ensure_project,
    extract_frames,
    image_name,
    open_video,
)

W, H, N = 160, 120, 120
# frames 0-89: empty corridor; 90-99, 100-109, 110-119: the bird at left, centre, right
SCENES = {0: range(0, 90), 1: range(90, 100), 2: range(100, 110), 3: range(110, 120)}


def scene_of(index: int) -> int:
    return next(s for s, r in SCENES.items() if index in r)


def corridor_frame(i: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.empty((H, W, 3), np.uint8)
    base = (150 + 40 * xx / W).astype(np.uint8)
    img[:] = base[..., None]
    img = cv2.add(img, rng.integers(0, 6, img.shape, dtype=np.uint8))
    s = scene_of(i)
    if s:
        cx = {1: 35, 2: 80, 3: 125}[s]
        cv2.ellipse(img, (cx, 70), (22, 14), 0, 0, 360, (30, 30, 40), -1)
        cv2.circle(img, (cx + 18, 50), 7, (20, 20, 160), -1)
    return img


@pytest.fixture(scope="module")
def corridor_video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("video") / "pen3_cam1.avi"
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (W, H))
    rng = np.random.default_rng(1)
    for i in range(N):
        wr.write(corridor_frame(i, rng))
    wr.release()
    return path


def read_frame(video: Path, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame


def test_image_name_is_deeplabcuts():
    # DeepLabCut: "img" + str(index).zfill(ceil(log10(nframes))) + ".png"
    assert image_name(7, 120) == "img007.png"
    assert image_name(95, 296) == "img095.png"
    assert image_name(1234, 20000) == "img01234.png"
    assert image_name(0, 1) == "img0.png"


def test_kmeans_covers_every_scene_and_beats_uniform(corridor_video):
    cap = open_video(corridor_video)
    try:
        km = compute_frame_picks(cap, 4, algo="kmeans", seed=0)
        uni = compute_frame_picks(cap, 4, algo="uniform", seed=0)
        km_again = compute_frame_picks(cap, 4, algo="kmeans", seed=0)
    finally:
        cap.close()
    assert len(km) == 4 and len(set(km)) == 4 and km == sorted(km)
    assert km == km_again  # seeded: reproducible
    assert {scene_of(i) for i in km} == {0, 1, 2, 3}  # one frame of each scene
    assert len({scene_of(i) for i in uni}) < 4  # random frames mostly show the empty pen

    def spread(picks):  # mean pairwise distance of the picked images
        imgs = [read_frame(corridor_video, i).astype(float).ravel() for i in picks]
        d = [np.linalg.norm(a - b) for j, a in enumerate(imgs) for b in imgs[j + 1:]]
        return float(np.mean(d))

    assert spread(km) > spread(uni)


def test_extract_frames_writes_dlc_project(tmp_path, corridor_video):
    from deeplabcut.utils.auxiliaryfunctions import read_config

    project = tmp_path / "broilers"
    res = extract_frames(corridor_video, project, 6, seed=3, scorer="anna")
    folder = project / "labeled-data" / "pen3_cam1"
    assert res.folder == folder
    assert len(res.indices) == 6 and len(set(res.indices)) == 6
    names = sorted(p.name for p in folder.glob("*.png"))
    assert names == sorted(image_name(i, N) for i in res.indices)
    for i in res.indices:  # the pixels of the movie frame, losslessly
        png = cv2.imread(str(folder / image_name(i, N)))
        np.testing.assert_array_equal(png, read_frame(corridor_video, i))
    cfg = read_config(project / "config.yaml")  # DeepLabCut reads the project
    assert list(cfg["bodyparts"]) == ["head", "neck", "left_knee", "right_knee", "left_hock",
                                      "right_hock", "left_foot", "right_foot"]
    assert cfg["scorer"] == "anna"
    assert not cfg["multianimalproject"]
    assert dict(cfg["video_sets"]) == {str(corridor_video.absolute()): {"crop": "0, 160, 0, 120"}}

    # again: same picks, nothing rewritten, the video registered once
    again = extract_frames(corridor_video, project, 6, seed=3)
    assert again.indices == res.indices and not again.written
    assert len(again.existing) == 6
    assert len(read_config(project / "config.yaml")["video_sets"]) == 1


def test_two_videos_with_the_same_file_name_do_not_share_a_folder(tmp_path, corridor_video):
    project = tmp_path / "broilers"
    extract_frames(corridor_video, project, 4, seed=3)
    before = sorted((project / "labeled-data" / corridor_video.stem).iterdir())
    other = tmp_path / "cam2" / corridor_video.name  # another camera, same file name
    other.parent.mkdir()
    shutil.copy(corridor_video, other)
    with pytest.raises(FrameSelectionError, match=rf"{corridor_video.stem} already holds the "
                                                   rf"frames of .*{corridor_video.name}"):
        extract_frames(other, project, 6, seed=4)
    assert sorted((project / "labeled-data" / corridor_video.stem).iterdir()) == before
    # ... but when the registered video is not on this machine (a project moved here, or
    # DeepLabCut's entry for a labelled folder), this one is taken for it: its entry stays
    gone = tmp_path / "gone" / corridor_video.name
    shutil.move(corridor_video, gone.parent.mkdir() or gone)
    try:
        res = extract_frames(other, project, 6, seed=4)
        assert len(res.indices) == 6
        from deeplabcut.utils.auxiliaryfunctions import read_config

        assert list(read_config(project / "config.yaml")["video_sets"]) == [
            str(corridor_video)]
    finally:
        shutil.move(gone, corridor_video)


def test_existing_project_keeps_its_bodyparts(tmp_path, corridor_video):
    from deeplabcut.utils.auxiliaryfunctions import read_config

    project = tmp_path / "cows"
    ensure_project(project, profile="cow-side", scorer="bob")
    text = (project / "config.yaml").read_text()
    (project / "config.yaml").write_text("# my own DLC project\n" + text)
    before = list(read_config(project / "config.yaml")["bodyparts"])
    extract_frames(corridor_video, project, 3, profile="broiler-side")
    cfg_text = (project / "config.yaml").read_text()
    assert cfg_text.startswith("# my own DLC project")  # comments kept
    assert list(read_config(project / "config.yaml")["bodyparts"]) == before
    assert "head" not in before


def test_fewer_frames_than_asked(tmp_path):
    video = tmp_path / "short.avi"
    wr = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(5):
        wr.write(np.full((48, 64, 3), 40 * i, np.uint8))
    wr.release()
    res = extract_frames(video, tmp_path / "p", 20)
    assert res.indices == [0, 1, 2, 3, 4]


@pytest.mark.shared
def test_real_footage(shared_data, tmp_path):
    video = shared_data / "dog-walk" / "dog_clip.avi"
    res = extract_frames(video, tmp_path / "dog", 5, seed=0)
    assert res.n_frames == 296
    assert len(set(res.indices)) == 5
    for p in res.written:
        img = cv2.imread(str(p))
        assert img.shape == (370, 350, 3)
        assert p.name == image_name(int(p.stem[3:]), 296)


def test_bad_videos(tmp_path):
    with pytest.raises(FrameSelectionError, match="nothere.mp4: video file not found"):
        extract_frames(tmp_path / "nothere.mp4", tmp_path / "p", 5)
    corrupt = tmp_path / "corrupt.avi"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, np.uint8).tobytes())
    with pytest.raises(FrameSelectionError, match="corrupt.avi"):
        extract_frames(corrupt, tmp_path / "p", 5)
    text = tmp_path / "notes.mp4"
    text.write_text("not a movie\n" * 100)
    with pytest.raises(FrameSelectionError, match="notes.mp4"):
        extract_frames(text, tmp_path / "p", 5)
    assert not (tmp_path / "p" / "labeled-data" / "corrupt").exists()


@pytest.mark.parametrize(("kw", "what"), [({"step": 0}, "step: expected >= 1"),
                                           ({"resize_width": 0}, "resize_width: expected >= 1"),
                                           ({"start": 0.5, "stop": 0.5}, "start < stop")])
def test_bad_selection_settings_are_named(tmp_path, corridor_video, kw, what):
    with pytest.raises(FrameSelectionError, match=what):
        extract_frames(corridor_video, tmp_path / "p", 3, **kw)


def test_cli(tmp_path, corridor_video):
    gl = [sys.executable, "-m", "gaitlive.cli"]
    # one bad video among good ones: the good ones are done, the bad one reported
    out = subprocess.run([*gl, "frames", str(tmp_path / "missing.avi"), str(corridor_video),
                          "--project", str(tmp_path / "p"), "-n", "4"],
                         capture_output=True, text=True, timeout=180)
    assert "4 of 120 frames" in out.stdout
    assert out.returncode == 2 and "1 of 2 videos could not be used" in out.stderr
    assert "missing.avi: video file not found" in out.stderr
    assert len(list((tmp_path / "p" / "labeled-data" / "pen3_cam1").glob("img*.png"))) == 4
    bad = subprocess.run([*gl, "frames", str(tmp_path / "missing.avi"), "--project",
                          str(tmp_path / "p")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.startswith("gaitlive frames: error:") and "missing.avi" in bad.stderr


@pytest.mark.parametrize(("args", "why"), [
    (["--start", "0.9", "--stop", "0.1"],
     "--start 0.9 --stop 0.1: expected fractions of the video with 0 <= start < stop <= 1"),
    (["--seed", "-1"], "--seed: expected a random seed from 0 to 4294967295, got -1"),
    (["--step", "0"], "--step: expected >= 1"),
    (["--resize-width", "0"], "--resize-width: expected >= 1 pixel, got 0"),
    (["-n", "0"], "-n/--num: number of frames to pick must be >= 1, got 0"),
    (["--scorer", "x/y"], "--scorer 'x/y': expected a plain annotator name")])
def test_bad_options_are_refused_before_the_project_is_made(tmp_path, corridor_video, capsys,
                                                            args, why):
    from gaitlive.cli import main

    assert main(["frames", str(corridor_video), "--project", str(tmp_path / "p2"), *args]) == 2
    err = capsys.readouterr().err
    assert f"gaitlive frames: error: {why}" in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p2").exists()
    with pytest.raises(FrameSelectionError):  # the API too
        extract_frames(corridor_video, tmp_path / "p2", 3, seed=-1)
    assert not (tmp_path / "p2").exists()


def test_existing_project_with_bad_bodyparts_is_refused_as_annotate_does(tmp_path,
                                                                         corridor_video):
    from gaitlive.offline.annotate import AnnotationError, AnnotationSession

    project = tmp_path / "p"
    ensure_project(project, scorer="bob")
    cfg = project / "config.yaml"
    for bad in ("3", "[head, head]", "[]"):
        text = "\n".join(f"bodyparts: {bad}" if ln.startswith("bodyparts:") else ln
                         for ln in cfg.read_text().splitlines()
                         if not ln.startswith("- ")) + "\n"
        cfg.write_text(text)
        with pytest.raises(AnnotationError) as annotate_err:
            AnnotationSession(project)
        with pytest.raises(FrameSelectionError) as frames_err:
            extract_frames(corridor_video, project, 3)
        assert str(frames_err.value) == str(annotate_err.value)
        assert str(frames_err.value).startswith(f"{cfg}: key 'bodyparts'")
        assert cfg.read_text() == text and not any((project / "labeled-data").iterdir())


def test_fewer_frames_than_asked_for_are_said(tmp_path, corridor_video, capsys):
    """-n above the frames there are picked them all without a word."""
    from gaitlive.cli import main

    assert main(["frames", str(corridor_video), "--project", str(tmp_path / "p"), "-n",
                 str(N + 5)]) == 0
    err = capsys.readouterr().err
    assert f"note: {N} frames, fewer than the {N + 5} asked for (too few frames, or frames " \
        "that do not decode)" in err, err


def test_a_project_folder_that_cannot_be_made_is_named(tmp_path, corridor_video, capsys):
    from gaitlive.cli import main

    (tmp_path / "notes.txt").write_text("a file")
    bad = tmp_path / "notes.txt" / "proj"
    assert main(["frames", str(corridor_video), "--project", str(bad), "-n", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"gaitlive frames: error: {bad}: cannot create the project folder (Not a " \
        "directory)", err

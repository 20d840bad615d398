"""DeepLabCut file formats: exact round trips and real files from other projects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gaitlive.dlcio import (
    DLCFileError,
    PoseData,
    read_collected_data,
    read_cow_csv,
    read_pose,
    write_collected_data,
    write_pose,
)

BPS = ("head", "neck", "left_foot")


def _poses(n_t=5, n_i=1, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 640, size=(n_t, n_i, len(BPS), 3)).astype(np.float32)
    p[..., 2] = rng.uniform(0, 1, size=(n_t, n_i, len(BPS)))
    p[1, 0, 2, :2] = np.nan
    p[1, 0, 2, 2] = 0.0
    return p


@pytest.mark.parametrize("n_i", [1, 3])
def test_pose_round_trip_h5_and_csv(tmp_path, n_i):
    inds = tuple(f"bird{i}" for i in range(n_i))
    data = PoseData(_poses(n_i=n_i), BPS, inds, scorer="DLC_test")
    out = write_pose(tmp_path / "clip.h5", data)
    assert out.exists() and out.with_suffix(".csv").exists()
    for path in (out, out.with_suffix(".csv")):
        back = read_pose(path)
        assert back.bodyparts == BPS
        assert back.scorer == "DLC_test"
        assert back.multi_animal == (n_i > 1)
        if n_i > 1:
            assert back.individuals == inds
        np.testing.assert_allclose(back.poses, data.poses, rtol=1e-6, equal_nan=True)


def test_pose_h5_notes_frame_rate_and_size_without_pickle(tmp_path):
    import tables

    data = PoseData(_poses(), BPS, scorer="DLC_x", fps=25.0)
    data.meta["frame_size"] = (640, 480)
    write_pose(tmp_path / "a.h5", data)
    back = read_pose(tmp_path / "a.h5")
    assert back.fps == 25.0 and back.meta["frame_size"] == (640, 480)
    with tables.open_file(tmp_path / "a.h5") as f:
        note = f.root.df_with_missing._v_attrs["gaitlive_meta"]
    assert isinstance(note, str) and '"fps": 25.0' in note  # a JSON string, not a pickle
    # a file without the note (DeepLabCut's own) has neither
    write_pose(tmp_path / "b.h5", PoseData(_poses(), BPS, scorer="DLC_x"))
    plain = read_pose(tmp_path / "b.h5")
    assert plain.fps is None and "frame_size" not in plain.meta


def test_pose_h5_notes_a_live_camera_s_rate_changes_and_ignores_a_malformed_note(
        tmp_path, caplog):
    """A malformed note of rate changes is ignored with a warning naming the file (the
    whole file is then taken at one rate: silently, a halving doubled every cadence after
    it); a note that is no JSON object is ignored too, not a crash (review, 2026-12-07)."""
    import logging

    import pandas as pd

    from gaitlive.dlcio import H5_KEY, META_ATTR

    data = PoseData(_poses(), BPS, scorer="DLC_x", fps=30.0)
    data.meta["rate_changes"] = [(120, 15.0), (900, 30.0)]
    write_pose(tmp_path / "a.h5", data)
    assert read_pose(tmp_path / "a.h5").meta["rate_changes"] == [(120, 15.0), (900, 30.0)]

    def note(text):
        with pd.HDFStore(tmp_path / "a.h5", mode="a") as store:
            setattr(store.get_storer(H5_KEY).attrs, META_ATTR, text)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="gaitlive.dlcio"):
            return read_pose(tmp_path / "a.h5")

    # another writer's JSON numbers: 120.0 is frame 120
    assert note('{"fps": 30, "rate_changes": [[120.0, 15]]}').meta["rate_changes"] == [
        (120, 15.0)]
    assert not caplog.records
    for bad in ('[[900, 15.0], [120, 30.0]]', '[[120, 0]]', '[[-1, 15.0]]', '[120, 15.0]',
                '[[120.5, 15.0]]', '[[true, true]]', '[[120, "15"]]', '"15 fps"'):
        back = note(f'{{"fps": 30.0, "rate_changes": {bad}}}')
        assert back.fps == 30.0 and "rate_changes" not in back.meta, bad
        [rec] = caplog.records
        assert "a.h5" in rec.getMessage() and "rate changes is malformed" in rec.getMessage()
    back = note('[1, 2]')
    assert back.fps is None and "rate_changes" not in back.meta
    assert "not a JSON object" in caplog.records[0].getMessage()


def test_pose_h5_has_deeplabcut_layout(tmp_path):
    data = PoseData(_poses(), BPS, scorer="DLC_x")
    write_pose(tmp_path / "a.h5", data)
    df = pd.read_hdf(tmp_path / "a.h5", key="df_with_missing")
    assert list(df.columns.names) == ["scorer", "bodyparts", "coords"]
    assert list(df.columns[:3]) == [("DLC_x", "head", "x"), ("DLC_x", "head", "y"),
                                    ("DLC_x", "head", "likelihood")]
    assert df.shape == (5, 9)
    multi = PoseData(_poses(n_i=2), BPS, ("b1", "b2"), scorer="DLC_x")
    write_pose(tmp_path / "m.h5", multi)
    df = pd.read_hdf(tmp_path / "m.h5")
    assert list(df.columns.names) == ["scorer", "individuals", "bodyparts", "coords"]


def test_collected_data_round_trip(tmp_path):
    folder = tmp_path / "labeled-data" / "clip1"
    xy = np.array([[[1.5, 2.5], [3.0, 4.0], [np.nan, np.nan]],
                   [[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]])
    h5 = write_collected_data(folder, "alice", BPS, ["img0001.png", "img0042.png"], xy)
    assert h5.name == "CollectedData_alice.h5" and h5.with_suffix(".csv").exists()
    df = pd.read_hdf(h5)
    assert df.index[1] == ("labeled-data", "clip1", "img0042.png")
    assert list(df.columns.names) == ["scorer", "bodyparts", "coords"]
    for path in (h5, h5.with_suffix(".csv")):
        lf = read_collected_data(path)
        assert lf.scorer == "alice" and lf.bodyparts == BPS
        assert lf.images == ["img0001.png", "img0042.png"]
        np.testing.assert_array_equal(lf.xy, xy)


def test_reads_real_openfield_labels(shared_data):
    lf = read_collected_data(shared_data / "openfield-mouse/labeled-data/m4s1/CollectedData_Pranav.h5")
    assert lf.bodyparts == ("snout", "leftear", "rightear", "tailbase")
    assert len(lf.images) == 116 and lf.images[0] == "img0000.png"
    assert lf.xy[0, 0, 0] == pytest.approx(21.521)


def test_reads_real_multi_animal_tracks(shared_data):
    data = read_pose(shared_data / "multi-animal-birds/montblanc_tracks.h5")
    assert data.multi_animal
    assert data.individuals == ("bird1", "bird2", "bird3", "single")
    assert data.poses.shape[:2] == (180, 4)
    assert "head" in data.bodyparts


def test_reads_real_cow_csv(shared_data):
    data = read_cow_csv(shared_data / "cow-lameness-sample/03_2023_keypoints/001.csv")
    assert data.poses.shape[1:] == (1, 17, 3)
    assert data.bodyparts[0] == "LFHoof" and data.bodyparts[-1] == "Spine3"
    assert np.all(data.poses[..., 2] == 1.0)


def test_bad_files(tmp_path):
    with pytest.raises(DLCFileError, match="nope.h5: pose file not found"):
        read_pose(tmp_path / "nope.h5")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(DLCFileError, match="bad.h5: cannot read"):
        read_pose(bad)
    txt = tmp_path / "x.txt"
    txt.write_text("hi")
    with pytest.raises(DLCFileError, match="expected a DeepLabCut .h5 or .csv"):
        read_pose(txt)
    with pytest.raises(ValueError, match="3 keypoints but 2 bodyparts"):
        PoseData(_poses(), BPS[:2])


def test_failed_write_keeps_previous_file(tmp_path):
    data = PoseData(_poses(), BPS)
    path = write_pose(tmp_path / "keep.h5", data)
    before = path.read_bytes()

    broken = PoseData(_poses(), BPS)
    broken.poses = np.zeros((2, 2), dtype=np.float32)  # corrupt after validation
    with pytest.raises(ValueError):
        write_pose(path, broken)
    assert path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".keep")]


def test_unreadable_pose_files_one_line_errors(tmp_path):
    good = write_pose(tmp_path / "good.h5", PoseData(_poses(), BPS, scorer="DLC_resnet"))
    (tmp_path / "empty.h5").write_bytes(b"")
    (tmp_path / "trunc.h5").write_bytes(good.read_bytes()[:4000])
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "short.csv").write_text("scorer,DLC,DLC\n")
    cases = {"empty.h5": "the file is empty", "trunc.h5": "not a readable HDF5 file",
             "empty.csv": "the file is empty", "short.csv": "header rows"}

    def check(reader):
        for name, why in cases.items():
            with pytest.raises(DLCFileError) as ei:
                reader(tmp_path / name)
            msg = str(ei.value)
            assert msg.startswith(str(tmp_path / name)) and why in msg, msg
            assert "\n" not in msg and "H5F.c" not in msg and "expected" in msg

    check(read_pose)
    with pytest.raises(DLCFileError, match=r"empty.csv: the file is empty; expected"):
        read_cow_csv(tmp_path / "empty.csv")
    # the header-only reader analyze uses to see who wrote an existing pose file
    from gaitlive.dlcio import read_pose_scorer

    assert read_pose_scorer(good) == read_pose_scorer(good.with_suffix(".csv")) == "DLC_resnet"
    check(read_pose_scorer)


def test_a_project_config_that_is_not_yaml_is_one_clear_error(tmp_path):
    from gaitlive.dlcio import read_project_config

    (tmp_path / "config.yaml").write_text("bodyparts: [head, neck\nTask: : :\n")
    with pytest.raises(DLCFileError, match=r"config\.yaml: not a valid YAML file \(line 2"):
        read_project_config(tmp_path)


def test_likelihoods_that_are_not_probabilities_are_reported(tmp_path, caplog):
    poses = np.zeros((3, 1, len(BPS), 3), np.float32)
    poses[..., 2] = 0.9
    ok = write_pose(tmp_path / "ok.h5", PoseData(poses=poses, bodyparts=BPS))
    poses[1, 0, 2, 2] = 5.0  # e.g. a score column of another tool, or columns mixed up
    odd = write_pose(tmp_path / "odd.h5", PoseData(poses=poses, bodyparts=BPS))
    with caplog.at_level("WARNING", logger="gaitlive"):
        read_pose(ok)
        assert not caplog.records
        assert read_pose(odd).poses[1, 0, 2, 2] == 5.0  # read as it is, but reported
    assert "odd.h5: 1 likelihood values outside [0, 1] (e.g. 5)" in caplog.text


def test_a_pose_csv_cut_short_is_read_with_a_warning_naming_the_line(tmp_path, caplog):
    """A DeepLabCut CSV whose last row was cut by a crash: its cells that are there are
    read, the missing ones are missing keypoints, and a warning names the file and line
    (walkthrough, 2026-12-07: it was read without a word)."""
    import logging

    data = PoseData(_poses(), BPS, scorer="DLC_x")
    write_pose(tmp_path / "a.h5", data)
    text = (tmp_path / "a.csv").read_text()
    (tmp_path / "a.csv").write_text(text.rstrip("\n")[:-60] + "\n")
    with caplog.at_level(logging.WARNING, logger="gaitlive.dlcio"):
        back = read_pose(tmp_path / "a.csv")
    assert back.n_frames == data.n_frames
    np.testing.assert_array_equal(back.poses[:-1], read_pose(tmp_path / "a.h5").poses[:-1])
    [rec] = [r.getMessage() for r in caplog.records]
    n_lines = len(text.splitlines())
    assert "a.csv" in rec and f"at line {n_lines}" in rec and "cut short" in rec
    # cut inside a number (1.2e-05 -> 1.2e): the same, not a refused file
    lines = text.splitlines()
    lines[-1] = lines[-1].rsplit(",", 1)[0] + ",1.2e"
    (tmp_path / "c.csv").write_text("\n".join(lines) + "\n")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gaitlive.dlcio"):
        back = read_pose(tmp_path / "c.csv")
    assert back.n_frames == data.n_frames and back.poses[-1, 0, -1, 2] == 0.0
    assert "cut short" in caplog.records[0].getMessage()
    # text in a cell of an earlier row is still an error naming it
    lines[-2] = lines[-2].rsplit(",", 1)[0] + ",abc"
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DLCFileError, match="'abc' is not a number"):
        read_pose(tmp_path / "d.csv")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gaitlive.dlcio"):
        read_pose(tmp_path / "a.h5")
        write_pose(tmp_path / "b.h5", data)
        read_pose(tmp_path / "b.csv")
    assert not caplog.records

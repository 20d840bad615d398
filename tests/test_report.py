"""Gait reports from synthetic ``gaitlive analyze`` output and pass-score databases."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from gaitlive.config import load_profile
from gaitlive.dlcio import PoseData, write_pose
from gaitlive.gait.events import PassResult
from gaitlive.overlay import score_colour
from gaitlive.publish.journal import Journal
from gaitlive.publish.messages import encode_body, pass_body
from gaitlive.report import (
    ReportError,
    build_report,
    compute_angle_series,
    load_recording,
    read_pass_database,
)

PROFILE = load_profile("broiler-side")
FPS = 30.0
PERIOD = 20  # frames per stride


def walk(n: int, x0: float, L: float, stance: dict[str, int], offset: dict[str, int]
         ) -> tuple[np.ndarray, list[dict]]:
    """A bird walking right at one stride (2 L) per PERIOD frames.

    Each foot is on the ground ``stance[foot]`` frames of every stride, starting at frame
    ``offset[foot]`` of the stride; the steps list has one row per complete stance."""
    v = 2 * L / PERIOD
    bp = {b: i for i, b in enumerate(PROFILE.bodyparts)}
    poses = np.zeros((n, 1, len(bp), 3), np.float32)
    poses[..., 2] = 0.98
    steps = []
    for foot in ("left", "right"):
        fx = np.zeros(n)
        for f in range(n):
            phase = (f - offset[foot]) % PERIOD
            k = (f - offset[foot]) // PERIOD  # stride number
            plant = x0 + v * (offset[foot] + k * PERIOD)  # where this stance's foot is
            if phase < stance[foot]:
                fx[f] = plant
            else:  # swing: move to the next plant
                swing = (phase - stance[foot]) / (PERIOD - stance[foot])
                fx[f] = plant + swing * v * PERIOD
        for k in range(-1, n // PERIOD + 1):
            a = offset[foot] + k * PERIOD
            b = a + stance[foot] - 1
            if a >= 0 and b < n:
                steps.append({"individual": 0, "pass_id": 1, "foot": foot,
                              "strike_frame": a, "lift_frame": b})
        poses[:, 0, bp[f"{foot}_foot"], 0] = fx
        poses[:, 0, bp[f"{foot}_foot"], 1] = 300.0
    hip = x0 + v * np.arange(n)
    for foot in ("left", "right"):
        poses[:, 0, bp[f"{foot}_knee"], :2] = np.stack([hip, np.full(n, 300.0 - L)], 1)
        foot_x = poses[:, 0, bp[f"{foot}_foot"], 0]
        poses[:, 0, bp[f"{foot}_hock"], :2] = np.stack(
            [(hip + foot_x) / 2 - 0.2 * L, np.full(n, 300.0 - L / 2)], 1)
    poses[:, 0, bp["neck"], :2] = np.stack([hip + 0.5 * L, np.full(n, 300 - 1.5 * L)], 1)
    poses[:, 0, bp["head"], :2] = np.stack([hip + 0.9 * L, np.full(n, 300 - 2.1 * L)], 1)
    return poses, steps


def make_analyze_output(folder: Path, stem: str = "barn1") -> dict:
    """Two passes of one recording: bird 0 (scored 0.3, symmetric) and bird 0 again later
    with a short right stance (unscored)."""
    n = 130
    poses, steps1 = walk(n, 50, 60, {"left": 12, "right": 12}, {"left": 0, "right": 10})
    _, steps2 = walk(n, 50, 60, {"left": 12, "right": 6}, {"left": 0, "right": 10})
    steps1 = [s for s in steps1 if s["lift_frame"] <= 60]
    steps2 = [dict(s, pass_id=2) for s in steps2 if s["strike_frame"] >= 70]
    write_pose(folder / f"{stem}DLC_gaitlive.h5",
               PoseData(poses, PROFILE.bodyparts, ("bird",), fps=FPS))
    pd.DataFrame(steps1 + steps2).to_csv(folder / f"{stem}_steps.csv", index=False)
    passes = pd.DataFrame([
        {"individual": 0, "pass_id": 1, "start_frame": 0, "end_frame": 60, "n_steps":
         len(steps1), "cadence_hz": 3.0, "stance_fraction_left": 0.6,
         "stance_fraction_right": 0.6, "score": 0.3, "scored": True, "reason": ""},
        {"individual": 0, "pass_id": 2, "start_frame": 70, "end_frame": 129, "n_steps":
         len(steps2), "cadence_hz": 3.0, "stance_fraction_left": 0.6,
         "stance_fraction_right": 0.3, "score": np.nan, "scored": False,
         "reason": "3 steps < min_steps 4"},
    ])
    passes.to_csv(folder / f"{stem}_passes.csv", index=False)
    return {"poses": poses, "steps": steps1 + steps2, "passes": passes}


def rgb_count(img_bgr: np.ndarray, hex_or_bgr) -> int:
    if isinstance(hex_or_bgr, str):
        h = hex_or_bgr.lstrip("#")
        r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
        bgr = (b, g, r)
    else:
        bgr = hex_or_bgr
    return int(np.all(img_bgr == np.asarray(bgr, np.uint8), axis=2).sum())


LEFT_BAR, RIGHT_BAR = "#1b9e77", "#d95f02"


def test_angle_series_exact():
    poses, _ = walk(40, 50, 60, {"left": 12, "right": 12}, {"left": 0, "right": 10})
    a = compute_angle_series(poses[:, 0], PROFILE)
    bp = {b: i for i, b in enumerate(PROFILE.bodyparts)}
    k, h, f = (poses[:, 0, bp[n], :2].astype(float) for n in ("left_knee", "left_hock",
                                                               "left_foot"))
    u, w = k - h, f - h
    want = np.degrees(np.arccos((u * w).sum(1) / np.linalg.norm(u, axis=1)
                                / np.linalg.norm(w, axis=1)))
    np.testing.assert_allclose(a["left_hock"], want, atol=1e-6)
    low = poses.copy()
    low[5, 0, bp["left_hock"], 2] = 0.2  # below pcutoff: unknown, not a wrong angle
    assert np.isnan(compute_angle_series(low[:, 0], PROFILE)["left_hock"][5])


def test_report_from_analyze_output(tmp_path):
    data = make_analyze_output(tmp_path)
    res = build_report(tmp_path, tmp_path / "rep", PROFILE)
    names = sorted(p.name for p in res.pass_pngs)
    assert names == ["barn1_bird0_pass1.png", "barn1_bird0_pass2.png"]
    assert [p.name for p in res.summary_pngs] == ["barn1_summary.png"]
    assert res.index is not None and "barn1_summary.png" in res.index.read_text()
    assert not list((tmp_path / "rep").glob(".*"))  # no temporary files left
    p1 = cv2.imread(str(tmp_path / "rep" / "barn1_bird0_pass1.png"))
    p2 = cv2.imread(str(tmp_path / "rep" / "barn1_bird0_pass2.png"))
    assert p1.shape == p2.shape == (750, 1200, 3)
    # the score badge: green-ish score colour for 0.3; grey for the unscored pass
    assert rgb_count(p1, score_colour(0.3)) > 1000
    assert rgb_count(p2, score_colour(None)) > 1000 and rgb_count(p2, score_colour(0.3)) == 0
    # gait diagram: bar area is proportional to the stance frames of each foot
    st = pd.DataFrame(data["steps"])

    def frames(pass_id, foot):
        s = st[(st.pass_id == pass_id) & (st.foot == foot)]
        return int((s.lift_frame - s.strike_frame + 1).sum())

    for img, pid in ((p1, 1), (p2, 2)):
        ratio_px = rgb_count(img, RIGHT_BAR) / rgb_count(img, LEFT_BAR)
        ratio = frames(pid, "right") / frames(pid, "left")
        assert ratio_px == pytest.approx(ratio, rel=0.08), (pid, ratio_px, ratio)
    assert frames(2, "right") / frames(2, "left") < 0.8  # the short right stance shows
    # the summary: one scored pass (histogram bar and dot in the score colour), one n/s
    summ = cv2.imread(str(res.summary_pngs[0]))
    assert rgb_count(summ, score_colour(0.0)) > 500  # the histogram's "0" bin
    assert rgb_count(summ, score_colour(None)) > 500


def test_report_needs_the_contract_columns(tmp_path):
    make_analyze_output(tmp_path)
    df = pd.read_csv(tmp_path / "barn1_steps.csv").drop(columns=["lift_frame"])
    df.to_csv(tmp_path / "barn1_steps.csv", index=False)
    with pytest.raises(ReportError, match=r"barn1_steps.csv: missing column\(s\) \['lift_frame'\]"):
        build_report(tmp_path, None, PROFILE)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match="empty: no <stem>_passes.csv"):
        build_report(tmp_path / "empty", None, PROFILE)
    assert not (tmp_path / "empty" / "report").exists()  # no empty folder left behind
    with pytest.raises(ReportError, match=r"--poses .*nowhere: not a folder"):
        build_report(tmp_path, None, PROFILE, pose_dirs=[tmp_path / "nowhere"])
    # an analyze table cut to 0 bytes is an error; a live run's passes.csv is empty until
    # its first pass (a run with no pass yet: a report with no pass)
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "barn9_passes.csv").write_text("")
    with pytest.raises(ReportError, match=r"barn9_passes.csv: empty file; expected a table"):
        build_report(cut, None, PROFILE)
    run = tmp_path / "run"
    run.mkdir()
    (run / "passes.csv").write_text("")
    (run / "steps.csv").write_text("individual,pass_id,foot,strike_frame,lift_frame\n")
    assert build_report(run, None, PROFILE).pass_pngs == []


def _pass(individual, pass_id, score, **feat) -> PassResult:
    return PassResult(individual, pass_id, 10 * pass_id, 10 * pass_id + 40, 6,
                      features={"cadence_hz": 2.5, **feat}, score=score,
                      scored=score is not None, camera_id="cam0")


def _listen_db(path: Path) -> sqlite3.Connection:
    """A database with a gaitlive listen database's scores (JSON features) and steps
    tables, empty."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE scores (publisher_id TEXT, epoch TEXT, seq INTEGER, "
               "camera_id TEXT, t_wall REAL, received_wall REAL, individual INTEGER, "
               "pass_id INTEGER, start_frame INTEGER, end_frame INTEGER, n_steps INTEGER, "
               "score REAL, score_class INTEGER, confidence REAL, scored INTEGER, reason TEXT, "
               "model TEXT, features TEXT)")
    db.execute("CREATE TABLE steps (publisher_id TEXT, epoch TEXT, seq INTEGER, "
               "camera_id TEXT, t_wall REAL, individual INTEGER, pass_id INTEGER, foot TEXT, "
               "kind TEXT, strike_frame INTEGER, lift_frame INTEGER, t REAL)")
    return db


def test_report_from_journal_and_listen_database(tmp_path):
    day1 = dt.datetime(2026, 3, 1, 9, 0).timestamp()
    day2 = dt.datetime(2026, 3, 2, 15, 30).timestamp()
    # a publisher journal: msgpack pass bodies
    with Journal(tmp_path / "journal.sqlite") as j:
        for i, (score, t) in enumerate([(0.0, day1), (4.6, day1 + 60), (2.0, day2)]):
            j.append("pub1", "cam0", encode_body(pass_body(_pass(i, i + 1, score))), 1.0 + i, t)
    df = read_pass_database(tmp_path / "journal.sqlite")
    assert list(df["score"]) == [0.0, 4.6, 2.0] and list(df["cadence_hz"]) == [2.5] * 3
    res = build_report(tmp_path / "journal.sqlite", tmp_path / "rep", PROFILE)
    assert len(res.pass_pngs) == 3
    assert [p.name for p in res.summary_pngs] == ["journal_2026-03-01_summary.png",
                                                  "journal_2026-03-02_summary.png"]
    s1 = cv2.imread(str(res.summary_pngs[0]))
    assert rgb_count(s1, score_colour(0.0)) > 300 and rgb_count(s1, score_colour(5.0)) > 300
    assert rgb_count(s1, score_colour(2.0)) == 0  # day 2's pass is not in day 1's summary
    # a gaitlive listen database: a scores table with JSON features, and a steps table
    db = _listen_db(tmp_path / "listen.sqlite")
    db.execute("INSERT INTO scores VALUES ('p', 'e', 1, 'cam0', ?, ?, 3, 1, 0, 60, 4, 1.0, "
               "1, 0.9, 1, '', 'm', ?)", (day1, day1, json.dumps({"cadence_hz": 2.0})))
    for foot, a, b in (("left", 0, 11), ("right", 10, 21), ("left", 20, 31)):
        db.execute("INSERT INTO steps VALUES ('p', 'e', 1, 'cam0', ?, 3, 1, ?, 'strike', ?, "
                   "NULL, 0)", (day1, foot, a))
        db.execute("INSERT INTO steps VALUES ('p', 'e', 1, 'cam0', ?, 3, 1, ?, 'lift', ?, ?, "
                   "0)", (day1, foot, a, b))
    db.commit()
    db.close()
    res = build_report(tmp_path / "listen.sqlite", tmp_path / "rep2", PROFILE)
    assert len(res.pass_pngs) == 1 and len(res.summary_pngs) == 1
    img = cv2.imread(str(res.pass_pngs[0]))
    # gait diagram from the steps table: 24 left stance frames vs 12 right
    assert rgb_count(img, RIGHT_BAR) / rgb_count(img, LEFT_BAR) == pytest.approx(0.5, rel=0.08)
    (tmp_path / "junk.sqlite").write_bytes(b"not sqlite at all, just text" * 10)
    with pytest.raises(ReportError, match="junk.sqlite"):
        read_pass_database(tmp_path / "junk.sqlite")


def test_a_new_report_moves_the_earlier_one_aside(tmp_path):
    """A report of other data in the same folder (a new run) must not leave the earlier
    passes' PNGs beside an index that does not list them; the user's own files stay."""
    make_analyze_output(tmp_path)
    rep = tmp_path / "rep"
    first = build_report(tmp_path, rep, PROFILE)
    old = {p.name: p.read_bytes() for p in (*first.pass_pngs, *first.summary_pngs)}
    (rep / "mine.png").write_bytes(b"the user's own figure")
    (rep / "barn1_bird0_pass9.png").write_bytes(b"a pass of an earlier run")
    index = (rep / "index.html").read_text()
    (rep / "index.html").write_text(index + "<p><a href='barn1_bird0_pass9.png'>9</a></p>\n")
    second = build_report(tmp_path, rep, PROFILE)
    kept = list((rep / "previous").glob("*/index.html"))
    assert len(kept) == 1
    assert {p.name for p in kept[0].parent.glob("*.png")} == {*old, "barn1_bird0_pass9.png"}
    assert all((kept[0].parent / n).read_bytes() == b for n, b in old.items())
    assert sorted(p.name for p in rep.glob("*.png")) == sorted(
        ["mine.png", *(p.name for p in (*second.pass_pngs, *second.summary_pngs))])
    assert (rep / "mine.png").read_bytes() == b"the user's own figure"


def test_report_cli(tmp_path):
    make_analyze_output(tmp_path)
    r = subprocess.run([sys.executable, "-m", "gaitlive.cli", "report", str(tmp_path),
                        "--out", str(tmp_path / "out"), "--profile", "broiler-side"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "wrote 2 pass reports and 1 summaries" in r.stdout
    assert (tmp_path / "out" / "index.html").is_file()
    r = subprocess.run([sys.executable, "-m", "gaitlive.cli", "report",
                        str(tmp_path / "missing")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "gaitlive report: error:" in r.stderr and "missing: not found" in r.stderr


def test_report_picks_its_own_pose_file_in_the_profiles_order(tmp_path):
    """``<stem>.h5`` or DeepLabCut's ``<stem>DLC....h5``, never another recording's
    ``<stem>_b.h5``; bodyparts in another order are put in the profile's, as analyze does."""
    from gaitlive.report import load_recording

    data = make_analyze_output(tmp_path)
    other = data["poses"].copy()
    other[..., 0] += 1000.0  # another video's poses, far off
    write_pose(tmp_path / "barn1_b.h5", PoseData(other, PROFILE.bodyparts, ("bird",), fps=FPS))
    rec = load_recording(tmp_path, "barn1", PROFILE)
    assert Path(rec.poses.meta["path"]).name == "barn1DLC_gaitlive.h5"
    np.testing.assert_array_equal(rec.poses.poses, data["poses"])
    # the same poses, bodyparts listed backwards, in a --poses folder
    (tmp_path / "barn1DLC_gaitlive.h5").unlink()
    (tmp_path / "ro").mkdir()
    rev = list(reversed(PROFILE.bodyparts))
    write_pose(tmp_path / "ro" / "barn1.h5",
               PoseData(data["poses"][:, :, ::-1].copy(), rev, ("bird",), fps=FPS))
    rec = load_recording(tmp_path, "barn1", PROFILE, pose_dirs=[tmp_path / "ro"])
    assert rec.poses.bodyparts == PROFILE.bodyparts
    np.testing.assert_array_equal(rec.poses.poses, data["poses"])


def test_report_database_keeps_each_runs_steps_apart(tmp_path):
    """Two runs (epochs) of one camera both have pass 1 of bird 3: each pass's gait diagram
    shows its own stances. The file name has characters a SQLite URI would misread."""
    path = tmp_path / "day #2 100%.sqlite"
    db = _listen_db(path)
    t = dt.datetime(2026, 3, 1, 9, 0).timestamp()
    for seq, (epoch, right) in enumerate((("e1", 11), ("e2", 5)), start=1):
        db.execute("INSERT INTO scores VALUES ('p', ?, ?, 'cam0', ?, ?, 3, 1, 0, 60, 4, 1.0, "
                   "1, 0.9, 1, '', 'm', ?)", (epoch, seq, t + seq, t + seq,
                                              json.dumps({"cadence_hz": 2.0})))
        for foot, a, b in (("left", 0, 11), ("right", 10, 10 + right)):
            db.execute("INSERT INTO steps VALUES ('p', ?, 1, 'cam0', ?, 3, 1, ?, 'lift', ?, ?, "
                       "0)", (epoch, t, foot, a, b))
    db.commit()
    db.close()
    before = sorted(p.name for p in tmp_path.iterdir())
    res = build_report(path, tmp_path / "rep", PROFILE)
    assert len(res.pass_pngs) == 2
    ratios = sorted(rgb_count(img, RIGHT_BAR) / rgb_count(img, LEFT_BAR)
                    for img in (cv2.imread(str(p)) for p in res.pass_pngs))
    assert ratios == [pytest.approx(6 / 12, rel=0.08), pytest.approx(12 / 12, rel=0.08)]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "rep") == before


def test_a_live_run_s_rate_change_sets_the_report_s_time_axis(tmp_path):
    """A live run's poses.h5 notes that the camera went from 30 to 15 fps at frame 100:
    the report's times follow it as analyze's do (frames after it are 1/15 s apart), and
    --fps sets one rate instead (review, 2026-12-07: durations and axes had half the real
    seconds after a halving)."""
    data = make_analyze_output(tmp_path)
    pd_ = PoseData(data["poses"], PROFILE.bodyparts, ("bird",), fps=30.0)
    pd_.meta["rate_changes"] = [(100, 15.0)]
    write_pose(tmp_path / "barn1DLC_gaitlive.h5", pd_)
    rec = load_recording(tmp_path, "barn1", PROFILE)
    assert rec.fps == 30.0 and rec.clock is not None
    np.testing.assert_allclose(rec.seconds([0, 60, 100, 130]),
                               [0.0, 2.0, 100 / 30.0, 100 / 30.0 + 2.0])
    fixed = load_recording(tmp_path, "barn1", PROFILE, fps=25.0)
    assert fixed.clock is None
    np.testing.assert_allclose(fixed.seconds([0, 50, 130]), [0.0, 2.0, 5.2])
    res = build_report(tmp_path, tmp_path / "rep", PROFILE)
    assert len(res.pass_pngs) == 2 and len(res.summary_pngs) == 1

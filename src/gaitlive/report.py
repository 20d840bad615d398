"""Gait reports: one PNG per pass and a summary per recording or per day.

Sources
-------
* ``gaitlive analyze`` output folders: ``<stem>_passes.csv`` (one row per pass: at least
  ``individual, pass_id, start_frame, end_frame, n_steps, score`` and the features),
  ``<stem>_steps.csv`` (``individual, pass_id, foot, strike_frame, lift_frame``) and the pose
  file ``<stem>*.h5`` (DeepLabCut layout). Each pass gets its joint angles over time (computed
  from the poses with the profile's angles), its gait diagram (stance bars per foot, as in
  step analysis) and its features and score; each recording gets a summary.
* ``gaitlive run`` output folders: the same files without a stem (``passes.csv``,
  ``steps.csv``, ``poses.h5``); the recording is named after the folder.
* SQLite databases of pass scores: a ``gaitlive listen`` database or a publisher journal
  (the msgpack ``pass`` bodies). They hold no poses and no steps, so each pass gets its
  features and score only; the summary is made per day (from the wall-clock time).

Plots use matplotlib with the Agg backend (no display needed). Scores are coloured on the
profile's scale with :func:`gaitlive.overlay.score_colour` (green sound ... red lame), as in
the live overlay.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import logging
import math
import os
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gaitlive.config import Profile
from gaitlive.dlcio import DLCFileError, PoseData, read_pose
from gaitlive.fileio import atomic_write, atomic_write_text
from gaitlive.gait.clock import FrameClock
from gaitlive.overlay import compute_angles, pass_pose_row, score_colour

log = logging.getLogger(__name__)

__all__ = [
    "ReportError",
    "Recording",
    "ReportResult",
    "build_report",
    "find_recordings",
    "load_recording",
    "read_pass_database",
    "compute_angle_series",
    "plot_pass",
    "plot_summary",
]

STEP_COLUMNS = ("individual", "pass_id", "foot", "strike_frame", "lift_frame")
PASS_COLUMNS = ("individual", "pass_id", "start_frame", "end_frame", "n_steps", "score")
_NOT_FEATURES = {"individual", "pass_id", "start_frame", "end_frame", "n_steps", "score",
                 "score_class", "confidence", "scored", "camera_id", "reason", "fps",
                 "t_wall", "t_mono", "seq", "publisher_id", "model", "recording", "day",
                 "t_start_s", "time", "video", "strike_s", "lift_s", "received_wall",
                 "epoch"}


class ReportError(ValueError):
    """A report input is missing or malformed (the message names the file and column)."""


@dataclass
class Recording:
    """One analysed recording: its passes, steps and poses.

    Attributes
    ----------
    name
        The recording's stem (or a day, for a database).
    passes
        One row per pass (the ``_passes.csv`` contract).
    steps
        One row per step (the ``_steps.csv`` contract); empty when unknown.
    poses
        The pose series, ``None`` when there is no pose file.
    fps
        Frames per second, ``None`` when unknown (plots then use frames).
    source
        The files it was read from.
    clock
        Frame -> seconds when a live camera changed its rate during the run (the changes
        its ``poses.h5`` notes, as ``gaitlive analyze`` follows them); ``None``: frames /
        ``fps``.
    """

    name: str
    passes: pd.DataFrame
    steps: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=STEP_COLUMNS))
    poses: PoseData | None = None
    fps: float | None = None
    source: list[Path] = field(default_factory=list)
    clock: FrameClock | None = None

    def seconds(self, frames: Any) -> np.ndarray:
        """Seconds of frame numbers (``fps`` and the rate changes), or the frames when
        the rate is unknown."""
        f = np.asarray(frames, dtype=float)
        if self.clock is not None:
            return np.vectorize(self.clock.seconds, otypes=[float])(f) if f.size else f
        return f / self.fps if self.fps else f


@dataclass
class ReportResult:
    """What :func:`build_report` wrote."""

    out_dir: Path
    pass_pngs: list[Path] = field(default_factory=list)
    summary_pngs: list[Path] = field(default_factory=list)
    index: Path | None = None


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------


def _read_csv(path: Path, required: Sequence[str], *, may_be_empty: bool = False
              ) -> pd.DataFrame:
    """``may_be_empty``: a 0-byte file is a table without rows (a live run writes the
    header of passes.csv with its first pass); otherwise it is an error (gaitlive analyze
    always writes the header row: an empty file was cut short or is not its output)."""
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        if not may_be_empty:
            raise ReportError(f"{path}: empty file; expected a table with at least the "
                              f"columns {list(required)} (gaitlive analyze writes the header "
                              f"row even when there is no row)") from None
        df = pd.DataFrame(columns=list(required))
    except Exception as e:  # pandas raises many kinds
        raise ReportError(f"{path}: cannot read as CSV ({e})") from e
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ReportError(f"{path}: missing column(s) {missing}; expected at least "
                          f"{list(required)}, got {list(df.columns)}")
    return df


def _pose_file(folder: Path, stem: str, profile: Profile | None, *, exact: bool = True
               ) -> PoseData | None:
    """The pose file of recording ``stem`` in ``folder``: ``<stem>.h5`` (``exact``), else
    DeepLabCut's ``<stem>DLC_....h5`` form; never another recording's (``<stem>_b.h5``).
    Its bodyparts are put in the profile's order (a file may list them in another order,
    or have more, as ``gaitlive analyze`` accepts)."""
    if exact:
        cands = [folder / f"{stem}.h5"]
    else:
        cands = sorted((p for p in folder.glob(f"{stem}DLC*.h5") if not p.name.startswith(".")),
                       key=lambda p: (len(p.name), p.name))
    for p in cands:
        if not p.is_file():
            continue
        try:
            data = read_pose(p)
        except DLCFileError as e:
            log.debug("skipping %s: %s", p, e)
            continue
        if profile is not None:
            try:
                data = data.select(profile.bodyparts)
            except ValueError as e:
                log.warning("%s: %s (profile %r); not used", p, e, profile.name)
                continue
        data.meta.setdefault("path", str(p))
        return data
    return None


def _fps_from(passes: pd.DataFrame, folder: Path, stem: str) -> float | None:
    if "fps" in passes.columns:
        v = pd.to_numeric(passes["fps"], errors="coerce").dropna()
        if len(v) and v.iloc[0] > 0:
            return float(v.iloc[0])
    for meta in (folder / f"{stem}_meta.json", folder / f"{stem}.json"):
        if meta.is_file():
            try:
                fps = json.loads(meta.read_text(encoding="utf-8")).get("fps")
            except (ValueError, AttributeError):
                continue
            if isinstance(fps, (int, float)) and fps > 0:
                return float(fps)
    return None


def _fps_from_steps(steps: pd.DataFrame) -> float | None:
    """``strike_frame / strike_s`` of the steps file (gaitlive analyze writes both)."""
    if "strike_s" not in steps.columns or not len(steps):
        return None
    f = pd.to_numeric(steps["strike_frame"], errors="coerce").to_numpy(dtype=float)
    t = pd.to_numeric(steps["strike_s"], errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(f) & np.isfinite(t) & (t > 0) & (f > 0)
    return float(np.median(f[ok] / t[ok])) if ok.any() else None


#: the stem of a ``gaitlive run`` output folder's recording (``passes.csv``, ``steps.csv``,
#: ``poses.h5`` without a stem)
RUN_STEM = ""


def _recording_files(folder: Path, stem: str) -> tuple[Path, Path, str]:
    """Passes file, steps file and pose-file stem of a recording."""
    if stem == RUN_STEM:
        return folder / "passes.csv", folder / "steps.csv", "poses"
    return folder / f"{stem}_passes.csv", folder / f"{stem}_steps.csv", stem


def find_recordings(folder: str | os.PathLike[str]) -> list[str]:
    """Stems of the ``<stem>_passes.csv`` files in ``folder`` (sorted); ``[RUN_STEM]`` for
    a ``gaitlive run`` output folder (``passes.csv``)."""
    folder = Path(folder)
    stems = sorted(p.name[: -len("_passes.csv")] for p in folder.glob("*_passes.csv")
                   if not p.name.startswith("."))
    if not stems and (folder / "passes.csv").is_file():
        return [RUN_STEM]
    return stems


def load_recording(folder: str | os.PathLike[str], stem: str, profile: Profile | None = None,
                   fps: float | None = None,
                   pose_dirs: Sequence[str | os.PathLike[str]] = ()) -> Recording:
    """Read one ``gaitlive analyze`` result: passes, steps (optional) and poses (optional).

    The pose file is ``<stem>*.h5`` in ``folder`` (analyze writes it there for a video), else
    in one of ``pose_dirs`` (where the analysed pose file came from).

    Raises
    ------
    ReportError
        When ``<stem>_passes.csv`` is missing or lacks a required column, or the steps file
        lacks one.
    """
    folder = Path(folder)
    ppath, spath, pose_stem = _recording_files(folder, stem)
    if not ppath.is_file():
        raise ReportError(f"{ppath}: passes file not found (expected gaitlive analyze or "
                          f"gaitlive run output)")
    run = stem == RUN_STEM  # a live run's tables are empty until its first pass
    passes = _read_csv(ppath, PASS_COLUMNS, may_be_empty=run)
    sources = [ppath]
    if spath.is_file():
        steps = _read_csv(spath, STEP_COLUMNS, may_be_empty=run)
        sources.append(spath)
    else:
        log.warning("%s not found: no gait diagrams", spath)
        steps = pd.DataFrame(columns=STEP_COLUMNS)
    poses = None
    dirs = [Path(p).parent if Path(p).is_file() else Path(p) for p in (folder, *pose_dirs)]
    for exact in (True, False):  # <stem>.h5 anywhere before <stem>DLC....h5
        for d in dirs:
            poses = _pose_file(d, pose_stem, profile, exact=exact)
            if poses is not None:
                break
        if poses is not None:
            break
    if poses is None:
        log.warning("no usable pose file %s.h5 (or %sDLC...h5) in %s: no joint-angle plots "
                    "(use --poses DIR)", pose_stem, pose_stem,
                    ", ".join(str(d) for d in (folder, *pose_dirs)))
    else:
        sources.append(Path(poses.meta["path"]))
    given = fps
    fps = fps or (poses.fps if poses is not None else None) or _fps_from(passes, folder, stem) \
        or _fps_from_steps(steps)
    clock = None
    changes = poses.meta.get("rate_changes") if poses is not None else None
    if changes and fps and not given:  # --fps sets one rate, as for analyze
        clock = FrameClock.from_changes(fps, changes)
    name = stem if stem != RUN_STEM else (folder.resolve().name or "run")
    return Recording(name, passes, steps, poses, fps, sources, clock)


def _decode_body(blob: Any) -> dict[str, Any]:
    from gaitlive.publish.messages import unpack

    body = unpack(bytes(blob), what="pass body")
    if not isinstance(body, dict):
        raise ReportError(f"pass body: expected a map, got {type(body).__name__}")
    return body


def read_pass_database(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read every pass of a SQLite database into one table.

    Understands a publisher journal (table ``passes`` with msgpack ``body`` blobs) and
    tables with one column per field (``score`` and a time column ``t_wall``/``time``,
    features as columns or as a JSON ``features`` column), as ``gaitlive listen`` writes.

    Returns
    -------
    pandas.DataFrame
        One row per pass with ``individual, pass_id, start_frame, end_frame, n_steps,
        score, camera_id, t_wall`` and one column per feature.

    Raises
    ------
    ReportError
        When the file is not SQLite or has no table of passes.
    """
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"{path}: database not found")
    try:
        db = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    except sqlite3.DatabaseError as e:
        raise ReportError(f"{path}: not an SQLite database ({e})") from None
    try:
        rows: list[dict[str, Any]] = []
        for table in tables:
            cols = [r[1] for r in db.execute(f'PRAGMA table_info("{table}")')]
            if "body" in cols and table == "passes":
                tcol = "t_wall" if "t_wall" in cols else None
                q = f'SELECT body{", t_wall" if tcol else ""} FROM "{table}"'
                for r in db.execute(q):
                    body = _decode_body(r[0])
                    feats = body.pop("features", {}) or {}
                    if tcol:
                        body.setdefault("t_wall", r[1])
                    rows.append({**body, **feats})
            elif "score" in cols and ("pass_id" in cols or "individual" in cols):
                df = pd.read_sql_query(f'SELECT * FROM "{table}"', db)
                for rec in df.to_dict("records"):
                    if isinstance(rec.get("features"), str):
                        try:
                            rec.update(json.loads(rec.pop("features")))
                        except ValueError:
                            rec.pop("features", None)
                    elif "body" in rec and isinstance(rec["body"], bytes):
                        body = _decode_body(rec.pop("body"))
                        rec = {**body, **(body.pop("features", {}) or {}), **rec}
                    rows.append(rec)
    except sqlite3.DatabaseError as e:
        raise ReportError(f"{path}: cannot read passes ({e})") from None
    finally:
        db.close()
    if not rows:
        raise ReportError(f"{path}: no passes found (expected a gaitlive listen database or a "
                          f"publisher journal with a 'passes' table); tables: {tables}")
    df = pd.DataFrame(rows)
    if "t_wall" not in df.columns:
        for alt in ("time", "received_wall", "t_received"):
            if alt in df.columns:
                df["t_wall"] = pd.to_numeric(df[alt], errors="coerce")
                break
    for c in PASS_COLUMNS:
        if c not in df.columns:
            df[c] = np.nan
    df = df.drop_duplicates(subset=[c for c in ("camera_id", "individual", "pass_id",
                                                 "start_frame", "t_wall") if c in df.columns])
    return df.sort_values("t_wall" if "t_wall" in df.columns else "start_frame",
                          ignore_index=True)


# --------------------------------------------------------------------------------------
# Computing
# --------------------------------------------------------------------------------------


def compute_angle_series(poses: np.ndarray, profile: Profile) -> dict[str, np.ndarray]:
    """Joint angles over time for one bird: ``(n_frames, n_keypoints, 3)`` -> name ->
    ``(n_frames,)`` degrees, NaN where a keypoint is missing or below ``pcutoff``."""
    p = np.array(poses, dtype=np.float64)
    low = np.nan_to_num(p[..., 2], nan=0.0) < profile.pcutoff
    p[low, :2] = np.nan
    return {k: np.asarray(v, dtype=float) for k, v in compute_angles(p, profile).items()}


def _rgb(score: float | None, profile: Profile) -> tuple[float, float, float]:
    b, g, r = score_colour(score, profile.score.min_score, profile.score.max_score)
    return (r / 255.0, g / 255.0, b / 255.0)


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _pose_rows(rec: Recording, individual: Any, f0: float, f1: float, pcutoff: float
               ) -> np.ndarray | None:
    """The pose series of a pass's bird (see :func:`gaitlive.overlay.pass_pose_row`)."""
    if rec.poses is None:
        return None
    names = list(rec.poses.individuals)
    ind = str(individual) if str(individual) in names else individual
    row = pass_pose_row(rec.poses.poses, np.asarray(rec.poses.frame_index), ind, int(f0),
                        int(f1), pcutoff, names)
    return rec.poses.poses[:, row] if row >= 0 else None


def _features_of(row: pd.Series) -> dict[str, float]:
    out = {}
    for k, v in row.items():
        if k in _NOT_FEATURES or isinstance(v, (bool, np.bool_)):
            continue
        f = _num(v)
        if f is not None:
            out[str(k)] = f
    return out


# --------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    """Save through a temporary file in the same folder, then rename (atomic)."""
    return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100))


def plot_pass(rec: Recording, row: pd.Series | dict[str, Any], profile: Profile,
              out_png: str | os.PathLike[str]) -> Path:
    """One pass's report: joint angles over time, gait diagram, features and score.

    Parameters
    ----------
    rec
        The recording the pass belongs to (its steps and poses are used when present).
    row
        The pass (a row of ``rec.passes``).
    profile
        Angles, legs and the score scale.
    out_png
        The PNG to write (atomically).

    Returns
    -------
    pathlib.Path
    """
    plt = _pyplot()
    row = pd.Series(row)
    ind, pid = row["individual"], row["pass_id"]
    f0, f1 = _num(row.get("start_frame")), _num(row.get("end_frame"))
    fps = rec.fps
    unit = "s" if fps else "frame"

    t = rec.seconds

    score = _num(row.get("score"))
    scored = row.get("scored", score is not None)
    scored = bool(scored) if _num(scored) is not None or isinstance(scored, bool) else True
    if not scored:
        score = None
    feats = _features_of(row)
    fig = plt.figure(figsize=(12, 7.5), layout="constrained")
    gs = fig.add_gridspec(2, 2, width_ratios=(2.3, 1), height_ratios=(1.6, 1))
    ax_a = fig.add_subplot(gs[0, 0])
    ax_g = fig.add_subplot(gs[1, 0], sharex=ax_a)
    ax_t = fig.add_subplot(gs[:, 1])
    title = f"{rec.name} - bird {ind}, pass {pid}"
    if f0 is not None and f1 is not None:
        title += f"  (frames {int(f0)}-{int(f1)}"
        title += f", {float(t(f1) - t(f0)):.1f} s)" if fps else ")"
    fig.suptitle(title, fontsize=13, fontweight="bold")

    # joint angles
    series = _pose_rows(rec, ind, f0, f1, profile.pcutoff) if f0 is not None \
        and f1 is not None else None
    drew = False
    if series is not None and f0 is not None and f1 is not None and rec.poses is not None:
        fi = np.asarray(rec.poses.frame_index)
        sel = (fi >= f0) & (fi <= f1)
        if sel.any():
            angles = compute_angle_series(series[sel], profile)
            for name, vals in angles.items():
                if np.isfinite(vals).any():
                    ax_a.plot(t(fi[sel]), vals, lw=1.6, label=name)
                    drew = True
    if drew:
        ax_a.legend(loc="upper right", fontsize=8, ncol=2, framealpha=0.8)
    else:
        ax_a.text(0.5, 0.5, "no poses for this pass", ha="center", va="center",
                  transform=ax_a.transAxes, color="0.4")
    ax_a.set_ylabel("joint angle (deg)")
    ax_a.set_title("joint angles", loc="left", fontsize=10)
    ax_a.grid(alpha=0.3)

    # gait diagram: stance bars per foot
    legs = list(profile.gait.legs)
    st = rec.steps
    mine = st[(st["individual"].astype(str) == str(ind)) & (st["pass_id"].astype(str) == str(pid))]
    # a database holds several runs (publishers, epochs) whose pass ids restart at 0
    for key in ("camera_id", "publisher_id", "epoch"):
        if key in mine.columns and isinstance(row.get(key), str):
            mine = mine[mine[key].astype(str) == row[key]]
    if len(mine):  # strike events whose lift is known too: keep the complete stance
        mine = mine.assign(_lift=pd.to_numeric(mine["lift_frame"], errors="coerce"))
        mine = mine.sort_values("_lift", na_position="first").drop_duplicates(
            subset=["foot", "strike_frame"], keep="last")
    feet = legs + sorted(set(mine["foot"].astype(str)) - set(legs))
    leg_colours = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e"]
    for y, foot in enumerate(feet):
        sub = mine[mine["foot"].astype(str) == foot]
        bars = []
        for _, s in sub.iterrows():
            a, b = _num(s["strike_frame"]), _num(s["lift_frame"])
            if a is None:
                continue
            if b is None:
                b = f1 if f1 is not None else a
            bars.append((float(t(a)), float(t(b + 1) - t(a))))
        ax_g.broken_barh(bars, (y - 0.35, 0.7), facecolors=leg_colours[y % len(leg_colours)])
    ax_g.set_yticks(range(len(feet)), [f"{f} foot" for f in feet])
    ax_g.set_ylim(-0.7, len(feet) - 0.3)
    ax_g.invert_yaxis()
    ax_g.set_xlabel(f"time ({unit})" if fps else "frame")
    ax_g.set_title("gait diagram (bars: foot on the ground)", loc="left", fontsize=10)
    ax_g.grid(axis="x", alpha=0.3)
    if f0 is not None and f1 is not None:
        ax_g.set_xlim(float(t(f0)), float(t(f1 + 1)))

    # score and features
    ax_t.axis("off")
    colour = _rgb(score, profile)
    label = f"{score:.1f}" if score is not None else "not scored"
    ax_t.text(0.5, 0.93, label, ha="center", va="center", fontsize=30, fontweight="bold",
              color="black" if score is not None else "0.3", transform=ax_t.transAxes,
              bbox={"boxstyle": "round,pad=0.4", "fc": colour, "ec": "none"})
    scale = f"{profile.score.scale} {profile.score.min_score}-{profile.score.max_score}"
    sub_t = f"score ({scale})"
    reason = row.get("reason")
    if score is None and isinstance(reason, str) and reason:
        sub_t = reason
    ax_t.text(0.5, 0.83, sub_t, ha="center", va="center", fontsize=9, color="0.3",
              transform=ax_t.transAxes)
    n_steps = _num(row.get("n_steps"))
    lines = [("steps", f"{int(n_steps)}" if n_steps is not None else "?")]
    lines += [(k, f"{v:.3g}") for k, v in feats.items()]
    max_lines = 34
    if len(lines) > max_lines:
        lines = lines[: max_lines - 1] + [("...", f"{len(lines) - max_lines + 1} more")]
    y0, dy = 0.76, min(0.022, 0.74 / max(len(lines), 1))
    fs = 9 if dy >= 0.02 else 7.5
    for i, (k, v) in enumerate(lines):
        ax_t.text(0.02, y0 - i * dy, k, fontsize=fs, family="monospace",
                  transform=ax_t.transAxes)
        ax_t.text(0.98, y0 - i * dy, v, fontsize=fs, family="monospace", ha="right",
                  transform=ax_t.transAxes)
    out = _save(fig, Path(out_png))
    plt.close(fig)
    return out


def plot_summary(passes: pd.DataFrame, profile: Profile, out_png: str | os.PathLike[str], *,
                 title: str, time_column: str = "start_frame", fps: float | None = None,
                 seconds: Any = None) -> Path:
    """Score distribution and scores over time of many passes.

    Parameters
    ----------
    passes
        One row per pass with ``score`` and ``time_column``.
    time_column
        ``start_frame`` (converted to seconds with ``fps`` when known) or ``t_wall``
        (seconds since the epoch, plotted as local clock time).
    seconds
        Frames -> seconds instead of ``/ fps`` (:meth:`Recording.seconds`: a live run whose
        camera changed its rate).
    """
    plt = _pyplot()
    scores = pd.to_numeric(passes["score"], errors="coerce")
    if "scored" in passes.columns:
        sc = passes["scored"].map(lambda v: bool(v) if _num(v) is not None
                                  or isinstance(v, bool) else True)
        scores = scores.where(sc)
    ok = scores.notna().to_numpy()
    lo, hi = profile.score.min_score, profile.score.max_score
    fig, (ax_h, ax_t) = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained",
                                     gridspec_kw={"width_ratios": (1, 1.6)})
    n, n_ok = len(passes), int(ok.sum())
    mean = f", mean {scores[ok].mean():.2f}" if n_ok else ""
    fig.suptitle(f"{title}: {n} passes, {n_ok} scored{mean}", fontsize=13, fontweight="bold")
    edges = np.arange(lo - 0.5, hi + 1.0, 1.0)
    counts, _ = np.histogram(scores[ok].clip(lo, hi), bins=edges)
    centres = (edges[:-1] + edges[1:]) / 2
    ax_h.bar(centres, counts, width=0.85, color=[_rgb(c, profile) for c in centres],
             edgecolor="0.2")
    if n - n_ok:
        ax_h.bar([hi + 1.2], [n - n_ok], width=0.85, color=_rgb(None, profile), edgecolor="0.2")
        ax_h.set_xticks(list(range(lo, hi + 1)) + [hi + 1.2],
                        [str(v) for v in range(lo, hi + 1)] + ["n/s"])
    else:
        ax_h.set_xticks(range(lo, hi + 1))
    ax_h.set_xlabel(f"score ({profile.score.scale})")
    ax_h.set_ylabel("passes")
    from matplotlib.ticker import MaxNLocator

    ax_h.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_h.set_title("score distribution", loc="left", fontsize=10)
    ax_h.grid(axis="y", alpha=0.3)
    if time_column in passes.columns:
        tv = pd.to_numeric(passes[time_column], errors="coerce").to_numpy(dtype=float)
    else:
        tv = np.arange(len(passes), dtype=float)
    sel = np.isfinite(tv) & ok
    ys = scores.to_numpy(dtype=float)[sel]
    if time_column == "t_wall":
        xs: list[Any] = [_dt.datetime.fromtimestamp(v) for v in tv[sel]]
        xlabel = "time of day"
    elif time_column in ("start_frame", "end_frame"):
        xs = (list(seconds(tv[sel])) if seconds is not None and fps else
              list(tv[sel] / fps) if fps else list(tv[sel]))
        xlabel = "pass start (s)" if fps else "pass start (frame)"
    else:
        xs = list(tv[sel])
        xlabel = time_column.replace("_", " ")
    if xs:
        ax_t.scatter(xs, ys, c=[_rgb(v, profile) for v in ys], s=60, edgecolors="0.2",
                     zorder=3)
    ax_t.set_ylim(lo - 0.5, hi + 0.5)
    ax_t.set_yticks(range(lo, hi + 1))
    ax_t.set_xlabel(xlabel)
    ax_t.set_ylabel("score")
    ax_t.set_title("scores over time", loc="left", fontsize=10)
    ax_t.grid(alpha=0.3)
    if time_column == "t_wall" and xs:
        ax_t.tick_params(axis="x", labelrotation=30)
    out = _save(fig, Path(out_png))
    plt.close(fig)
    return out


# --------------------------------------------------------------------------------------
# The whole report
# --------------------------------------------------------------------------------------


def _safe(s: Any) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(s))


_INDEX_HEAD = "<!doctype html><meta charset='utf-8'><title>"
_TITLE = "gaitlive report"  # how an index this module wrote begins its title


def _write_index(result: ReportResult, title: str) -> Path:
    parts = [f"{_INDEX_HEAD}{html.escape(title)}</title>",
             f"<h1>{html.escape(title)}</h1>", "<h2>Summaries</h2>"]
    for p in result.summary_pngs:
        parts.append(f"<p><img src='{html.escape(p.name)}' style='max-width:100%'></p>")
    parts.append("<h2>Passes</h2>")
    for p in result.pass_pngs:
        parts.append(f"<p><a href='{html.escape(p.name)}'>{html.escape(p.stem)}</a></p>")
    return atomic_write_text(result.out_dir / "index.html", "\n".join(parts) + "\n")


def build_report(source: str | os.PathLike[str], out_dir: str | os.PathLike[str] | None,
                 profile: Profile, *, fps: float | None = None,
                 pose_dirs: Sequence[str | os.PathLike[str]] = (),
                 progress: bool = False) -> ReportResult:
    """Build every report of a ``gaitlive analyze`` folder or a pass-score database.

    Parameters
    ----------
    source
        A folder with ``<stem>_passes.csv`` files, or an SQLite file (``.sqlite``/``.db``).
    out_dir
        Where the PNGs go (default ``<source folder>/report``).
    profile
        Angles, legs and score scale.
    fps
        Frame rate, when the analyze output does not record it.
    pose_dirs
        More folders to look for ``<stem>*.h5`` pose files in.
    progress
        Show a tqdm progress bar.

    Returns
    -------
    ReportResult
        The PNGs written and an ``index.html`` listing them.

    Raises
    ------
    ReportError
        When ``source`` holds nothing to report.
    """
    source = Path(source)
    if not source.exists():
        raise ReportError(f"{source}: not found (expected a gaitlive analyze or run output "
                          f"folder or a pass-score SQLite database)")
    missing = [str(d) for d in pose_dirs if not Path(d).is_dir()]
    if missing:
        raise ReportError(f"--poses {', '.join(missing)}: not a folder (expected folders "
                          f"holding the analysed pose files <stem>*.h5)")
    base = source if source.is_dir() else source.parent
    out = Path(out_dir) if out_dir is not None else base / "report"
    existed = out.is_dir()
    if existed:
        _keep_earlier_report(out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _build(source, out, profile, fps, pose_dirs, progress)
    except BaseException:
        if not existed and not any(out.iterdir()):
            out.rmdir()  # a failed report leaves no empty folder behind
        raise


def _keep_earlier_report(out: Path) -> Path | None:
    """Move an earlier report in ``out`` (its ``index.html`` and the PNGs it lists) to
    ``out/previous/<time>/``: a report of other data (a new run in the same folder) would
    otherwise leave the earlier passes' PNGs beside an index that does not list them. Other
    files in ``out`` are left alone."""
    from gaitlive.fileio import move_to_previous

    index = out / "index.html"
    if not index.is_file():
        return None
    try:
        text = index.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None  # not a report's index: not ours to move
    if not text.startswith(_INDEX_HEAD + _TITLE):
        return None
    names = {html.unescape(m) for m in re.findall(r"(?:src|href)='([^'/]+\.png)'", text)}
    dest = move_to_previous([index, *sorted(out / n for n in names)], out)
    log.warning("%s: the earlier report was moved to %s", out, dest)
    return dest


def _build(source: Path, out: Path, profile: Profile, fps: float | None,
           pose_dirs: Sequence[str | os.PathLike[str]], progress: bool) -> ReportResult:
    result = ReportResult(out)
    bar = None
    if source.is_dir():
        stems = find_recordings(source)
        if not stems:
            dbs = sorted(p for p in source.iterdir()
                         if p.suffix in (".sqlite", ".db", ".sqlite3"))
            if not dbs:
                raise ReportError(f"{source}: no <stem>_passes.csv (gaitlive analyze output), "
                                  f"no passes.csv (gaitlive run output) and no .sqlite "
                                  f"database in this folder")
            for db in dbs:
                _report_database(db, out, profile, result)
        else:
            recs = [load_recording(source, s, profile, fps, pose_dirs) for s in stems]
            total = sum(len(r.passes) for r in recs)
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=total, unit="pass", desc="report")
            for rec in recs:
                for _, row in rec.passes.iterrows():
                    name = f"{_safe(rec.name)}_bird{_safe(row['individual'])}_pass" \
                           f"{_safe(row['pass_id'])}.png"
                    result.pass_pngs.append(plot_pass(rec, row, profile, out / name))
                    if bar is not None:
                        bar.update(1)
                if len(rec.passes):
                    result.summary_pngs.append(plot_summary(
                        rec.passes, profile, out / f"{_safe(rec.name)}_summary.png",
                        title=rec.name, time_column="start_frame", fps=rec.fps,
                        seconds=rec.seconds))
            if len(recs) > 1:
                allp = pd.concat([r.passes.assign(recording=r.name) for r in recs],
                                 ignore_index=True)
                allp["pass (in file order)"] = np.arange(len(allp))
                result.summary_pngs.insert(0, plot_summary(
                    allp, profile, out / "all_summary.png",
                    title=f"{len(recs)} recordings", time_column="pass (in file order)"))
    else:
        _report_database(source, out, profile, result)
    if bar is not None:
        bar.close()
    result.index = _write_index(result, f"{_TITLE}: {source.name}")
    log.info("report: %d pass PNGs, %d summaries in %s", len(result.pass_pngs),
             len(result.summary_pngs), out)
    return result


def _report_database(db: Path, out: Path, profile: Profile, result: ReportResult) -> None:
    df = read_pass_database(db)
    tw = pd.to_numeric(df["t_wall"], errors="coerce") if "t_wall" in df.columns else None
    if tw is not None and tw.notna().any():
        df["day"] = [(_dt.datetime.fromtimestamp(v).date().isoformat() if math.isfinite(v)
                      else "unknown") for v in tw.to_numpy(dtype=float)]
    else:
        df["day"] = "unknown"
    steps = _read_db_steps(db)
    for day, sub in df.groupby("day", sort=True):
        rec = Recording(f"{db.stem} {day}", sub.reset_index(drop=True), steps=steps,
                        source=[db])
        for i, row in rec.passes.iterrows():
            cam = _safe(row.get("camera_id", "")) if isinstance(row.get("camera_id"), str) \
                else ""
            name = f"{_safe(db.stem)}_{day}_{cam + '_' if cam else ''}{i:04d}_bird" \
                   f"{_safe(row['individual'])}_pass{_safe(row['pass_id'])}.png"
            result.pass_pngs.append(plot_pass(rec, row, profile, out / name))
        result.summary_pngs.append(plot_summary(
            rec.passes, profile, out / f"{_safe(db.stem)}_{day}_summary.png",
            title=f"{db.stem} {day}", time_column="t_wall" if tw is not None else "start_frame"))


def _read_db_steps(path: Path) -> pd.DataFrame:
    """The ``steps`` table of a ``gaitlive listen`` database, if it has one."""
    empty = pd.DataFrame(columns=STEP_COLUMNS)
    try:
        db = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)
        try:
            cols = [r[1] for r in db.execute('PRAGMA table_info("steps")')]
            if not set(STEP_COLUMNS) <= set(cols):
                return empty
            return pd.read_sql_query("SELECT * FROM steps", db)
        finally:
            db.close()
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as e:
        log.warning("%s: cannot read steps (%s)", path, e)
        return empty

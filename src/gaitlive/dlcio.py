"""DeepLabCut file formats: pose time series, labelled frames, project configs.

gaitlive reads and writes DeepLabCut's own layouts so that DeepLabCut, movement and
sleap-io open every file it writes:

* **Pose files** (``*.h5`` with key ``df_with_missing`` and the matching ``*.csv``):
  one row per frame; column levels ``scorer / bodyparts / coords`` with coords
  ``x, y, likelihood``; multi-animal files add an ``individuals`` level
  (``scorer / individuals / bodyparts / coords``).
* **Labelled frames** (``labeled-data/<video>/CollectedData_<scorer>.h5`` and ``.csv``):
  index ``("labeled-data", <video>, <image>)``, columns ``scorer / bodyparts / coords``
  with coords ``x, y``; unlabelled points are NaN.

In memory everything is the gaitlive pose layout (see :mod:`gaitlive.frames`):
``float32 (n_frames, n_individuals, n_keypoints, 3)``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gaitlive.fileio import atomic_write
from gaitlive.frames import validate_pose_series

log = logging.getLogger(__name__)

__all__ = [
    "PoseData",
    "DLCFileError",
    "read_pose",
    "read_pose_scorer",
    "write_pose",
    "read_collected_data",
    "reader_error_text",
    "write_collected_data",
    "read_cow_csv",
    "read_project_config",
]

H5_KEY = "df_with_missing"


class DLCFileError(ValueError):
    """A DeepLabCut file is missing or not in the expected layout (the message names it)."""


@dataclass
class PoseData:
    """A pose time series with its names.

    Attributes
    ----------
    poses
        ``float32 (n_frames, n_individuals, n_keypoints, 3)``: x, y, likelihood.
    bodyparts
        Keypoint names, in column order.
    individuals
        Individual names; ``("single",)``-like for single-animal data.
    scorer
        DeepLabCut scorer (model or annotator) name.
    fps
        Frames per second, when known.
    frame_index
        Source frame number of each row (``arange(n_frames)`` unless rows were skipped).
    """

    poses: np.ndarray
    bodyparts: tuple[str, ...]
    individuals: tuple[str, ...] = ("animal",)
    scorer: str = "gaitlive"
    fps: float | None = None
    frame_index: np.ndarray | None = None
    multi_animal: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.poses = validate_pose_series(self.poses)
        self.bodyparts = tuple(self.bodyparts)
        self.individuals = tuple(self.individuals)
        n_t, n_i, n_k, _ = self.poses.shape
        if n_k != len(self.bodyparts):
            raise ValueError(f"poses have {n_k} keypoints but {len(self.bodyparts)} "
                             f"bodyparts were named: {list(self.bodyparts)}")
        if n_i != len(self.individuals):
            raise ValueError(f"poses have {n_i} individuals but {len(self.individuals)} "
                             f"were named: {list(self.individuals)}")
        if self.frame_index is None:
            self.frame_index = np.arange(n_t)
        else:
            self.frame_index = np.asarray(self.frame_index)
            if len(self.frame_index) != n_t:
                raise ValueError("frame_index must have one entry per frame")

    @property
    def n_frames(self) -> int:
        return int(self.poses.shape[0])

    def select(self, bodyparts: Sequence[str]) -> PoseData:
        """These poses with only ``bodyparts``, in that order (a file may list its
        bodyparts in another order, or have more).

        Raises
        ------
        ValueError
            Naming the bodyparts the poses lack.
        """
        missing = [b for b in bodyparts if b not in self.bodyparts]
        if missing:
            raise ValueError(f"the poses lack the bodyparts {missing}; they have "
                             f"{list(self.bodyparts)}")
        if tuple(bodyparts) == self.bodyparts:
            return self
        order = [self.bodyparts.index(b) for b in bodyparts]
        return dataclasses.replace(self, poses=self.poses[:, :, order],
                                   bodyparts=tuple(bodyparts))


# --------------------------------------------------------------------------------------
# Pose files
# --------------------------------------------------------------------------------------


def _pose_columns(scorer: str, bodyparts: Sequence[str], individuals: Sequence[str] | None
                  ) -> pd.MultiIndex:
    if individuals is None:
        return pd.MultiIndex.from_product(
            [[scorer], list(bodyparts), ["x", "y", "likelihood"]],
            names=["scorer", "bodyparts", "coords"])
    return pd.MultiIndex.from_product(
        [[scorer], list(individuals), list(bodyparts), ["x", "y", "likelihood"]],
        names=["scorer", "individuals", "bodyparts", "coords"])


def pose_dataframe(data: PoseData) -> pd.DataFrame:
    """The DeepLabCut DataFrame for ``data`` (multi-animal layout iff ``data.multi_animal``
    or more than one individual)."""
    multi = data.multi_animal or len(data.individuals) > 1
    n_t = data.n_frames
    if multi:
        cols = _pose_columns(data.scorer, data.bodyparts, data.individuals)
        values = data.poses.reshape(n_t, -1)
    else:
        cols = _pose_columns(data.scorer, data.bodyparts, None)
        values = data.poses[:, 0].reshape(n_t, -1)
    return pd.DataFrame(values.astype(np.float64), columns=cols,
                        index=pd.Index(np.asarray(data.frame_index)))


def write_pose(path: str | os.PathLike[str], data: PoseData, *, csv: bool = True) -> Path:
    """Write a DeepLabCut pose file (``.h5``, key ``df_with_missing``) and its ``.csv``.

    Parameters
    ----------
    path
        Target ``.h5`` path (a ``.csv`` path writes only the CSV).
    data
        The poses. More than one individual (or ``data.multi_animal``) writes the
        multi-animal layout with the ``individuals`` column level.
    csv
        Also write the ``.csv`` beside the ``.h5``.

    Returns
    -------
    Path
        The path written (the ``.h5`` unless a ``.csv`` was asked for).
    """
    path = Path(path)
    df = pose_dataframe(data)
    if path.suffix == ".csv":
        atomic_write(path, lambda p: df.to_csv(p))
        return path
    if path.suffix != ".h5":
        raise DLCFileError(f"{path}: expected a .h5 or .csv pose file name")
    def write_h5(p: Path) -> None:
        # DeepLabCut 3 writes analysis files in "table" format (pandas can append to them)
        with pd.HDFStore(p, mode="w") as store:
            store.put(H5_KEY, df, format="table")
            set_pose_meta(store, fps=data.fps, frame_size=data.meta.get("frame_size"),
                          rate_changes=data.meta.get("rate_changes"))

    atomic_write(path, write_h5)
    if csv:
        atomic_write(path.with_suffix(".csv"), lambda p: df.to_csv(p))
    return path


META_ATTR = "gaitlive_meta"


def set_pose_meta(store: pd.HDFStore, *, fps: float | None,
                  frame_size: tuple[int, int] | None,
                  rate_changes: Sequence[tuple[int, float]] | None = None) -> None:
    """Note the frame rate and frame size ``(width, height)`` of the poses in an open pose
    file: a JSON string attribute of its table (``gaitlive_meta``; DeepLabCut ignores it,
    and nothing is pickled), so a later analysis of the file knows them. ``rate_changes``:
    ``(frame, fps)`` where a live camera changed its rate (``fps`` is the starting one;
    :class:`gaitlive.gait.clock.FrameClock`)."""
    changes = [[int(f), float(r)] for f, r in rate_changes] if rate_changes else None
    meta = {k: v for k, v in (("fps", fps), ("frame_size", frame_size),
                              ("rate_changes", changes)) if v is not None}
    if meta:
        setattr(store.get_storer(H5_KEY).attrs, META_ATTR, json.dumps(
            {k: (list(v) if isinstance(v, tuple) else v) for k, v in meta.items()}))


def _pose_meta(path: Path) -> dict[str, Any]:
    """What :func:`set_pose_meta` noted in a pose file (empty when nothing or unreadable;
    a note that is there but malformed is ignored with a warning naming the file)."""
    try:
        with pd.HDFStore(path, mode="r") as store:
            attrs = store.get_storer(H5_KEY).attrs
            text = getattr(attrs, META_ATTR, None)
        meta = json.loads(text) if isinstance(text, str) else {}
    except Exception:  # another writer's file: no note
        return {}
    if not isinstance(meta, dict):
        log.warning("%s: its gaitlive note (%s) is not a JSON object: ignored", path,
                    META_ATTR)
        return {}

    def number(v: Any) -> bool:  # JSON true/false are no numbers
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    out: dict[str, Any] = {}
    fps = meta.get("fps")
    if number(fps) and 0 < fps <= 1000:
        out["fps"] = float(fps)
    size = meta.get("frame_size")
    if isinstance(size, list) and len(size) == 2 and all(
            number(v) and v == int(v) and v > 0 for v in size):
        out["frame_size"] = (int(size[0]), int(size[1]))
    if "rate_changes" in meta:
        changes = meta["rate_changes"]
        ok = (isinstance(changes, list) and all(
            isinstance(c, list) and len(c) == 2 and number(c[0]) and c[0] == int(c[0])
            and c[0] >= 0 and number(c[1]) and 0 < c[1] <= 1000 for c in changes)
            and all(a[0] < b[0] for a, b in itertools.pairwise(changes)))
        if ok and changes:
            out["rate_changes"] = [(int(c[0]), float(c[1])) for c in changes]
        elif not ok:
            # the analysis runs the whole file at its starting rate then: say so
            log.warning("%s: its note of frame rate changes is malformed (expected a list of "
                        "[frame, fps] with increasing frames and 0 < fps <= 1000, got %.80s): "
                        "ignored, the whole file is taken at one rate (set --fps to be sure)",
                        path, json.dumps(changes))
    return out


def _frame_to_posedata(df: pd.DataFrame, path: Path) -> PoseData:
    names = list(df.columns.names)
    if df.columns.nlevels == 3:
        multi = False
    elif df.columns.nlevels == 4:
        multi = True
    else:
        raise DLCFileError(
            f"{path}: expected DeepLabCut columns scorer/bodyparts/coords or "
            f"scorer/individuals/bodyparts/coords, got {df.columns.nlevels} levels {names}")
    scorer = str(df.columns.get_level_values(0)[0])
    coords = list(dict.fromkeys(df.columns.get_level_values(-1)))
    if coords[:2] != ["x", "y"]:
        raise DLCFileError(f"{path}: expected coords x, y[, likelihood], got {coords}")
    bodyparts = list(dict.fromkeys(df.columns.get_level_values(-2)))
    if multi:
        individuals = list(dict.fromkeys(df.columns.get_level_values(1)))
    else:
        individuals = ["animal"]
    n_t = len(df)
    has_lk = "likelihood" in coords
    want = [(scorer, *((ind,) if multi else ()), bp, c)
            for ind in individuals for bp in bodyparts for c in ("x", "y", "likelihood")]
    # reindex (not per-column lookups): missing columns, e.g. bodyparts the "single" animal of
    # maDLC files lacks, come back as NaN
    sub = df.reindex(columns=pd.MultiIndex.from_tuples(want))
    num = sub.apply(pd.to_numeric, errors="coerce")
    cut = False  # a number cut off in the last row (a file cut short by a crash)
    for col in (c for c in sub.columns if sub[c].dtype == object):
        # text where a number belongs (a hand-edited or damaged file): an error, not a gap
        raw = sub[col]
        bad = np.flatnonzero((num[col].isna() & raw.notna()
                              & raw.astype(str).str.strip().ne("")).to_numpy())
        if len(bad) == 1 and bad[0] == n_t - 1:
            cut = True
        elif len(bad):
            i = int(bad[0])
            raise DLCFileError(f"{path}: row {df.index[i]!r}, column {'/'.join(map(str, col))}: "
                               f"{raw.iloc[i]!r} is not a number ({len(bad)} such cells in "
                               f"that column); expected coordinates and likelihoods (an "
                               f"empty cell is a missing keypoint)")
    if cut:
        log.warning("%s: its last row ends in a cell that is not a number (the file was cut "
                    "short?): read as a missing keypoint", path)
    values = num.to_numpy(dtype=np.float32)
    poses = values.reshape(n_t, len(individuals), len(bodyparts), 3)
    if not has_lk:
        poses[..., 2] = np.where(np.isfinite(poses[..., 0]), 1.0, 0.0)
    poses[..., 2] = np.nan_to_num(poses[..., 2], nan=0.0)
    missing = ~np.isfinite(poses[..., 0]) | ~np.isfinite(poses[..., 1])
    poses[missing, 2] = 0.0
    try:
        frame_index = np.asarray(df.index, dtype=np.int64)
    except (TypeError, ValueError):
        frame_index = np.arange(n_t)
    return PoseData(poses=poses, bodyparts=tuple(bodyparts), individuals=tuple(individuals),
                    scorer=scorer, frame_index=frame_index, multi_animal=multi)


_POSE_EXPECTED = ("expected a DeepLabCut .h5 or .csv pose file (HDF5 with key "
                  "'df_with_missing', or CSV with the header rows scorer, [individuals,] "
                  "bodyparts, coords)")


def reader_error_text(e: BaseException) -> str:
    """A one-line reason for a reader's exception: HDF5's multi-line C back-trace becomes
    a plain sentence, anything else its first non-empty line."""
    text = str(e)
    if "HDF5 error back trace" in text or type(e).__name__.startswith("HDF5"):
        return "not a readable HDF5 file: truncated, or not HDF5"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    first = lines[0] if lines else type(e).__name__
    return first if len(first) <= 200 else first[:197] + "..."


def _read_pose_frame(path: Path, nrows: int | None = None) -> pd.DataFrame:
    """The DataFrame of a DeepLabCut pose file (its first ``nrows`` rows when given), or a
    one-line :class:`DLCFileError` naming the file and what was expected."""
    if not path.is_file():
        raise DLCFileError(f"{path}: pose file not found")
    suffix = path.suffix.lower()
    if suffix not in (".h5", ".csv"):
        raise DLCFileError(f"{path}: {_POSE_EXPECTED}")
    if path.stat().st_size == 0:
        raise DLCFileError(f"{path}: the file is empty; {_POSE_EXPECTED}")
    try:
        if suffix == ".h5":
            df = pd.read_hdf(path, start=0, stop=nrows) if nrows is not None \
                else pd.read_hdf(path)
        else:
            head = pd.read_csv(path, nrows=4, header=None, index_col=0, dtype=str)
            labels = [str(x) for x in head.index]
            levels = 4 if labels[1:2] == ["individuals"] else 3
            if labels[:1] != ["scorer"] or len(labels) < levels:
                raise DLCFileError(f"{path}: the header rows are {labels[:levels]}; "
                                   f"{_POSE_EXPECTED}")
            df = pd.read_csv(path, header=list(range(levels)), index_col=0, nrows=nrows)
            if nrows is None:
                _warn_short_rows(path, levels)
    except DLCFileError:
        raise
    except Exception as e:  # pandas/tables raise many kinds
        raise DLCFileError(f"{path}: cannot read as a DeepLabCut pose file "
                           f"({reader_error_text(e)}); {_POSE_EXPECTED}") from e
    if not isinstance(df, pd.DataFrame):
        raise DLCFileError(f"{path}: expected a DataFrame in the file")
    return df


def _warn_short_rows(path: Path, header_rows: int) -> None:
    """Warn, naming the file and row, when a pose CSV's rows have fewer cells than its
    header (a file cut short by a crash, or a damaged copy): pandas reads the missing cells
    as missing keypoints without a word."""
    want, short = -1, []
    with open(path, encoding="utf-8", errors="replace") as fh:  # streamed: long files
        for i, line in enumerate(fh, start=1):
            if i == 1:
                want = line.count(",")
            elif i > header_rows and line.strip() and line.count(",") < want:
                short.append(i)
    if short:
        log.warning("%s: %d row(s) have fewer cells than the header (%d), the first at line "
                    "%d: the file was cut short or damaged? Their missing cells are read as "
                    "missing keypoints", path, len(short), want + 1, short[0])


def read_pose(path: str | os.PathLike[str]) -> PoseData:
    """Read a DeepLabCut pose file (``.h5`` or ``.csv``, single- or multi-animal).

    Raises
    ------
    DLCFileError
        When the file is missing, empty, truncated or not in DeepLabCut's layout (a
        one-line message naming the file and what was expected).
    """
    path = Path(path)
    data = _frame_to_posedata(_read_pose_frame(path), path)
    if path.suffix.lower() == ".h5":
        meta = _pose_meta(path)
        data.fps = meta.get("fps")
        for key in ("frame_size", "rate_changes"):
            if key in meta:
                data.meta[key] = meta[key]
    lik = data.poses[..., 2]
    bad = np.isfinite(lik) & ((lik < 0) | (lik > 1))
    if bad.any():  # DeepLabCut's likelihoods are probabilities: columns mixed up?
        log.warning("%s: %d likelihood values outside [0, 1] (e.g. %g); pcutoff compares them "
                    "as probabilities: check that the columns are x, y, likelihood", path,
                    int(bad.sum()), float(lik[bad][0]))
    return data


def read_pose_scorer(path: str | os.PathLike[str]) -> str:
    """The scorer (first column level) of a DeepLabCut pose file, reading only its header
    (and first row). Raises :class:`DLCFileError` when it is not a readable pose file."""
    path = Path(path)
    df = _read_pose_frame(path, nrows=1)
    if df.columns.nlevels not in (3, 4) or len(df.columns) == 0:
        raise DLCFileError(f"{path}: expected DeepLabCut columns scorer/bodyparts/coords or "
                           f"scorer/individuals/bodyparts/coords")
    return str(df.columns.get_level_values(0)[0])


# --------------------------------------------------------------------------------------
# Labelled frames (CollectedData)
# --------------------------------------------------------------------------------------


def collected_dataframe(scorer: str, bodyparts: Sequence[str], video: str,
                        images: Sequence[str], xy: np.ndarray) -> pd.DataFrame:
    """DeepLabCut's CollectedData DataFrame.

    ``xy`` is ``(n_images, n_keypoints, 2)``; NaN marks an unlabelled (occluded) point.
    """
    xy = np.asarray(xy, dtype=np.float64)
    if xy.shape != (len(images), len(bodyparts), 2):
        raise ValueError(f"xy must be ({len(images)}, {len(bodyparts)}, 2), got {xy.shape}")
    cols = pd.MultiIndex.from_product([[scorer], list(bodyparts), ["x", "y"]],
                                      names=["scorer", "bodyparts", "coords"])
    index = pd.MultiIndex.from_tuples([("labeled-data", video, Path(im).name) for im in images])
    return pd.DataFrame(xy.reshape(len(images), -1), columns=cols, index=index)


def write_collected_data(folder: str | os.PathLike[str], scorer: str,
                         bodyparts: Sequence[str], images: Sequence[str],
                         xy: np.ndarray) -> Path:
    """Write ``folder/CollectedData_<scorer>.h5`` and ``.csv`` as DeepLabCut does.

    ``folder`` is ``<project>/labeled-data/<video>``; ``images`` are file names in it.
    """
    folder = Path(folder)
    df = collected_dataframe(scorer, bodyparts, folder.name, images, xy)
    h5 = folder / f"CollectedData_{scorer}.h5"
    # the key and format DeepLabCut's own labelling/merging code writes
    # (deeplabcut.generate_training_dataset.trainingsetmanipulation)
    atomic_write(h5, lambda p: df.to_hdf(p, key=H5_KEY, mode="w"))
    atomic_write(h5.with_suffix(".csv"), lambda p: df.to_csv(p))
    return h5


@dataclass
class LabelledFrames:
    """Labelled frames of one ``labeled-data/<video>`` folder."""

    folder: Path
    scorer: str
    bodyparts: tuple[str, ...]
    images: list[str]
    xy: np.ndarray  # (n_images, n_keypoints, 2)


def read_collected_data(path: str | os.PathLike[str]) -> LabelledFrames:
    """Read ``CollectedData_<scorer>.h5`` (or ``.csv``) in either DeepLabCut index style
    (3-level tuples or ``labeled-data/video/img.png`` strings)."""
    path = Path(path)
    if not path.is_file():
        raise DLCFileError(f"{path}: labelled-frames file not found")
    try:
        if path.suffix == ".h5":
            df = pd.read_hdf(path)
        else:
            df = pd.read_csv(path, header=[0, 1, 2], index_col=0)
            if df.index.dtype == object and str(df.index[0]) == "labeled-data":
                df = pd.read_csv(path, header=[0, 1, 2], index_col=[0, 1, 2])
    except Exception as e:
        raise DLCFileError(f"{path}: cannot read as DeepLabCut CollectedData "
                           f"({reader_error_text(e)})") from e
    if not isinstance(df, pd.DataFrame) or df.columns.nlevels != 3:
        raise DLCFileError(f"{path}: expected columns scorer/bodyparts/coords")
    scorer = str(df.columns.get_level_values(0)[0])
    bodyparts = tuple(dict.fromkeys(df.columns.get_level_values(1)))
    if isinstance(df.index, pd.MultiIndex):
        images = [str(t[-1]) for t in df.index]
    else:
        images = [Path(str(s)).name for s in df.index]
    want = pd.MultiIndex.from_tuples([(scorer, bp, c) for bp in bodyparts for c in ("x", "y")])
    sub = df.reindex(columns=want).apply(pd.to_numeric, errors="coerce")
    xy = sub.to_numpy(dtype=np.float64).reshape(len(df), len(bodyparts), 2)
    return LabelledFrames(folder=path.parent, scorer=scorer, bodyparts=bodyparts,
                          images=images, xy=xy)


# --------------------------------------------------------------------------------------
# Other layouts
# --------------------------------------------------------------------------------------


def read_cow_csv(path: str | os.PathLike[str], fps: float | None = None) -> PoseData:
    """Read a flat keypoint CSV with ``<bodypart>_x, <bodypart>_y, <bodypart>_likelihood``
    columns (and optional ``frame``/``video`` columns), as in the T-LEAP cow release."""
    path = Path(path)
    if not path.is_file():
        raise DLCFileError(f"{path}: keypoint CSV not found")
    expected = "expected a CSV with <bodypart>_x, <bodypart>_y[, <bodypart>_likelihood] columns"
    if path.stat().st_size == 0:
        raise DLCFileError(f"{path}: the file is empty; {expected}")
    try:
        df = pd.read_csv(path)
    except Exception as e:  # pandas raises many kinds
        raise DLCFileError(f"{path}: cannot read as a keypoint CSV ({reader_error_text(e)}); "
                           f"{expected}") from e
    bps = [c[:-2] for c in df.columns if c.endswith("_x")]
    if not bps:
        raise DLCFileError(f"{path}: expected <bodypart>_x/_y/_likelihood columns")
    n = len(df)
    poses = np.zeros((n, 1, len(bps), 3), dtype=np.float32)
    for k, bp in enumerate(bps):
        for j, c in enumerate(("x", "y", "likelihood")):
            col = f"{bp}_{c}"
            if col in df:
                poses[:, 0, k, j] = df[col].to_numpy(dtype=np.float32)
            elif c == "likelihood":
                poses[:, 0, k, j] = 1.0
            else:
                raise DLCFileError(f"{path}: missing column {col!r}")
    frame_index = df["frame"].to_numpy() if "frame" in df else np.arange(n)
    return PoseData(poses=poses, bodyparts=tuple(bps), individuals=("animal",),
                    scorer="csv", fps=fps, frame_index=frame_index)


def read_project_config(project: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a DeepLabCut project's ``config.yaml`` (given the project folder or the file)."""
    import yaml

    p = Path(project)
    if p.is_dir():
        p = p / "config.yaml"
    if not p.is_file():
        raise DLCFileError(f"{p}: DeepLabCut project config not found")
    try:
        with open(p, encoding="utf-8") as fh:
            cfg = yaml.safe_load(fh)
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        where = getattr(e, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        raise DLCFileError(f"{p}: not a valid YAML file{at}; expected a DeepLabCut project "
                           f"config") from None
    if not isinstance(cfg, dict) or "bodyparts" not in cfg:
        raise DLCFileError(f"{p}: expected a DeepLabCut config with a 'bodyparts' key")
    return cfg

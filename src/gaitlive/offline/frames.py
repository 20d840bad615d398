"""Pick the frames worth annotating from movies, into a DeepLabCut project.

The selection is DeepLabCut's own (:mod:`deeplabcut.utils.frameselectiontools`):

* ``kmeans``: every frame is downsampled to ``resize_width`` pixels wide, grey-scaled and
  clustered with mini-batch k-means; one frame per cluster is picked, so the picks "look
  different" (postures, positions, lighting).
* ``uniform``: frames drawn at random, uniformly over the movie.

The frames are written as DeepLabCut does, to
``<project>/labeled-data/<video stem>/img<index>.png`` with the frame index zero-padded to
``ceil(log10(n_frames))`` digits, and the video is registered in the project's
``config.yaml`` ``video_sets``. A folder with no ``config.yaml`` becomes a minimal
DeepLabCut 3 project (single animal, bodyparts and skeleton from a gaitlive profile).
"""

from __future__ import annotations

import contextlib
import datetime
import getpass
import io
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gaitlive.fileio import atomic_write
from gaitlive.offline.project import ProjectError, edit_dlc_config, write_dlc_config

log = logging.getLogger(__name__)

__all__ = [
    "FrameSelectionError",
    "PickResult",
    "check_pick_options",
    "compute_frame_picks",
    "default_scorer",
    "plain_scorer",
    "ensure_project",
    "extract_frames",
    "image_name",
    "open_video",
    "register_video",
]

ALGORITHMS = ("kmeans", "uniform")


class FrameSelectionError(ValueError):
    """A video cannot be read or a project cannot take its frames (the message names it)."""


@dataclass
class PickResult:
    """What :func:`extract_frames` did for one video.

    Attributes
    ----------
    video
        The video file.
    folder
        ``<project>/labeled-data/<video stem>``.
    indices
        The frame indices picked, sorted.
    written
        Image files written by this call.
    existing
        Picked images that were already in the folder (kept as they were).
    n_frames
        Frames in the video.
    """

    video: Path
    folder: Path
    indices: list[int]
    written: list[Path] = field(default_factory=list)
    existing: list[Path] = field(default_factory=list)
    n_frames: int = 0


def plain_scorer(name: str) -> bool:
    """Whether ``name`` can be an annotator name: it names ``CollectedData_<scorer>.h5``
    (not empty, no slashes)."""
    return bool(name.strip()) and not any(c in name for c in "/\\")


def default_scorer() -> str:
    """The annotator name used when none is given: the login name, else ``gaitlive``."""
    try:
        name = getpass.getuser()
    except Exception:  # no login name in some containers
        name = ""
    return name or "gaitlive"


# --------------------------------------------------------------------------------------
# Videos
# --------------------------------------------------------------------------------------


def open_video(path: str | os.PathLike[str]) -> Any:
    """Open ``path`` with DeepLabCut's OpenCV video reader.

    Returns
    -------
    deeplabcut.utils.auxfun_videos.VideoWriter
        The reader (``len()``, ``dimensions``, ``fps``, ``set_to_frame``, ``read_frame``).

    Raises
    ------
    FrameSelectionError
        When the file is missing, cannot be decoded or holds no frame.
    """
    p = Path(path)
    if not p.exists():
        raise FrameSelectionError(f"{p}: video file not found")
    if not p.is_file():
        raise FrameSelectionError(f"{p}: expected a video file, got a folder")
    from deeplabcut.utils.auxfun_videos import VideoWriter  # slow import: after the checks
    try:
        cap = VideoWriter(str(p))
    except (OSError, ValueError) as e:
        raise FrameSelectionError(f"{p}: cannot open as a video ({e})") from e
    if len(cap) <= 0 or cap.dimensions[0] <= 0:
        cap.close()
        raise FrameSelectionError(f"{p}: cannot read as a video (no frames decoded); "
                                  "expected a movie OpenCV can decode (mp4, avi, mov, ...)")
    cap.reset()
    if cap.read_frame() is None:
        cap.close()
        raise FrameSelectionError(f"{p}: cannot decode the first frame; the file is corrupt "
                                  "or not a video")
    cap.reset()
    return cap


def image_name(index: int, n_frames: int) -> str:
    """DeepLabCut's image name for frame ``index`` of a video of ``n_frames`` frames.

    ``img`` + the index zero-padded to ``ceil(log10(n_frames))`` digits + ``.png``
    (DeepLabCut's ``extract_frames``).
    """
    width = int(np.ceil(np.log10(n_frames))) if n_frames > 1 else 1
    return f"img{str(int(index)).zfill(width)}.png"


@contextlib.contextmanager
def _seeded(seed: int | None):
    """Seed numpy's global generator (DeepLabCut's selection and scikit-learn's k-means use
    it) for the block, then restore its state."""
    state = np.random.get_state()
    if seed is not None:
        np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


@contextlib.contextmanager
def _quiet():
    """DeepLabCut's selection prints progress; send it to the debug log instead."""
    buf_out, buf_err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(buf_out), contextlib.redirect_stderr(buf_err):
        yield
    for line in (buf_out.getvalue() + buf_err.getvalue()).splitlines():
        if line.strip():
            log.debug("deeplabcut: %s", line.strip())


#: ``gaitlive frames`` option of each :func:`check_pick_options` argument
_FLAGS = {"n": "-n/--num", "algo": "--algo", "seed": "--seed", "step": "--step",
          "resize_width": "--resize-width", "start": "--start", "stop": "--stop"}


def check_pick_options(n: int, *, algo: str = "kmeans", seed: int | None = 0, step: int = 1,
                       resize_width: int = 30, start: float = 0.0, stop: float = 1.0,
                       flags: bool = False) -> None:
    """Raise a one-line :class:`FrameSelectionError` for a bad frame-selection setting
    (see :func:`compute_frame_picks`), naming it as the argument (or, with ``flags``, as
    the ``gaitlive frames`` option); nothing is read or written."""
    def name(arg: str) -> str:
        return _FLAGS[arg] if flags else arg

    if algo not in ALGORITHMS:
        raise FrameSelectionError(f"{name('algo')}: unknown frame selection algorithm "
                                  f"{algo!r}; expected one of {list(ALGORITHMS)}")
    if n < 1:
        raise FrameSelectionError(f"{name('n')}: number of frames to pick must be >= 1, "
                                  f"got {n}")
    if seed is not None and not 0 <= seed < 2**32:
        raise FrameSelectionError(f"{name('seed')}: expected a random seed from 0 to "
                                  f"{2**32 - 1}, got {seed}")
    if step < 1:
        raise FrameSelectionError(f"{name('step')}: expected >= 1 (every STEP-th frame), "
                                  f"got {step}")
    if resize_width < 1:
        raise FrameSelectionError(f"{name('resize_width')}: expected >= 1 pixel, got "
                                  f"{resize_width}")
    if not 0.0 <= start < stop <= 1.0:
        raise FrameSelectionError(f"{name('start')} {start} {name('stop')} {stop}: expected "
                                  f"fractions of the video with 0 <= start < stop <= 1")


def compute_frame_picks(cap: Any, n: int, *, algo: str = "kmeans", seed: int | None = 0,
                        step: int = 1, resize_width: int = 30, start: float = 0.0,
                        stop: float = 1.0) -> list[int]:
    """Pick ``n`` distinct frame indices of an open video.

    Parameters
    ----------
    cap
        A reader from :func:`open_video`.
    n
        Frames to pick (all of them when the video is shorter).
    algo
        ``"kmeans"`` (DeepLabCut's ``KmeansbasedFrameselectioncv2``: most visual variety)
        or ``"uniform"`` (DeepLabCut's ``UniformFramescv2``: random, uniform in time).
    seed
        Seed of the random choices (``None``: not reproducible).
    step
        k-means only: cluster every ``step``-th frame (faster on long videos).
    resize_width
        k-means only: frames are downsampled to this width before clustering.
    start, stop
        The part of the video to pick from, as fractions of its length.

    Returns
    -------
    list of int
        ``min(n, frames in range)`` distinct indices, sorted. DeepLabCut's k-means can return
        fewer than ``n`` (empty clusters); the missing ones are topped up with the frames
        farthest in time from those already picked.
    """
    from deeplabcut.utils import frameselectiontools as fst

    check_pick_options(n, algo=algo, seed=seed, step=step, resize_width=resize_width,
                       start=start, stop=stop)
    n_frames = len(cap)
    lo = int(math.floor(n_frames * start))
    hi = min(int(math.ceil(n_frames * stop)), n_frames)
    available = hi - lo
    n = min(n, available)
    if n == available:
        return list(range(lo, hi))
    with _seeded(seed), _quiet():
        if algo == "kmeans":
            width = min(int(resize_width), int(cap.dimensions[0]))
            cap.reset()
            picks = fst.KmeansbasedFrameselectioncv2(cap, n, start, stop, step=max(1, step),
                                                     resizewidth=width)
        else:
            picks = fst.UniformFramescv2(cap, n, start, stop)
    chosen = sorted({int(i) for i in picks if lo <= int(i) < hi})
    if len(chosen) < n:
        log.debug("k-means returned %d of %d frames; topping up", len(chosen), n)
        chosen = _top_up(chosen, n, lo, hi)
    return chosen


def _top_up(chosen: Sequence[int], n: int, lo: int, hi: int) -> list[int]:
    """Add the frames farthest in time from the chosen ones until there are ``n``."""
    out = set(chosen)
    candidates = np.arange(lo, hi)
    while len(out) < n:
        if out:
            picked = np.fromiter(out, dtype=np.int64)
            dist = np.min(np.abs(candidates[:, None] - picked[None, :]), axis=1)
        else:
            dist = np.zeros(len(candidates))
        out.add(int(candidates[int(np.argmax(dist))]))
    return sorted(out)


# --------------------------------------------------------------------------------------
# DeepLabCut project
# --------------------------------------------------------------------------------------


def ensure_project(project: str | os.PathLike[str], *, profile: str = "broiler-side",
                   scorer: str | None = None) -> Path:
    """Return ``project/config.yaml``, creating a minimal DeepLabCut 3 project if absent.

    Parameters
    ----------
    project
        The project folder (created if missing).
    profile
        gaitlive profile whose ``bodyparts``, ``skeleton`` and ``pcutoff`` a new project
        takes. An existing ``config.yaml`` is left as it is.
    scorer
        Annotator name of a new project (default: :func:`default_scorer`).
    """
    from gaitlive.config import load_profile

    root = Path(project).expanduser().resolve()
    cfg_path = root / "config.yaml"
    if cfg_path.is_file():
        from gaitlive.dlcio import read_project_config

        cfg = read_project_config(cfg_path)  # validates: a DLC config with bodyparts
        if not cfg.get("multianimalproject"):  # (a multi-animal one has 'MULTI!')
            from gaitlive.offline.annotate import AnnotationError, project_bodyparts

            try:  # the check 'gaitlive annotate' makes: a list of distinct names
                project_bodyparts(root)
            except AnnotationError as e:
                raise FrameSelectionError(str(e)) from None
        return cfg_path
    if root.exists() and not root.is_dir():
        raise FrameSelectionError(f"{root}: expected a project folder, got a file")
    prof = load_profile(profile)
    from deeplabcut.core.config.project_config import ProjectConfig

    cfg = ProjectConfig(multianimalproject=False, bodyparts=list(prof.bodyparts)).to_dict()
    cfg.update({
        "Task": root.name,
        "scorer": scorer or default_scorer(),
        "date": datetime.date.today().strftime("%b%d"),
        "project_path": str(root),
        "video_sets": {},
        "skeleton": [list(e) for e in prof.skeleton],
        "pcutoff": float(prof.pcutoff),
        "iteration": 0,
        "snapshotindex": -1,
        "default_augmenter": "default",
        "cropping": False,
        "start": 0,
        "stop": 1,
        "x1": 0, "x2": 640, "y1": 277, "y2": 624,
        "corner2move2": [50, 50],
        "move2corner": True,
    })
    try:
        for sub in ("labeled-data", "videos", "training-datasets", "dlc-models-pytorch"):
            (root / sub).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FrameSelectionError(f"{root}: cannot create the project folder "
                                  f"({e.strerror or e})") from None
    write_dlc_config(cfg_path, cfg)
    log.info("created DeepLabCut project %s (profile %s, bodyparts %s)", cfg_path, prof.name,
             list(prof.bodyparts))
    return cfg_path


def _videos_with_same_stem(config_path: Path, video: Path) -> list[tuple[str, Path]]:
    """The other videos of the project's ``video_sets`` whose frames go to the same
    ``labeled-data/<stem>`` folder as ``video``'s: their keys and paths (relative keys are
    taken from the project folder)."""
    import yaml

    with open(config_path, encoding="utf-8") as fh:
        cfg = yaml.safe_load(fh)
    sets = cfg.get("video_sets") if isinstance(cfg, dict) else None
    target = video.expanduser().resolve()
    out = []
    for k in sets or {}:
        other = Path(str(k)).expanduser()
        if not other.is_absolute():
            other = config_path.parent / other
        if other.stem == video.stem and other.resolve() != target:
            out.append((str(k), other))
    return out


def register_video(config_path: str | os.PathLike[str], video: str | os.PathLike[str],
                   width: int, height: int) -> bool:
    """Add ``video`` to ``video_sets`` of a DeepLabCut ``config.yaml`` (comments kept).

    Returns
    -------
    bool
        ``True`` when it was added, ``False`` when it was already there.
    """
    config_path = Path(config_path)
    key = str(Path(video).expanduser().absolute())
    target = Path(key).resolve()

    def edit(cfg: Any) -> bool:
        sets = cfg.get("video_sets")
        if sets is None:
            cfg["video_sets"] = sets = {}
        if not isinstance(sets, dict):
            raise FrameSelectionError(f"{config_path}: key 'video_sets' must be a mapping, "
                                      f"got {type(sets).__name__}")
        if key in sets or any(Path(str(k)).expanduser().resolve() == target for k in sets):
            return False
        sets[key] = {"crop": f"0, {int(width)}, 0, {int(height)}"}
        return True

    try:
        return edit_dlc_config(config_path, edit)
    except ProjectError as e:
        raise FrameSelectionError(str(e)) from e


def _write_png(path: Path, image: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        if not cv2.imwrite(str(tmp), image):
            raise FrameSelectionError(f"{path}: could not write the image")

    atomic_write(path, write)


def extract_frames(video: str | os.PathLike[str], project: str | os.PathLike[str], n: int = 20,
                   *, algo: str = "kmeans", seed: int | None = 0, step: int = 1,
                   resize_width: int = 30, start: float = 0.0, stop: float = 1.0,
                   profile: str = "broiler-side", scorer: str | None = None) -> PickResult:
    """Pick ``n`` frames of ``video`` and write them into the DeepLabCut project.

    Parameters
    ----------
    video
        The movie.
    project
        DeepLabCut project folder (a minimal project is created when it has no
        ``config.yaml``, see :func:`ensure_project`).
    n, algo, seed, step, resize_width, start, stop
        See :func:`compute_frame_picks`.
    profile, scorer
        Used only when a new project is created.

    Returns
    -------
    PickResult
        Indices picked and files written. Images already in the folder are never
        overwritten (annotations may refer to them).

    Raises
    ------
    FrameSelectionError
        When the video cannot be read (the message names the file).
    """
    check_pick_options(n, algo=algo, seed=seed, step=step, resize_width=resize_width,
                       start=start, stop=stop)  # before the project is made
    video = Path(video).expanduser()
    cap = open_video(video)
    try:
        cfg_path = ensure_project(project, profile=profile, scorer=scorer)
        others = _videos_with_same_stem(cfg_path, video)
        present = [key for key, path in others if path.exists()]
        moved = bool(others) and not present
        if moved:
            # the registered file is not here (a project moved from another machine, a
            # path of a mount not mounted): this video is taken for it, and its entry kept
            log.warning("%s: taken for %s of the project's video_sets (same file name), which "
                        "is not on this machine: its frames go to the same labeled-data "
                        "folder", video, others[0][0])
        elif others:
            other = present[0]
            raise FrameSelectionError(
                f"{video}: labeled-data/{video.stem} already holds the frames of {other} (the "
                f"same file name; DeepLabCut names the folder after it): rename one of the two "
                f"videos (e.g. with its camera) so their frames stay apart")
        indices = compute_frame_picks(cap, n, algo=algo, seed=seed, step=step,
                                      resize_width=resize_width, start=start, stop=stop)
        n_frames = len(cap)
        folder = cfg_path.parent / "labeled-data" / video.stem
        folder.mkdir(parents=True, exist_ok=True)
        result = PickResult(video=video, folder=folder, indices=[], n_frames=n_frames)
        failed: list[int] = []
        for index in indices:
            target = folder / image_name(index, n_frames)
            if target.exists():
                result.existing.append(target)
                result.indices.append(index)
                continue
            cap.set_to_frame(index)
            ok, frame = cap.video.read()
            if not ok or frame is None:
                failed.append(index)
                continue
            _write_png(target, frame)
            result.written.append(target)
            result.indices.append(index)
        if failed:
            log.warning("%s: could not decode frames %s; they were skipped", video, failed)
        if not result.indices:
            raise FrameSelectionError(f"{video}: none of the picked frames could be decoded")
        if not moved:
            register_video(cfg_path, video, *cap.dimensions)
    finally:
        cap.close()
    return result

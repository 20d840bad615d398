"""Files: rendered videos with their truth, and DeepLabCut training projects.

Video sets (:func:`write_video_set`), for ``<stem>``:

* ``<stem>.mp4``: the rendered clip (OpenCV ``mp4v``);
* ``<stem>.h5`` / ``<stem>.csv``: exact keypoints in DeepLabCut's analysis format (scorer
  ``synth-truth``; multi-animal layout with an ``individuals`` level when a background
  bird is tracked), written with :func:`gaitlive.dlcio.write_pose`;
* ``<stem>_truth.json``: clip metadata and, per pass, its :class:`~gaitlive.synth.world.
  PassTruth` (individual, pass_id, severity, view, species, plumage, start/end frame,
  strikes and lifts per foot, cadence_hz, stance_fraction_left/right, step lengths);
* ``<stem>_truth_steps.csv``: one row per stance (individual, pass_id, foot, strike_frame,
  lift_frame, severity);
* ``<stem>_truth_visible.csv``: per frame and individual, 1 where an annotator could see
  the keypoint (in the image and not hidden by scenery or another bird), 0 elsewhere
  (written with the video: rendering decides it).

Training projects (:func:`write_project`): a DeepLabCut 3 project folder (``config.yaml``,
``labeled-data/<clip>/imgNNNN.png`` with ``CollectedData_synth.h5/.csv``, and the short
source clips under ``videos/``) made of many short clips with different seeds, views,
species, plumages, sizes, scenes and looks.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gaitlive.dlcio import PoseData, write_collected_data, write_pose
from gaitlive.fileio import atomic_write_bytes, jsonable
from gaitlive.synth.kinematics import BODYPARTS
from gaitlive.synth.world import SynthSequence, simulate_sequence

log = logging.getLogger(__name__)

__all__ = ["SynthExportError", "write_truth", "write_video_set", "write_visible",
           "read_visible", "write_project",
           "ProjectSummary", "SKELETON"]

SKELETON = [["head", "neck"], ["neck", "left_knee"], ["neck", "right_knee"],
            ["left_knee", "left_hock"], ["left_hock", "left_foot"],
            ["right_knee", "right_hock"], ["right_hock", "right_foot"]]
TRUTH_SCORER = "synth-truth"
PROJECT_SCORER = "synth"


class SynthExportError(ValueError):
    """Bad output location or options (the message names the path or value)."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_truth(seq: SynthSequence, out_dir: str | os.PathLike[str], stem: str,
                extra: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write the pose file and truth files of ``seq`` (no rendering).

    Returns
    -------
    dict
        ``{"h5": ..., "csv": ..., "json": ..., "steps": ...}`` paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = PoseData(poses=seq.poses, bodyparts=BODYPARTS, individuals=seq.individuals,
                    scorer=TRUTH_SCORER, fps=seq.fps, multi_animal=seq.poses.shape[1] > 1)
    h5 = write_pose(out / f"{stem}.h5", data)
    for f in (h5, h5.with_suffix(".csv")):
        os.chmod(f, 0o666 & ~_umask())
    meta = {
        "generator": "gaitlive synth",
        "seed": seq.seed,
        "view": seq.view,
        "fps": seq.fps,
        "n_frames": seq.n_frames,
        "width": seq.camera.width,
        "height": seq.camera.height,
        "bodyparts": list(BODYPARTS),
        "individuals": list(seq.individuals),
        "camera": seq.camera.to_dict(),
        "passes": [p.to_dict() for p in seq.passes],
        **(extra or {}),
    }
    js = out / f"{stem}_truth.json"
    atomic_write_bytes(js, json.dumps(jsonable(meta, 6), indent=1, allow_nan=False).encode())
    rows = []
    for p in seq.passes:
        for foot in ("left", "right"):
            for s, lf in zip(p.strikes[foot], p.lifts[foot], strict=True):
                rows.append((p.individual, p.pass_id, foot, s, lf, round(p.severity, 4)))
    rows.sort(key=lambda r: (r[3], r[0], r[2]))
    steps = out / f"{stem}_truth_steps.csv"
    lines = ["individual,pass_id,foot,strike_frame,lift_frame,severity"]
    lines += [",".join(str(v) for v in r) for r in rows]
    atomic_write_bytes(steps, ("\n".join(lines) + "\n").encode())
    return {"h5": h5, "csv": h5.with_suffix(".csv"), "json": js, "steps": steps}


class _VideoOut:
    """An mp4v writer to a temporary name, renamed into place when closed cleanly."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
        self.w = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps),
                                 size)
        if not self.w.isOpened():
            raise SynthExportError(f"{path}: OpenCV cannot open an mp4v video writer here")

    def write(self, img: np.ndarray) -> None:
        self.w.write(img)

    def close(self, ok: bool = True) -> None:
        self.w.release()
        if ok:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def write_video_set(seq: SynthSequence, out_dir: str | os.PathLike[str], stem: str, *,
                    debug: bool = False, progress: bool = False,
                    extra: dict[str, Any] | None = None, scene: Any = None
                    ) -> dict[str, Path]:
    """Render ``seq`` to ``<stem>.mp4`` and write its truth files beside it.

    The truth files are written first (they need no rendering); the video goes to a
    temporary name and is renamed into place when complete. ``scene`` (from
    :func:`gaitlive.synth.render.scene_for`, possibly with an adjusted ``look``) replaces
    the clip's own scene.
    """
    from gaitlive.synth.render import render_frames

    paths = write_truth(seq, out_dir, stem, extra)
    mp4 = Path(out_dir) / f"{stem}.mp4"
    vw = _VideoOut(mp4, seq.fps, (seq.camera.width, seq.camera.height))
    visible = np.zeros(seq.poses.shape[:3], bool)
    ok = False
    try:
        it = render_frames(seq, debug=debug, scene=scene)
        if progress:
            from tqdm import tqdm

            it = tqdm(it, total=seq.n_frames, desc=f"render {stem}", unit="frame")
        for fr in it:
            vw.write(fr.image)
            visible[fr.index] = fr.visible
        ok = True
    finally:
        vw.close(ok)
    paths["mp4"] = mp4
    paths["visible"] = write_visible(Path(out_dir) / f"{stem}_truth_visible.csv", visible,
                                     seq.individuals)
    return paths


def write_visible(path: Path, visible: np.ndarray, individuals: Sequence[str]) -> Path:
    """Write ``visible`` (bool ``(n_frames, n_individuals, 8)``) as ``<stem>_truth_visible.csv``:
    columns ``frame, individual`` and one 0/1 column per bodypart."""
    if visible.ndim != 3 or visible.shape[1] != len(individuals) \
            or visible.shape[2] != len(BODYPARTS):
        raise ValueError(f"{path}: visible must be (n_frames, {len(individuals)}, "
                         f"{len(BODYPARTS)}), got {visible.shape}")
    lines = [",".join(["frame", "individual", *BODYPARTS])]
    for f in range(visible.shape[0]):
        for i, ind in enumerate(individuals):
            lines.append(",".join([str(f), ind, *("1" if v else "0" for v in visible[f, i])]))
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    return path


def read_visible(path: str | os.PathLike[str]) -> tuple[np.ndarray, list[str]]:
    """Read a ``<stem>_truth_visible.csv``: bool ``(n_frames, n_individuals, 8)`` and the
    individuals, in file order."""
    import pandas as pd

    p = Path(path)
    df = pd.read_csv(p)
    want = ["frame", "individual", *BODYPARTS]
    if list(df.columns) != want:
        raise ValueError(f"{p}: expected columns {want}, got {list(df.columns)}")
    inds = list(dict.fromkeys(df["individual"].astype(str)))
    n = int(df["frame"].max()) + 1 if len(df) else 0
    out = np.zeros((n, len(inds), len(BODYPARTS)), bool)
    idx = df["individual"].astype(str).map({v: i for i, v in enumerate(inds)}).to_numpy()
    out[df["frame"].to_numpy(), idx] = df[list(BODYPARTS)].to_numpy() > 0
    return out, inds


# ---------------------------------------------------------------------------------------
# DeepLabCut training project
# ---------------------------------------------------------------------------------------


@dataclass
class ProjectSummary:
    """What :func:`write_project` wrote."""

    path: Path
    config: Path
    n_frames: int
    n_clips: int
    n_labels: int  # visible keypoints labelled
    n_missing: int  # keypoints left NaN (out of frame or occluded)
    views: dict[str, int]
    species: dict[str, int]


_SIZES = ((640, 480), (640, 480), (800, 600), (720, 540), (576, 432), (704, 480))


def project_config(path: Path, video_sets: dict[str, dict[str, str]], *, task: str,
                   scorer: str, date: str) -> dict[str, Any]:
    """A DeepLabCut 3 single-animal ``config.yaml`` mapping, in DeepLabCut's key order."""
    return {
        "Task": task,
        "scorer": scorer,
        "date": date,
        "multianimalproject": False,
        "identity": None,
        "project_path": str(path),
        "engine": "pytorch",
        "video_sets": video_sets,
        "bodyparts": list(BODYPARTS),
        "start": 0,
        "stop": 1,
        "numframes2pick": 20,
        "skeleton": [list(s) for s in SKELETON],
        "skeleton_color": "black",
        "pcutoff": 0.6,
        "dotsize": 6,
        "alphavalue": 0.7,
        "colormap": "rainbow",
        "TrainingFraction": [0.95],
        "iteration": 0,
        "default_net_type": "resnet_50",
        "default_augmenter": "default",
        "snapshotindex": -1,
        "detector_snapshotindex": -1,
        "batch_size": 8,
        "detector_batch_size": 1,
        "cropping": False,
        "x1": 0,
        "x2": 640,
        "y1": 277,
        "y2": 624,
        "corner2move2": [50, 50],
        "move2corner": True,
    }


def _clip_seed(seed: int, i: int) -> int:
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 5150, i]).generate_state(1)[0]
               % 1_000_000_000)


@dataclass
class _ClipJob:
    out: Path
    seed: int
    index: int
    n_frames: int
    views: tuple[str, ...]
    species: tuple[str, ...]
    scale: float
    fps: float
    edges: float = 0.0


@dataclass
class _ClipResult:
    index: int
    name: str
    video: Path
    size: tuple[int, int]
    view: str
    species: str
    n_frames: int
    n_labels: int
    n_missing: int


def _make_clip(job: _ClipJob) -> _ClipResult:
    """Simulate, render and write one clip of a training project (independent per index,
    so clips can be made in any order or in parallel with the same result)."""
    from gaitlive.synth.render import render_frames, scene_for

    i, k, scale = job.index, job.n_frames, job.scale
    rng = np.random.default_rng([int(job.seed) & 0xFFFFFFFF, 5151, i])
    cseed = _clip_seed(job.seed, i)
    view = job.views[i % len(job.views)]
    sp = str(rng.choice(list(job.species)))
    w, h = _SIZES[int(rng.integers(len(_SIZES)))]
    sev = float(rng.uniform(0.0, 5.0))
    seq = simulate_sequence(severities=[sev], view=view, species=sp, fps=job.fps, seed=cseed,
                            width=w, height=h, gap_s=(0.2, 0.5), lead_s=0.0, background=0.35,
                            pecking=0.3)
    main = next(p for p in seq.passes if p.individual == 0)
    # a window of the pass; frames spread over it (random steps of 1-3 frames)
    steps = rng.integers(1, 4, k)
    span = int(steps[1:].sum()) if k > 1 else 0
    # mostly frames with the whole bird in view; some entering or leaving the image
    n_vis = (seq.poses[:, 0, :, 2] > 0).sum(axis=1)
    whole = np.flatnonzero(n_vis >= 7)
    if len(whole) > span and rng.random() > 0.15:
        lo, hi = int(whole[0]), int(whole[-1]) - span
    else:
        lo, hi = main.start_frame, main.end_frame - span
    hi = max(lo, hi)
    f0 = int(rng.integers(lo, hi + 1))
    if job.edges > 0.0:
        # an edge clip: the window centred on a frame where the bird is entering or leaving
        # the image (its own random stream: projects without edge clips are unchanged)
        erng = np.random.default_rng([int(job.seed) & 0xFFFFFFFF, 5152, i])
        span_f = np.arange(main.start_frame, main.end_frame + 1)
        part = span_f[(n_vis[span_f] >= 1) & (n_vis[span_f] <= 7)]
        if erng.random() < job.edges and len(part):
            c = int(part[erng.integers(len(part))])
            f0 = min(max(c - span // 2, main.start_frame), max(main.start_frame,
                                                                 main.end_frame - span))
    picks = f0 + np.concatenate([[0], np.cumsum(steps[1:])]).astype(int)
    picks = np.unique(np.clip(picks, 0, seq.n_frames - 1))
    first, last = int(picks[0]), int(picks[-1])
    name = f"synth{i:04d}-{view}-{sp}"
    sc = scene_for(seq)
    ow, oh = int(round(w * scale)), int(round(h * scale))
    video = job.out / "videos" / f"{name}.mp4"
    vw = _VideoOut(video, job.fps, (ow, oh))
    folder = job.out / "labeled-data" / name
    folder.mkdir(parents=True, exist_ok=True)
    images, xy = [], []
    ok = False
    try:
        for fr in render_frames(seq, range(first, last + 1), scene=sc):
            img = fr.image if scale == 1.0 else cv2.resize(fr.image, (ow, oh),
                                                           interpolation=cv2.INTER_AREA)
            vw.write(img)
            if fr.index in picks:
                im = f"img{fr.index - first:04d}.png"
                cv2.imwrite(str(folder / im), img)
                p = seq.poses[fr.index, 0, :, :2].astype(np.float64) * scale
                p[~fr.visible[0]] = np.nan
                images.append(im)
                xy.append(p)
        ok = True
    finally:
        vw.close(ok)
    xy_a = np.asarray(xy)
    write_collected_data(folder, PROJECT_SCORER, BODYPARTS, images, xy_a)
    n_lab = int(np.isfinite(xy_a[..., 0]).sum())
    return _ClipResult(index=i, name=name, video=video, size=(ow, oh), view=view, species=sp,
                       n_frames=len(images), n_labels=n_lab,
                       n_missing=int(xy_a[..., 0].size - n_lab))


def write_project(out: str | os.PathLike[str], *, frames: int = 1500, seed: int = 0,
                  views: Sequence[str] = ("side", "rear"),
                  species: Sequence[str] = ("broiler", "turkey"), scale: float = 1.0,
                  frames_per_clip: int = 12, fps: float = 30.0, task: str = "synth-corridor",
                  workers: int = 1, progress: bool = False, force: bool = False,
                  edges: float = 0.0,
                  on_clip: Callable[[int, int], None] | None = None) -> ProjectSummary:
    """Write a DeepLabCut 3 training project of ``frames`` labelled synthetic frames.

    Each clip is a fresh seed: a new camera (height, tilt, focal length, lens distortion),
    corridor (textures, posts, clutter, fence, lighting, look), bird (species, plumage,
    size, severity 0-5) and frame size. A short window of the pass (about
    ``frames_per_clip`` * 2 frames) is rendered into ``videos/<clip>.mp4``;
    ``frames_per_clip`` frames spread over it are labelled. Keypoints outside the image or
    hidden by scenery or another bird are NaN.

    Parameters
    ----------
    out
        Project folder (created; must not already hold a ``config.yaml`` unless ``force``,
        which first moves whatever it holds to ``<out>-previous-<time>`` beside it).
    scale
        Write images (and videos) resized by this factor with the labels scaled the way
        dlclive's ``resize`` undoes it (``x_small = x * scale``).
    workers
        Processes making clips in parallel (clips are independent: the project is the same
        for any number of workers).
    edges
        Fraction of clips whose frames are centred on the bird entering or leaving the
        image (partly in view: the legs without the head, the head without the legs).
        The other clips are drawn as with 0 (mostly the whole bird in view, 15 % anywhere
        in the pass), so a project with ``edges=0`` is the same as before the option.

    Returns
    -------
    ProjectSummary
    """
    out = Path(out).expanduser().resolve()
    if frames < 1:
        raise SynthExportError(f"--frames must be >= 1, got {frames}")
    if frames_per_clip < 1:
        raise SynthExportError(f"--frames-per-clip must be >= 1, got {frames_per_clip}")
    if workers < 1:
        raise SynthExportError(f"--workers must be >= 1, got {workers}")
    if not 0.05 <= scale <= 1.0:
        raise SynthExportError(f"--scale must be in [0.05, 1], got {scale}")
    if not 0.0 <= edges <= 1.0:
        raise SynthExportError(f"--edges must be in [0, 1], got {edges}")
    if not views:
        raise SynthExportError("--views: give at least one of side, rear")
    for v in views:
        if v not in ("side", "rear"):
            raise SynthExportError(f"--views: unknown view {v!r} (expected side, rear)")
    if not species:
        raise SynthExportError("--species: give at least one of broiler, turkey")
    for sp in species:
        if sp not in ("broiler", "turkey"):
            raise SynthExportError(f"--species: unknown species {sp!r} (expected broiler, "
                                   f"turkey)")
    if (out / "config.yaml").exists() and not force:
        raise SynthExportError(f"{out / 'config.yaml'}: a project already exists there "
                               f"(choose another --out or pass --force)")
    if force and out.is_dir() and any(out.iterdir()):
        # a clean replacement that loses nothing: the earlier project (frames, labels,
        # trained shuffles) moves to a sibling folder, not mixed with the new frames
        from gaitlive.fileio import move_aside

        absolute = out.resolve()
        dest = move_aside(sorted(absolute.iterdir()), absolute.parent,
                          prefix=f"{absolute.name}-previous-")
        log.warning("%s: the earlier contents were moved to %s (--force)", out, dest)
    import yaml

    out.mkdir(parents=True, exist_ok=True)
    video_sets: dict[str, dict[str, str]] = {}
    summary = ProjectSummary(path=out, config=out / "config.yaml", n_frames=0, n_clips=0,
                             n_labels=0, n_missing=0, views={}, species={})
    date = datetime.date.today().strftime("%b%d")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=frames, desc="synth project", unit="frame")
    pool = None
    if workers > 1:
        import concurrent.futures
        import multiprocessing

        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    remaining, i = frames, 0
    try:
        while remaining > 0:
            jobs, planned = [], remaining
            while planned > 0 and len(jobs) < 2 * workers:
                k = min(frames_per_clip, planned)
                jobs.append(_ClipJob(out=out, seed=seed, index=i, n_frames=k,
                                     views=tuple(views), species=tuple(species), scale=scale,
                                     fps=fps, edges=edges))
                planned -= k
                i += 1
            results = pool.map(_make_clip, jobs) if pool is not None else map(_make_clip, jobs)
            for r in results:
                video_sets[str(r.video)] = {"crop": f"0, {r.size[0]}, 0, {r.size[1]}"}
                summary.n_frames += r.n_frames
                summary.n_clips += 1
                summary.n_labels += r.n_labels
                summary.n_missing += r.n_missing
                summary.views[r.view] = summary.views.get(r.view, 0) + r.n_frames
                summary.species[r.species] = summary.species.get(r.species, 0) + r.n_frames
                remaining -= r.n_frames
                if bar is not None:
                    bar.update(r.n_frames)
                if on_clip is not None:
                    on_clip(r.index, r.n_frames)
            # rewritten after every batch: an interrupted run still leaves a valid project
            cfg = project_config(out, video_sets, task=task, scorer=PROJECT_SCORER, date=date)
            atomic_write_bytes(out / "config.yaml",
                               yaml.safe_dump(cfg, sort_keys=False).encode())
    finally:
        if pool is not None:
            pool.shutdown()
        if bar is not None:
            bar.close()
    atomic_write_bytes(out / "synth_project.json", json.dumps(
        {"seed": seed, "frames": summary.n_frames, "clips": summary.n_clips,
         "views": summary.views, "species": summary.species, "scale": scale,
         "frames_per_clip": frames_per_clip, "labels": summary.n_labels,
         "missing": summary.n_missing, **({"edges": edges} if edges else {})},
        indent=1).encode())
    return summary

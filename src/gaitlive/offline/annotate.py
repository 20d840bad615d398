"""Annotation logic: a state machine over the frames of a DeepLabCut project, no window.

:class:`AnnotationSession` walks the images of ``<project>/labeled-data/*/`` and the
bodyparts of the project (its ``config.yaml``, else a gaitlive profile) in order. Each
:meth:`~AnnotationSession.click` places the current bodypart and brings up the next one
that is still unlabelled; when a frame is complete the next frame comes up. Bodyparts can be
skipped (occluded: NaN in the labels), points dragged, actions undone, and the view zoomed
and panned (:class:`View`, image <-> window coordinates).

Every change is saved at once, atomically: ``CollectedData_<scorer>.h5`` / ``.csv`` of the
frame's folder, written with :func:`gaitlive.dlcio.write_collected_data` (DeepLabCut's
layout) and a small state file ``<project>/.gaitlive-annotate-<scorer>.json`` that remembers
the frame and bodypart the user was at, which points were skipped and which came from a
model. A session started on the same project resumes where the last one stopped, whether
that one quit, crashed or was killed.

With a ``predictor`` (model-assisted mode), each frame with no label yet starts from the
model's predictions: points at or above ``pcutoff`` are placed, the others are left for
the user. :meth:`AnnotationSession.stats` counts the clicks this saved.

The window (:mod:`gaitlive.offline.annotate_window`) only translates mouse and key events
into calls of this class and draws its state.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gaitlive.dlcio import (
    DLCFileError,
    LabelledFrames,
    read_collected_data,
    write_collected_data,
)
from gaitlive.fileio import atomic_write

log = logging.getLogger(__name__)

__all__ = [
    "AnnotationError",
    "AnnotationSession",
    "FrameRef",
    "View",
    "UNSET",
    "LABELLED",
    "SKIPPED",
    "SOURCE_USER",
    "SOURCE_MODEL",
    "KEY_HELP",
    "project_bodyparts",
]

# point status
UNSET, LABELLED, SKIPPED = 0, 1, 2
# where a labelled point came from
SOURCE_NONE, SOURCE_USER, SOURCE_MODEL, SOURCE_MODEL_MOVED = 0, 1, 2, 3

STATE_VERSION = 1

KEY_HELP: tuple[tuple[str, str], ...] = (
    ("click", "place the current bodypart"),
    ("drag", "move a point (a click beside it places)"),
    ("x", "skip the current bodypart (occluded)"),
    ("u / Backspace", "undo"),
    ("n / Space / Right", "next frame"),
    ("p / Left", "previous frame"),
    ("g", "next frame with unlabelled bodyparts"),
    ("Tab / 1-9", "choose the bodypart to (re)place"),
    ("d", "delete the current bodypart's point"),
    ("+ / - / wheel", "zoom (at the mouse)"),
    ("0", "reset zoom"),
    ("right-drag", "pan"),
    ("s", "save"),
    ("h", "toggle this help"),
    ("q / Esc", "save and quit"),
)


class AnnotationError(ValueError):
    """A project, label file or state file cannot be annotated (the message names it)."""


@dataclass(frozen=True)
class FrameRef:
    """One image to annotate: ``folder`` is ``<project>/labeled-data/<video>``."""

    folder: Path
    image: str

    @property
    def video(self) -> str:
        return self.folder.name

    @property
    def path(self) -> Path:
        return self.folder / self.image

    @property
    def key(self) -> str:
        """``<video>/<image>``: the frame's name in the state file."""
        return f"{self.video}/{self.image}"


# --------------------------------------------------------------------------------------
# View: image <-> window coordinates
# --------------------------------------------------------------------------------------


class View:
    """Zoom and pan of an image shown in a window area of at most ``max_w x max_h``.

    The canvas is the image scaled to fit ``max_w x max_h`` (``fit``, up or down), so at
    zoom 1 the whole image is shown. ``(cx, cy)`` is the image point at the canvas centre.
    Window coordinates ``(u, v)`` map to image coordinates by
    ``x = (u - canvas_w / 2) / scale + cx`` (likewise y), ``scale = fit * zoom``.
    """

    MAX_ZOOM = 16.0

    def __init__(self, image_w: int, image_h: int, max_w: int, max_h: int) -> None:
        self.image_w, self.image_h = int(image_w), int(image_h)
        self.fit = min(max_w / self.image_w, max_h / self.image_h)
        self.canvas_w = int(round(self.image_w * self.fit))
        self.canvas_h = int(round(self.image_h * self.fit))
        self.zoom = 1.0
        self.cx, self.cy = self.image_w / 2.0, self.image_h / 2.0

    @property
    def scale(self) -> float:
        """Window pixels per image pixel."""
        return self.fit * self.zoom

    def to_image(self, u: float, v: float) -> tuple[float, float]:
        """Image coordinates of window point ``(u, v)``."""
        s = self.scale
        return (u - self.canvas_w / 2.0) / s + self.cx, (v - self.canvas_h / 2.0) / s + self.cy

    def to_canvas(self, x: float, y: float) -> tuple[float, float]:
        """Window coordinates of image point ``(x, y)``."""
        s = self.scale
        return (x - self.cx) * s + self.canvas_w / 2.0, (y - self.cy) * s + self.canvas_h / 2.0

    def matrix(self) -> np.ndarray:
        """The 2x3 affine image -> window matrix (for ``cv2.warpAffine``)."""
        s = self.scale
        return np.array([[s, 0.0, self.canvas_w / 2.0 - s * self.cx],
                         [0.0, s, self.canvas_h / 2.0 - s * self.cy]])

    def _clamp(self) -> None:
        half_w = self.canvas_w / 2.0 / self.scale
        half_h = self.canvas_h / 2.0 / self.scale
        for attr, half, size in (("cx", half_w, self.image_w), ("cy", half_h, self.image_h)):
            if 2 * half >= size or self.zoom <= 1.0:
                setattr(self, attr, size / 2.0)
            else:
                setattr(self, attr, float(np.clip(getattr(self, attr), half, size - half)))

    def zoom_at(self, factor: float, u: float | None = None, v: float | None = None) -> None:
        """Multiply the zoom by ``factor`` keeping the image point under ``(u, v)`` (default:
        the canvas centre) where it is."""
        if u is None or v is None:
            u, v = self.canvas_w / 2.0, self.canvas_h / 2.0
        x, y = self.to_image(u, v)
        self.zoom = float(np.clip(self.zoom * factor, 1.0, self.MAX_ZOOM))
        s = self.scale
        self.cx = x - (u - self.canvas_w / 2.0) / s
        self.cy = y - (v - self.canvas_h / 2.0) / s
        self._clamp()

    def pan(self, du: float, dv: float) -> None:
        """Move the picture by ``(du, dv)`` window pixels."""
        self.cx -= du / self.scale
        self.cy -= dv / self.scale
        self._clamp()

    def reset(self) -> None:
        self.zoom = 1.0
        self.cx, self.cy = self.image_w / 2.0, self.image_h / 2.0


# --------------------------------------------------------------------------------------
# Project
# --------------------------------------------------------------------------------------


def project_bodyparts(project: Path, profile: str | None = None
                      ) -> tuple[tuple[str, ...], str | None, tuple[tuple[str, str], ...], float]:
    """Bodyparts, scorer, skeleton and pcutoff of a project.

    The project's DeepLabCut ``config.yaml`` wins; without one, the gaitlive ``profile``
    (default ``broiler-side``) gives bodyparts, skeleton and pcutoff, and the scorer is
    ``None``.
    """
    from gaitlive.config import load_profile

    cfg_path = project / "config.yaml"
    if cfg_path.is_file():
        from gaitlive.dlcio import read_project_config

        cfg = read_project_config(cfg_path)
        if cfg.get("multianimalproject"):
            raise AnnotationError(f"{cfg_path}: multi-animal DeepLabCut projects are not "
                                  "supported by gaitlive annotate; expected "
                                  "multianimalproject: false")
        bps = cfg.get("bodyparts")
        if not isinstance(bps, list) or not bps or not all(isinstance(b, str) for b in bps):
            raise AnnotationError(f"{cfg_path}: key 'bodyparts' must be a non-empty list of "
                                  f"names, got {bps!r}")
        if len(set(bps)) != len(bps):
            raise AnnotationError(f"{cfg_path}: key 'bodyparts' has duplicates: {bps}")
        skel = tuple((str(a), str(b)) for a, b in (cfg.get("skeleton") or [])
                     if a in bps and b in bps)
        pcut = float(cfg.get("pcutoff") or 0.6)
        if profile:
            prof = load_profile(profile)
            if tuple(prof.bodyparts) != tuple(bps):
                log.warning("%s bodyparts %s differ from profile %s %s; using the project's",
                            cfg_path, bps, prof.name, list(prof.bodyparts))
        scorer = cfg.get("scorer")
        return tuple(bps), (str(scorer) if scorer else None), skel, pcut
    prof = load_profile(profile or "broiler-side")
    return tuple(prof.bodyparts), None, tuple(prof.skeleton), float(prof.pcutoff)


def _atomic_json(path: Path, data: Any) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())

    atomic_write(path, write)


# --------------------------------------------------------------------------------------
# Session
# --------------------------------------------------------------------------------------


@dataclass
class _Undo:
    frame: int
    bodypart: int
    xy: tuple[float, float]
    status: int
    source: int
    cursor: tuple[int, int | None]
    clicked: bool = False


class AnnotationSession:
    """Click-through annotation of a DeepLabCut project's frames (no window).

    Parameters
    ----------
    project
        DeepLabCut project folder with ``labeled-data/<video>/*.png`` (see
        ``gaitlive frames``).
    scorer
        Annotator: labels go to ``CollectedData_<scorer>``. Default: the project config's
        ``scorer``, else the login name.
    profile
        gaitlive profile for bodyparts when the project has no ``config.yaml``.
    predictor
        Model-assisted mode: an object with ``get_pose(image) -> (n_ind, n_kp, 3)``
        (e.g. :func:`gaitlive.pose.load_runner`) or a callable doing the same. Its
        keypoints must be the project's bodyparts, in order (or it has a ``bodyparts``
        attribute naming them).
    pcutoff
        Model points below this likelihood are left unlabelled (default: the project's).
    auto_advance
        Go to the next frame by itself when the current one is complete.
    autosave
        Save after every change (turn off only for tests of the save itself).
    pick_radius
        How close (window pixels) a press must be to a point to drag it.
    canvas_size
        Largest ``(width, height)`` the image is shown at (see :class:`View`).
    """

    def __init__(self, project: str | os.PathLike[str], *, scorer: str | None = None,
                 profile: str | None = None, predictor: Any = None,
                 pcutoff: float | None = None, auto_advance: bool = True,
                 autosave: bool = True, pick_radius: float = 10.0,
                 canvas_size: tuple[int, int] = (1200, 700)) -> None:
        from gaitlive.offline.frames import default_scorer, plain_scorer

        self.project = Path(project).expanduser().resolve()
        if not self.project.is_dir():
            raise AnnotationError(f"{self.project}: project folder not found")
        bps, cfg_scorer, skel, cfg_pcut = project_bodyparts(self.project, profile)
        self.bodyparts: tuple[str, ...] = bps
        self.skeleton = skel
        self.scorer: str = scorer or cfg_scorer or default_scorer()
        if not plain_scorer(self.scorer):
            raise AnnotationError(f"scorer name {self.scorer!r} must be a plain name")
        self.pcutoff = float(cfg_pcut if pcutoff is None else pcutoff)
        self.predictor = predictor
        self.auto_advance = auto_advance
        self.autosave = autosave
        self.pick_radius = float(pick_radius)
        self.canvas_size = canvas_size
        self.state_path = self.project / f".gaitlive-annotate-{self.scorer}.json"

        self.frames: list[FrameRef] = self._discover()
        n_f, n_k = len(self.frames), len(self.bodyparts)
        self.xy = np.full((n_f, n_k, 2), np.nan)
        self.status = np.zeros((n_f, n_k), dtype=np.int8)
        self.source = np.zeros((n_f, n_k), dtype=np.int8)
        self.prefilled = np.zeros(n_f, dtype=bool)
        self.in_file = np.zeros(n_f, dtype=bool)  # row exists in CollectedData
        self.frame = 0
        self.bodypart: int | None = 0
        self.user_clicks = 0
        self.message = ""
        self._undo: list[_Undo] = []
        self._drag: _Undo | None = None
        self._press_at: tuple[float, float] | None = None
        self._dirty: set[Path] = set()
        self._image_cache: tuple[int, np.ndarray] | None = None
        self.view: View | None = None
        self._load()
        self._prefill(self.frame)
        self._ensure_view()

    # ---------------------------------------------------------------- loading

    def _discover(self) -> list[FrameRef]:
        root = self.project / "labeled-data"
        if not root.is_dir():
            raise AnnotationError(f"{root}: no labeled-data folder; pick frames first with "
                                  f"'gaitlive frames VIDEO --project {self.project}'")
        frames: list[FrameRef] = []
        # <video>_labeled folders are DeepLabCut's check_labels output, not frames to label
        for folder in sorted(p for p in root.iterdir()
                             if p.is_dir() and not p.name.endswith("_labeled")):
            names = {p.name for p in folder.glob("*.png") if not p.name.startswith(".")}
            labels = folder / f"CollectedData_{self.scorer}.h5"
            if not labels.is_file():
                labels = labels.with_suffix(".csv")
            if labels.is_file():
                names.update(self._read_labels(labels).images)
            frames.extend(FrameRef(folder, n) for n in sorted(names))
        if not frames:
            raise AnnotationError(f"{root}: no .png frames in any labeled-data/<video> folder;"
                                  f" pick frames first with 'gaitlive frames VIDEO --project "
                                  f"{self.project}'")
        return frames

    def _read_labels(self, path: Path) -> LabelledFrames:
        try:
            data = read_collected_data(path)
        except DLCFileError as e:
            raise AnnotationError(str(e)) from e
        if data.scorer != self.scorer:
            raise AnnotationError(f"{path}: scorer level is {data.scorer!r}, expected "
                                  f"{self.scorer!r} (the file name's)")
        unknown = [b for b in data.bodyparts if b not in self.bodyparts]
        if unknown:
            raise AnnotationError(
                f"{path}: unknown bodypart(s) {unknown}; expected the project's bodyparts "
                f"{list(self.bodyparts)} (fix config.yaml 'bodyparts' or the label file)")
        return data

    def _load(self) -> None:
        index = {(f.video, f.image): i for i, f in enumerate(self.frames)}
        for folder in sorted({f.folder for f in self.frames}):
            labels = folder / f"CollectedData_{self.scorer}.h5"
            if not labels.is_file():
                labels = labels.with_suffix(".csv")
            if not labels.is_file():
                continue
            data = self._read_labels(labels)
            cols = [self.bodyparts.index(b) for b in data.bodyparts]
            # a bodypart the file has no column for (added to the project since) is not
            # labelled yet; a NaN in a column it has was skipped (occluded)
            has_col = np.zeros(len(self.bodyparts), bool)
            has_col[cols] = True
            for row, image in enumerate(data.images):
                i = index[(folder.name, image)]
                self.in_file[i] = True
                self.xy[i, cols] = data.xy[row]
                ok = np.isfinite(self.xy[i]).all(axis=1)
                self.status[i] = np.where(ok, LABELLED, np.where(has_col, SKIPPED, UNSET))
                self.source[i] = np.where(ok, SOURCE_USER, SOURCE_NONE)
        state = self._read_state()
        if state is None:
            self.frame = self._first_unfinished(0)
            self.bodypart = self._next_unset(self.frame, -1)
            return
        keys = {f.key: i for i, f in enumerate(self.frames)}
        for key, rec in state.get("frames", {}).items():
            i = keys.get(key)
            if i is None:
                continue
            st = np.asarray(rec.get("status", []), dtype=np.int8)
            src = np.asarray(rec.get("source", []), dtype=np.int8)
            if st.shape != (len(self.bodyparts),) or src.shape != st.shape:
                raise AnnotationError(f"{self.state_path}: frames.{key} has "
                                      f"{st.shape} statuses, expected {len(self.bodyparts)}")
            self.prefilled[i] = bool(rec.get("prefilled", False))
            have = np.isfinite(self.xy[i]).all(axis=1)
            # labels on disk are the truth for coordinates; the state only adds what a
            # NaN means (skipped or not yet labelled) and where a point came from
            self.status[i] = np.where(have, LABELLED, np.where(st == SKIPPED, SKIPPED, UNSET))
            self.source[i] = np.where(have, np.where(src == SOURCE_NONE, SOURCE_USER, src),
                                      SOURCE_NONE)
        self.user_clicks = int(state.get("user_clicks", 0))
        i = keys.get(state.get("frame", ""))
        self.frame = self._first_unfinished(0) if i is None else i
        bp = state.get("bodypart")
        if bp in self.bodyparts and self.status[self.frame, self.bodyparts.index(bp)] == UNSET:
            self.bodypart = self.bodyparts.index(bp)
        else:
            self.bodypart = self._next_unset(self.frame, -1)

    def _read_state(self) -> dict[str, Any] | None:
        if not self.state_path.is_file():
            return None
        try:
            with open(self.state_path, encoding="utf-8") as fh:
                state = json.load(fh)
        except (OSError, ValueError) as e:
            raise AnnotationError(f"{self.state_path}: unreadable annotation state ({e}); "
                                  "delete it to start from the label files alone") from e
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise AnnotationError(f"{self.state_path}: expected an annotation state of "
                                  f"version {STATE_VERSION}")
        names = list(state.get("bodyparts", ()))
        if tuple(names) != self.bodyparts:
            gone = [b for b in names if b not in self.bodyparts]
            if gone or len(set(names)) != len(names):
                raise AnnotationError(
                    f"{self.state_path}: bodyparts {names} differ from the project's "
                    f"{list(self.bodyparts)} (no longer in it: {gone}); delete the state file "
                    "to start from the label files alone")
            # the project gained bodyparts (or reordered them): carry each one's state over
            # by name; the new ones are not labelled yet
            where = [names.index(b) if b in names else -1 for b in self.bodyparts]
            for rec in state.get("frames", {}).values():
                for k in ("status", "source"):
                    old = list(rec.get(k, []))
                    if len(old) == len(names):
                        rec[k] = [old[j] if j >= 0 else 0 for j in where]
            state["bodyparts"] = list(self.bodyparts)
        return state

    # ---------------------------------------------------------------- queries

    @property
    def n_frames(self) -> int:
        return len(self.frames)

    @property
    def current(self) -> FrameRef:
        return self.frames[self.frame]

    @property
    def current_bodypart(self) -> str | None:
        return None if self.bodypart is None else self.bodyparts[self.bodypart]

    def frame_complete(self, i: int | None = None) -> bool:
        """All bodyparts of frame ``i`` (default: the current one) labelled or skipped."""
        return bool((self.status[self.frame if i is None else i] != UNSET).all())

    def _next_unset(self, i: int, after: int) -> int | None:
        n = len(self.bodyparts)
        for k in list(range(after + 1, n)) + list(range(0, after + 1)):
            if self.status[i, k] == UNSET:
                return k
        return None

    def _first_unfinished(self, start: int) -> int:
        for j in list(range(start, self.n_frames)) + list(range(0, start)):
            if not self.frame_complete(j):
                return j
        return start

    def image(self, i: int | None = None) -> np.ndarray:
        """The BGR image of frame ``i`` (default: the current one)."""
        import cv2

        i = self.frame if i is None else i
        if self._image_cache is not None and self._image_cache[0] == i:
            return self._image_cache[1]
        img = cv2.imread(str(self.frames[i].path), cv2.IMREAD_COLOR)
        if img is None:
            raise AnnotationError(f"{self.frames[i].path}: cannot read the image")
        self._image_cache = (i, img)
        return img

    def _ensure_view(self) -> None:
        try:
            h, w = self.image().shape[:2]
        except AnnotationError:
            return  # labels of a deleted image: nothing to show
        if self.view is None or (self.view.image_w, self.view.image_h) != (w, h):
            self.view = View(w, h, *self.canvas_size)

    def stats(self) -> dict[str, int]:
        """Counts: frames done, points labelled/skipped, the user's clicks, model points
        placed and the clicks they saved (model points kept as predicted)."""
        lab = self.status == LABELLED
        return {
            "frames": self.n_frames,
            "frames_done": int(sum(self.frame_complete(i) for i in range(self.n_frames))),
            "labelled": int(lab.sum()),
            "skipped": int((self.status == SKIPPED).sum()),
            "user_clicks": int(self.user_clicks),
            "model_points": int((lab & (self.source >= SOURCE_MODEL)).sum()),
            "model_corrected": int((lab & (self.source == SOURCE_MODEL_MOVED)).sum()),
            "clicks_saved": int((lab & (self.source == SOURCE_MODEL)).sum()),
        }

    def point_at(self, x: float, y: float, radius: float | None = None) -> int | None:
        """The labelled bodypart of the current frame nearest image point ``(x, y)`` within
        ``radius`` image pixels (default: ``pick_radius`` window pixels), or ``None``."""
        if radius is None:
            radius = self.pick_radius / (self.view.scale if self.view else 1.0)
        pts = self.xy[self.frame]
        ok = self.status[self.frame] == LABELLED
        if not ok.any():
            return None
        d = np.hypot(pts[:, 0] - x, pts[:, 1] - y)
        d[~ok] = np.inf
        k = int(np.argmin(d))
        return k if d[k] <= radius else None

    # ---------------------------------------------------------------- editing

    def _record(self, k: int) -> _Undo:
        i = self.frame
        return _Undo(i, k, (float(self.xy[i, k, 0]), float(self.xy[i, k, 1])),
                     int(self.status[i, k]), int(self.source[i, k]), (i, self.bodypart))

    def _changed(self, i: int | None = None) -> None:
        """Frame ``i`` (default: the current one) changed: save its folder."""
        self._dirty.add(self.frames[self.frame if i is None else i].folder)
        if self.autosave:
            self.save()

    def _advance_from(self, k: int) -> None:
        """After bodypart ``k`` was decided: the next unlabelled bodypart, else the next
        frame (``auto_advance``)."""
        self.bodypart = self._next_unset(self.frame, k)
        if self.bodypart is None and self.auto_advance and self.frame + 1 < self.n_frames:
            self.goto(self.frame + 1)

    def _check_xy(self, x: float, y: float) -> bool:
        img = self.image()
        h, w = img.shape[:2]
        return 0 <= x < w and 0 <= y < h

    def click(self, x: float, y: float) -> bool:
        """Place the current bodypart at image point ``(x, y)``.

        Returns
        -------
        bool
            ``True`` when a point was placed (``False``: no bodypart left on this frame or
            outside the image).
        """
        if self.bodypart is None:
            self.message = "frame complete: n for the next frame, Tab/1-9 to re-place a point"
            return False
        if not self._check_xy(x, y):
            self.message = "outside the image"
            return False
        k = self.bodypart
        rec = self._record(k)
        rec.clicked = True
        self._undo.append(rec)
        i = self.frame
        self.xy[i, k] = (x, y)
        self.status[i, k] = LABELLED
        self.source[i, k] = SOURCE_USER
        self.user_clicks += 1
        self.message = f"{self.bodyparts[k]} placed"
        self._advance_from(k)
        self._changed(i)
        return True

    def press(self, x: float, y: float) -> str:
        """Mouse button down at image point ``(x, y)``: grab a point near it (drag) or
        place the current bodypart. Returns ``"drag"``, ``"place"`` or ``"none"``.

        A grabbed point released where it was pressed (a plain click next to a point, e.g.
        the other knee) places the current bodypart there instead."""
        k = self.point_at(x, y)
        if k is not None:
            self._drag = self._record(k)
            self._press_at = (x, y)
            self.message = f"moving {self.bodyparts[k]}"
            return "drag"
        return "place" if self.click(x, y) else "none"

    def move(self, x: float, y: float) -> None:
        """Mouse moved with the button down: move the grabbed point (not saved yet)."""
        if self._drag is None:
            return
        h, w = self.image().shape[:2]
        self.xy[self._drag.frame, self._drag.bodypart] = (np.clip(x, 0, w - 1),
                                                         np.clip(y, 0, h - 1))

    def release(self, x: float, y: float) -> None:
        """Mouse button up: drop the grabbed point at ``(x, y)`` and save."""
        if self._drag is None:
            return
        rec, self._drag = self._drag, None
        i, k = rec.frame, rec.bodypart
        press_at, self._press_at = self._press_at, None
        still = self.pick_radius / 5.0 / (self.view.scale if self.view else 1.0)
        if press_at is not None and np.hypot(x - press_at[0], y - press_at[1]) <= still:
            # not a drag: a click next to a point
            self.xy[i, k] = rec.xy
            if self.bodypart is not None and self.bodypart != k:
                self.click(x, y)
            return
        self._drag = rec
        self.move(x, y)
        self._drag = None
        if tuple(self.xy[i, k]) == rec.xy:
            return
        self._undo.append(rec)
        if self.source[i, k] == SOURCE_MODEL:
            self.source[i, k] = SOURCE_MODEL_MOVED
        self.message = f"{self.bodyparts[k]} moved"
        self._changed(i)

    def drag(self, k: int | str, x: float, y: float) -> None:
        """Move bodypart ``k`` (index or name) of the current frame to ``(x, y)`` in one go
        (press on it, move, release)."""
        k = self.bodyparts.index(k) if isinstance(k, str) else int(k)
        if self.status[self.frame, k] != LABELLED:
            raise AnnotationError(f"{self.bodyparts[k]} is not labelled on "
                                  f"{self.current.key}; nothing to drag")
        self._drag = self._record(k)
        self.release(x, y)

    def skip(self) -> bool:
        """Mark the current bodypart occluded (NaN in the labels) and go on."""
        if self.bodypart is None:
            return False
        k = self.bodypart
        self._undo.append(self._record(k))
        i = self.frame
        self.xy[i, k] = np.nan
        self.status[i, k] = SKIPPED
        self.source[i, k] = SOURCE_NONE
        self.message = f"{self.bodyparts[k]} skipped"
        self._advance_from(k)
        self._changed(i)
        return True

    def delete(self) -> bool:
        """Remove the current (selected) bodypart's point of this frame."""
        k = self.bodypart
        if k is None or self.status[self.frame, k] == UNSET:
            return False
        self._undo.append(self._record(k))
        self.xy[self.frame, k] = np.nan
        self.status[self.frame, k] = UNSET
        self.source[self.frame, k] = SOURCE_NONE
        self._changed()
        return True

    def undo(self) -> bool:
        """Undo the last placement, skip, drag or delete (goes back to that frame)."""
        if not self._undo:
            self.message = "nothing to undo"
            return False
        rec = self._undo.pop()
        i, k = rec.frame, rec.bodypart
        if rec.clicked:
            self.user_clicks = max(0, self.user_clicks - 1)
        self.xy[i, k] = rec.xy
        self.status[i, k] = rec.status
        self.source[i, k] = rec.source
        if rec.cursor[0] != self.frame:
            self.goto(rec.cursor[0], prefill=False)
        self.bodypart = k if rec.status == UNSET else rec.cursor[1]
        self.message = f"undid {self.bodyparts[k]}"
        self._dirty.add(self.frames[i].folder)
        if self.autosave:
            self.save()
        return True

    def select(self, k: int | str | None) -> None:
        """Make bodypart ``k`` (index or name) current: the next click (re)places it."""
        if k is None:
            self.bodypart = None
            return
        k = self.bodyparts.index(k) if isinstance(k, str) else int(k)
        if not 0 <= k < len(self.bodyparts):
            return
        self.bodypart = k

    def goto(self, i: int, *, prefill: bool = True) -> None:
        """Show frame ``i``; the current bodypart is its first unlabelled one."""
        i = int(np.clip(i, 0, self.n_frames - 1))
        self.frame = i
        if prefill:
            self._prefill(i)
        self.bodypart = self._next_unset(i, -1)
        self._ensure_view()
        if self.autosave:
            self._save_state()

    def next_frame(self) -> None:
        if self.frame + 1 < self.n_frames:
            self.goto(self.frame + 1)
        else:
            self.message = "last frame"

    def prev_frame(self) -> None:
        if self.frame > 0:
            self.goto(self.frame - 1)
        else:
            self.message = "first frame"

    def next_unfinished(self) -> None:
        self.goto(self._first_unfinished((self.frame + 1) % self.n_frames))

    # ---------------------------------------------------------------- model

    def _predict(self, img: np.ndarray) -> np.ndarray:
        p = self.predictor
        fn: Callable[[np.ndarray], Any] = p.get_pose if hasattr(p, "get_pose") else p
        pose = np.asarray(fn(img), dtype=np.float64)
        if pose.ndim == 2:
            pose = pose[None]
        if pose.ndim != 3 or pose.shape[-1] != 3:
            raise AnnotationError(f"model returned poses of shape {pose.shape}; expected "
                                  "(n_individuals, n_keypoints, 3)")
        names = getattr(p, "bodyparts", None)
        if names:
            names = list(names)
            missing = [b for b in self.bodyparts if b not in names]
            if len(names) != pose.shape[1] or missing:
                raise AnnotationError(f"model bodyparts {names} do not cover the project's "
                                      f"{list(self.bodyparts)} (missing {missing})")
            pose = pose[:, [names.index(b) for b in self.bodyparts]]
        elif pose.shape[1] != len(self.bodyparts):
            raise AnnotationError(f"model returned {pose.shape[1]} keypoints; the project "
                                  f"has {len(self.bodyparts)} bodyparts {list(self.bodyparts)}")
        lk = np.nan_to_num(pose[..., 2], nan=0.0)
        best = int(np.argmax(lk.mean(axis=1)))  # the individual seen best
        return pose[best]

    def _prefill(self, i: int) -> None:
        """Model-assisted mode: start a frame with no label from the model's prediction."""
        if self.predictor is None or self.prefilled[i] or (self.status[i] != UNSET).any():
            return
        try:
            img = self.image(i)
        except AnnotationError:
            return
        pose = self._predict(img)
        h, w = img.shape[:2]
        ok = ((pose[:, 2] >= self.pcutoff) & np.isfinite(pose[:, :2]).all(axis=1)
              & (pose[:, 0] >= 0) & (pose[:, 0] < w) & (pose[:, 1] >= 0) & (pose[:, 1] < h))
        self.xy[i, ok] = pose[ok, :2]
        self.status[i, ok] = LABELLED
        self.source[i, ok] = SOURCE_MODEL
        self.prefilled[i] = True
        if i == self.frame:
            self.bodypart = self._next_unset(i, -1)
        self.message = f"model placed {int(ok.sum())} of {len(ok)} points"
        if ok.any():
            self._dirty.add(self.frames[i].folder)
            if self.autosave:
                self.save()

    # ---------------------------------------------------------------- keys

    def key(self, k: str) -> bool:
        """Handle a key by name: a character (``"n"``, ``"x"``, ``"+"``, ...) or one of
        ``"right"``, ``"left"``, ``"tab"``, ``"backspace"``, ``"esc"``.

        Returns
        -------
        bool
            ``False`` when the key asks to quit (``q`` / ``esc``; labels are saved first).
        """
        if k in ("q", "esc"):
            self.save()
            return False
        action: dict[str, Callable[[], Any]] = {
            "n": self.next_frame, " ": self.next_frame, "right": self.next_frame,
            "p": self.prev_frame, "left": self.prev_frame,
            "g": self.next_unfinished,
            "x": self.skip,
            "u": self.undo, "backspace": self.undo,
            "d": self.delete,
            "s": self.save,
            "tab": self._cycle,
        }
        if k in action:
            action[k]()
        elif k in ("+", "="):
            if self.view:
                self.view.zoom_at(1.25)
        elif k == "-":
            if self.view:
                self.view.zoom_at(0.8)
        elif k == "0":
            if self.view:
                self.view.reset()
        elif len(k) == 1 and k.isdigit():
            self.select(int(k) - 1)
        return True

    def _cycle(self) -> None:
        start = -1 if self.bodypart is None else self.bodypart
        self.bodypart = (start + 1) % len(self.bodyparts)

    # ---------------------------------------------------------------- saving

    def save(self) -> list[Path]:
        """Write the labels of every changed folder and the state file (atomically).

        Returns
        -------
        list of Path
            The ``CollectedData_<scorer>.h5`` files written.
        """
        written = []
        for folder in sorted(self._dirty):
            idx = [i for i, f in enumerate(self.frames) if f.folder == folder and
                   (self.in_file[i] or (self.status[i] != UNSET).any())]
            if not idx:
                continue
            xy = np.where((self.status[idx] == LABELLED)[..., None], self.xy[idx], np.nan)
            written.append(write_collected_data(
                folder, self.scorer, self.bodyparts, [self.frames[i].image for i in idx], xy))
            self.in_file[idx] = True
        self._dirty.clear()
        self._save_state()
        return written

    def _save_state(self) -> None:
        frames = {}
        for i, f in enumerate(self.frames):
            if (self.status[i] != UNSET).any() or self.prefilled[i]:
                frames[f.key] = {"status": self.status[i].tolist(),
                                 "source": self.source[i].tolist(),
                                 "prefilled": bool(self.prefilled[i])}
        _atomic_json(self.state_path, {
            "version": STATE_VERSION,
            "scorer": self.scorer,
            "bodyparts": list(self.bodyparts),
            "frame": self.current.key,
            "bodypart": self.current_bodypart,
            "user_clicks": int(self.user_clicks),
            "frames": frames,
        })

    def dataframe(self, folder: str | Path | None = None):
        """The CollectedData DataFrame this session writes for ``folder`` (a
        ``labeled-data/<video>`` path or video name; default: the current frame's)."""
        from gaitlive.dlcio import collected_dataframe

        if folder is None:
            fpath = self.current.folder
        else:
            fpath = Path(folder)
            if not fpath.is_absolute():
                fpath = self.project / "labeled-data" / Path(folder).name
        idx = [i for i, f in enumerate(self.frames) if f.folder == fpath and
               (self.in_file[i] or (self.status[i] != UNSET).any())]
        xy = np.where((self.status[idx] == LABELLED)[..., None], self.xy[idx], np.nan)
        return collected_dataframe(self.scorer, self.bodyparts, fpath.name,
                                   [self.frames[i].image for i in idx], xy)


"""Presence gating: skip pose inference while the corridor is empty.

A :class:`PresenceGate` runs OpenCV's MOG2 background subtractor on a downscaled grey copy
of each frame and finds moving blobs. While nothing moves (and for ``hold_frames`` after
the last motion) inference is skipped; while a bird is present it runs, on a crop around
the moving blobs when ``presence.crop`` is on.

Robustness to barn lighting:

* each grey frame is scaled so its median brightness is constant, so a global flicker or
  a cloud does not light up the whole mask;
* MOG2 runs without its shadow label: a pale bird on pale litter differs from the floor
  mostly in brightness, and MOG2 labelled it a shadow (a background-like darkening) on
  every frame, so the gate never saw it (recall 0 on the synthetic side-view passes);
* a morphological opening removes speckle, a closing joins a bird's parts into one blob;
* blobs smaller than ``min_area_fraction`` of the frame are ignored;
* a mask covering more than ``max_area_fraction`` of the frame is a lighting change, not
  a bird: the background is re-learnt from that frame.

Pose feedback (``presence.track_pose``): motion alone loses a bird that stands, or walks
along the camera axis (rear view: it overlaps its own earlier place and MOG2 absorbs it;
the gate saw half of those frames). After each inference, :meth:`PresenceGate.observe`
gets the poses; while the last one has ``track_min_keypoints`` keypoints above pcutoff the
bird counts as present and its keypoints' box (plus ``margin``) joins the crop.

Bird size (``presence.bird_size``): a model is trained on birds of some size in pixels; a
camera nearer the corridor, or with more pixels (1280x960 instead of 640x480), shows them
larger, and the bundled model (trained on birds up to ~250 px) then found a third fewer
keypoints. The gate keeps the median size of the bird over the last inferences (the larger
side of its confident keypoints' box; of its motion blob before the first pose) and, when
it exceeds ``bird_size``, asks for the crop scaled down by ``scale`` = 2^(-k/4) (a few
levels: a few input shapes) so that it fits; ``margin``, ``min_crop`` and ``crop_step``
are in the network's pixels and scale with it.

A crop smaller than ``min_crop`` grows about its centre to that size (the bundled model,
trained on 320x240 crops, detected 79 % of the keypoints on tight crops, 91 % at 320x240).
Its sides are then rounded up to a multiple of ``crop_step`` (32 px): on the CPU the
network took 32 ms per frame on a new crop shape every frame and 24-26 ms on a few
recurring shapes of the same size (``docs/pipeline.md``).

Input cap (``presence.max_input_pixels``): the network's time grows with its input's area
(0.2 ms per 1000 pixels for the bundled model on a CPU core), so the rare large inputs set
the latency tail: the whole frames of the warm-up and crops spanning two birds (640 px
wide) took 57-68 ms against a median of 21 ms. With crop on, a crop (or warm-up frame)
whose area exceeds the cap is scaled down to the largest 2^(-k/4) level at which it fits;
``scale`` is the smaller of that and the bird size's level.

Examples
--------
>>> from gaitlive.config import PresenceSettings
>>> gate = PresenceGate(PresenceSettings(crop=True))
>>> res = gate.update(frame)                 # doctest: +SKIP
>>> poses = runner.get_pose(frame, crop=res.crop, scale=res.scale) if res.run else None  # doctest: +SKIP
>>> gate.observe(poses)                      # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from gaitlive.config import PresenceSettings

log = logging.getLogger(__name__)

__all__ = ["PresenceGate", "PresenceResult", "Box", "bird_scale", "capped_scale", "crop_around",
           "grow_to", "pad_box", "points_box", "runner_resize", "scaled_crop_params"]

#: x1, x2, y1, y2 in full-frame pixels (the crop order dlclive uses)
Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class PresenceResult:
    """What the gate decided for one frame.

    Attributes
    ----------
    run
        Run inference on this frame (motion now, within ``hold_frames`` of the last
        motion, or the background model is still warming up).
    motion
        Moving blobs were found in this frame.
    boxes
        The moving blobs, full-frame ``(x1, x2, y1, y2)``.
    crop
        Region to run inference on (blobs plus ``margin``), or None for the full frame
        (crop off, warming up, or nothing seen yet).
    fg_fraction
        Fraction of the (downscaled) frame marked foreground after cleaning.
    lighting_change
        The mask was dominated by a global change and the background was re-learnt.
    scale
        Factor (<= 1) to scale the crop by on top of ``model.resize`` so that the bird is
        at most ``presence.bird_size`` pixels in the network's input and the input at
        most ``presence.max_input_pixels`` (1: as it is).
    """

    run: bool
    motion: bool
    boxes: tuple[Box, ...] = ()
    crop: Box | None = None
    fg_fraction: float = 0.0
    lighting_change: bool = False
    scale: float = 1.0


class PresenceGate:
    """Background-subtraction presence detector (see the module docstring).

    Parameters
    ----------
    settings
        ``presence`` section of the run config.
    warmup_frames
        Frames during which the background is still being learnt; inference runs on
        them (full frame), so a bird already in view at start-up is not missed.
    max_area_fraction
        A foreground mask larger than this fraction of the frame is treated as a lighting
        change.
    learning_rate
        MOG2 learning rate; negative means automatic (1 / min(frames seen, history)).
    pcutoff
        Likelihood a keypoint needs to count in :meth:`observe`.

    Attributes
    ----------
    frames, run_frames
        Frames seen and frames for which inference was asked.
    """

    def __init__(self, settings: PresenceSettings, *, warmup_frames: int = 10,
                 max_area_fraction: float = 0.6, learning_rate: float = -1.0,
                 pcutoff: float = 0.6, resize: float = 1.0):
        if not (resize > 0.0 and math.isfinite(resize)):
            raise ValueError(f"resize: expected a factor > 0, got {resize!r}")
        self.settings = settings
        self.pcutoff = float(pcutoff)
        # the runner's model.resize: the settings are in pixels of the network's input, a
        # frame pixel is ``resize`` of them before the gate's own ``scale``
        self.resize = float(resize)
        self.warmup_frames = int(warmup_frames)
        self.max_area_fraction = float(max_area_fraction)
        self.learning_rate = float(learning_rate)
        self._open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self._close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
        self.reset()

    def reset(self) -> None:
        """Forget the background (e.g. after a stream reset: the view may have changed)."""
        s = self.settings
        self._mog = cv2.createBackgroundSubtractorMOG2(
            history=s.history, varThreshold=s.var_threshold, detectShadows=False)
        self._seen = 0
        self._since_motion: int | None = None
        self._last_crop: Box | None = None
        self._pose_box: Box | None = None
        self._sizes: deque[float] = deque(maxlen=SIZE_WINDOW)
        self.scale = 1.0
        self._scaled_before = False
        self.frames = 0
        self.run_frames = 0

    @property
    def skipped_frames(self) -> int:
        """Frames on which inference was skipped."""
        return self.frames - self.run_frames

    def _small_grey(self, image: np.ndarray) -> np.ndarray:
        d = self.settings.downscale
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if d > 1:
            grey = cv2.resize(grey, (max(1, grey.shape[1] // d), max(1, grey.shape[0] // d)),
                              interpolation=cv2.INTER_AREA)
        grey = cv2.GaussianBlur(grey, (3, 3), 0)
        med = float(np.median(grey))
        if med > 1.0:  # brightness normalisation against global flicker
            grey = cv2.convertScaleAbs(grey, alpha=128.0 / med)
        return grey

    def update(self, image: np.ndarray) -> PresenceResult:
        """Feed one frame; decide whether (and where) to run inference on it.

        Parameters
        ----------
        image
            BGR ``uint8 (H, W, 3)`` or grey ``(H, W)`` frame.

        Returns
        -------
        PresenceResult
        """
        s = self.settings
        h, w = image.shape[:2]
        small = self._small_grey(image)
        fg = self._mog.apply(small, learningRate=self.learning_rate)
        self._seen += 1
        mask = np.where(fg > 200, 255, 0).astype(np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._open)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._close)
        n_px = mask.shape[0] * mask.shape[1]
        fg_fraction = float(np.count_nonzero(mask)) / n_px
        lighting = False
        boxes: list[Box] = []
        if fg_fraction > self.max_area_fraction and self._seen > self.warmup_frames:
            lighting = True
            self._mog.apply(small, learningRate=1.0)  # re-learn the background now
            log.debug("presence: %.0f%% of the frame changed: lighting change, background "
                      "re-learnt", 100 * fg_fraction)
        else:
            n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
            min_area = s.min_area_fraction * n_px
            sx, sy = w / mask.shape[1], h / mask.shape[0]
            for i in range(1, n):
                x, y, bw, bh, area = stats[i]
                if area >= max(1.0, min_area):
                    boxes.append((int(x * sx), int(min(w, (x + bw) * sx)),
                                  int(y * sy), int(min(h, (y + bh) * sy))))
        motion = bool(boxes)
        warming = self._seen <= self.warmup_frames
        tracked = self._pose_box is not None and not warming
        if motion and not warming and s.bird_size and not tracked:
            # no pose yet: the largest blob stands in for the bird's size
            self._sizes.append(max(max(b[1] - b[0], b[3] - b[2]) for b in boxes))
        self._update_scale()  # once per frame: the crops below use it
        if motion and not warming:
            self._since_motion = 0
            self._last_crop = self._crop(boxes, w, h)
        elif self._since_motion is not None:
            self._since_motion += 1
        held = self._since_motion is not None and self._since_motion <= s.hold_frames
        run = warming or held or tracked
        crop = None
        scale = 1.0
        if run and s.crop:
            if not warming:
                parts = [b for b in (self._last_crop if held else None,
                                     self._grow(self._pose_box, w, h) if tracked else None)
                         if b is not None]
                crop = self._at_least(_union(parts), w, h) if parts else None
            box = crop if crop is not None else (0, w, 0, h)
            r = self.resize
            scale = capped_scale(int((box[1] - box[0]) * r), int((box[3] - box[2]) * r),
                                 self.scale if crop is not None else 1.0, s.max_input_pixels)
        self.frames += 1
        self.run_frames += int(run)
        return PresenceResult(run=run, motion=motion and not warming, boxes=tuple(boxes),
                              crop=crop, fg_fraction=fg_fraction, lighting_change=lighting,
                              scale=scale)

    def observe(self, poses: np.ndarray | None) -> None:
        """Feed back the poses inferred on the frame just gated (None: none were).

        Parameters
        ----------
        poses
            ``(n_individuals, n_keypoints, 3)`` x, y, likelihood in full-frame pixels.
            With ``track_pose`` on, while any individual has ``track_min_keypoints``
            keypoints above ``pcutoff``, the next frame runs and its crop covers them.
        """
        self._pose_box = None
        if poses is None or not self.settings.track_pose:
            return
        p = np.asarray(poses, dtype=float).reshape(-1, np.shape(poses)[-2], 3)
        ok = (np.nan_to_num(p[..., 2], nan=0.0) >= self.pcutoff) & np.isfinite(p[..., 0]) \
            & np.isfinite(p[..., 1])
        good = ok.sum(axis=1) >= self.settings.track_min_keypoints
        if not good.any():
            return
        self._pose_box = points_box(p[good][ok[good]][:, :2])
        if self.settings.bird_size:
            # the largest tracked bird's keypoint box, larger side
            self._sizes.append(max(float(max(np.ptp(q[k, 0]), np.ptp(q[k, 1])))
                                   for q, k in zip(p[good], ok[good], strict=True)))

    def _update_scale(self) -> None:
        """``scale`` from the median recent bird size (see the module docstring)."""
        if self.settings.bird_size and self._sizes:
            size = float(np.median(self._sizes))
            scale = bird_scale(size * self.resize, self.settings.bird_size)
            if scale != self.scale:
                # said once at INFO (a model trained on larger animals needs bird_size 0)
                level = logging.INFO if not self._scaled_before and scale < 1 else logging.DEBUG
                log.log(level, "presence: animal %.0f px (presence.bird_size %d): crops scaled "
                        "by %.3g for the pose model", size, self.settings.bird_size, scale)
                self._scaled_before = self._scaled_before or scale < 1
            self.scale = scale

    def _crop_params(self) -> tuple[int, tuple[int, ...], int]:
        s = self.settings
        return scaled_crop_params(s.margin, s.min_crop, s.crop_step, self.scale * self.resize)

    def _grow(self, box: Box, w: int, h: int) -> Box:
        return pad_box(box, self._crop_params()[0], w, h)

    def _at_least(self, box: Box, w: int, h: int) -> Box:
        _margin, min_crop, step = self._crop_params()
        return grow_to(box, min_crop, w, h, step)

    def _crop(self, boxes: list[Box], w: int, h: int) -> Box:
        return self._grow(_union(boxes), w, h)


#: inferences over which the bird's size is a running median
SIZE_WINDOW = 9
#: smallest scale the gate asks for (a bird 8x larger than ``bird_size``)
MIN_SCALE = 0.125


def runner_resize(runner: object, default: float = 1.0) -> float:
    """The ``model.resize`` a pose runner applies to every input (``default`` for a runner
    without one, e.g. poses read from a file): what :class:`PresenceGate` needs to size its
    crops in pixels of the network's input."""
    settings = getattr(runner, "settings", None)
    resize = getattr(settings, "resize", None)
    return float(resize) if isinstance(resize, (int, float)) and resize > 0 else default


def bird_scale(size: float, bird_size: float) -> float:
    """The crop scale 2^(-k/4) (k = 0, 1, ...; at least ``MIN_SCALE``) with the fewest
    steps that brings a bird of ``size`` pixels to at most ``bird_size``: 1 when it fits.

    >>> bird_scale(200, 260), bird_scale(520, 260), round(bird_scale(300, 260), 3)
    (1.0, 0.5, 0.841)
    """
    if not (size > bird_size > 0):
        return 1.0
    k = math.ceil(4.0 * math.log2(size / bird_size) - 1e-9)
    return max(MIN_SCALE, 2.0 ** (-k / 4.0))


def capped_scale(width: int, height: int, scale: float, max_pixels: int) -> float:
    """The smaller of ``scale`` and the largest level 2^(-k/4) (at least ``MIN_SCALE``)
    at which a ``width`` x ``height`` crop has at most ``max_pixels`` pixels (0: no cap):
    :func:`bird_scale` on the crop's and the cap's square roots.

    >>> capped_scale(320, 240, 1.0, 135000), round(capped_scale(640, 480, 1.0, 135000), 3)
    (1.0, 0.595)
    """
    if max_pixels <= 0:
        return scale
    return min(scale, bird_scale(math.sqrt(float(width) * height), math.sqrt(max_pixels)))


def scaled_crop_params(margin: int, min_crop: tuple[int, ...], step: int, scale: float
                       ) -> tuple[int, tuple[int, ...], int]:
    """``margin``, ``min_crop`` and ``crop_step`` (pixels of the network's input) in frame
    pixels for a crop the runner scales by ``scale``: each divided by it.

    >>> scaled_crop_params(48, (320, 240), 32, 0.5)
    (96, (640, 480), 64)
    """
    return (int(round(margin / scale)), tuple(int(math.ceil(v / scale)) for v in min_crop),
            max(1, int(round(step / scale))))


def points_box(points: np.ndarray) -> Box:
    """Bounding box ``(x1, x2, y1, y2)`` of ``(n, 2)`` finite points, outward to whole pixels."""
    x1, y1 = np.floor(points.min(axis=0)).astype(int)
    x2, y2 = np.ceil(points.max(axis=0)).astype(int)
    return (int(x1), int(x2), int(y1), int(y2))


def pad_box(box: Box, margin: int, w: int, h: int) -> Box:
    """``box`` grown by ``margin`` pixels on every side, clipped to a ``w`` x ``h`` frame."""
    return (max(0, box[0] - margin), min(w, box[1] + margin),
            max(0, box[2] - margin), min(h, box[3] + margin))


def grow_to(box: Box, min_size: tuple[int, ...], w: int, h: int, step: int = 1) -> Box:
    """``box`` ``(x1, x2, y1, y2)`` grown about its centre: each side rounded up to a
    multiple of ``step`` pixels (1: no rounding) and to at least ``min_size`` ``(width,
    height)`` (empty: no minimum), then shifted to stay inside a ``w`` x ``h`` frame (a side
    never grows beyond the frame's)."""
    x1, x2, y1, y2 = box
    mw, mh = (min_size[0], min_size[1]) if min_size else (0, 0)
    tw = min(w, max(mw, -(-(x2 - x1) // step) * step))
    th = min(h, max(mh, -(-(y2 - y1) // step) * step))
    if x2 - x1 < tw:
        x1 = int(min(max(0, (x1 + x2 - tw) // 2), w - tw))
        x2 = x1 + tw
    if y2 - y1 < th:
        y1 = int(min(max(0, (y1 + y2 - th) // 2), h - th))
        y2 = y1 + th
    return (x1, x2, y1, y2)


def crop_around(points: np.ndarray, margin: int, min_size: tuple[int, ...], w: int,
                h: int, step: int = 1) -> Box | None:
    """The crop the gate gives a bird at ``points`` (``(n, 2)``, NaN rows ignored): their
    box plus ``margin``, at least ``min_size``, sides rounded up to a multiple of ``step``;
    None when no point is finite."""
    pts = np.asarray(points, dtype=float)
    pts = pts[np.isfinite(pts).all(axis=1)]
    if not len(pts):
        return None
    return grow_to(pad_box(points_box(pts), margin, w, h), min_size, w, h, step)


def _union(boxes: list[Box]) -> Box:
    return (min(b[0] for b in boxes), max(b[1] for b in boxes),
            min(b[2] for b in boxes), max(b[3] for b in boxes))

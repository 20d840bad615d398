"""Frame capture: cameras, network streams, video files, image folders and the demo.

A :class:`Capture` thread reads frames from a source and hands them to the pose stage
through a :class:`FrameSlot`:

* live sources (USB cameras, RTSP/HTTP streams) and real-time replay use the slot in
  *latest-frame* mode: the consumer always gets the newest frame, a slow consumer never
  builds a backlog, and every frame replaced before it was taken is counted as dropped;
* ``realtime=False`` on a file or folder puts the slot in *blocking* mode: the capture waits
  for the consumer, so offline analysis sees every frame.

Network streams are opened through FFmpeg with open and read timeouts (without them a
``read()`` on a dead stream can hang forever); a lost stream is reopened with exponential
backoff and a :attr:`~gaitlive.frames.FrameEvent.STREAM_RESET` record tells the gait
stage to clear its windows. The end of a file or folder sends an
:attr:`~gaitlive.frames.FrameEvent.END` record.

Examples
--------
>>> slot = FrameSlot()
>>> cap = Capture(open_source("demo"), slot, camera_id="cam0")   # doctest: +SKIP
>>> cap.start(); rec = slot.get(timeout=1.0)                      # doctest: +SKIP
"""

from __future__ import annotations

import collections
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from gaitlive.frames import FrameEvent, FrameRecord
from gaitlive.paths import DEMO_VIDEO

log = logging.getLogger(__name__)

__all__ = [
    "SourceError",
    "SourceSpec",
    "parse_source",
    "FrameSource",
    "VideoFileSource",
    "ImageFolderSource",
    "CameraSource",
    "StreamSource",
    "RateProbe",
    "open_source",
    "FrameSlot",
    "Capture",
    "CaptureStats",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")
DEFAULT_FPS = 30.0


class SourceError(ValueError):
    """A frame source cannot be opened or read; the message names the source."""


# --------------------------------------------------------------------------------------
# Source specification
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceSpec:
    """What a ``source`` string means.

    Attributes
    ----------
    kind
        ``"camera"``, ``"stream"``, ``"file"`` or ``"images"``.
    target
        Camera index (int), URL, or path.
    text
        The source as the user gave it (for messages).
    """

    kind: str
    target: int | str | Path
    text: str

    @property
    def live(self) -> bool:
        """True for cameras and network streams (they pace themselves and can reconnect)."""
        return self.kind in ("camera", "stream")


def parse_source(source: str | int | Path) -> SourceSpec:
    """Classify a source string.

    Parameters
    ----------
    source
        ``"demo"`` (the bundled demo video), a USB camera index (``0``), a stream URL
        (``rtsp://``, ``http://`` ...), a video file or a folder of images.

    Returns
    -------
    SourceSpec

    Raises
    ------
    SourceError
        When a path does not exist or a URL has an unsupported scheme.
    """
    text = str(source).strip()
    if isinstance(source, int) or re.fullmatch(r"\d+", text):
        return SourceSpec("camera", int(text), text)
    if text == "demo":
        if not DEMO_VIDEO.is_file():
            raise SourceError(f"source 'demo': the bundled demo video {DEMO_VIDEO} is missing "
                              f"(expected it in the source checkout's models/demo/)")
        return SourceSpec("file", DEMO_VIDEO, text)
    m = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://", text)
    if m:
        scheme = m.group(1).lower()
        if scheme == "file":
            return parse_source(text[len("file://"):])
        if scheme not in STREAM_SCHEMES:
            raise SourceError(f"source {text!r}: unsupported URL scheme {scheme!r}; expected "
                              f"one of {', '.join(STREAM_SCHEMES)}")
        return SourceSpec("stream", text, text)
    path = Path(text).expanduser()
    if path.is_dir():
        return SourceSpec("images", path, text)
    if path.is_file():
        return SourceSpec("file", path, text)
    raise SourceError(f"source {text!r}: no such file or folder (expected 'demo', a camera "
                      f"index, a stream URL, a video file or a folder of images)")


# --------------------------------------------------------------------------------------
# Sources: open / read / close
# --------------------------------------------------------------------------------------


class FrameSource:
    """Base class of the frame sources: ``open()``, ``read()`` and ``close()``.

    ``read()`` returns a BGR ``uint8`` image, or ``None`` when the source is exhausted (a
    file) or lost (a stream). Sources are used by one thread at a time.
    """

    spec: SourceSpec
    fps: float = DEFAULT_FPS
    #: a lost live source is reopened (cameras, streams); files end instead
    reconnectable: bool = False
    #: a rate set by the run (measured, :func:`live_rate`): kept when a source reopens
    fps_set: float | None = None
    #: frames of the source left out because they could not be read (an image folder's
    #: corrupt files): frame indices still count them, so they stay the source's positions
    skipped: int = 0

    def open(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def read(self) -> np.ndarray | None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file (idempotent)."""

    @property
    def n_frames(self) -> int | None:
        """Number of frames when known (files and folders), else None."""
        return None

    @property
    def frame_shape(self) -> tuple[int, int] | None:
        """``(height, width)`` of the frames when known before reading, else None."""
        return None


def _sane_fps(fps: float, what: str) -> float:
    if not np.isfinite(fps) or fps < 1.0 or fps > 1000.0:
        log.warning("%s reports %.3g fps; assuming %.0f fps", what, fps, DEFAULT_FPS)
        return DEFAULT_FPS
    return float(fps)


class _CvSource(FrameSource):
    """A source read through ``cv2.VideoCapture``."""

    def __init__(self, spec: SourceSpec):
        self.spec = spec
        self._cap: cv2.VideoCapture | None = None
        self._n_frames: int | None = None

    def _make_capture(self) -> cv2.VideoCapture:  # pragma: no cover - interface
        raise NotImplementedError

    def _open_error(self, elapsed_s: float) -> SourceError:  # pragma: no cover - interface
        raise NotImplementedError

    def open(self) -> None:
        self.close()
        t0 = time.monotonic()
        cap = self._make_capture()
        if not cap.isOpened():
            cap.release()
            raise self._open_error(time.monotonic() - t0)
        self._cap = cap
        self.fps = self.fps_set or _sane_fps(cap.get(cv2.CAP_PROP_FPS),
                                             f"source {self.spec.text!r}")

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            return None
        ok, image = self._cap.read()
        if not ok or image is None:
            return None
        return image

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    @property
    def n_frames(self) -> int | None:
        return self._n_frames

    @property
    def frame_shape(self) -> tuple[int, int] | None:
        if self._cap is None:
            return None
        w = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        return (h, w) if w > 0 and h > 0 else None


class VideoFileSource(_CvSource):
    """A video file, read frame by frame (its own frame rate is :attr:`fps`)."""

    def _make_capture(self) -> cv2.VideoCapture:
        return cv2.VideoCapture(str(self.spec.target))

    def _open_error(self, elapsed_s: float) -> SourceError:
        return SourceError(f"source {self.spec.text!r}: cannot open as a video file "
                           f"(OpenCV/FFmpeg could not decode it)")

    def open(self) -> None:
        super().open()
        assert self._cap is not None
        n = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self._n_frames = n if n > 0 else None


class CameraSource(_CvSource):
    """A USB/V4L2 camera by index; a camera that stops delivering frames is reopened."""

    reconnectable = True

    def _make_capture(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(int(self.spec.target))
        if cap.isOpened():
            # keep the driver's queue short: the newest frame, not one from seconds ago
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return cap

    def _open_error(self, elapsed_s: float) -> SourceError:
        devices = sorted(str(p) for p in Path("/dev").glob("video*"))
        have = ", ".join(devices) if devices else "no /dev/video* devices on this machine"
        return SourceError(f"camera index {self.spec.target}: no such camera or it cannot be "
                           f"opened ({have})")


class StreamSource(_CvSource):
    """A network stream (RTSP, HTTP, ...) opened through FFmpeg with open/read timeouts.

    Parameters
    ----------
    spec
        The parsed source.
    open_timeout_s, read_timeout_s
        Passed to FFmpeg as ``CAP_PROP_OPEN_TIMEOUT_MSEC`` / ``CAP_PROP_READ_TIMEOUT_MSEC``:
        opening or a read that takes longer fails instead of hanging.
    """

    reconnectable = True

    def __init__(self, spec: SourceSpec, open_timeout_s: float = 10.0,
                 read_timeout_s: float = 5.0):
        super().__init__(spec)
        self.open_timeout_s = float(open_timeout_s)
        self.read_timeout_s = float(read_timeout_s)

    def _make_capture(self) -> cv2.VideoCapture:
        url = str(self.spec.target)
        if url.lower().startswith("rtsp") and "OPENCV_FFMPEG_CAPTURE_OPTIONS" not in os.environ:
            # RTSP over TCP: UDP loses packets on busy barn networks (smeared frames); set
            # OPENCV_FFMPEG_CAPTURE_OPTIONS yourself to choose otherwise
            os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "rtsp_transport;tcp"
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.open_timeout_s * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.read_timeout_s * 1000)]
        return cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)

    def _open_error(self, elapsed_s: float) -> SourceError:
        how = (f"cannot open within {self.open_timeout_s:g} s" if elapsed_s >= 0.9 *
               self.open_timeout_s else f"cannot open (refused or failed after "
               f"{elapsed_s:.2g} s)")
        return SourceError(f"stream {self.spec.text!r}: {how} (is the camera/server up and the "
                           f"URL right?)")


#: unreadable images in a row after which an image folder source fails
MAX_BAD_IMAGES = 10


class ImageFolderSource(FrameSource):
    """A folder of images (png, jpg, bmp, tif), read in name order.

    Parameters
    ----------
    spec
        The parsed source.
    fps
        Frame rate for real-time replay and for the gait stage's time axis.
    """

    def __init__(self, spec: SourceSpec, fps: float = DEFAULT_FPS):
        self.spec = spec
        self.fps = float(fps)
        self._files: list[Path] = []
        self._pos = 0

    def open(self) -> None:
        folder = Path(self.spec.target)
        self._files = sorted(p for p in folder.iterdir()
                             if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise SourceError(f"source {self.spec.text!r}: no images in the folder (expected "
                              f"files ending in {', '.join(IMAGE_SUFFIXES)})")
        self._pos = 0
        self.skipped = 0

    def read(self) -> np.ndarray | None:
        """The next image; an unreadable one is skipped with a warning (counted in
        ``skipped``), and ``MAX_BAD_IMAGES`` unreadable ones in a row end the run with an
        error naming the last."""
        bad = 0
        while self._pos < len(self._files):
            path = self._files[self._pos]
            self._pos += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                return image
            bad += 1
            self.skipped += 1
            if bad >= MAX_BAD_IMAGES:
                raise SourceError(f"{path}: cannot read as an image (corrupt or not an "
                                  f"image), the {MAX_BAD_IMAGES}th unreadable image in a row")
            log.warning("%s: cannot read as an image (corrupt or not an image); skipped "
                        "(frame %d counts as a frame without a bird)", path, self._pos - 1)
        return None

    @property
    def n_frames(self) -> int | None:
        return len(self._files) or None

    @property
    def frame_shape(self) -> tuple[int, int] | None:
        if not self._files:
            return None
        image = cv2.imread(str(self._files[0]), cv2.IMREAD_COLOR)
        return None if image is None else (image.shape[0], image.shape[1])


class RateProbe:
    """Measure the rate a live source really delivers frames at.

    Cameras and streams report a nominal rate (``CAP_PROP_FPS``) that may be wrong: an
    MJPEG stream over HTTP carries none (FFmpeg says 25), a USB camera in low light
    delivers fewer frames than it reports. The gait stage's clock (cadence, stance times,
    every setting in seconds) must follow the real rate.

    The probe reads the source in a thread from when it is made (while the model loads:
    a live source's frames would be dropped then anyway, and reading keeps its buffers
    from filling), but measures only over ``measure_s`` seconds after :meth:`finish` is
    called: while the model loads the probe thread gets the interpreter late and a camera
    that keeps only its newest frame would seem slower than it is.

    Parameters
    ----------
    source
        An open live source; nothing else may read it until :meth:`finish` returns.
    max_s
        Stop reading after this long, whatever happens.
    """

    #: frames read after ``finish`` is called and before the measurement (a backlog)
    SETTLE_S = 0.3
    #: a source that has delivered more frames than this many times its reported rate
    #: allows since it opened (plus ``FAST_WINDOW``: a burst at opening) is no live source
    #: but a video file served over HTTP: the probe stops reading it so as not to drain it.
    #: A stalled live source's backlog only catches up with real time, never beyond.
    TOO_FAST = 1.5
    FAST_WINDOW = 90  # frames (more than the burst a live stream sends when opened)

    def __init__(self, source: FrameSource, max_s: float = 60.0):
        self.source = source
        self.max_s = float(max_s)
        self.times: list[float] = []
        self.too_fast = False
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="gaitlive-rate-probe",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        t_end = self._t0 + self.max_s
        fast = self.TOO_FAST * max(float(self.source.fps), 1.0)
        while not self._stop.is_set() and time.monotonic() < t_end:
            try:
                image = self.source.read()
            except Exception:  # the capture thread will meet (and report) it again
                return
            if image is None:
                return
            t = time.monotonic()
            self.times.append(t)
            # more frames than real time can have brought, even allowing a burst at opening
            # and a backlog after a stall (which only catches up with real time): a file
            if len(self.times) > fast * (t - self._t0) + self.FAST_WINDOW:
                self.too_fast = True
                return

    def stop(self, wait_s: float = 30.0) -> bool:
        """Stop reading; False when a read has not returned within ``wait_s`` (the source
        must then not be touched)."""
        self._stop.set()
        self._thread.join(timeout=wait_s)
        return not self._thread.is_alive()

    def finish(self, measure_s: float = 2.0, min_frames: int = 20) -> float | None:
        """Measure for ``measure_s`` seconds (after ``SETTLE_S``), stop, and return the
        rate in frames per second: frames / time over that window. None when it cannot
        tell: too few frames came, the two ways of reading the intervals (their mean and
        their median) disagree by more than 15 % (an irregular source), the source
        stalled or is faster than real time (:attr:`too_fast`).

        Raises
        ------
        SourceError
            When a read does not return within 30 s (the source is stuck).
        """
        t_a = time.monotonic() + self.SETTLE_S
        t_b = t_a + measure_s
        while time.monotonic() < t_b and self._thread.is_alive():
            time.sleep(0.02)
        if not self.stop():
            raise SourceError(f"{self.source.spec.text}: a read did not return within "
                              f"30 s; the source is stuck")
        if self.too_fast:
            log.info("%s delivers frames far faster than %.3g fps (a file, not a live "
                     "source?): its rate is taken as reported", self.source.spec.text,
                     self.source.fps)
            return None
        t = np.asarray([x for x in self.times if t_a <= x <= t_b])
        if len(t) < min_frames or t[-1] <= t[0]:
            return None
        mean_rate = (len(t) - 1) / (t[-1] - t[0])
        median_dt = float(np.median(np.diff(t)))
        if median_dt <= 0 or abs(mean_rate * median_dt - 1.0) > 0.15:
            log.info("%s: frame intervals too irregular to measure its rate (%.3g fps from "
                     "their mean, %.3g from their median): taken as reported",
                     self.source.spec.text, mean_rate, 1.0 / max(median_dt, 1e-9))
            return None
        return mean_rate


def live_rate(source: FrameSource, measured: float | None, tolerance: float = 0.1) -> float:
    """The frame rate to run a live source at: the measured one (:class:`RateProbe`) when
    it differs from the source's reported rate by more than ``tolerance`` (a warning says
    so), else the reported one."""
    reported = float(source.fps)
    if measured is None or not np.isfinite(measured) or measured <= 0:
        return reported
    measured = _sane_fps(measured, f"{source.spec.text} (measured)")
    if abs(measured / reported - 1.0) > tolerance:
        log.warning("%s reports %.3g fps but delivers %.3g fps: the gait stage runs at the "
                    "measured rate", source.spec.text, reported, measured)
        return measured
    return reported


class RateWatch:
    """Watch the rate a live source delivers frames at while it runs.

    :class:`RateProbe` measures it once, at the start; a camera may change it later (a USB
    camera lengthens its exposure in low light and delivers 15 of its 30 frames a second).
    Fed each frame's capture time and source index (frames dropped downstream do not
    matter: the index counts every frame read), it reports a rate that has differed from
    the running one by more than ``tolerance`` over the last ``window_s`` seconds, the same
    in both halves of the window (``agree``) so that a stall or a burst is not taken for a
    new rate. The rate reported is the latest half's: the window may still hold a little
    of the old rate when the halves first agree (up to 2.5 % off for the whole window).

    Parameters
    ----------
    fps
        The rate the run is at now.
    window_s
        Seconds of frames a new rate is measured over (it is reported that long after the
        change, at the earliest).
    tolerance, agree
        Relative differences: from the running rate, and between the window's halves.

    Examples
    --------
    >>> watch = RateWatch(30.0, window_s=10.0)
    >>> [watch.add(i / 15.0, i) for i in range(151)][-1]    # 10 s of 15 frames a second
    15.0
    """

    #: seconds between two evaluations of the window
    EVERY_S = 1.0

    def __init__(self, fps: float, window_s: float = 10.0, tolerance: float = 0.1,
                 agree: float = 0.05):
        self.fps = float(fps)
        self.window_s = float(window_s)
        self.tolerance = float(tolerance)
        self.agree = float(agree)
        self._marks: collections.deque[tuple[float, int]] = collections.deque()
        self._next_eval = -math.inf
        self._found: float | None = None

    def reset(self) -> None:
        """Forget the frames seen (a stream loss or reconnect: a gap is no rate)."""
        self._marks.clear()
        self._next_eval = -math.inf
        self._found = None

    def accept(self, fps: float) -> None:
        """The run is at ``fps`` from now: measure afresh against it."""
        self.fps = float(fps)
        self.reset()

    def add(self, t: float, index: int) -> float | None:
        """Add a frame read at monotonic time ``t`` with source index ``index``; returns the
        new rate while the window shows one, else None."""
        marks = self._marks
        marks.append((t, index))
        while len(marks) > 2 and t - marks[1][0] >= self.window_s:
            marks.popleft()
        if t < self._next_eval:
            return self._found
        self._next_eval = t + self.EVERY_S
        self._found = None
        t0, i0 = marks[0]
        if t - t0 < self.window_s * 0.999 or index <= i0:
            return None
        # the mark nearest the middle of the window, for the rates of its two halves
        mid = min(range(1, len(marks) - 1), key=lambda k: abs(marks[k][0] - (t0 + t) / 2),
                  default=None)
        if mid is None:
            return None
        tm, im = marks[mid]
        r1, r2 = (im - i0) / (tm - t0), (index - im) / (t - tm)
        if r1 <= 0 or r2 <= 0 or abs(r1 / r2 - 1.0) > self.agree:
            return None
        if abs(r2 / self.fps - 1.0) > self.tolerance:
            self._found = r2
        return self._found


def open_source(source: str | int | Path, *, open_timeout_s: float = 10.0,
                read_timeout_s: float = 5.0, folder_fps: float = DEFAULT_FPS) -> FrameSource:
    """Parse ``source`` and open it.

    Parameters
    ----------
    source
        See :func:`parse_source`.
    open_timeout_s, read_timeout_s
        Network stream timeouts.
    folder_fps
        Frame rate assigned to a folder of images.

    Returns
    -------
    FrameSource
        An opened source.

    Raises
    ------
    SourceError
        A clear message naming the source when it cannot be opened, e.g. a camera index
        that does not exist.
    """
    spec = parse_source(source)
    src: FrameSource
    if spec.kind == "camera":
        src = CameraSource(spec)
    elif spec.kind == "stream":
        src = StreamSource(spec, open_timeout_s, read_timeout_s)
    elif spec.kind == "images":
        src = ImageFolderSource(spec, fps=folder_fps)
    else:
        src = VideoFileSource(spec)
    src.open()
    log.info("opened %s %s (%.3g fps)", spec.kind, spec.text, src.fps)
    return src


# --------------------------------------------------------------------------------------
# Hand-over slot
# --------------------------------------------------------------------------------------


class FrameSlot:
    """The hand-over between the capture thread and the pose stage.

    In latest-frame mode (``blocking=False``) :meth:`put` replaces a frame the consumer
    has not taken yet (counted in :attr:`dropped`), so the consumer always gets the newest
    frame and never a backlog. In blocking mode :meth:`put` waits while ``capacity`` frames
    are pending, so no frame is lost. Event records (stream reset, end) are never dropped
    and keep their order relative to the frames.

    Parameters
    ----------
    blocking
        Wait for the consumer instead of dropping.
    capacity
        Frames that may be pending in blocking mode.
    """

    def __init__(self, *, blocking: bool = False, capacity: int = 1):
        if capacity < 1:
            raise ValueError(f"FrameSlot capacity must be >= 1, got {capacity}")
        self.blocking = blocking
        self.capacity = capacity
        self.dropped = 0
        self._items: collections.deque[FrameRecord] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False

    def _n_frames(self) -> int:
        return sum(1 for r in self._items if r.event == FrameEvent.FRAME)

    def put(self, record: FrameRecord) -> bool:
        """Offer a record; returns False when the slot was closed (the run is stopping)."""
        with self._cond:
            if record.event == FrameEvent.FRAME:
                if self.blocking:
                    while self._n_frames() >= self.capacity and not self._closed:
                        self._cond.wait(0.1)
                else:
                    kept = [r for r in self._items if r.event != FrameEvent.FRAME]
                    self.dropped += len(self._items) - len(kept)
                    self._items = collections.deque(kept)
            if self._closed:
                return False
            self._items.append(record)
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> FrameRecord | None:
        """Take the oldest pending record; None after ``timeout`` seconds or when closed."""
        with self._cond:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._items:
                if self._closed:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining if remaining is not None else 0.1)
            rec = self._items.popleft()
            self._cond.notify_all()
            return rec

    def close(self) -> None:
        """Wake every waiter; further puts are refused."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    @property
    def pending_frames(self) -> int:
        """Frames (not events) waiting for the consumer: at most 1 in latest-frame mode."""
        with self._cond:
            return self._n_frames()


# --------------------------------------------------------------------------------------
# Capture thread
# --------------------------------------------------------------------------------------


@dataclass
class CaptureStats:
    """Counters of a capture thread (read by other threads; ints are updated atomically)."""

    frames_read: int = 0
    reconnects: int = 0
    read_failures: int = 0
    read_s: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=10000))


class Capture(threading.Thread):
    """A thread that reads frames from ``source`` into ``slot``.

    Parameters
    ----------
    source
        An opened :class:`FrameSource` (see :func:`open_source`).
    slot
        Where frames go. Use ``FrameSlot(blocking=True)`` for offline runs that must see
        every frame.
    camera_id
        Copied into every :class:`~gaitlive.frames.FrameRecord`.
    realtime
        Replay files and folders at their frame rate (live sources pace themselves).
    reconnect_max_s
        Longest wait between reconnection attempts of a lost live source; waits start at
        0.25 s and double.
    max_frames
        Stop after this many frames (then an END record), ``None`` for no limit.
    taps
        Callables given each frame record as it is read (e.g. the raw recorder's
        non-blocking ``submit``); they must not block.

    Attributes
    ----------
    error
        The exception that stopped the thread, if any (an END record follows it).
    """

    def __init__(self, source: FrameSource, slot: FrameSlot, *, camera_id: str = "cam0",
                 realtime: bool = True, reconnect_max_s: float = 30.0,
                 max_frames: int | None = None,
                 taps: Sequence[Callable[[FrameRecord], None]] = ()):
        super().__init__(name="gaitlive-capture", daemon=True)
        self.source = source
        self.slot = slot
        self.camera_id = camera_id
        self.realtime = realtime
        self.reconnect_max_s = float(reconnect_max_s)
        self.max_frames = max_frames
        self.taps = list(taps)
        self.stats = CaptureStats()
        self.error: BaseException | None = None
        self._stop_event = threading.Event()
        self._backoff = 0.0  # reconnect backoff (s) while the source opens but gives no frame
        self._reset_pending = False  # a STREAM_RESET was sent and no frame has followed yet

    @property
    def fps(self) -> float:
        """The source's frame rate."""
        return self.source.fps

    def stop(self) -> None:
        """Ask the thread to finish (it sends END and exits; join it after)."""
        self._stop_event.set()

    @property
    def stopping(self) -> bool:
        return self._stop_event.is_set()

    def run(self) -> None:
        reason = "end of source"
        try:
            reason = self._loop()
            n = self.source.n_frames
            read = self.stats.frames_read + self.source.skipped
            if reason == "end of source" and n is not None and read < 0.99 * n - 1:
                # a truncated or damaged file: its header announced more frames
                reason = f"end of source after {read} of the {n} frames it announces"
                log.warning("%s: the file ended after %d of the %d frames its header "
                            "announces (truncated or damaged?)", self.source.spec.text,
                            read, n)
        except BaseException as e:  # reported by the pipeline, never lost
            self.error = e
            reason = f"error: {e}"
            log.error("capture of %s failed: %s", self.source.spec.text, e)
        finally:
            self.source.close()
            end = FrameRecord(index=self.stats.frames_read, t_capture=time.monotonic(),
                              t_wall=time.time(), camera_id=self.camera_id,
                              event=FrameEvent.END, info={"reason": reason})
            self.slot.put(end)  # event records never wait, even on a full blocking slot

    def _pace(self, t0: float, n: int) -> float:
        """Sleep until frame ``n`` is due in real-time replay; returns the (maybe reset) t0."""
        due = t0 + n / self.source.fps
        now = time.monotonic()
        if due - now > 0:
            self._stop_event.wait(due - now)
        elif now - due > 1.0:
            # far behind (slow decode or a pause): restart the clock instead of bursting
            return now - n / self.source.fps
        return t0

    def _loop(self) -> str:
        src = self.source
        paced = self.realtime and not src.reconnectable
        t0 = time.monotonic()
        n_since_open = 0
        while not self._stop_event.is_set():
            if self.max_frames is not None and self.stats.frames_read >= self.max_frames:
                return f"max_frames {self.max_frames} reached"
            if paced:
                t0 = self._pace(t0, n_since_open)
                if self._stop_event.is_set():
                    break
            t_read = time.monotonic()
            image = src.read()
            t_cap = time.monotonic()
            if image is None:
                if not src.reconnectable:
                    return "end of source"
                self.stats.read_failures += 1
                if not self._reconnect(n_since_open):
                    break
                t0, n_since_open = time.monotonic(), 0
                continue
            self.stats.read_s.append(t_cap - t_read)
            rec = FrameRecord(index=self.stats.frames_read + src.skipped, t_capture=t_cap,
                              t_wall=time.time(), camera_id=self.camera_id, image=image)
            self.stats.frames_read += 1
            n_since_open += 1
            self._reset_pending = False
            for tap in self.taps:
                tap(rec)
            if not self.slot.put(rec):
                break
        return "stopped"

    def _reconnect(self, frames_since_open: int) -> bool:
        """Reopen a lost live source with exponential backoff; send STREAM_RESET on success.

        The backoff carries over while the source keeps failing without delivering a frame
        (it opens, then fails at once: e.g. a camera held by another process), so such a
        source is retried every ``reconnect_max_s`` at most, not in a hot loop; and only a
        source that delivered frames since the last reset sends a new STREAM_RESET.
        Returns False when the thread was asked to stop first."""
        src = self.source
        src.close()
        if frames_since_open > 0:
            log.warning("%s: lost (no frame); reconnecting", src.spec.text)
            self._backoff = 0.0
            # downstream learns now, not when (if ever) it comes back: the open passes end
            # and subscribers see the camera reconnecting
            lost = FrameRecord(index=self.stats.frames_read, t_capture=time.monotonic(),
                               t_wall=time.time(), camera_id=self.camera_id,
                               event=FrameEvent.STREAM_LOST,
                               info={"reconnects": self.stats.reconnects})
            if not self.slot.put(lost):
                return False
        else:  # opened but gave no frame: wait before the next try
            self._backoff = min(max(2 * self._backoff, 0.25), self.reconnect_max_s)
            log.warning("%s: opened but gave no frame; reopening in %.2g s", src.spec.text,
                        self._backoff)
            if self._stop_event.wait(self._backoff):
                return False
        delay = max(self._backoff, 0.25)
        attempt = 0
        while not self._stop_event.is_set():
            attempt += 1
            try:
                src.open()
            except SourceError as e:
                wait = min(delay, self.reconnect_max_s)
                log.warning("%s: reconnect attempt %d failed (%s); next in %.2g s",
                            src.spec.text, attempt, e, wait)
                self._stop_event.wait(wait)
                delay *= 2
                continue
            self.stats.reconnects += 1
            log.warning("%s: reconnected after %d attempt(s)", src.spec.text, attempt)
            if frames_since_open == 0 and self._reset_pending:
                return True  # nothing was delivered since the last STREAM_RESET
            self._reset_pending = True
            reset = FrameRecord(index=self.stats.frames_read, t_capture=time.monotonic(),
                                t_wall=time.time(), camera_id=self.camera_id,
                                event=FrameEvent.STREAM_RESET,
                                info={"reconnects": self.stats.reconnects})
            return self.slot.put(reset)
        return False

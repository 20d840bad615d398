"""Raw stream recording to video files rotated by time (for later annotation).

A :class:`Recorder` is a thread with a bounded queue: :meth:`Recorder.submit` never blocks
the capture thread (a full queue drops the frame and counts it). Frames go to
``<dir>/<camera_id>_<YYYYmmdd-HHMMSS>.<ext>``; a new file starts every ``segment_s``
seconds of wall-clock time, when the frame size changes, and when a live camera's rate
changes (the gait stage's clock: each file's header has its rate). A segment being written is
named ``....partial.<ext>`` and renamed when it is closed, so a finished name is always a
complete, playable file. Beside each segment a ``.csv`` lists the source frame index and
wall-clock time of every frame in it (to line recordings up with poses and scores).
"""

from __future__ import annotations

import csv
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from gaitlive.config import RecordSettings
from gaitlive.frames import FrameEvent, FrameRecord, even_size
from gaitlive.gait.clock import FrameClock

log = logging.getLogger(__name__)

__all__ = ["Recorder", "RecordError", "segment_extension"]

_EXT = {"mp4v": ".mp4", "avc1": ".mp4", "h264": ".mp4", "mjpg": ".avi", "xvid": ".avi",
        "divx": ".avi", "ffv1": ".mkv"}


class RecordError(ValueError):
    """The recording cannot be written (folder, codec); the message names them."""


def segment_extension(fourcc: str) -> str:
    """File extension for a FourCC code (``mp4v`` -> ``.mp4``, ``MJPG`` -> ``.avi``)."""
    return _EXT.get(fourcc.lower(), ".avi")


@dataclass
class _Segment:
    path: Path  # final name
    partial: Path
    writer: cv2.VideoWriter
    index_fh: IO[str]
    index_csv: object
    t_start: float
    size: tuple[int, int]
    fps: float
    frames: int = 0


class Recorder(threading.Thread):
    """Record raw frames to rotated video segments in a background thread.

    Parameters
    ----------
    settings
        ``record`` section of the run config (dir, segment_s, fourcc).
    camera_id
        Prefix of the segment names.
    fps
        Frame rate written into the files.
    queue_size
        Frames that may wait for the encoder before new ones are dropped.
    clock
        The gait stage's :class:`~gaitlive.gait.clock.FrameClock`, when a live camera may
        change its rate: a segment is written at the clock's rate at its first frame, and
        a change of rate starts a new segment. ``None``: every segment at ``fps``.

    Attributes
    ----------
    written, dropped
        Frames written and frames dropped because the encoder was behind.
    segments
        Paths of the finished segments.
    error
        The exception that stopped the thread, if any.
    """

    def __init__(self, settings: RecordSettings, *, camera_id: str = "cam0",
                 fps: float = 30.0, queue_size: int = 64, clock: FrameClock | None = None):
        super().__init__(name="gaitlive-record", daemon=True)
        if len(settings.fourcc) != 4:
            raise RecordError(f"record.fourcc: expected a 4-character FourCC code like "
                              f"'mp4v' or 'MJPG', got {settings.fourcc!r}")
        self.settings = settings
        self.camera_id = camera_id
        self.fps = float(fps)
        self.clock = clock
        self.dir = Path(settings.dir)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RecordError(f"record.dir: cannot create {self.dir} ({e})") from e
        self._check_codec()
        self._q: queue.Queue[FrameRecord | None] = queue.Queue(maxsize=queue_size)
        self._seg: _Segment | None = None
        self.written = 0
        self.dropped = 0
        self.segments: list[Path] = []
        self.error: BaseException | None = None

    def _check_codec(self) -> None:
        """Write a tiny probe file with the FourCC: an encoder this OpenCV build lacks is an
        error before the run starts, not a recording that silently stops."""
        probe = self.dir / f".probe-{os.getpid()}{segment_extension(self.settings.fourcc)}"
        writer = cv2.VideoWriter(str(probe), cv2.VideoWriter_fourcc(*self.settings.fourcc),
                                 self.fps, (64, 48))
        try:
            ok = writer.isOpened()
            if ok:
                writer.write(np.zeros((48, 64, 3), np.uint8))
        finally:
            writer.release()
            probe.unlink(missing_ok=True)
        if not ok:
            raise RecordError(f"record.fourcc {self.settings.fourcc!r}: this OpenCV build "
                              f"cannot write it to {self.dir} (try 'mp4v' or 'MJPG')")

    def submit(self, record: FrameRecord) -> None:
        """Queue a frame for recording; never blocks (drops and counts when full, and every
        frame once the recording stopped on an error)."""
        if record.event != FrameEvent.FRAME or record.image is None:
            return
        if self.error is not None:
            self.dropped += 1
            return
        try:
            self._q.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, close the current segment and stop the thread."""
        if self.is_alive():
            while True:
                try:
                    self._q.put(None, timeout=0.5)
                    break
                except queue.Full:
                    if not self.is_alive():
                        break
            self.join(timeout)
            if self.is_alive():
                log.warning("recorder still writing after %.0f s; left running", timeout)

    def run(self) -> None:
        try:
            while True:
                rec = self._q.get()
                if rec is None:
                    break
                self._write(rec)
        except BaseException as e:
            self.error = e
            log.error("recording stopped: %s", e)
        finally:
            self._finish_segment()

    def _write(self, rec: FrameRecord) -> None:
        image = rec.image
        assert image is not None
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        image = even_size(image)  # the encoder would drop an odd last row or column
        size = (image.shape[1], image.shape[0])
        fps = self.fps if self.clock is None else self.clock.rate(rec.index)
        seg = self._seg
        if seg is not None and (rec.t_wall - seg.t_start >= self.settings.segment_s
                                or size != seg.size or fps != seg.fps):
            self._finish_segment()
            seg = None
        if seg is None:
            seg = self._seg = self._start_segment(rec.t_wall, size, fps)
        seg.writer.write(np.ascontiguousarray(image))
        seg.index_csv.writerow([rec.index, f"{rec.t_wall:.6f}"])  # type: ignore[attr-defined]
        seg.frames += 1
        self.written += 1

    def _start_segment(self, t_wall: float, size: tuple[int, int], fps: float) -> _Segment:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(t_wall))
        ext = segment_extension(self.settings.fourcc)
        base = f"{self.camera_id}_{stamp}"
        n = 0
        while (self.dir / f"{base}{ext}").exists():
            n += 1
            base = f"{self.camera_id}_{stamp}-{n}"
        path = self.dir / f"{base}{ext}"
        partial = self.dir / f"{base}.partial{ext}"
        writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*self.settings.fourcc),
                                 fps, size)
        if not writer.isOpened():
            raise RecordError(f"record: cannot write {partial} with FourCC "
                              f"{self.settings.fourcc!r} (codec unavailable?)")
        fh = open(path.with_suffix(".csv"), "w", newline="", encoding="utf-8")  # noqa: SIM115
        w = csv.writer(fh)
        w.writerow(["frame_index", "t_wall"])
        log.info("recording to %s", path)
        return _Segment(path, partial, writer, fh, w, t_wall, size, fps)

    def _finish_segment(self) -> None:
        seg, self._seg = self._seg, None
        if seg is None:
            return
        seg.writer.release()
        seg.index_fh.close()
        os.replace(seg.partial, seg.path)
        self.segments.append(seg.path)
        log.info("recorded %s (%d frames)", seg.path, seg.frames)

"""Where the live overlay goes: :func:`choose_overlay_mode` picks a window and/or a video
file, and :class:`OverlaySink` draws, shows and records the overlay in its own thread."""

from __future__ import annotations

import collections
import logging
import os
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gaitlive.config import OverlaySettings, Profile
from gaitlive.gait.clock import FrameClock
from gaitlive.gait.events import GaitUpdate
from gaitlive.overlay.draw import annotate
from gaitlive.overlay.state import OverlayState
from gaitlive.overlay.style import OverlayStyle
from gaitlive.overlay.video import VideoOut
from gaitlive.overlay.window import Window, display_available, no_display_reason

log = logging.getLogger(__name__)

__all__ = ["OverlayMode", "OverlaySink", "choose_overlay_mode"]


@dataclass(frozen=True)
class OverlayMode:
    """Where ``gaitlive run`` sends the overlay: a window, a video file, both or neither."""

    window: bool
    video_path: Path | None
    reason: str = ""


def choose_overlay_mode(settings: OverlaySettings, headless: bool, *,
                        out_dir: str | os.PathLike[str] = "gaitlive-out",
                        display: bool | None = None) -> OverlayMode:
    """Decide between a window and a video file for the overlay.

    Parameters
    ----------
    settings
        ``overlay.window`` (``auto``: a window when a display is available; ``on``: a
        window, an error without a display; ``off``: no window) and ``overlay.video``
        (a video path; ``""`` means ``<out_dir>/overlay.mp4`` whenever there is no window).
    headless
        ``--headless``: never a window, whatever the config says.
    out_dir
        The run's output folder.
    display
        Whether a display is available (default: :func:`display_available`).

    Returns
    -------
    OverlayMode

    Raises
    ------
    ValueError
        ``overlay.window: on`` without a display and without ``--headless``.
    """
    has_display = display_available() if display is None else display
    if headless:
        window, reason = False, "--headless"
    elif settings.window == "off":
        window, reason = False, "overlay.window: off"
    elif settings.window == "on":
        if not has_display:
            raise ValueError(f"overlay.window: on, but no display is available "
                             f"({no_display_reason()}); expected overlay.window: auto or off, "
                             f"or --headless")
        window, reason = True, "overlay.window: on"
    else:
        window = has_display
        reason = "a display is available" if has_display else \
            f"no display ({no_display_reason()})"
    if settings.video:
        video: Path | None = Path(settings.video)
    elif not window:
        video = Path(out_dir) / "overlay.mp4"
    else:
        video = None
    return OverlayMode(window=window, video_path=video, reason=reason)


class OverlaySink:
    """Shows and/or records the overlay in its own thread.

    :meth:`submit` never blocks: when the sink's queue is full the frame is dropped
    (counted in :attr:`dropped`) but its gait events are kept, so foot prints and pass
    scores still appear on the next drawn frame. With ``window=True`` an OpenCV window shows
    the overlay; 'q' or Esc in it (or closing it) sets :attr:`quit_event`, which the pipeline
    polls to stop.

    Parameters
    ----------
    profile
        The species/view profile.
    window
        Show an OpenCV HighGUI window.
    video_path
        Write the overlay to this video file (``.mp4``: mp4v, ``.avi``: MJPG), or ``None``.
    fps
        Frame rate of the source (the video's rate and the overlay's clock).
    queue_size
        Frames waiting to be drawn before new ones are dropped.
    title
        Window title.
    style
        :class:`OverlayStyle`.
    lossless
        Never drop: :meth:`submit` waits for room in the queue instead (for offline runs,
        ``--no-realtime``, where a complete overlay movie matters more than pace).
    clock
        The gait stage's :class:`~gaitlive.gait.clock.FrameClock`, for a live camera that
        may change its rate: the overlay's times follow it, and the video (written at
        ``fps``) holds each frame for the source time since the one drawn before, so that
        it plays in real time after a rate change (a frame of a camera gone from 30 to 15
        fps is written twice) and across dropped frames.
    """

    def __init__(self, profile: Profile, window: bool, video_path: Path | None, fps: float,
                 queue_size: int = 4, *, title: str = "gaitlive",
                 style: OverlayStyle | None = None, lossless: bool = False,
                 clock: FrameClock | None = None) -> None:
        if queue_size < 1:
            raise ValueError(f"OverlaySink: expected queue_size >= 1, got {queue_size}")
        self.profile = profile
        self.window = window
        self.video_path = Path(video_path) if video_path is not None else None
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.title = title
        self.lossless = lossless
        self.clock = clock
        self.state = OverlayState(profile, self.fps, style or OverlayStyle(), clock=clock)
        self._owed = 0.0  # video frames owed to the clock (a fraction carried over)
        self._prev_index: int | None = None  # the frame drawn before
        self.quit_event = threading.Event()
        self.dropped = 0
        self.drawn = 0
        self.error: BaseException | None = None
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(maxsize=queue_size)
        self._missed: collections.deque[tuple[GaitUpdate, np.ndarray | None]] = \
            collections.deque(maxlen=10000)
        self._closed = False
        self._win = Window(title)
        self._video = VideoOut(self.video_path, self.fps) if self.video_path else None
        self._thread = threading.Thread(target=self._loop, name="overlay", daemon=True)
        self._thread.start()

    @property
    def quit_requested(self) -> bool:
        """The user pressed 'q'/Esc or closed the window."""
        return self.quit_event.is_set()

    def submit(self, image: np.ndarray, poses: np.ndarray | None,
               update: GaitUpdate | None = None, hud: Mapping[str, Any] | None = None,
               frame_index: int | None = None) -> bool:
        """Queue a frame for drawing; never blocks (unless the sink is ``lossless``).

        Returns
        -------
        bool
            ``True`` if queued, ``False`` if dropped (the sink is busy or closed).
        """
        if self._closed or image is None:
            return False
        item = (image, poses, update, dict(hud) if hud else None, frame_index)
        try:
            if self.lossless:
                while self._thread.is_alive():
                    try:
                        self._queue.put(item, timeout=0.5)
                        return True
                    except queue.Full:
                        continue
                raise queue.Full  # the drawing thread died: count it as a drop
            self._queue.put_nowait(item)
            return True
        except queue.Full:
            self.dropped += 1
            if update is not None and (update.steps or update.passes):
                self._missed.append((update, poses))
            return False

    def add_events(self, update: GaitUpdate) -> None:
        """Steps and passes that came without a frame (the passes a stream reset ended):
        drawn with the next frame, as those of a dropped frame."""
        if not self._closed and (update.steps or update.passes):
            self._missed.append((update, None))

    def _loop(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                image, poses, update, hud, frame_index = item
                fi = frame_index if frame_index is not None else (
                    update.frame_index if update is not None else None)
                # events of dropped frames that came before this one, in order
                while self._missed and (fi is None or self._missed[0][0].frame_index < fi):
                    upd, p = self._missed.popleft()
                    self.state.ingest(upd, p)
                out = annotate(image, poses, self.profile, update, hud, self.state,
                               frame_index=frame_index)
                if self._video is not None:
                    self._video.write(out, self._copies(fi))
                if self.window:
                    self._show(out)
                self.drawn += 1
        except BaseException as e:  # report to the pipeline instead of dying silently
            log.exception("overlay thread failed")
            self.error = e
            self.quit_event.set()
        finally:
            if self._video is not None:
                self._video.close()
            self._win.close()

    #: seconds of source time one drawn frame may fill in the movie at most (a long gap:
    #: a reconnect, a stall)
    MAX_HOLD_S = 2.0

    def _copies(self, frame_index: int | None) -> int:
        """How many times to write this frame into the video, with a clock: as many as the
        source time since the frame drawn before it spans at the video's rate (the
        fractions carried over), so that the movie plays in real time: 2 per frame after
        the camera halved its rate, and frames the sink or the capture dropped are made
        up by holding the next one. Without a clock (or after a jump back): once."""
        prev, self._prev_index = self._prev_index, frame_index
        if self.clock is None or frame_index is None or prev is None or frame_index <= prev:
            self._owed = 0.0
            return 1
        owed = self._owed + self.fps * (self.clock.seconds(frame_index)
                                        - self.clock.seconds(prev))
        n = int(owed + 1e-9)
        cap = max(1, round(self.fps * self.MAX_HOLD_S))
        if n > cap:
            n, owed = cap, float(cap)
        self._owed = owed - n
        return n

    def _show(self, out: np.ndarray) -> None:
        if self.quit_event.is_set():
            return
        if self._win.show(out):
            log.info("overlay: quit requested from the window")
            self.quit_event.set()
            return
        try:
            if self._win.closed_by_user():
                log.info("overlay: window closed")
                self.quit_event.set()
        except cv2.error:
            self.quit_event.set()

    def close(self, timeout: float = 10.0) -> None:
        """Draw what is queued, close the window and finish the video file."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout
        while self._thread.is_alive():  # a dead draw thread never empties a full queue
            try:
                self._queue.put(None, timeout=0.5)
                break
            except queue.Full:
                if time.monotonic() > deadline:
                    break
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            log.warning("overlay thread did not finish within %.1f s", timeout)

    def __enter__(self) -> OverlaySink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

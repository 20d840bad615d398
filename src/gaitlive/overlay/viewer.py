"""The remote viewer behind ``gaitlive view``: :class:`RemoteViewer` draws the overlay of a
remote ``gaitlive run`` from its published messages."""

from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gaitlive.config import Profile
from gaitlive.gait.clock import FrameClock
from gaitlive.gait.events import GaitUpdate, PassResult, StepEvent, TrackState
from gaitlive.overlay.draw import annotate
from gaitlive.overlay.state import OverlayState
from gaitlive.overlay.video import VideoOut, check_video_out
from gaitlive.overlay.window import Window

log = logging.getLogger(__name__)

__all__ = ["RemoteViewer", "ViewStats"]

@dataclass
class ViewStats:
    """What a :class:`RemoteViewer` run did."""

    frames_received: int = 0
    poses_received: int = 0
    steps_received: int = 0
    passes_received: int = 0
    rendered: int = 0
    with_pose: int = 0
    camera_id: str | None = None
    quit_by_user: bool = False
    lost: dict[str, int] = field(default_factory=dict)
    malformed: int = 0


class RemoteViewer:
    """Draws the overlay of a remote ``gaitlive run`` from its published messages.

    Subscribes to ``frame`` (JPEG images), ``pose``, ``step``, ``pass`` and ``status`` of
    one camera and draws the poses, foot prints and scores over the frames, as the live
    overlay does. A frame is drawn once its own poses have arrived or the next frame comes
    (then with the newest poses not after it). Without ``frame`` messages (``publish.jpeg``
    off) the poses are drawn on a dark canvas.

    Parameters
    ----------
    endpoint
        The publisher (or relay backend), e.g. ``tcp://barn-pc:5556``.
    profile
        The profile the remote pipeline runs (bodyparts, skeleton, angles, score scale).
    camera
        Camera id; ``None``: the first camera heard from.
    window
        Show an OpenCV window ('q'/Esc quits).
    out_path
        Also write the drawn frames to this video file.
    fps
        Frame rate of the stream (video rate and overlay clock); default: the ``fps`` in the
        publisher's status, else 30.
    draw
        ``False`` shows the frames as received (when the publisher already drew on them;
        a frame body with ``"drawn": true`` is always shown as received).
    security
        CURVE client settings (:class:`gaitlive.publish.keys.ClientSecurity`) or ``None``.
    canvas_size
        ``(width, height)`` of the dark canvas used when no frames arrive.
    overwrite
        Replace an existing ``out_path`` (``--force``); otherwise an existing file is an
        error. ``out_path`` is checked (:func:`check_video_out`) before anything connects;
        an existing file is replaced only when the first frame is written.
    """

    def __init__(self, endpoint: str, profile: Profile, *, camera: str | None = None,
                 window: bool = True, out_path: Path | None = None, fps: float | None = None,
                 draw: bool = True, security: Any = None,
                 canvas_size: tuple[int, int] = (640, 480), title: str = "gaitlive view",
                 overwrite: bool = False) -> None:
        from gaitlive.publish.subscriber import Subscriber

        self.profile = profile
        self.window = window
        self.out_path = (check_video_out(out_path, overwrite=overwrite)
                         if out_path is not None else None)
        self.fixed_fps = fps
        self.draw = draw
        self.title = title
        self.canvas_size = canvas_size
        self.sub = Subscriber(endpoint, ("frame", "pose", "step", "pass", "status"), camera,
                              security=security)
        self.camera = camera
        self.stats = ViewStats(camera_id=camera)
        # frame numbers -> seconds: --fps, else the run's source_fps from its status
        # messages (followed when it changes); never the status fps, the gait loop's
        # recent rate, which varies: at frame 9000, 30.2 instead of 29.8 moved the clock
        # 4 s back and reset the overlay
        self.clock = FrameClock(fps or 30.0)
        self.state = OverlayState(profile, fps or 30.0, clock=self.clock)
        self.hud: dict[str, Any] = {"camera": camera or "?", "state": "waiting"}
        self._poses: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()
        self._ids: dict[int, list[int]] = {}  # frame -> track id of each pose row
        self._steps: list[StepEvent] = []
        self._passes: list[PassResult] = []
        self._pending: tuple[int, np.ndarray] | None = None
        self._last_frame_t = time.monotonic()  # poses wait 1 s for frames, then a canvas
        self._last_size: tuple[int, int] | None = None
        self._video: VideoOut | None = None
        self._win = Window(title)
        self._recv_times: collections.deque[float] = collections.deque(maxlen=60)
        self._style_plain = dataclass_replace(self.state.style, ids=False, features=False)
        #: the last image drawn (shown and/or written)
        self.last_output: np.ndarray | None = None
        self._closed = False

    # ---------------------------------------------------------------- messages
    def handle(self, msg: Any) -> None:
        """Take one decoded message (:class:`gaitlive.publish.messages.Message`)."""
        if self.camera is None:
            self.camera = msg.camera_id
            self.stats.camera_id = msg.camera_id
            self.hud["camera"] = msg.camera_id
            log.info("view: showing camera %s", msg.camera_id)
        if msg.camera_id != self.camera:
            return
        kind, body = msg.kind, msg.body
        if kind == "status":
            self.hud["state"] = body.get("state", "running")
            for key in ("fps", "latency_ms"):
                if isinstance(body.get(key), (int, float)):
                    self.hud[key] = float(body[key])
                    self.hud.pop("view fps", None)
            for key in ("dropped", "drops"):
                if isinstance(body.get(key), (int, float)):
                    self.hud["dropped"] = int(body[key])
            rate = body.get("source_fps")
            if (self.fixed_fps is None and isinstance(rate, (int, float))
                    and not isinstance(rate, bool) and 0 < rate <= 1000
                    and rate != self.clock.fps):
                # from the newest frame seen (the run switched between passes, earlier)
                last = max(self._poses, default=0)
                if last >= (self.clock.changes[-1][0] if self.clock.changes else 0):
                    self.clock.retime(last, float(rate))
                    self.state.fps = float(rate)
        elif kind == "pose":
            self.stats.poses_received += 1
            f = int(body["frame"])
            self._poses[f] = np.asarray(body["poses"])
            ids = body.get("individuals")  # track id of each row (older publishers: none)
            if isinstance(ids, list):
                self._ids[f] = [int(i) for i in ids]
            while len(self._poses) > 256:
                self._ids.pop(self._poses.popitem(last=False)[0], None)
            if self._pending is not None and self._pending[0] == f:
                self._render(*self._pending)
                self._pending = None
            elif time.monotonic() - self._last_frame_t > 1.0:  # no images: a canvas
                w, h = self._last_size or self.canvas_size
                self._render(f, np.full((h, w, 3), 24, np.uint8))
        elif kind == "step":
            self.stats.steps_received += 1
            self._steps.append(msg.step())
        elif kind == "pass":
            self.stats.passes_received += 1
            self._passes.append(msg.pass_result())
        elif kind == "frame":
            self.stats.frames_received += 1
            img = cv2.imdecode(np.frombuffer(body["jpeg"], np.uint8), cv2.IMREAD_COLOR)
            if img is None:
                log.warning("view: frame %s is not a decodable JPEG", body.get("frame"))
                return
            self._last_frame_t = time.monotonic()
            self._last_size = (img.shape[1], img.shape[0])
            if self._pending is not None:
                self._render(*self._pending)
            if body.get("drawn") is True:  # the publisher drew the overlay already
                self._render(int(body["frame"]), img, drawn=True)
                return
            self._pending = (int(body["frame"]), img)
            if not self.draw or int(body["frame"]) in self._poses:
                self._render(*self._pending)
                self._pending = None

    def _pose_frame(self, f: int) -> int | None:
        """The frame whose poses go with image ``f``: itself, else the newest of the 3
        before it."""
        if f in self._poses:
            return f
        older = [k for k in self._poses if f - 3 <= k < f]
        return max(older) if older else None

    def _tracks(self, pf: int, poses: np.ndarray) -> list[TrackState]:
        """Which bird each pose row is: the publisher's track ids, else row = individual."""
        ids = self._ids.get(pf)
        if ids is not None and len(ids) == len(poses):
            return [TrackState(individual=i, pass_id=-1, pose_row=row, complete=False)
                    for row, i in enumerate(ids) if i >= 0]
        known = {e.individual for e in self._steps} | {p.individual for p in self._passes}
        known |= set(range(len(poses)))
        return [TrackState(individual=i, pass_id=-1, pose_row=i, complete=False)
                for i in sorted(known) if 0 <= i < len(poses)]

    def _render(self, f: int, img: np.ndarray, drawn: bool = False) -> None:
        now = time.monotonic()
        self._recv_times.append(now)
        if "fps" not in self.hud and len(self._recv_times) > 1:
            span = self._recv_times[-1] - self._recv_times[0]
            if span > 0:
                self.hud["view fps"] = round((len(self._recv_times) - 1) / span, 1)
        if self.draw and not drawn:
            pf = self._pose_frame(f)
            poses = None if pf is None else self._poses[pf]
            tracks = []
            if poses is not None:
                self.stats.with_pose += 1
                tracks = self._tracks(pf, poses)
            upd = GaitUpdate(f, tracks, self._steps, self._passes)
            self._steps, self._passes = [], []
            lost = self.sub.lost.get("frame", 0) + self.sub.lost.get("pose", 0)
            hud = dict(self.hud, **({"lost": lost} if lost else {}))
            out = annotate(img, poses, self.profile, upd, hud, self.state,
                           style=self._style_plain)
        else:
            out = img
        self.last_output = out
        self.stats.rendered += 1
        if self.out_path is not None:
            if self._video is None:
                self._video = VideoOut(self.out_path, self.fixed_fps or self.clock.fps)
            self._video.write(out)
        if self.window and self._win.show(out):
            self.stats.quit_by_user = True

    # ---------------------------------------------------------------- loop
    def run(self, duration_s: float | None = None, max_frames: int | None = None,
            idle_timeout_s: float | None = None) -> ViewStats:
        """Receive and draw until ``duration_s`` passed, ``max_frames`` were drawn, nothing
        arrived for ``idle_timeout_s``, or the user quit the window."""
        start = last_msg = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                if duration_s is not None and now - start >= duration_s:
                    break
                if idle_timeout_s is not None and now - last_msg >= idle_timeout_s:
                    log.info("view: nothing received for %.1f s", idle_timeout_s)
                    break
                if max_frames is not None and self.stats.rendered >= max_frames:
                    break
                if self.stats.quit_by_user:
                    break
                msg = self.sub.recv(timeout_s=0.05)
                if msg is not None:
                    last_msg = time.monotonic()
                    self.handle(msg)
                elif self.window and (self._win.quit_key_pressed()
                                      or self._win.closed_by_user()):
                    self.stats.quit_by_user = True
            if self._pending is not None and (max_frames is None
                                              or self.stats.rendered < max_frames):
                self._render(*self._pending)
                self._pending = None
        finally:
            self.close()
        return self.stats

    def close(self) -> None:
        """Finish the video file, close the window and the socket (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._video is not None:
            self._video.close()
        self._win.close()
        self.stats.lost = {k: v for k, v in self.sub.lost.items() if v}
        self.stats.malformed = self.sub.malformed
        self.sub.close()

"""The live pipeline: capture -> pose -> gait/score -> sinks (publisher, overlay, files).

Threads and hand-overs::

    Capture thread --[FrameSlot: latest frame]--> pose thread --[bounded queue]--> gait thread
                                                  (presence gate,                  (GaitStage,
                                                   runner.get_pose)                 then sinks)

* The capture thread always offers the newest frame; a slow pose stage makes it drop
  (counted) instead of building a backlog. With ``realtime=False`` on a file nothing is
  dropped: capture and pose wait for the slower stage.
* The pose thread owns the runner and never waits on downstream in real time: when the
  gait queue is full the frame is dropped (counted). Events (stream reset, end) always get
  through.
* The gait thread feeds :class:`~gaitlive.gait.stage.GaitStage` and hands every frame and
  its :class:`~gaitlive.gait.events.GaitUpdate` to the *sinks*. Sinks are small adapters
  with ``handle(record, update)`` and ``close()``; publisher and overlay sinks hand over to
  their own threads without blocking (they drop frames, never pass scores).

:meth:`Pipeline.run` blocks until the source ends, :meth:`Pipeline.stop` is called (e.g.
from a signal handler) or a stage fails; it then drains, joins the threads, closes the
sinks and returns :class:`PipelineStats`. A failed stage raises :class:`PipelineError`
naming the stage (after the files are closed).
"""

from __future__ import annotations

import collections
import contextlib
import csv
import gc
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import numpy as np

from gaitlive.capture import Capture, FrameSlot, RateWatch
from gaitlive.config import Config
from gaitlive.frames import FrameEvent, FrameRecord, empty_pose
from gaitlive.gait.clock import FrameClock
from gaitlive.gait.events import GaitUpdate, PassResult, Stance, StanceCollector, StepEvent
from gaitlive.presence import PresenceGate, runner_resize

log = logging.getLogger(__name__)

__all__ = [
    "Pipeline",
    "PipelineError",
    "PipelineStats",
    "Series",
    "Sink",
    "OutputWriter",
    "OverlayAdapter",
    "PublisherAdapter",
    "CallbackSink",
]


class PipelineError(RuntimeError):
    """A stage of the pipeline failed; the message names the stage and the cause."""


# --------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------


class Series:
    """Running count/mean/max of a measurement plus its last ``keep`` values (for
    percentiles), so a run of weeks keeps constant memory."""

    def __init__(self, keep: int = 20000):
        self.values: collections.deque[float] = collections.deque(maxlen=keep)
        self.count = 0
        self.total = 0.0
        self.max = -math.inf

    def add(self, v: float) -> None:
        self.values.append(v)
        self.count += 1
        self.total += v
        if v > self.max:
            self.max = v

    def summary(self, scale: float = 1.0) -> dict[str, float]:
        """``n``, ``mean``, ``p50``, ``p99`` and ``max`` (times ``scale``); NaN when empty."""
        if not self.count:
            nan = float("nan")
            return {"n": 0, "mean": nan, "p50": nan, "p99": nan, "max": nan}
        a = np.fromiter(self.values, dtype=np.float64)
        return {"n": self.count, "mean": scale * self.total / self.count,
                "p50": scale * float(np.percentile(a, 50)),
                "p99": scale * float(np.percentile(a, 99)), "max": scale * self.max}


@dataclass
class PipelineStats:
    """What a run did and how fast. Times are seconds; :meth:`summary` gives milliseconds.

    Attributes
    ----------
    frames_read
        Frames the capture read.
    dropped_capture
        Frames replaced in the latest-frame slot before the pose stage took them.
    dropped_gait
        Frames dropped because the gait queue was full (real time only).
    frames_pose
        Frames that went through the pose stage (inference or skipped by presence).
    inferences
        Inference calls (``runner.get_pose``).
    scaled_inferences
        Of those, calls on an input the presence gate scaled down (``presence.bird_size``,
        ``presence.max_input_pixels``).
    skipped_presence
        Frames on which presence gating skipped inference.
    frames_gait
        Frames the gait stage processed.
    steps, passes, scored
        Complete stances (a stance joined to the previous one counts once), finished
        passes, scored passes.
    reconnects, stream_resets
        Live-source reconnections and the STREAM_RESET records seen by the gait stage.
    rate_changes
        ``{"frame", "fps", "was"}`` for each time the gait stage followed a live source
        to another frame rate (:class:`~gaitlive.capture.RateWatch`).
    """

    frames_read: int = 0
    dropped_capture: int = 0
    dropped_gait: int = 0
    frames_pose: int = 0
    inferences: int = 0
    scaled_inferences: int = 0
    skipped_presence: int = 0
    frames_gait: int = 0
    steps: int = 0
    passes: int = 0
    scored: int = 0
    reconnects: int = 0
    stream_resets: int = 0
    rate_changes: list[dict[str, Any]] = field(default_factory=list)
    end_reason: str = ""
    wall_s: float = 0.0
    t_start: float = field(default_factory=time.monotonic)
    t_read: Series = field(default_factory=Series)  # decode/read time of a frame
    t_presence: Series = field(default_factory=Series)
    t_infer: Series = field(default_factory=Series)  # runner.get_pose
    t_gait: Series = field(default_factory=Series)  # GaitStage.update
    t_sinks: Series = field(default_factory=Series)  # all sinks' handle() of a frame
    lat_pose: Series = field(default_factory=Series)  # capture -> pose done
    lat_wait: Series = field(default_factory=Series)  # capture -> pose minus inference
    lat_publish: Series = field(default_factory=Series)  # capture -> handed to sinks
    depth_slot: Series = field(default_factory=Series)
    depth_gait: Series = field(default_factory=Series)
    sinks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """A flat, JSON-friendly summary (times in ms)."""
        wall = self.wall_s or (time.monotonic() - self.t_start)
        out: dict[str, Any] = {
            "frames_read": self.frames_read, "frames_pose": self.frames_pose,
            "frames_gait": self.frames_gait, "inferences": self.inferences,
            "scaled_inferences": self.scaled_inferences,
            "skipped_presence": self.skipped_presence,
            "dropped_capture": self.dropped_capture, "dropped_gait": self.dropped_gait,
            "steps": self.steps, "passes": self.passes, "scored": self.scored,
            "reconnects": self.reconnects, "stream_resets": self.stream_resets,
            "rate_changes": list(self.rate_changes),
            "end_reason": self.end_reason, "wall_s": wall,
            "fps_gait": self.frames_gait / wall if wall > 0 else float("nan"),
            "fps_inference": self.inferences / wall if wall > 0 else float("nan"),
        }
        for name in ("t_read", "t_presence", "t_infer", "t_gait", "t_sinks", "lat_pose",
                     "lat_wait", "lat_publish"):
            out[f"{name}_ms"] = getattr(self, name).summary(1000.0)
        for name in ("depth_slot", "depth_gait"):
            out[name] = getattr(self, name).summary()
        out["sinks"] = self.sinks
        return out

    def format(self) -> str:
        """Human-readable multi-line summary (what ``gaitlive run`` prints at the end)."""
        s = self.summary()

        def ms(key: str) -> str:
            d = s[key]
            if not d["n"]:
                return "-"
            return f"mean {d['mean']:.1f}  p50 {d['p50']:.1f}  p99 {d['p99']:.1f}  max {d['max']:.1f} ms"

        lines = [
            f"frames: read {s['frames_read']}, posed {s['frames_pose']}, gait {s['frames_gait']}"
            f" in {s['wall_s']:.1f} s ({s['fps_gait']:.1f} fps); end: {s['end_reason']}",
            f"inference: {s['inferences']} calls ({s['scaled_inferences']} on scaled-down "
            f"inputs), {s['skipped_presence']} frames skipped by presence gating",
            f"dropped: {s['dropped_capture']} at capture (latest-frame), {s['dropped_gait']} "
            f"before gait",
            f"gait: {s['steps']} steps, {s['passes']} passes ({s['scored']} scored); "
            f"reconnects {s['reconnects']}, stream resets {s['stream_resets']}",
            f"read        {ms('t_read_ms')}",
            f"presence    {ms('t_presence_ms')}",
            f"inference   {ms('t_infer_ms')}",
            f"gait        {ms('t_gait_ms')}",
            f"sinks       {ms('t_sinks_ms')}",
            f"latency capture->pose     {ms('lat_pose_ms')}",
            f"  of which not inference  {ms('lat_wait_ms')}",
            f"latency capture->publish  {ms('lat_publish_ms')}",
            f"queue depth: slot mean {s['depth_slot']['mean']:.2f} max "
            f"{s['depth_slot']['max']:.0f}; gait mean {s['depth_gait']['mean']:.2f} max "
            f"{s['depth_gait']['max']:.0f}",
        ]
        for c in s["rate_changes"]:
            lines.append(f"frame rate: the source went from {c['was']:.3g} to {c['fps']:.3g} "
                         f"fps; the gait stage followed from frame {c['frame']}")
        def show(v: Any) -> str:  # a mapping as "pose 302, pass 4", not a Python dict
            if isinstance(v, dict):
                return "(" + ", ".join(f"{k} {x}" for k, x in v.items()) + ")" if v else "-"
            return str(v)

        for name, d in self.sinks.items():
            if d:
                lines.append(f"{name}: " + ", ".join(f"{k} {show(v)}" for k, v in d.items()))
        return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Sinks: what the gait thread hands each frame to
# --------------------------------------------------------------------------------------


class Sink(Protocol):
    """A consumer of the gait thread's output. ``handle`` must not block for long."""

    name: str

    def handle(self, record: FrameRecord, update: GaitUpdate | None) -> None: ...

    def close(self) -> None: ...

    def stats(self) -> dict[str, Any]: ...


class CallbackSink:
    """Calls ``on_pass(result)`` for each finished pass and ``on_step(event)`` for each
    step event (e.g. to print scores as they come)."""

    name = "callback"

    def __init__(self, on_pass: Callable[[PassResult], None] | None = None,
                 on_step: Callable[[StepEvent], None] | None = None):
        self.on_pass = on_pass
        self.on_step = on_step

    def handle(self, record: FrameRecord, update: GaitUpdate | None) -> None:
        if update is None:
            return
        if self.on_step:
            for ev in update.steps:
                self.on_step(ev)
        if self.on_pass:
            for res in update.passes:
                self.on_pass(res)

    def close(self) -> None:
        pass

    def stats(self) -> dict[str, Any]:
        return {}


#: steps.csv: one row per stance, the columns of ``gaitlive analyze``'s steps table
STEP_COLUMNS = ("individual", "pass_id", "foot", "strike_frame", "lift_frame", "strike_s",
                "lift_s", "camera_id")
#: passes.csv columns before the features (``gaitlive analyze``'s passes table)
PASS_COLUMNS = ("video", "individual", "pass_id", "start_frame", "end_frame", "n_steps",
                "cadence_hz", "score", "score_class", "confidence", "scored", "reason",
                "camera_id")


class OutputWriter:
    """Writes a run's results to ``out_dir`` as it goes, in ``gaitlive analyze``'s layouts:

    * ``poses.h5`` (+ ``poses.csv`` at the end): DeepLabCut analysis file, one row per frame
      that reached the gait stage (frames skipped by presence gating are rows of missing
      keypoints); appended every ``chunk`` frames, so a crash loses at most one chunk;
    * ``passes.csv``: one row per finished pass (score and every feature), flushed per row;
    * ``steps.csv``: one row per stance (strike, lift), the rows of ``gaitlive analyze``'s
      steps table: written once final, i.e. when the same foot's next stance ends or the
      pass ends (:class:`~gaitlive.gait.events.StanceCollector`; a stance still open then
      has no lift), flushed per row. A crash loses at most the last stance of each foot.

    Parameters
    ----------
    out_dir
        Output folder (created).
    bodyparts
        Keypoint names in pose column order.
    n_individuals
        Rows per frame in the pose file (poses are padded/truncated to it).
    camera_id, fps, scorer
        Written into the files (``fps`` into the pose file: the starting rate; the clock's
        rate changes are noted there too, see :func:`gaitlive.dlcio.set_pose_meta`).
    clock
        Frame -> seconds for the steps table's times (the gait stage's
        :attr:`~gaitlive.gait.stage.GaitStage.clock`, which follows a live camera's rate
        changes); default ``frame / fps``.
    video
        The ``video`` column of passes.csv (default: ``camera_id``).
    chunk
        Frames buffered before an append to ``poses.h5``.
    csv_max_frames
        ``poses.csv`` is written at the end only for runs up to this many frames (a run
        of weeks keeps its poses in the ``.h5`` only).
    """

    name = "files"

    def __init__(self, out_dir: str | Path, bodyparts: Sequence[str], *, n_individuals: int = 1,
                 camera_id: str = "cam0", fps: float | None = None, scorer: str = "gaitlive",
                 video: str | None = None, chunk: int = 300, csv_max_frames: int = 1_000_000,
                 clock: FrameClock | None = None):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.bodyparts = tuple(bodyparts)
        self.n_individuals = int(n_individuals)
        self.individuals = (("animal",) if self.n_individuals == 1 else
                            tuple(f"bird{i + 1}" for i in range(self.n_individuals)))
        self.camera_id = camera_id
        self.fps = fps or 30.0
        self.clock = clock if clock is not None else FrameClock(self.fps)
        self.scorer = scorer
        self.video = video if video is not None else camera_id
        self.chunk = int(chunk)
        self.csv_max_frames = int(csv_max_frames)
        self.pose_path = self.out_dir / "poses.h5"
        self.passes_path = self.out_dir / "passes.csv"
        self.steps_path = self.out_dir / "steps.csv"
        for p in (self.pose_path, self.pose_path.with_suffix(".csv")):
            p.unlink(missing_ok=True)
        self._rows: list[np.ndarray] = []
        self._index: list[int] = []
        self._meta_changes: list[tuple[int, float]] = []  # rate changes noted in poses.h5
        self.frame_size: tuple[int, int] | None = None  # (width, height), from the frames
        self._stances = StanceCollector()  # one row per stance, once it is final
        self.frames_written = 0
        self.passes_written = 0
        self.steps_written = 0
        self.steps_open = 0  # rows without a lift: stances still open when their pass ended
        self._passes_fh: IO[str] = open(self.passes_path, "w", newline="", encoding="utf-8")  # noqa: SIM115
        self._steps_fh: IO[str] = open(self.steps_path, "w", newline="", encoding="utf-8")  # noqa: SIM115
        self._steps = csv.writer(self._steps_fh, lineterminator="\n")  # as analyze's tables
        self._steps.writerow(STEP_COLUMNS)
        self._steps_fh.flush()
        self._passes: csv.DictWriter[str] | None = None
        self._closed = False
        import pandas  # noqa: F401  (loaded now, not on the first append mid-run)
        import tables  # noqa: F401

    def handle(self, record: FrameRecord, update: GaitUpdate | None) -> None:
        if record.event == FrameEvent.FRAME:
            self._add_pose(record)
        if update is None:
            return
        n = self.steps_written
        for ev in update.steps:
            for st in self._stances.add(ev):
                self._write_step(st)
        for res in update.passes:
            self._write_pass(res)
            # the pass's last stances (and one still open, without a lift) are final now
            for st in self._stances.end_pass(res.individual, res.pass_id):
                self._write_step(st)
        if self.steps_written != n:
            self._steps_fh.flush()

    def _write_step(self, st: Stance) -> None:
        strike, lift = st.strike_frame, st.lift_frame
        sec = self.clock.seconds
        self._steps.writerow([st.individual, st.pass_id, st.foot, strike,
                              "" if lift is None else lift, f"{sec(strike):.6g}",
                              "" if lift is None else f"{sec(lift):.6g}", self.camera_id])
        self.steps_written += 1
        self.steps_open += lift is None

    def _add_pose(self, record: FrameRecord) -> None:
        if self.frame_size is None and record.image is not None:
            self.frame_size = (int(record.image.shape[1]), int(record.image.shape[0]))
        n_i, n_k = self.n_individuals, len(self.bodyparts)
        row = empty_pose(n_i, n_k)
        if record.poses is not None:
            p = record.poses
            if p.shape[1] != n_k:
                raise ValueError(f"poses have {p.shape[1]} keypoints but the profile names "
                                 f"{n_k} bodyparts {list(self.bodyparts)}")
            m = min(n_i, p.shape[0])
            row[:m] = p[:m]
        self._rows.append(row)
        self._index.append(record.index)
        if len(self._rows) >= self.chunk:
            self._append_poses()

    def _append_poses(self) -> None:
        if not self._rows:
            return
        import pandas as pd

        from gaitlive.dlcio import H5_KEY, PoseData, pose_dataframe, set_pose_meta

        data = PoseData(poses=np.stack(self._rows), bodyparts=self.bodyparts,
                        individuals=self.individuals, scorer=self.scorer, fps=self.fps,
                        frame_index=np.asarray(self._index, dtype=np.int64))
        df = pose_dataframe(data)
        changes = self.clock.changes
        with pd.HDFStore(self.pose_path, mode="a") as store:
            store.append(H5_KEY, df, format="table")
            if self.frames_written == 0 or changes != self._meta_changes:
                # the live camera's rate changes too, so re-analysing the file follows them
                set_pose_meta(store, fps=self.fps, frame_size=self.frame_size,
                              rate_changes=changes)
                self._meta_changes = changes
        self.frames_written += len(self._rows)
        self._rows, self._index = [], []

    def _write_pass(self, res: PassResult) -> None:
        feats = dict(res.features)
        row: dict[str, Any] = {"video": self.video, "cadence_hz": feats.pop("cadence_hz", "")}
        row.update({k: getattr(res, k) for k in PASS_COLUMNS if hasattr(res, k)})
        row.update(feats)
        if self._passes is None:
            stance = sorted(k for k in feats if k.startswith("stance_fraction_"))
            rest = [k for k in feats if k not in stance]  # the stage's order, like analyze
            cols = list(PASS_COLUMNS[:7]) + stance + list(PASS_COLUMNS[7:]) + rest
            self._passes = csv.DictWriter(self._passes_fh, fieldnames=cols, lineterminator="\n",
                                          extrasaction="ignore", restval="")
            self._passes.writeheader()
        self._passes.writerow({k: ("" if v is None else v) for k, v in row.items()})
        self._passes_fh.flush()
        self.passes_written += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._append_poses()
            if self.pose_path.exists() and self.frames_written <= self.csv_max_frames:
                import pandas as pd

                from gaitlive.fileio import atomic_write

                df = pd.read_hdf(self.pose_path)
                atomic_write(self.pose_path.with_suffix(".csv"), lambda p: df.to_csv(p))
        finally:
            for st in self._stances.flush():  # stances of passes still open at the end
                self._write_step(st)
            if self._passes is None:
                csv.writer(self._passes_fh, lineterminator="\n").writerow(PASS_COLUMNS)
            self._passes_fh.close()
            self._steps_fh.close()

    def stats(self) -> dict[str, Any]:
        return {"frames": self.frames_written + len(self._rows), "passes": self.passes_written,
                "steps": self.steps_written, "steps_open": self.steps_open,
                "dir": str(self.out_dir)}


class RecentRate:
    """Frames per second over about the last ``window_s`` seconds (what the live status
    and the HUD show: a rate since the start stays low long after an outage)."""

    def __init__(self, window_s: float = 5.0):
        self.window_s = window_s
        self._marks: collections.deque[tuple[float, int]] = collections.deque()

    def __call__(self, now: float, frames: int) -> float | None:
        marks = self._marks
        marks.append((now, frames))
        while len(marks) > 2 and now - marks[1][0] >= self.window_s:
            marks.popleft()
        t0, f0 = marks[0]
        return (frames - f0) / (now - t0) if now > t0 else None


class OverlayAdapter:
    """Hands frames to a :class:`gaitlive.overlay.OverlaySink` (non-blocking; it drops
    frames when busy) with a heads-up line of live figures."""

    name = "overlay"

    def __init__(self, overlay: Any, stats: PipelineStats, camera_id: str):
        self.overlay = overlay
        self._stats = stats
        self.camera_id = camera_id
        self.state = "live"
        self._rate = RecentRate()

    def handle(self, record: FrameRecord, update: GaitUpdate | None) -> None:
        if record.event in (FrameEvent.STREAM_RESET, FrameEvent.STREAM_LOST):
            self.state = "live" if record.event == FrameEvent.STREAM_RESET else "reconnecting"
            if update is not None:  # the passes the loss ended get their badges
                self.overlay.add_events(update)
            return
        if record.event != FrameEvent.FRAME or record.image is None:
            return
        st = self._stats
        lat = st.lat_pose.values[-1] * 1000.0 if st.lat_pose.values else None
        hud = {"camera": self.camera_id, "state": self.state,
               "fps": self._rate(time.monotonic(), st.frames_gait), "latency_ms": lat,
               "dropped": st.dropped_capture + st.dropped_gait, "frame": record.index}
        self.overlay.submit(record.image, record.poses, update, hud, frame_index=record.index)

    def close(self) -> None:
        self.overlay.close()

    def stats(self) -> dict[str, Any]:
        return {"drawn": self.overlay.drawn, "dropped": self.overlay.dropped}

    @property
    def error(self) -> BaseException | None:
        return getattr(self.overlay, "error", None)

    @property
    def quit_requested(self) -> bool:
        return bool(getattr(self.overlay, "quit_requested", False))


class PublisherAdapter:
    """Hands poses, steps, passes, status (and, with ``publish.jpeg``, overlay frames) to a
    started :class:`gaitlive.publish.Publisher`. Its calls never block; it drops poses
    when its queue is full and journals every pass before sending it (never dropped).

    Parameters
    ----------
    publisher
        A started publisher.
    stats
        The pipeline's statistics (for status messages).
    profile
        The profile (bodyparts of pose messages; overlay drawing of JPEG frames).
    camera_id
        Reported in status messages.
    fps
        Source frame rate (the overlay clock of JPEG frames).
    status_every_s
        Minimum interval between status messages (events always send one).
    clock
        The gait stage's :class:`~gaitlive.gait.clock.FrameClock`: status messages carry
        its current rate as ``source_fps`` (a viewer's frame clock; ``fps`` is the rate
        frames go through the gait stage, which varies).
    """

    name = "publish"

    def __init__(self, publisher: Any, stats: PipelineStats, profile: Any, *,
                 camera_id: str = "cam0", fps: float = 30.0, status_every_s: float = 1.0,
                 clock: Any = None):
        self.publisher = publisher
        self.clock = clock
        self._stats = stats
        self.profile = profile
        self.bodyparts = tuple(profile.bodyparts)
        self.camera_id = camera_id
        self.fps = fps
        self.status_every_s = status_every_s
        self._last_status = 0.0
        self._rate = RecentRate()

    def handle(self, record: FrameRecord, update: GaitUpdate | None) -> None:
        pub = self.publisher
        if record.event == FrameEvent.FRAME:
            if record.poses is not None:
                ids = None
                if update is not None:  # which bird each pose row is (-1: not tracked)
                    ids = [-1] * len(record.poses)
                    for tr in update.tracks:
                        if 0 <= tr.pose_row < len(ids):
                            ids[tr.pose_row] = tr.individual
                pub.publish_pose(record.index, record.t_capture, record.t_wall, record.poses,
                                 self.bodyparts, t_pose=record.t_pose, individuals=ids)
            if record.image is not None and pub.wants_frame(record.index):
                self._publish_frame(record, update)
        if update is not None:
            for ev in update.steps:
                pub.publish_step(ev)
            for res in update.passes:
                pub.publish_pass(res)
        now = time.monotonic()
        if now - self._last_status >= self.status_every_s or record.event != FrameEvent.FRAME:
            self._last_status = now
            s = self._stats
            state = {FrameEvent.END: "ended", FrameEvent.STREAM_RESET: "reconnected",
                     FrameEvent.STREAM_LOST: "reconnecting"}.get(record.event, "live")
            lat = s.lat_pose.values[-1] * 1000.0 if s.lat_pose.values else None
            pub.publish_status({"camera": self.camera_id, "state": state,
                                "fps": self._rate(now, s.frames_gait) or 0.0,
                                "latency_ms": lat, "frames": s.frames_gait,
                                "inferences": s.inferences,
                                "drops": s.dropped_capture + s.dropped_gait,
                                "reconnects": s.reconnects, "passes": s.passes,
                                "source_fps": float(self.clock.fps if self.clock is not None
                                                    else self.fps)})

    def _publish_frame(self, record: FrameRecord, update: GaitUpdate | None) -> None:
        """Publish the camera image as JPEG; ``gaitlive view`` draws the overlay on it from
        the pose, step and pass messages (drawing here too would draw it twice)."""
        import cv2

        assert record.image is not None
        q = int(self.publisher.settings.jpeg_quality)
        ok, buf = cv2.imencode(".jpg", record.image, [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            self.publisher.publish_frame(record.index, buf.tobytes())

    def close(self) -> None:
        self.publisher.close()

    def stats(self) -> dict[str, Any]:
        st = self.publisher.stats()
        return {"published": st.get("published"), "queue_drops": st.get("queue_drops"),
                "endpoint": st.get("endpoint"), "pass_seq": st.get("pass_seq")}


# --------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------


class Pipeline:
    """Wires capture, presence gating, pose inference, the gait stage and the sinks.

    Parameters
    ----------
    capture
        A :class:`~gaitlive.capture.Capture` (not started) writing into its slot.
    runner
        A pose runner (:class:`gaitlive.pose.PoseRunner`): ``init(frame)``,
        ``get_pose(frame, crop=None, scale=1.0)`` in full-frame coordinates; owned by the
        pose thread.
    gait
        A :class:`~gaitlive.gait.stage.GaitStage`, or None (poses only).
    presence
        A :class:`~gaitlive.presence.PresenceGate`, or None (inference on every frame).
    sinks
        Consumers of every frame and gait update (files, publisher, overlay, callbacks).
    queue_size
        Size of the bounded queue between pose and gait.
    realtime
        True: the pose thread never waits on the gait stage (frames are dropped and
        counted when its queue is full). False: nothing is dropped anywhere.
    init_frame
        A frame to initialise the runner with before capture starts (model loading and the
        first slow inference then do not delay the first real frames); None initialises
        on the first frame.
    stats
        Where to count (sinks made before the pipeline may hold it); a new one by default.
    rate_window_s
        Follow the source's frame rate as it runs (a live camera: a USB camera in low light
        halves it; :meth:`from_config` sets ``RATE_WINDOW_S`` for a live source): when it
        has delivered another rate for this many seconds, the gait stage switches to it at
        the next moment no bird is in view
        (:meth:`~gaitlive.gait.stage.GaitStage.set_fps`), with a warning, and
        ``stats.rate_changes`` records it. None: the rate stays.
    """

    #: seconds of another frame rate before a live source's new rate is followed
    RATE_WINDOW_S = 10.0

    def __init__(self, capture: Capture, runner: Any, *, gait: Any | None = None,
                 presence: PresenceGate | None = None, sinks: Sequence[Sink] = (),
                 queue_size: int = 8, realtime: bool = True,
                 init_frame: np.ndarray | None = None, stats: PipelineStats | None = None,
                 rate_window_s: float | None = None):
        self.capture = capture
        self.slot: FrameSlot = capture.slot
        self.runner = runner
        self.gait = gait
        self.presence = presence
        self.sinks = list(sinks)
        self.realtime = realtime
        self.init_frame = init_frame
        self.stats = stats if stats is not None else PipelineStats()
        self._gait_q: queue.Queue[FrameRecord] = queue.Queue(maxsize=queue_size)
        self._abort = threading.Event()
        self._done = threading.Event()
        self._errors: list[tuple[str, BaseException]] = []
        self._threads: list[threading.Thread] = []
        self._stop_reason = ""
        self._forced = False
        self.closing = False  # the sinks are being closed (files finalised)
        # (individual, pass_id) -> foot -> last strike frame, for stats.steps (open passes)
        self._last_strike: dict[tuple[int, int], dict[str, int]] = {}
        self._failed_sinks: set[int] = set()  # sinks whose handle() raised: not called again
        self._rate_watch = (RateWatch(gait.fps, window_s=rate_window_s)
                            if rate_window_s and gait is not None and hasattr(gait, "set_fps")
                            else None)
        self._rate_pending = False  # a new rate waits for no bird in view (logged once)

    @classmethod
    def from_config(cls, cfg: Config, capture: Capture, runner: Any, *, gait: Any | None = None,
                    sinks: Sequence[Sink] = (), init_frame: np.ndarray | None = None,
                    stats: PipelineStats | None = None,
                    follow_rate: bool | None = None) -> Pipeline:
        """A pipeline with the config's presence gating, queue size and real-time mode.
        ``follow_rate``: follow the source's frame rate as it runs (``rate_window_s``
        ``RATE_WINDOW_S``); default for a live source. False for one that delivers faster
        than real time (a video file served over HTTP, :attr:`RateProbe.too_fast`): its
        rate is the decoder's."""
        presence = PresenceGate(cfg.presence, pcutoff=cfg.profile.pcutoff,
                                resize=runner_resize(runner, cfg.model.resize)) \
            if cfg.presence.enabled else None
        live = capture.source.reconnectable
        follow = live if follow_rate is None else follow_rate
        return cls(capture, runner, gait=gait, presence=presence, sinks=sinks,
                   queue_size=cfg.queue_size, realtime=capture.realtime or live,
                   init_frame=init_frame, stats=stats,
                   rate_window_s=cls.RATE_WINDOW_S if follow else None)

    # -- control ---------------------------------------------------------------------

    def stop(self, reason: str = "stopped") -> None:
        """Ask the run to finish: capture stops, queued frames drain, files close.

        Safe to call from a signal handler or any thread."""
        if not self._stop_reason:
            self._stop_reason = reason
        self.capture.stop()

    def force(self) -> None:
        """Stop without waiting for queued frames or slow threads: the stages stop at
        once, the open passes are ended and scored from what was seen, and the sinks still
        close their files (nothing already produced is lost). Safe from a signal
        handler."""
        self._forced = True
        if not self._stop_reason:
            self._stop_reason = "forced stop"
        self._abort.set()
        self.capture.stop()
        self.slot.close()

    def _fail(self, stage: str, exc: BaseException) -> None:
        log.error("%s stage failed: %s", stage, exc)
        self._errors.append((stage, exc))
        self._abort.set()
        self.capture.stop()
        self.slot.close()

    def run(self, poll_s: float = 0.1, on_start: Callable[[], None] | None = None
            ) -> PipelineStats:
        """Run until the source ends, :meth:`stop` is called or a stage fails.

        Parameters
        ----------
        poll_s
            How often the calling thread checks the stages (and can run signal handlers).
        on_start
            Called once the model is initialised and the threads run.

        Returns
        -------
        PipelineStats

        Raises
        ------
        PipelineError
            When a stage failed (after everything was shut down and files were closed).
        """
        try:
            if self._start():
                if on_start is not None:
                    on_start()
                while not self._done.wait(poll_s):
                    self._watch()
        finally:
            self._shutdown()
        if self._errors:
            stage, exc = self._errors[0]
            raise PipelineError(f"{stage} stage failed: {type(exc).__name__}: {exc}") from exc
        return self.stats

    def _start(self) -> bool:
        """Initialise the model and start the threads; False when the model failed."""
        live = self.capture.source.reconnectable
        if live:
            # a camera/stream keeps sending while the model loads: read (and drop) those
            # frames now, so the first frames scored are fresh, not a stale buffered burst
            self.capture.start()
        if self.init_frame is not None:
            t0 = time.perf_counter()
            try:
                self.runner.init(self.init_frame)
            except Exception as e:
                self._fail("pose", e)
                return False
            log.info("pose model initialised in %.2f s", time.perf_counter() - t0)
        # The model, dlclive and its engines leave ~10^6 long-lived objects; a full
        # garbage collection scans them all (0.3-0.5 s) in whichever thread allocates,
        # which stalled one inference and cost ~10 live frames. Collect once now and move
        # what exists to the permanent generation (gc.freeze), so later collections only
        # scan what the run itself creates.
        gc.collect()
        gc.freeze()
        self.stats.t_start = time.monotonic()
        self._threads = [threading.Thread(target=self._guard, args=("pose", self._pose_loop),
                                          name="gaitlive-pose", daemon=True),
                         threading.Thread(target=self._guard, args=("gait", self._gait_loop),
                                          name="gaitlive-gait", daemon=True)]
        for t in self._threads:
            t.start()
        if not live:  # files: no frame may be lost to the model loading
            self.capture.start()
        return True

    def _watch(self) -> None:
        """Called while running: notice failed sink threads and a quit from the window."""
        for sink in self.sinks:
            err = getattr(sink, "error", None)
            if err is not None and not any(s == sink.name for s, _ in self._errors):
                self._fail(sink.name, err)
            if getattr(sink, "quit_requested", False):
                self.stop("quit from the overlay window")
        self.stats.depth_slot.add(self.slot.pending_frames)
        self.stats.depth_gait.add(self._gait_q.qsize())

    def _shutdown(self) -> None:
        self.capture.stop()
        if self.capture.ident is not None:  # started
            self.capture.join(timeout=2.0 if self._forced else 15.0)
        if self.capture.error is not None and not any(s == "capture" for s, _ in self._errors):
            self._errors.append(("capture", self.capture.error))
        if self.capture.is_alive():
            log.warning("capture thread did not stop (a read is blocked); abandoning it")
            self._abort.set()
            self.slot.close()
        for t in self._threads:
            t.join(timeout=2.0 if self._forced else 30.0)
            if t.is_alive():
                log.warning("%s thread did not finish; abandoning it", t.name)
                self._abort.set()
        self.closing = True
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as e:
                log.error("closing %s failed: %s", sink.name, e)
                self._errors.append((sink.name, e))
            with contextlib.suppress(Exception):  # stats are best effort
                self.stats.sinks[sink.name] = sink.stats()
        cs = self.capture.stats
        self.stats.frames_read = cs.frames_read
        self.stats.reconnects = cs.reconnects
        self.stats.dropped_capture = self.slot.dropped
        for v in list(cs.read_s):
            self.stats.t_read.add(v)
        self.stats.wall_s = time.monotonic() - self.stats.t_start
        if self._stop_reason and not self.stats.end_reason.startswith("error"):
            self.stats.end_reason = self._stop_reason
        if self._errors:
            self.stats.end_reason = f"error in {self._errors[0][0]}: {self._errors[0][1]}"

    def _guard(self, stage: str, loop: Callable[[], None]) -> None:
        try:
            loop()
        except BaseException as e:
            if stage == "pose":
                # upstream failure: stop capture, but let the gait stage and the sinks
                # finish what they have (open passes are flushed and scored) via END
                log.error("pose stage failed: %s", e)
                self._errors.append((stage, e))
                self.capture.stop()
                self.slot.close()
                self._put_gait(FrameRecord(index=self.capture.stats.frames_read,
                                           t_capture=time.monotonic(), t_wall=time.time(),
                                           event=FrameEvent.END,
                                           info={"reason": f"error: {e}"}), block=True)
            else:
                self._fail(stage, e)
        finally:
            if stage == "gait":
                self._done.set()

    # -- stage loops -------------------------------------------------------------------

    def _put_gait(self, rec: FrameRecord, block: bool) -> None:
        if not block:
            try:
                self._gait_q.put_nowait(rec)
            except queue.Full:
                self.stats.dropped_gait += 1
            return
        while not self._abort.is_set():
            try:
                self._gait_q.put(rec, timeout=0.2)
                return
            except queue.Full:
                continue

    def _pose_loop(self) -> None:
        st = self.stats
        runner, gate = self.runner, self.presence
        while not self._abort.is_set():
            rec = self.slot.get(timeout=0.2)
            if rec is None:
                continue
            if rec.event != FrameEvent.FRAME:
                if rec.event in (FrameEvent.STREAM_RESET, FrameEvent.STREAM_LOST):
                    if gate is not None:
                        gate.reset()
                    if hasattr(runner, "reset"):
                        runner.reset()
                self._put_gait(rec, block=True)
                if rec.event == FrameEvent.END:
                    return
                continue
            image = rec.image
            assert image is not None
            info: dict[str, Any] = {}
            run, crop, scale = True, None, 1.0
            if gate is not None:
                t0 = time.perf_counter()
                res = gate.update(image)
                st.t_presence.add(time.perf_counter() - t0)
                run, crop, scale = res.run, res.crop, res.scale
                info = {"presence": res.run, "motion": res.motion, "crop": res.crop,
                        "scale": res.scale}
            poses = None
            dt_infer = 0.0
            if run:
                t0 = time.perf_counter()
                poses = runner.get_pose(image, crop=crop, scale=scale)
                dt_infer = time.perf_counter() - t0
                st.t_infer.add(dt_infer)
                st.inferences += 1
                st.scaled_inferences += int(scale < 1.0)
            else:
                st.skipped_presence += 1
            if gate is not None:
                gate.observe(poses)
            t_pose = time.monotonic()
            st.lat_pose.add(t_pose - rec.t_capture)
            st.lat_wait.add(t_pose - rec.t_capture - dt_infer)
            st.frames_pose += 1
            self._put_gait(rec.with_(poses=poses, t_pose=t_pose, info=info),
                           block=not self.realtime)

    def _gait_loop(self) -> None:
        st = self.stats
        while not self._abort.is_set():
            try:
                rec = self._gait_q.get(timeout=0.2)
            except queue.Empty:
                continue
            update: GaitUpdate | None = None
            if rec.event == FrameEvent.FRAME:
                if self._rate_watch is not None:
                    self._follow_rate(rec)
                if self.gait is not None:
                    t0 = time.perf_counter()
                    update = self.gait.update(rec.index, rec.poses)
                    st.t_gait.add(time.perf_counter() - t0)
                st.frames_gait += 1
            else:
                if self._rate_watch is not None:
                    self._rate_watch.reset()  # a gap in the stream is no rate
                if rec.event == FrameEvent.STREAM_RESET:
                    st.stream_resets += 1
                elif rec.event != FrameEvent.STREAM_LOST:
                    st.end_reason = str(rec.info.get("reason", "end"))
                if self.gait is not None:
                    passes = self.gait.reset()
                    update = GaitUpdate(frame_index=rec.index, passes=list(passes),
                                        steps=list(getattr(self.gait, "flushed_steps", [])))
            if update is not None:
                for e in update.steps:  # complete stances: a joined stance counts once
                    if e.kind == "lift":
                        last = self._last_strike.setdefault((e.individual, e.pass_id), {})
                        st.steps += last.get(e.foot) != e.strike_frame
                        last[e.foot] = e.strike_frame
                st.passes += len(update.passes)
                st.scored += sum(1 for p in update.passes if p.scored)
                for p in update.passes:  # an ended pass has no more stances to count
                    self._last_strike.pop((p.individual, p.pass_id), None)
            # the capture side's counters, for the live status and HUD (ints: atomic reads)
            st.dropped_capture = self.slot.dropped
            st.reconnects = self.capture.stats.reconnects
            t0 = time.perf_counter()
            for sink in self.sinks:
                if id(sink) in self._failed_sinks:
                    continue
                try:
                    sink.handle(rec, update)
                except Exception as e:
                    # a broken output (full disk, closed pipe) ends the run, but the other
                    # sinks still get this update and, via the salvage below, the open passes
                    self._failed_sinks.add(id(sink))
                    self._fail(sink.name, e)
            if rec.event == FrameEvent.FRAME:
                st.t_sinks.add(time.perf_counter() - t0)
                st.lat_publish.add(time.monotonic() - rec.t_capture)
            if rec.event == FrameEvent.END:
                return
        self._salvage_passes()

    def _follow_rate(self, rec: FrameRecord) -> None:
        """Switch the gait stage to the rate the source now delivers, between passes."""
        assert self._rate_watch is not None and self.gait is not None
        fps = self._rate_watch.add(rec.t_capture, rec.index)
        if fps is None:
            self._rate_pending = False
            return
        if self.gait.tracks:
            if not self._rate_pending:
                self._rate_pending = True
                log.info("the source delivers %.3g fps (the gait stage runs at %.3g): the "
                         "gait stage follows once no bird is in view", fps, self.gait.fps)
            return
        self._rate_pending = False
        was = self.gait.fps
        fps = float(f"{fps:.4g}")
        try:
            self.gait.set_fps(rec.index, fps)
        except ValueError as e:  # no camera's rate (> MAX_FPS): stop following
            log.warning("the source seems to deliver %.4g fps, which the gait stage does not "
                        "take (%s): it keeps %.3g fps", fps, e, was)
            self._rate_watch = None
            return
        self._rate_watch.accept(fps)
        self.stats.rate_changes.append({"frame": rec.index, "fps": fps, "was": was})
        log.warning("the source now delivers %.3g fps (the gait stage ran at %.3g): the gait "
                    "stage follows from frame %d", fps, was, rec.index)

    def _salvage_passes(self) -> None:
        """After another stage failed: end the open passes and hand their scores to the
        sinks that still work, so a failure elsewhere loses no score already earned."""
        if self.gait is None:
            return
        last = getattr(self.gait, "last_frame", None) or 0
        try:
            passes = self.gait.reset()
        except Exception as e:
            log.error("could not flush the open passes: %s", e)
            return
        if not passes:
            return
        end = FrameRecord(index=max(0, last), t_capture=time.monotonic(),
                          t_wall=time.time(), event=FrameEvent.END,
                          info={"reason": "aborted"})
        update = GaitUpdate(frame_index=end.index, passes=list(passes),
                            steps=list(getattr(self.gait, "flushed_steps", [])))
        self.stats.passes += len(passes)
        self.stats.scored += sum(1 for p in passes if p.scored)
        for sink in self.sinks:
            if id(sink) in self._failed_sinks:
                continue
            try:
                sink.handle(end, update)
            except Exception as e:
                log.error("%s could not take the flushed passes: %s", sink.name, e)

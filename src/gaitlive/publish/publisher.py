"""The live publisher: one thread owns the PUB socket; the pipeline feeds it through queues.

Calls from the pipeline (:meth:`Publisher.publish_pose`, ``publish_step``, ``publish_pass``,
``publish_status``, ``publish_frame``) only copy their data into a queue and return; they
never block on the network. Two queues:

* a bounded, lossy one for ``pose`` and ``frame`` messages: when it is full the oldest entry
  is dropped and counted (``stats()["queue_drops"]``);
* an unbounded one for ``step``, ``pass`` and ``status``, never dropped.

The publisher thread writes every pass to the journal (which assigns its sequence number)
*before* sending it, sends a ``status`` heartbeat every ``heartbeat_s`` (carrying the last
journaled pass sequence, so a subscriber notices even a missed last pass), and runs nothing
else. With ``sndhwm`` a slow subscriber loses messages at its own pipe (ZeroMQ PUB drops per
subscriber; the others are unaffected); pass scores it lost come back from the side channel.

Endpoints: ``tcp://127.0.0.1:5556`` binds; a ``>`` prefix (``>tcp://relay:5560``) connects
instead, to a ``gaitlive relay`` frontend; ``@`` forces bind.
"""

from __future__ import annotations

import collections
import itertools
import logging
import secrets
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

import msgpack
import numpy as np
import zmq

from gaitlive.config import PublishSettings
from gaitlive.gait.events import PassResult, StepEvent
from gaitlive.publish import messages as M
from gaitlive.publish.journal import Journal
from gaitlive.publish.keys import ServerSecurity, start_authenticator
from gaitlive.publish.sidechannel import SideChannelServer

log = logging.getLogger(__name__)

__all__ = ["Publisher", "PublishError", "default_publisher_id", "split_endpoint"]


class PublishError(ValueError):
    """The publisher cannot start (endpoint in use, bad keys, bad journal ...)."""


def default_publisher_id(camera_id: str) -> str:
    """``<camera_id>@<hostname>``: stable across restarts, distinct per camera and host."""
    host = "".join(c if c.isalnum() or c in "-_." else "-" for c in socket.gethostname())
    return f"{camera_id}@{host or 'localhost'}"


def split_endpoint(endpoint: str) -> tuple[str, bool]:
    """``">tcp://h:1"`` -> ``("tcp://h:1", False)`` (connect); ``"@..."`` or no prefix ->
    bind (``True``)."""
    if endpoint.startswith(">"):
        return endpoint[1:], False
    if endpoint.startswith("@"):
        return endpoint[1:], True
    return endpoint, True


def _plain(v: Any, depth: int = 0) -> Any:
    """Status values -> msgpack-able plain data (numpy scalars -> Python numbers)."""
    if depth > 8:
        return str(v)
    if v is None or isinstance(v, (bool, int, float, str, bytes)):
        return v
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dict):
        return {str(k): _plain(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x, depth + 1) for x in v]
    if isinstance(v, np.ndarray) and v.size <= 64:
        return _plain(v.tolist(), depth + 1)
    return str(v)


class Publisher:
    """Publishes poses, steps, pass scores, status and overlay frames of one camera.

    Parameters
    ----------
    settings
        ``Config.publish``: endpoints, journal, high-water mark, queue size, heartbeat, CURVE.
    camera_id
        Carried by every topic (``pose/<camera_id>/`` ...).
    model
        Name of the pose model, reported in ``status`` and ``pass`` bodies.
    publisher_id
        Identity of this stream in headers and the journal; default
        :func:`default_publisher_id` (so a restart continues the same sequence).

    Examples
    --------
    >>> with Publisher(cfg.publish, "cam0", model="gaitlive-corridor") as pub:  # doctest: +SKIP
    ...     pub.publish_pose(i, t, time.time(), poses, profile.bodyparts)
    ...     pub.publish_pass(result)
    """

    def __init__(self, settings: PublishSettings, camera_id: str, model: str = "",
                 publisher_id: str | None = None) -> None:
        self.settings = settings
        self.camera_id = M.validate_camera_id(camera_id)
        self.model = model
        self.publisher_id = publisher_id or default_publisher_id(camera_id)
        self.epoch = ""
        # one id per start of this process: pose/step/status/frame seqs restart with it
        self.run_id = secrets.token_hex(4)
        self.endpoint = ""
        self.side_endpoint = ""
        self._topics = {k: M.topic(k, camera_id) for k in M.TOPICS}
        self._seq = {k: itertools.count(1) for k in M.TOPICS if k != "pass"}
        self._lossy: collections.deque[tuple[Any, ...]] = collections.deque()
        self._important: collections.deque[tuple[Any, ...]] = collections.deque()
        # passes the journal could not take yet (retried with backoff, in order; the other
        # topics and the heartbeat go on meanwhile): a score is never published unjournaled
        self._held: collections.deque[tuple[Any, ...]] = collections.deque()
        self._journal_error = ""
        self._retry_at = 0.0
        self._retry_delay = 0.0
        self._close_lock = threading.Lock()
        self._orphaned = False  # close() gave up waiting: the thread tears down on its way out
        self._thread_done = False
        self._last_jpeg = -(10 ** 9)  # frame index of the last overlay image queued
        self._wake = threading.Event()
        self._idle = False  # the publisher thread is (about to be) waiting on _wake
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._ctx: zmq.Context | None = None
        self._auth: Any = None
        self._side: SideChannelServer | None = None
        self._journal: Journal | None = None
        self._status: dict[str, Any] = {}
        self._last_status = 0.0
        self._published = dict.fromkeys(M.TOPICS, 0)
        self._packer = msgpack.Packer(use_bin_type=True)  # used by the publisher thread only
        self._queue_drops = 0
        self._pass_seq = 0
        self._send_errors = 0
        self._after_close = 0
        self._started = False

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> Publisher:
        """Bind (or connect) the sockets, open the journal and start the publisher thread.

        Raises
        ------
        PublishError
            An endpoint cannot be bound, the CURVE keys cannot be loaded, or the journal
            cannot be opened; the message names the setting and the value.
        """
        if self._started:
            return self
        s = self.settings
        security = None
        if s.curve.enabled:
            try:
                security = ServerSecurity.from_dirs(s.curve.keys_dir, s.curve.allow_dir)
            except ValueError as e:
                raise PublishError(f"publish.curve: {e}") from None
        try:
            self._journal = Journal(s.journal)
            stream = self._journal.stream(self.publisher_id, self.camera_id)
        except ValueError as e:
            raise PublishError(f"publish.journal: {e}") from None
        self.epoch, self._pass_seq = stream.epoch, stream.last_seq
        ctx = self._ctx = zmq.Context()
        try:
            if security is not None:
                self._auth = start_authenticator(ctx, security.allow_dir)
            pub = ctx.socket(zmq.PUB)
            pub.sndhwm = s.sndhwm
            pub.linger = 2000
            if security is not None:
                security.apply(pub)
            addr, bind = split_endpoint(s.endpoint)
            try:
                if bind:
                    pub.bind(addr)
                else:
                    pub.connect(addr)
            except zmq.ZMQError as e:
                pub.close(linger=0)
                raise PublishError(f"publish.endpoint: cannot {'bind' if bind else 'connect'} "
                                   f"{addr!r}: {e}") from None
            self.endpoint = pub.getsockopt_string(zmq.LAST_ENDPOINT) if bind else addr
            self._pub = pub
            self._side = SideChannelServer(ctx, s.side_channel, s.journal,
                                           advertise=s.advertise, security=security)
            try:
                self._side.start()
            except ValueError as e:
                raise PublishError(str(e)) from None
            except RuntimeError as e:
                raise PublishError(str(e)) from None
            self.side_endpoint = self._side.advertised
        except BaseException:
            self._teardown()
            raise
        self._started = True
        self._thread = threading.Thread(target=self._run, name=f"gaitlive-publish-{self.camera_id}",
                                        daemon=True)
        self._thread.start()
        log.info("publishing %s on %s (side channel %s, journal %s, epoch %s, last seq %d)",
                 self.publisher_id, self.endpoint, self.side_endpoint, s.journal, self.epoch,
                 self._pass_seq)
        if not s.advertise and self._side is not None and M.is_any_host(self._side.endpoint):
            port = self.side_endpoint.rsplit(":", 1)[1]
            log.warning("publish.side_channel %s binds every interface but publish.advertise "
                        "is not set: subscribers are told to catch up from %s, which only "
                        "subscribers on this machine can reach; subscribers on other machines "
                        "need publish.advertise set to an address of this machine they can "
                        "reach, e.g. tcp://%s:%s", s.side_channel, self.side_endpoint,
                        socket.gethostname() or "barn-pc", port)
        return self

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is queued (passes, steps and status always; poses as time allows),
        then close the sockets, the journal and the side channel."""
        if not self._started:
            return
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
        with self._close_lock:
            alive = self._thread is not None and not self._thread_done
            # copies: the thread may still be popping from them
            unsent = len(list(self._held)) + sum(1 for it in list(self._important)
                                                 if it[0] == "pass")
            if alive:
                # never close sockets or the journal under a running thread: it does so
                # itself when it gets out of the call it is blocked in
                log.warning("publisher thread did not stop in %.1f s; it closes the "
                            "sockets and the journal when it finishes", timeout_s)
                self._orphaned = True
            else:
                self._teardown()
        if unsent:
            log.error("%d pass scores could not be journaled before closing (journal %s) and "
                      "were not published", unsent, self.settings.journal)
        self._started = False

    def _teardown(self) -> None:
        if self._side is not None:
            self._side.stop()
            self._side = None
        pub = getattr(self, "_pub", None)
        if pub is not None:
            pub.close()
            self._pub = None
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def __enter__(self) -> Publisher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- producer API
    def _check(self, kind: str = "pose") -> bool:
        """True if messages can be queued. Before :meth:`start` that is a programming error;
        after :meth:`close` (a pipeline thread still finishing) messages are dropped and
        counted, never raised into the pipeline."""
        if self._started and not self._stopping:
            return True
        if not self._started and not self._stopping:
            raise RuntimeError("Publisher is not running: call start() first")
        self._after_close += 1
        if kind == "pass":
            log.error("publisher %s is closed: a pass score sent after close() is NOT journaled",
                      self.publisher_id)
        elif self._after_close == 1:
            log.warning("publisher %s is closed: dropping messages sent after close()",
                        self.publisher_id)
        return False

    def _push_lossy(self, item: tuple[Any, ...]) -> None:
        if len(self._lossy) >= self.settings.queue_size:
            try:
                self._lossy.popleft()
                self._queue_drops += 1
            except IndexError:
                pass
        self._lossy.append(item)
        if self._idle:
            self._wake.set()

    def publish_pose(self, frame_index: int, t_capture: float, t_wall: float,
                     poses: np.ndarray, bodyparts: tuple[str, ...] | list[str],
                     t_pose: float | None = None,
                     individuals: Sequence[int] | None = None) -> None:
        """Queue one frame's poses, float32 (n_individuals, n_keypoints, 3).

        ``individuals``: the gait stage's track id of each pose row (-1: not tracked), so
        a subscriber knows which bird a row is; the ids are those of ``step`` and ``pass``
        messages. Never blocks; the array is copied. Dropped (and counted) when the pose
        queue is full.
        """
        if not self._check():
            return
        if not self.settings.publish_poses:
            return
        arr = np.array(poses, dtype="<f4", order="C")  # a copy: the caller may reuse poses
        shape = arr.shape
        if len(shape) != 3 or shape[2] != 3 or shape[1] != len(bodyparts):
            raise ValueError(f"publish_pose: expected poses of shape (n_individuals, "
                             f"{len(bodyparts)}, 3), got {shape}")
        if type(bodyparts) is not tuple:
            bodyparts = tuple(bodyparts)
        ids = None
        if individuals is not None:
            ids = [int(i) for i in individuals]
            if len(ids) != shape[0]:
                raise ValueError(f"publish_pose: {len(ids)} individuals for {shape[0]} pose rows")
        self._push_lossy(("pose", next(self._seq["pose"]), time.monotonic(), time.time(),
                          (int(frame_index), t_capture, t_wall, arr, bodyparts, t_pose, ids)))

    def wants_frame(self, frame_index: int) -> bool:
        """Whether the pipeline should JPEG-encode this frame for :meth:`publish_frame`
        (``publish.jpeg`` on and at least ``jpeg_every`` frames since the last one sent, so
        frames dropped upstream cannot keep skipping every candidate)."""
        return self.settings.jpeg and (
            frame_index - self._last_jpeg >= self.settings.jpeg_every
            or frame_index < self._last_jpeg)  # a new stream counts from 0 again

    def publish_frame(self, frame_index: int, jpeg_bytes: bytes) -> None:
        """Queue an overlay image (JPEG bytes); ignored unless ``publish.jpeg`` is on."""
        if not self._check():
            return
        if not self.settings.jpeg:
            return
        self._last_jpeg = int(frame_index)
        self._push_lossy(("frame", next(self._seq["frame"]), time.monotonic(), time.time(),
                          (frame_index, bytes(jpeg_bytes))))

    def publish_step(self, step: StepEvent) -> None:
        """Queue a foot event (never dropped)."""
        if not self._check():
            return
        self._important.append(("step", next(self._seq["step"]), time.monotonic(), time.time(),
                                M.step_body(step)))
        self._wake.set()

    def publish_pass(self, result: PassResult) -> None:
        """Queue a finished pass; the publisher thread journals it (assigning its sequence
        number) and then publishes it. Never dropped."""
        if not self._check("pass"):
            return
        self._important.append(("pass", 0, time.monotonic(), time.time(),
                                M.pass_body(result, self.model)))
        self._wake.set()

    def publish_status(self, status: dict[str, Any]) -> None:
        """Publish the pipeline's status now (e.g. ``fps``, ``drops``, ``latency_ms``,
        ``camera``, ``state``); heartbeats repeat the latest one every ``heartbeat_s``."""
        if not self._check():
            return
        self._important.append(("status", 0, time.monotonic(), time.time(), _plain(status)))
        self._wake.set()

    def stats(self) -> dict[str, Any]:
        """Counters: messages published per topic, pose/frame queue drops, queue depths,
        the last journaled pass sequence, identity and endpoints."""
        return {
            "publisher_id": self.publisher_id, "epoch": self.epoch, "camera_id": self.camera_id,
            "endpoint": self.endpoint, "side_channel": self.side_endpoint,
            "published": dict(self._published), "queue_drops": self._queue_drops,
            "queued": len(self._lossy) + len(self._important) + len(self._held),
            "pass_seq": self._pass_seq, "passes_waiting": len(self._held),
            "send_errors": self._send_errors, "dropped_after_close": self._after_close,
            "side_requests": self._side.requests if self._side else 0,
        }

    # ---------------------------------------------------------------- publisher thread
    def _header(self, seq: int, t_mono: float, t_wall: float, side: bool = False) -> bytes:
        return M.encode_header(self.publisher_id, self.epoch, seq, t_mono, t_wall,
                               side=self.side_endpoint if side else None, run=self.run_id)

    def _send(self, kind: str, header: bytes, body: bytes) -> None:
        try:
            self._pub.send_multipart([self._topics[kind], header, body])
            self._published[kind] += 1
        except zmq.ZMQError as e:  # PUB never blocks; errors are unexpected but not fatal
            self._send_errors += 1
            log.warning("publish %s failed: %s", kind, e)

    def _send_status(self, item_status: dict[str, Any] | None, t_mono: float,
                     t_wall: float) -> None:
        if item_status is not None:
            self._status = item_status
        body = {"state": "running", "camera_id": self.camera_id, **self._status,
                "model": self.model, "pass_seq": self._pass_seq,
                "published": dict(self._published), "queue_drops": self._queue_drops}
        if self._journal_error:  # passes wait for the journal (published once it works)
            body["journal_error"] = self._journal_error
            body["passes_waiting"] = len(self._held)
        self._send("status", self._header(next(self._seq["status"]), t_mono, t_wall, True),
                   M.pack(body))
        self._last_status = time.monotonic()

    def _handle(self, item: tuple[Any, ...]) -> None:
        kind, seq, t_mono, t_wall, payload = item
        if kind == "pose":  # the hot path: arr is already a contiguous float32 copy
            frame, t_cap, t_w, arr, bps, t_pose, ids = payload
            body = {"frame": frame, "t_capture": float(t_cap), "t_wall": float(t_w),
                    "bodyparts": bps,
                    "poses": {"dtype": "<f4", "shape": arr.shape, "data": arr.tobytes()}}
            if t_pose is not None:
                body["t_pose"] = float(t_pose)
            if ids is not None:
                body["individuals"] = ids
            pack = self._packer.pack
            try:
                self._pub.send_multipart([self._topics[kind],
                                          pack({"v": M.SCHEMA_VERSION, "pub": self.publisher_id,
                                                "epoch": self.epoch, "run": self.run_id,
                                                "seq": seq, "t_mono": t_mono,
                                                "t_wall": t_wall}),
                                          pack(body)])
                self._published[kind] += 1
            except zmq.ZMQError as e:
                self._send_errors += 1
                log.warning("publish pose failed: %s", e)
        elif kind == "pass":
            self._held.append(item)  # behind any pass still waiting: order is kept
            self._journal_held(force=not self._journal_error)
        elif kind == "status":
            self._send_status(payload, t_mono, t_wall)
        elif kind == "step":
            self._send(kind, self._header(seq, t_mono, t_wall), M.pack(payload))
        elif kind == "frame":
            frame, jpeg = payload
            self._send(kind, self._header(seq, t_mono, t_wall), M.pack(M.frame_body(frame, jpeg)))

    def _journal_held(self, force: bool = False) -> None:
        """Journal and publish the held passes in order; on a journal error keep them and
        retry later (backoff 0.5 s doubling to 30 s), reporting it in ``status``."""
        if not self._held or not (force or time.monotonic() >= self._retry_at):
            return
        assert self._journal is not None
        while self._held:
            _, _, t_mono, t_wall, payload = self._held[0]
            body = M.pack(payload)
            try:
                seq = self._journal.append(self.publisher_id, self.camera_id, body, t_mono,
                                           t_wall)
            except Exception as e:
                self._retry_delay = min(max(2 * self._retry_delay, 0.5), 30.0)
                self._retry_at = time.monotonic() + self._retry_delay
                first = not self._journal_error
                self._journal_error = f"journal {self.settings.journal}: {e}"
                log.error("cannot journal a pass (%d waiting), retrying in %.1f s: %s",
                          len(self._held), self._retry_delay, self._journal_error)
                if first:  # subscribers learn of it now, not at the next heartbeat
                    self._send_status(None, time.monotonic(), time.time())
                return
            self._held.popleft()
            self._pass_seq = seq
            self._send("pass", self._header(seq, t_mono, t_wall, True), body)
        if self._journal_error:
            log.warning("journal works again: the waiting passes were published")
            self._journal_error = ""
            self._retry_delay = 0.0
            self._send_status(None, time.monotonic(), time.time())

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            with self._close_lock:
                self._thread_done = True
                if self._orphaned:
                    self._teardown()

    def _loop(self) -> None:
        hb = self.settings.heartbeat_s
        important, lossy = self._important, self._lossy
        self._send_status(None, time.monotonic(), time.time())
        while True:
            wait = self._last_status + hb - time.monotonic()
            if self._held:
                wait = min(wait, self._retry_at - time.monotonic())
            self._idle = True  # producers now wake us; then look at the queues once more
            if wait > 0 and not important and not lossy and not self._stopping:
                self._wake.wait(wait)
            self._idle = False
            self._wake.clear()
            while important or lossy:
                try:
                    while important:
                        self._handle(important.popleft())
                    for _ in range(64):  # then a batch of poses, then check again
                        if not lossy or important:
                            # a status, step or pass queued meanwhile goes before the
                            # poses queued after it (a subscriber saw poses from after a
                            # camera loss before the status saying it was lost)
                            break
                        self._handle(lossy.popleft())
                except Exception:  # never let one bad item kill the publisher
                    log.exception("publisher: failed to send a message")
            try:
                self._journal_held(force=self._stopping)
            except Exception:
                log.exception("publisher: failed to send a message")
            if self._stopping:
                break
            if time.monotonic() - self._last_status >= hb:
                self._send_status(None, time.monotonic(), time.time())

"""Side channel: missed pass scores served from the journal (ZeroMQ Guide, Clone pattern).

The publisher binds a ROUTER socket (``publish.side_channel``). A subscriber that saw a gap
in the ``pass`` sequence, or that restarts, connects a DEALER (or REQ) and asks for what it
missed. Requests are one msgpack frame:

``{"op": "hello", "id": 7}``
    -> ``[{"ok": true, "op": "hello", "id": 7, "streams": [{"pub", "epoch", "camera",
    "last_seq"}, ...]}]``
``{"op": "since", "pub": "cam0@barn", "epoch": "9f..", "after": 41, "limit": 500,
"camera": "cam0", "id": 8}``
    -> ``[status, topic, header, body, topic, header, body, ...]`` where ``status`` is
    ``{"ok": true, "op": "since", "id": 8, "pub", "epoch", "last_seq", "count", "more",
    "reset"}`` followed by ``count`` journaled pass messages with ``seq > after``, exactly
    as they were published. ``more`` asks the client to repeat with ``after`` = the last
    seq it got. ``reset`` is true when ``epoch`` is not the stream's epoch (its journal was
    recreated): the reply then starts at seq 1 of the current epoch.

Anything else -- a wrong frame count, a frame that is not msgpack, an oversized request, a
wrong type -- gets ``[{"ok": false, "error": "...", "id": ...}]`` and changes nothing: the
server only ever reads the journal.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import zmq

from gaitlive.publish import messages as M
from gaitlive.publish.journal import Journal
from gaitlive.publish.keys import ClientSecurity, ServerSecurity

log = logging.getLogger(__name__)

__all__ = ["SideChannelServer", "SideChannelClient", "SideChannelError",
           "SideChannelTimeout", "MAX_REQUEST_BYTES", "MAX_PAGE"]

#: a request larger than this gets an error reply
MAX_REQUEST_BYTES = 64 * 1024
#: larger messages make libzmq drop the connection (ZMQ_MAXMSGSIZE): no reply at all
MAX_WIRE_BYTES = 1024 * 1024
#: most entries in one reply
MAX_PAGE = 1000


class SideChannelError(RuntimeError):
    """The side channel answered with an error, or an answer that makes no sense."""


class SideChannelTimeout(SideChannelError):
    """The side channel did not answer in time (publisher down or unreachable)."""


class SideChannelServer:
    """ROUTER catch-up server reading a pass journal.

    Parameters
    ----------
    ctx
        The ZeroMQ context (shared with the publisher and its authenticator).
    endpoint
        Where to bind, e.g. ``tcp://127.0.0.1:5557`` (``tcp://127.0.0.1:*`` for any port).
    journal_path
        The journal the publisher writes.
    advertise
        Side-channel endpoint written into the replayed headers (``""``: the bound one; when
        that binds every interface, ``tcp://*:P`` or ``tcp://0.0.0.0:P``, the loopback
        address with the bound port, which only subscribers on this machine can reach).
    security
        CURVE server settings, or None for plain TCP.
    """

    def __init__(self, ctx: zmq.Context, endpoint: str, journal_path: str | Path, *,
                 advertise: str = "", security: ServerSecurity | None = None) -> None:
        self.ctx = ctx
        self.requested_endpoint = endpoint
        self.journal_path = Path(journal_path)
        self.security = security
        self._advertise = advertise
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock: zmq.Socket | None = None
        self.endpoint = ""
        self.requests = 0
        self.errors = 0

    @property
    def advertised(self) -> str:
        """The endpoint subscribers are told to use: ``advertise``, else the bound one with
        a host meaning "every interface" (``0.0.0.0``, ``[::]``) replaced by loopback, an
        address that can be connected to (on this machine)."""
        if self._advertise or not M.is_any_host(self.endpoint):
            return self._advertise or self.endpoint
        port = self.endpoint.rsplit(":", 1)[1]
        host = "[::1]" if self.endpoint.startswith("tcp://[") else "127.0.0.1"
        return f"tcp://{host}:{port}"

    def start(self) -> SideChannelServer:
        """Bind (errors raise here) and serve in a daemon thread."""
        sock = self.ctx.socket(zmq.ROUTER)
        sock.linger = 0
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_WIRE_BYTES)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
        if self.security is not None:
            self.security.apply(sock)
        try:
            sock.bind(self.requested_endpoint)
        except zmq.ZMQError as e:
            sock.close()
            raise SideChannelError(f"publish.side_channel: cannot bind "
                                   f"{self.requested_endpoint!r}: {e}") from None
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._sock = sock
        self._journal = Journal(self.journal_path)
        self._thread = threading.Thread(target=self._run, name="gaitlive-sidechannel",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        sock = self._sock
        assert sock is not None
        try:
            while not self._stop.is_set():
                if not sock.poll(100):
                    continue
                frames = sock.recv_multipart(copy=True)
                try:
                    envelope, reply = self._handle(frames)
                except Exception as e:  # a bug must not kill the server
                    log.exception("side channel: failed on a request")
                    envelope, reply = self._envelope(frames), [self._error(f"internal: {e}")]
                if envelope:
                    try:
                        sock.send_multipart(envelope + reply, flags=zmq.NOBLOCK)
                    except zmq.Again:
                        log.warning("side channel: client not reading, reply dropped")
        finally:
            sock.close(linger=0)
            self._journal.close()

    @staticmethod
    def _envelope(frames: list[bytes]) -> list[bytes]:
        # ROUTER prepends the peer identity; a REQ peer adds an empty delimiter frame.
        if len(frames) >= 2 and frames[1] == b"":
            return frames[:2]
        return frames[:1]

    def _error(self, text: str, req_id: Any = None) -> bytes:
        self.errors += 1
        log.warning("side channel: bad request: %s", text)
        out: dict[str, Any] = {"ok": False, "error": text}
        if isinstance(req_id, int) and not isinstance(req_id, bool):
            out["id"] = req_id
        return M.pack(out)

    def _handle(self, frames: list[bytes]) -> tuple[list[bytes], list[bytes]]:
        self.requests += 1
        envelope = self._envelope(frames)
        body = frames[len(envelope):]
        if len(body) != 1:
            return envelope, [self._error(f"expected 1 request frame, got {len(body)}")]
        raw = body[0]
        if len(raw) > MAX_REQUEST_BYTES:
            return envelope, [self._error(f"request of {len(raw)} bytes exceeds the limit of "
                                          f"{MAX_REQUEST_BYTES}")]
        try:
            req = M.unpack(raw, what="request", max_bytes=MAX_REQUEST_BYTES)
        except M.MessageError as e:
            return envelope, [self._error(str(e))]
        if not isinstance(req, dict):
            return envelope, [self._error(f"request: expected a map, got "
                                          f"{type(req).__name__}")]
        req_id = req.get("id")
        if req_id is not None and (not isinstance(req_id, int) or isinstance(req_id, bool)):
            return envelope, [self._error(f"request.id: expected an integer, got {req_id!r}")]
        op = req.get("op")
        if op == "hello":
            streams = [{"pub": s.publisher_id, "epoch": s.epoch, "camera": s.camera_id,
                        "last_seq": s.last_seq} for s in self._journal.streams()]
            out = {"ok": True, "op": "hello", "streams": streams}
            if req_id is not None:
                out["id"] = req_id
            return envelope, [M.pack(out)]
        if op == "since":
            return envelope, self._since(req, req_id)
        return envelope, [self._error(f"request.op: expected 'hello' or 'since', got {op!r}",
                                      req_id)]

    def _since(self, req: dict[str, Any], req_id: Any) -> list[bytes]:
        pub, epoch, after = req.get("pub"), req.get("epoch"), req.get("after", 0)
        limit, camera = req.get("limit", MAX_PAGE), req.get("camera")
        if not isinstance(pub, str) or not pub:
            return [self._error(f"request.pub: expected a publisher id string, got {pub!r}",
                                req_id)]
        if epoch is not None and not isinstance(epoch, str):
            return [self._error(f"request.epoch: expected a string or nil, got {epoch!r}",
                                req_id)]
        for key, val in (("after", after), ("limit", limit)):
            if not isinstance(val, int) or isinstance(val, bool) or val < 0:
                return [self._error(f"request.{key}: expected an integer >= 0, got {val!r}",
                                    req_id)]
        if camera is not None and not isinstance(camera, str):
            return [self._error(f"request.camera: expected a string or nil, got {camera!r}",
                                req_id)]
        info = {s.publisher_id: s for s in self._journal.streams()}.get(pub)
        if info is None:
            return [self._error(f"request.pub: no stream {pub!r} in this journal; it has "
                                f"{[s.publisher_id for s in self._journal.streams()]}", req_id)]
        reset = epoch is not None and epoch != info.epoch
        if reset:
            after = 0
        limit = min(limit or MAX_PAGE, MAX_PAGE)
        entries = self._journal.since(pub, after, limit + 1, camera_id=camera)
        more = len(entries) > limit
        entries = entries[:limit]
        status: dict[str, Any] = {"ok": True, "op": "since", "pub": pub, "epoch": info.epoch,
                                  "last_seq": info.last_seq, "count": len(entries),
                                  "more": more, "reset": reset}
        if req_id is not None:
            status["id"] = req_id
        out = [M.pack(status)]
        for e in entries:
            out += [M.topic("pass", e.camera_id),
                    M.encode_header(pub, info.epoch, e.seq, e.t_mono, e.t_wall,
                                    side=self.advertised),
                    e.body]
        return out


class SideChannelClient:
    """DEALER client of a :class:`SideChannelServer` (Lazy Pirate: a request that times out
    closes the socket, so a late answer can never be mistaken for the next one).

    Parameters
    ----------
    endpoint
        The server's endpoint, e.g. ``tcp://127.0.0.1:5557``.
    ctx
        ZeroMQ context (default: a private one).
    security
        CURVE client settings, or None.
    timeout_s
        How long one request waits for its answer.
    """

    _ids = itertools.count(1)

    def __init__(self, endpoint: str, ctx: zmq.Context | None = None, *,
                 security: ClientSecurity | None = None, timeout_s: float = 2.0) -> None:
        self.endpoint = endpoint
        self._own_ctx = ctx is None
        self.ctx = ctx or zmq.Context()
        self.security = security
        self.timeout_s = timeout_s
        self._sock: zmq.Socket | None = None

    def _socket(self) -> zmq.Socket:
        if self._sock is None:
            s = self.ctx.socket(zmq.DEALER)
            s.linger = 0
            try:
                if self.security is not None:
                    self.security.apply(s)
                s.connect(self.endpoint)
            except zmq.ZMQError as e:
                # never leave an unusable socket behind: it would block ctx.term() forever
                s.close(linger=0)
                raise SideChannelError(f"side channel {self.endpoint}: cannot connect "
                                       f"({e})") from None
            self._sock = s
        return self._sock

    def _reset(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    def request(self, req: dict[str, Any]) -> list[bytes]:
        """Send one request and return the reply frames (status frame first).

        Raises
        ------
        SideChannelTimeout
            No answer within ``timeout_s``.
        SideChannelError
            The server answered ``ok: false`` (its error text is in the message).
        """
        req_id = next(self._ids)
        req = dict(req, id=req_id)
        sock = self._socket()
        sock.send(M.pack(req))
        deadline = time.monotonic() + self.timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sock.poll(int(left * 1000) + 1):
                self._reset()
                raise SideChannelTimeout(f"side channel {self.endpoint}: no answer in "
                                         f"{self.timeout_s:g} s")
            frames = sock.recv_multipart()
            status = M.unpack(frames[0], what="side-channel reply")
            if not isinstance(status, dict):
                raise SideChannelError(f"side channel {self.endpoint}: malformed reply")
            if status.get("id") not in (req_id, None):
                continue  # a late answer to an older request
            if not status.get("ok"):
                raise SideChannelError(f"side channel {self.endpoint}: "
                                       f"{status.get('error', 'error')}")
            return frames

    def hello(self) -> list[dict[str, Any]]:
        """The streams the server's journal holds: ``[{"pub", "epoch", "camera",
        "last_seq"}]``."""
        status = M.unpack(self.request({"op": "hello"})[0])
        return list(status["streams"])

    def since(self, pub: str, after: int, *, epoch: str | None = None,
              camera: str | None = None, limit: int = MAX_PAGE
              ) -> Iterator[tuple[dict[str, Any], list[M.Message]]]:
        """Every journaled pass of ``pub`` after ``after``, page by page.

        Yields ``(status, messages)`` per page; the status of the first page tells whether
        the epoch was reset (``status["reset"]``)."""
        while True:
            frames = self.request({"op": "since", "pub": pub, "epoch": epoch, "after": after,
                                   "camera": camera, "limit": limit})
            status = M.unpack(frames[0])
            rest = frames[1:]
            if len(rest) != 3 * status["count"]:
                raise SideChannelError(f"side channel {self.endpoint}: reply has "
                                       f"{len(rest)} frames for {status['count']} messages")
            msgs = [M.decode(rest[i:i + 3]) for i in range(0, len(rest), 3)]
            yield status, msgs
            if not status["more"] or not msgs:
                return
            after, epoch = msgs[-1].seq, status["epoch"]

    def close(self) -> None:
        self._reset()
        if self._own_ctx:
            self.ctx.term()

    def __enter__(self) -> SideChannelClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

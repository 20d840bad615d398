"""A small SUB-socket helper for consumers (``gaitlive view``, ``gaitlive listen``, scripts).

>>> from gaitlive.publish import iter_messages
>>> for msg in iter_messages("tcp://127.0.0.1:5556", ["pass"], camera="cam0"):  # doctest: +SKIP
...     print(msg.camera_id, msg.seq, msg.body["score"])

Malformed messages are counted and skipped (never raised, never unpickled). Sequence gaps
of each publisher and topic are counted as ``lost`` (a slow subscriber drops poses at its
high-water mark; pass scores it lost are recovered by ``gaitlive listen``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

import zmq

from gaitlive.publish import messages as M
from gaitlive.publish.keys import ClientSecurity

log = logging.getLogger(__name__)

__all__ = ["Subscriber", "iter_messages", "parse_topics"]


def parse_topics(topics: str | Iterable[str]) -> tuple[str, ...]:
    """``"pass,step"`` or ``["pass", "step"]`` -> ``("pass", "step")``; ``"all"`` -> every
    topic. Unknown names raise :class:`~gaitlive.publish.messages.MessageError`."""
    names = topics.split(",") if isinstance(topics, str) else list(topics)
    names = [n.strip() for n in names if n.strip()]
    if names == ["all"]:
        return M.TOPICS
    for n in names:
        if n not in M.TOPICS:
            raise M.MessageError(f"--topics: unknown topic {n!r}; expected a comma-separated "
                                 f"list of {', '.join(M.TOPICS)} (or 'all')")
    if not names:
        raise M.MessageError(f"--topics: expected at least one of {', '.join(M.TOPICS)}")
    return tuple(dict.fromkeys(names))


class Subscriber:
    """SUB socket subscribed to some topics of one camera (or all cameras).

    Parameters
    ----------
    endpoint
        Publisher or relay backend, e.g. ``tcp://127.0.0.1:5556`` (connects; an ``@`` prefix
        binds instead).
    topics
        Kinds to receive (``pose``, ``step``, ``pass``, ``status``, ``frame``).
    camera
        Only this camera id, or None for all.
    security
        CURVE client settings, or None.
    rcvhwm
        Receive high-water mark (messages).
    ctx
        ZeroMQ context (default: a private one).
    max_lag_s
        Warn when messages arrive more than this many seconds after they were published
        (by wall clock): the subscriber is too slow ("Suicidal Snail" detection; it warns
        rather than exits, since lost pass scores are recovered from the side channel).
    """

    def __init__(self, endpoint: str, topics: Iterable[str] = ("pass",),
                 camera: str | None = None, *, security: ClientSecurity | None = None,
                 rcvhwm: int = 10000, ctx: zmq.Context | None = None,
                 max_lag_s: float | None = None) -> None:
        self.topics = parse_topics(topics)
        self.camera = M.validate_camera_id(camera) if camera is not None else None
        M.validate_endpoint(endpoint, "subscriber endpoint", wildcard=endpoint.startswith("@"))
        self._own_ctx = ctx is None
        self.ctx = ctx or zmq.Context()
        self.endpoint = endpoint
        s = self.socket = self.ctx.socket(zmq.SUB)
        s.linger = 0
        s.rcvhwm = rcvhwm
        s.setsockopt(zmq.RECONNECT_IVL, 100)
        s.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        s.setsockopt(zmq.HEARTBEAT_IVL, 1000)
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3000)
        self._monitor: zmq.Socket | None = None
        self.handshake_error = ""  # why the last CURVE handshake failed ("" if none did)
        if security is not None:
            security.apply(s)
            # a CURVE handshake that fails is otherwise silent: nothing is ever received
            self._monitor = s.get_monitor_socket(
                zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
                | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
        for t in self.topics:
            s.setsockopt(zmq.SUBSCRIBE, M.subscription(t, self.camera))
        if endpoint.startswith("@"):
            s.bind(endpoint[1:])
        else:
            s.connect(endpoint.removeprefix(">"))
        self.received = 0
        self.malformed = 0
        self.max_lag_s = max_lag_s
        self.lag_s = 0.0
        self.too_slow = 0
        self.lost = dict.fromkeys(M.TOPICS, 0)
        self._last: dict[tuple[str, str, str, str], int] = {}

    def recv(self, timeout_s: float | None = None) -> M.Message | None:
        """The next well-formed message, or None after ``timeout_s`` (None: wait forever)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not self.socket.poll(max(1, int(left * 1000))):
                    return None
            frames = self.socket.recv_multipart()
            msg = self.decode(frames)
            if msg is not None:
                return msg

    def decode(self, frames: list[bytes]) -> M.Message | None:
        """Decode frames received on :attr:`socket` (for callers polling it themselves);
        None (counted in ``malformed``) if they are not a valid message."""
        try:
            msg = M.decode(frames)
        except M.MessageError as e:
            self.malformed += 1
            log.warning("ignoring a malformed message: %s", e)
            return None
        self.received += 1
        # how far behind real time this message arrives (ZeroMQ Guide: "Suicidal Snail")
        self.lag_s = time.time() - msg.header["t_wall"]
        if self.max_lag_s is not None and self.lag_s > self.max_lag_s:
            self.too_slow += 1
            if self.too_slow == 1 or self.too_slow % 1000 == 0:
                log.warning("subscriber is %.1f s behind the publisher (> %.1f s): it cannot "
                            "keep up; poses are being dropped at its high-water mark",
                            self.lag_s, self.max_lag_s)
        # pass seqs live as long as the journal's epoch; the other topics count from 1 at
        # every start of the publisher process (its ``run``), so a restart is not a gap
        run = "" if msg.kind == "pass" else msg.run
        key = (msg.publisher_id, msg.epoch, run, msg.kind)
        last = self._last.get(key)
        if last is None and run:  # a new run: forget the publisher's earlier runs
            for k in [k for k in self._last if k[0] == key[0] and k[2] not in ("", run)]:
                del self._last[k]
        if last is not None and msg.seq > last + 1:
            self.lost[msg.kind] += msg.seq - last - 1
        self._last[key] = msg.seq  # a smaller seq: the publisher restarted
        return msg

    def handshake_problem(self) -> str:
        """Why the CURVE handshake with the publisher fails, from the socket's monitor
        (checked without waiting; ``""`` when it succeeded, has not been tried yet, or
        the connection is plain TCP)."""
        from zmq.utils.monitor import recv_monitor_message

        mon = self._monitor
        while mon is not None and mon.poll(0):
            event = recv_monitor_message(mon)["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.handshake_error = ""
            elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                self.handshake_error = ("the publisher refused this client's key (is its "
                                        "public key in the publisher's allow list, "
                                        "publish.curve.allow_dir?)")
            else:
                self.handshake_error = ("the CURVE handshake failed (is --curve-server-key "
                                        "the publisher's server.key, and does the publisher "
                                        "use CURVE?)")
        return self.handshake_error

    def __iter__(self) -> Iterator[M.Message]:
        while True:
            msg = self.recv()
            if msg is not None:
                yield msg

    def stats(self) -> dict[str, Any]:
        """Messages received, malformed, lost per topic (seq gaps) and the latest lag."""
        return {"received": self.received, "malformed": self.malformed,
                "lost": {k: v for k, v in self.lost.items() if v}, "lag_s": self.lag_s,
                "too_slow": self.too_slow}

    def close(self) -> None:
        """Close the socket (and the private context)."""
        if self._monitor is not None:
            self.socket.disable_monitor()
            self._monitor.close(linger=0)
            self._monitor = None
        self.socket.close(linger=0)
        if self._own_ctx:
            self.ctx.term()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_messages(endpoint: str, topics: Iterable[str] = ("pass",), camera: str | None = None,
                  *, timeout_s: float | None = None, security: ClientSecurity | None = None
                  ) -> Iterator[M.Message]:
    """Yield decoded messages from ``endpoint``; stop after ``timeout_s`` without any
    (``None``: never). The socket is closed when the generator is closed."""
    with Subscriber(endpoint, topics, camera, security=security) as sub:
        while True:
            msg = sub.recv(timeout_s)
            if msg is None:
                return
            yield msg

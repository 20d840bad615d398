"""Many cameras, one address: an XSUB/XPUB relay (ZeroMQ Guide, "Espresso"/proxy pattern).

Publishers connect their PUB sockets to the relay's *frontend* (``publish.endpoint:
">tcp://relay-host:5560"``); subscribers connect to its *backend*. Subscriptions flow
upstream, so each publisher only sends what someone asked for; camera ids in the topics keep
the sources apart.

The relay forwards the PUB/SUB stream only. Side-channel catch-up does not go through it:
each publisher advertises its own side channel in its ``pass`` and ``status`` headers
(``publish.advertise`` when it binds to ``0.0.0.0``) and ``gaitlive listen`` asks that
endpoint directly.
"""

from __future__ import annotations

import logging
import struct
import threading

import zmq

from gaitlive.publish.messages import MessageError, validate_endpoint

log = logging.getLogger(__name__)

__all__ = ["Relay", "RelayError"]


class RelayError(ValueError):
    """The relay cannot bind its endpoints."""


class Relay:
    """A steerable XSUB/XPUB proxy in a thread, with a clean shutdown.

    Parameters
    ----------
    frontend
        Endpoint the publishers connect to (XSUB binds here).
    backend
        Endpoint the subscribers connect to (XPUB binds here).
    hwm
        High-water mark of both sides (messages per peer).

    Examples
    --------
    >>> with Relay("tcp://127.0.0.1:5560", "tcp://127.0.0.1:5561") as r:  # doctest: +SKIP
    ...     r.wait()
    """

    def __init__(self, frontend: str, backend: str, *, hwm: int = 10000,
                 ctx: zmq.Context | None = None) -> None:
        for ep, name in ((frontend, "--frontend"), (backend, "--backend")):
            try:
                validate_endpoint(ep, name)
            except MessageError as e:
                raise RelayError(str(e)) from None
        self._own_ctx = ctx is None
        self.ctx = ctx or zmq.Context()
        self.hwm = hwm
        self.requested = (frontend, backend)
        self.frontend = self.backend = ""
        self._thread: threading.Thread | None = None
        self._ctl_addr = f"inproc://gaitlive-relay-{id(self):x}"
        self._ctl: zmq.Socket | None = None
        self.error: BaseException | None = None

    def start(self) -> Relay:
        """Bind both sides (errors raise :class:`RelayError` here) and start proxying."""
        xsub = self.ctx.socket(zmq.XSUB)
        xpub = self.ctx.socket(zmq.XPUB)
        for s in (xsub, xpub):
            s.linger = 0
            s.rcvhwm = s.sndhwm = self.hwm
        for sock, ep, name in ((xsub, self.requested[0], "--frontend"),
                               (xpub, self.requested[1], "--backend")):
            try:
                sock.bind(ep)
            except zmq.ZMQError as e:
                xsub.close()
                xpub.close()
                if self._own_ctx:
                    self.ctx.term()
                raise RelayError(f"{name}: cannot bind {ep!r}: {e}") from None
        self.frontend = xsub.getsockopt_string(zmq.LAST_ENDPOINT)
        self.backend = xpub.getsockopt_string(zmq.LAST_ENDPOINT)
        ctl_in = self.ctx.socket(zmq.PAIR)
        ctl_in.bind(self._ctl_addr)
        self._ctl = self.ctx.socket(zmq.PAIR)
        self._ctl.connect(self._ctl_addr)

        def run() -> None:
            try:
                zmq.proxy_steerable(xsub, xpub, None, ctl_in)
            except zmq.ContextTerminated:
                pass
            except BaseException as e:  # reported by wait()/stop()
                self.error = e
                log.exception("relay stopped")
            finally:
                for s in (xsub, xpub, ctl_in):
                    s.close(linger=0)

        self._thread = threading.Thread(target=run, name="gaitlive-relay", daemon=True)
        self._thread.start()
        log.info("relay: publishers -> %s, subscribers -> %s", self.frontend, self.backend)
        return self

    def statistics(self) -> dict[str, int]:
        """Messages and bytes through each side (libzmq's STATISTICS command)."""
        assert self._ctl is not None
        self._ctl.send(b"STATISTICS")
        if not self._ctl.poll(2000):
            return {}
        vals = [struct.unpack("=Q", f)[0] for f in self._ctl.recv_multipart()]
        names = ("frontend_in_msgs", "frontend_in_bytes", "frontend_out_msgs",
                 "frontend_out_bytes", "backend_in_msgs", "backend_in_bytes",
                 "backend_out_msgs", "backend_out_bytes")
        return dict(zip(names, vals, strict=False))

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the proxy thread to end; True if it did."""
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def stop(self) -> None:
        """Terminate the proxy and close its sockets."""
        if self._thread is not None and self._ctl is not None:
            self._ctl.send(b"TERMINATE")
            self._thread.join(timeout=5)
            self._thread = None
        if self._ctl is not None:
            self._ctl.close(linger=0)
            self._ctl = None
        if self._own_ctx:
            self.ctx.term()

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""Many cameras through one XSUB/XPUB relay (real sockets; the CLI relay in a subprocess)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from gaitlive.config import PublishSettings
from gaitlive.publish import Publisher, Subscriber
from gaitlive.publish.demo import synthetic_pass
from gaitlive.publish.listen import Listener, SQLiteStore
from gaitlive.publish.relay import Relay, RelayError

CAMS = ("cam0", "cam1", "cam2")


def _settings(tmp_path, cam: str, endpoint: str) -> PublishSettings:
    return PublishSettings(endpoint=endpoint, side_channel="tcp://127.0.0.1:*",
                           journal=str(tmp_path / f"{cam}.sqlite"), heartbeat_s=0.1)


def _until(cond, timeout_s: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


def _heard_from(sub: Subscriber, cams: set[str], timeout_s: float = 10.0) -> None:
    heard: set[str] = set()
    deadline = time.monotonic() + timeout_s
    while heard != cams:
        assert time.monotonic() < deadline, f"only heard {heard} of {cams}"
        m = sub.recv(0.1)
        if m is not None and m.kind == "status":
            heard.add(m.camera_id)


def _collect_passes(sub: Subscriber, n: int, timeout_s: float = 10.0) -> list:
    out = []
    deadline = time.monotonic() + timeout_s
    while len(out) < n and time.monotonic() < deadline:
        m = sub.recv(0.1)
        if m is not None and m.kind == "pass":
            out.append((m.camera_id, m.seq, m.body["pass_id"]))
    # nothing more may come
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        m = sub.recv(0.05)
        if m is not None and m.kind == "pass":
            out.append((m.camera_id, m.seq, m.body["pass_id"]))
    return out


def test_three_publishers_two_subscribers_through_one_relay(tmp_path):
    with Relay("tcp://127.0.0.1:*", "tcp://127.0.0.1:*") as relay:
        pubs = [Publisher(_settings(tmp_path, c, ">" + relay.frontend), c).start() for c in CAMS]
        try:
            with Subscriber(relay.backend, ["pass", "status"]) as everything, \
                    Subscriber(relay.backend, ["pass", "status"], "cam1") as only1:
                _heard_from(everything, set(CAMS))
                _heard_from(only1, {"cam1"})
                for k in range(5):
                    for i, pub in enumerate(pubs):
                        pub.publish_pass(synthetic_pass(100 * i + k, pub.camera_id))
                got_all = _collect_passes(everything, 15)
                got_1 = _collect_passes(only1, 5)
            stats = relay.statistics()
        finally:
            for p in pubs:
                p.close()
    assert Counter(c for c, _, _ in got_all) == {"cam0": 5, "cam1": 5, "cam2": 5}
    for i, cam in enumerate(CAMS):  # each camera's stream intact and in order
        assert [(s, p) for c, s, p in got_all if c == cam] == [(k + 1, 100 * i + k)
                                                                for k in range(5)]
    assert got_1 == [("cam1", k + 1, 100 + k) for k in range(5)]
    assert stats["frontend_in_msgs"] >= 15 and stats["backend_out_msgs"] >= 20


def test_listener_behind_a_relay_catches_up_from_each_publishers_side_channel(tmp_path):
    farm = tmp_path / "farm.sqlite"
    with Relay("tcp://127.0.0.1:*", "tcp://127.0.0.1:*") as relay:
        pubs = [Publisher(_settings(tmp_path, c, ">" + relay.frontend), c).start() for c in CAMS]
        try:
            for k in range(4):  # before anyone listens
                for pub in pubs:
                    pub.publish_pass(synthetic_pass(k, pub.camera_id))
            _until(lambda: all(p.stats()["published"]["pass"] == 4 for p in pubs), 5, "sent")
            store = SQLiteStore(farm)
            listener = Listener(relay.backend, store, ["pass"])  # knows only the relay
            th = threading.Thread(target=listener.run, daemon=True)
            th.start()
            try:
                _until(lambda: listener.stored == 12, 15, "12 scores from 3 side channels")
                for pub in pubs:
                    pub.publish_pass(synthetic_pass(4, pub.camera_id))
                _until(lambda: listener.stored == 15, 15, "live scores")
            finally:
                listener.stop_event.set()
                th.join(10)
                store.close()
        finally:
            for p in pubs:
                p.close()
    with sqlite3.connect(farm) as db:
        rows = db.execute("SELECT camera_id, seq, pass_id FROM scores "
                          "ORDER BY camera_id, seq").fetchall()
    assert rows == [(c, k + 1, k) for c in CAMS for k in range(5)]


def test_relay_cli_runs_until_sigterm_and_reports_bind_errors(tmp_path):
    cmd = [sys.executable, "-m", "gaitlive.cli", "-v", "relay", "--frontend",
           "tcp://127.0.0.1:*", "--backend", "tcp://127.0.0.1:*"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().split()
        assert line[:2] == ["relay:", "publishers"], line
        frontend, backend = line[3], line[6]
        with Publisher(_settings(tmp_path, "cam9", ">" + frontend), "cam9") as pub, \
                Subscriber(backend, ["pass", "status"], "cam9") as sub:
            _heard_from(sub, {"cam9"})
            pub.publish_pass(synthetic_pass(7, "cam9"))
            assert _collect_passes(sub, 1) == [("cam9", 1, 7)]
        # a second relay on the same port fails with a clear error
        r = subprocess.run([sys.executable, "-m", "gaitlive.cli", "relay", "--frontend",
                            frontend, "--backend", "tcp://127.0.0.1:*"], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 2 and "--frontend: cannot bind" in r.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "messages in from publishers" in err
    with pytest.raises(RelayError, match="--backend: expected a ZeroMQ endpoint .*'not-an-endpoint'"):
        Relay("tcp://127.0.0.1:*", "not-an-endpoint").start()


@pytest.mark.parametrize("duration", ["0", "-1", "nan"])
def test_relay_refuses_a_duration_that_is_no_time(duration, capsys):
    from gaitlive.cli import main

    assert main(["relay", "--frontend", "tcp://127.0.0.1:*", "--backend", "tcp://127.0.0.1:*",
                 "--duration", duration]) == 2
    assert f"--duration: expected seconds > 0 (or leave it out to relay until stopped), " \
        f"got {float(duration)}" in capsys.readouterr().err

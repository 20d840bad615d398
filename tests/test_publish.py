"""Publisher, journal and side channel over real loopback sockets."""

from __future__ import annotations

import logging
import os
import pickle
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import zmq

from gaitlive.config import PublishSettings
from gaitlive.publish import Publisher, PublishError, Subscriber
from gaitlive.publish import messages as M
from gaitlive.publish.demo import synthetic_pass
from gaitlive.publish.journal import Journal, JournalError
from gaitlive.publish.listen import Listener, SQLiteStore
from gaitlive.publish.sidechannel import (
    MAX_REQUEST_BYTES,
    SideChannelClient,
    SideChannelError,
)

BODYPARTS = tuple(f"bp{i}" for i in range(8))


def _settings(tmp_path, **kw) -> PublishSettings:
    base = dict(endpoint="tcp://127.0.0.1:*", side_channel="tcp://127.0.0.1:*",
                journal=str(tmp_path / "journal.sqlite"), heartbeat_s=0.1)
    base.update(kw)
    return PublishSettings(**base)


def _until(cond, timeout_s: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.01)


def _wait_kind(sub: Subscriber, kind: str, timeout_s: float = 5.0) -> M.Message:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        msg = sub.recv(0.1)
        if msg is not None and msg.kind == kind:
            return msg
    raise AssertionError(f"no {kind} message within {timeout_s} s")


def test_every_pass_is_journaled_before_it_is_published(tmp_path):
    s = _settings(tmp_path)
    with Publisher(s, "cam0") as pub, Subscriber(pub.endpoint, ["pass", "status"]) as sub, \
            Journal(s.journal) as reader:
        _wait_kind(sub, "status")
        for i in range(20):
            pub.publish_pass(synthetic_pass(i, "cam0"))
        seen = []
        while len(seen) < 20:
            m = _wait_kind(sub, "pass")
            # the journal already holds this exact message when it arrives
            entry = reader.since(pub.publisher_id, m.seq - 1, limit=1)[0]
            assert (entry.seq, entry.body, entry.t_wall) == (m.seq, m.raw_body,
                                                             m.header["t_wall"])
            seen.append((m.seq, m.body["pass_id"]))
        assert seen == [(i + 1, i) for i in range(20)]


def test_a_journal_that_refuses_writes_holds_the_passes_and_the_rest_goes_on(tmp_path):
    s = _settings(tmp_path)
    bps = tuple(f"bp{i}" for i in range(3))
    pose = np.zeros((1, 3, 3), np.float32)
    with Publisher(s, "cam0") as pub, \
            Subscriber(pub.endpoint, ["pass", "status", "pose"]) as sub:
        _wait_kind(sub, "status")
        pub.publish_pass(synthetic_pass(0, "cam0"))
        assert _wait_kind(sub, "pass").seq == 1
        # the journal stops taking writes, as on a file system remounted read-only after a
        # disk error (a real SQLite error on the publisher's own connection)
        pub._journal._db.execute("PRAGMA query_only = ON")
        for i in range(1, 4):
            pub.publish_pass(synthetic_pass(i, "cam0"))
        deadline = time.monotonic() + 5
        while True:
            st = _wait_kind(sub, "status")
            if st.body.get("passes_waiting") == 3:
                break
            assert time.monotonic() < deadline, "no status reported the 3 waiting passes"
        assert "readonly" in st.body["journal_error"]
        # heartbeats and poses go on meanwhile; no pass is published unjournaled
        got = {"status": 0, "pose": 0, "pass": 0}
        t_end = time.monotonic() + 1.0
        while time.monotonic() < t_end:
            pub.publish_pose(0, time.monotonic(), time.time(), pose, bps)
            m = sub.recv(0.05)
            if m is not None:
                got[m.kind] = got.get(m.kind, 0) + 1
        assert got["status"] >= 3 and got["pose"] >= 5 and got["pass"] == 0, got
        assert pub.stats()["passes_waiting"] == 3
        # the journal works again: the held passes go out in order, with their seqs
        pub._journal._db.execute("PRAGMA query_only = OFF")
        seen = [(m.seq, m.body["pass_id"]) for m in (_wait_kind(sub, "pass", 10)
                                                      for _ in range(3))]
        assert seen == [(2, 1), (3, 2), (4, 3)]
        _until(lambda: pub.stats()["passes_waiting"] == 0, 5, "the backlog to clear")
        assert "journal_error" not in _wait_kind(sub, "status").body


def test_restart_on_the_same_journal_continues_the_sequence_a_new_journal_resets_it(tmp_path):
    s = _settings(tmp_path)
    with Publisher(s, "cam0") as pub:
        for i in range(3):
            pub.publish_pass(synthetic_pass(i, "cam0"))
    epoch1 = pub.epoch
    with Publisher(s, "cam0") as pub2:
        assert pub2.epoch == epoch1 and pub2.stats()["pass_seq"] == 3
        pub2.publish_pass(synthetic_pass(3, "cam0"))
    with Journal(s.journal) as j:
        assert [e.seq for e in j.since(pub.publisher_id, 0)] == [1, 2, 3, 4]
    s2 = _settings(tmp_path, journal=str(tmp_path / "fresh.sqlite"))
    with Publisher(s2, "cam0") as pub3:
        pub3.publish_pass(synthetic_pass(9, "cam0"))
    assert pub3.epoch != epoch1 and pub3.publisher_id == pub.publisher_id
    with Journal(s2.journal) as j:
        assert [e.seq for e in j.since(pub.publisher_id, 0)] == [1]
        assert j.integrity_check() == "ok"
        assert sqlite3.connect(s2.journal).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_stalled_subscriber_never_blocks_and_every_pose_is_accounted_for(tmp_path):
    s = _settings(tmp_path, sndhwm=10, queue_size=16)
    ctx = zmq.Context()
    stalled = ctx.socket(zmq.SUB)  # subscribes to everything, never reads
    stalled.rcvhwm = 10
    stalled.subscribe(b"")
    poses = np.zeros((1, 8, 3), np.float32)
    try:
        with Publisher(s, "cam0") as pub:
            stalled.connect(pub.endpoint)
            with Subscriber(pub.endpoint, ["status"]) as sub:
                _wait_kind(sub, "status")
            for i in range(5000):
                pub.publish_pose(i, float(i), 0.0, poses, BODYPARTS)
                if i % 1000 == 0:
                    pub.publish_pass(synthetic_pass(i, "cam0"))
            pub.close()
            st = pub.stats()
        # every pose is either sent or counted as a queue drop; passes are never dropped
        assert st["published"]["pose"] + st["queue_drops"] == 5000
        assert st["published"]["pass"] == 5 and st["pass_seq"] == 5
    finally:
        stalled.close(linger=0)
        ctx.destroy(linger=0)


def test_queue_full_drops_oldest_poses_but_never_passes(tmp_path):
    s = _settings(tmp_path, queue_size=4, heartbeat_s=60.0)
    pub = Publisher(s, "cam0").start()
    # hold the publisher thread: it cannot drain while we fill the queues
    blocker = threading.Lock()
    blocker.acquire()
    orig = pub._handle
    pub._handle = lambda item: (blocker.acquire(), blocker.release(), orig(item))
    try:
        pub.publish_pose(0, 0.0, 0.0, np.zeros((1, 8, 3)), BODYPARTS)  # taken by the thread
        _until(lambda: not pub._lossy, 5, "thread to take the first pose")
        for i in range(1, 11):
            pub.publish_pose(i, 0.0, 0.0, np.zeros((1, 8, 3)), BODYPARTS)
        for i in range(30):
            pub.publish_pass(synthetic_pass(i, "cam0"))
        assert pub.stats()["queue_drops"] == 6  # 10 queued into 4 places
        assert [it[4][0] for it in pub._lossy] == [7, 8, 9, 10]  # the newest stay
    finally:
        blocker.release()
        pub.close()
    assert pub.stats()["published"]["pass"] == 30
    assert pub.stats()["published"]["pose"] == 5


def test_heartbeat_carries_the_last_pass_seq(tmp_path):
    with Publisher(_settings(tmp_path, heartbeat_s=0.05), "cam3", model="m1") as pub, \
            Subscriber(pub.endpoint, ["status"]) as sub:
        first = _wait_kind(sub, "status")
        pub.publish_pass(synthetic_pass(0, "cam3"))
        pub.publish_pass(synthetic_pass(1, "cam3"))
        _until(lambda: pub.stats()["published"]["pass"] == 2, 5, "passes")
        m = _wait_kind(sub, "status")
        assert m.body["pass_seq"] == 2 and m.body["model"] == "m1" and m.seq > first.seq
        assert m.side_channel == pub.side_endpoint
        assert m.body["published"]["pass"] == 2


def test_bind_conflicts_and_bad_journals_are_clear_errors(tmp_path):
    with Publisher(_settings(tmp_path), "cam0") as pub:
        with pytest.raises(PublishError, match=r"publish.endpoint: cannot bind 'tcp://127"):
            Publisher(_settings(tmp_path, endpoint=pub.endpoint), "cam1").start()
        with pytest.raises(PublishError, match=r"publish.side_channel: cannot bind"):
            Publisher(_settings(tmp_path, side_channel=pub.side_endpoint), "cam1").start()
    bad = tmp_path / "not-a-journal.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(PublishError, match=r"publish.journal: .*not-a-journal.sqlite"):
        Publisher(_settings(tmp_path, journal=str(bad)), "cam0").start()
    with pytest.raises(JournalError, match="journal not found"):
        Journal(tmp_path / "missing.sqlite", readonly=True)
    with pytest.raises(RuntimeError, match="start"):
        Publisher(_settings(tmp_path), "cam0").publish_pass(synthetic_pass(0, "cam0"))


# --------------------------------------------------------------------------------------
# side channel
# --------------------------------------------------------------------------------------


def _journal_rows(path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT * FROM passes ORDER BY publisher_id, seq").fetchall() + \
            db.execute("SELECT * FROM streams").fetchall()


def test_side_channel_pages_and_epoch_reset(tmp_path):
    s = _settings(tmp_path)
    with Publisher(s, "cam0") as pub:
        for i in range(25):
            pub.publish_pass(synthetic_pass(i, "cam0"))
        _until(lambda: pub.stats()["pass_seq"] == 25, 5, "journal")
        with SideChannelClient(pub.side_endpoint) as c:
            assert c.hello() == [{"pub": pub.publisher_id, "epoch": pub.epoch,
                                  "camera": "cam0", "last_seq": 25}]
            pages = list(c.since(pub.publisher_id, 5, epoch=pub.epoch, limit=7))
            assert [st["count"] for st, _ in pages] == [7, 7, 6]
            msgs = [m for _, ms in pages for m in ms]
            assert [m.seq for m in msgs] == list(range(6, 26))
            assert [m.body["pass_id"] for m in msgs] == list(range(5, 25))
            assert all(m.side_channel == pub.side_endpoint for m in msgs)
            st, ms = next(c.since(pub.publisher_id, 20, epoch="stale-epoch"))
            assert st["reset"] and st["epoch"] == pub.epoch and ms[0].seq == 1


GARBAGE = [
    ([b"a", b"b", b"c"], "expected 1 request frame, got 3"),
    ([M.pack({"op": "hello"}), b"extra"], "expected 1 request frame, got 2"),
    ([b"\x93\x01"], "not valid msgpack"),
    ([b"\xc1\xc1"], "not valid msgpack"),
    ([pickle.dumps({"op": "hello"})], "not valid msgpack"),
    ([b"\x00" * (MAX_REQUEST_BYTES + 1)], "exceeds the limit"),
    ([b"\x00" * 300_000], "exceeds the limit"),
    ([M.pack([1, 2, 3])], "expected a map"),
    ([M.pack({"op": "drop_table"})], "request.op"),
    ([M.pack({"op": "since", "pub": 5, "after": 0})], "request.pub"),
    ([M.pack({"op": "since", "pub": "x", "after": "0"})], "no stream|request.after"),
    ([M.pack({"op": "since", "pub": "cam0@h", "after": -1})], "request.after"),
    ([M.pack({"op": "since", "pub": "cam0@h", "after": 0, "limit": True})], "request.limit"),
    ([M.pack({"op": "since", "pub": "cam0@h", "after": 0, "epoch": 3})], "request.epoch"),
    ([M.pack({"op": "hello", "id": "x"})], "request.id"),
    ([M.pack({"op": "since", "pub": "nobody", "after": 0})], "no stream 'nobody'"),
    ([b"\xd4\x05\x00"], "extension type"),
]


def test_garbage_on_the_side_channel_gets_an_error_and_changes_nothing(tmp_path):
    s = _settings(tmp_path)
    with Publisher(s, "cam0", publisher_id="cam0@h") as pub:
        for i in range(3):
            pub.publish_pass(synthetic_pass(i, "cam0"))
        _until(lambda: pub.stats()["pass_seq"] == 3, 5, "journal")
        before = _journal_rows(s.journal)
        ctx = zmq.Context()
        try:
            for kind in (zmq.DEALER, zmq.REQ):
                for frames, needle in GARBAGE:
                    sock = ctx.socket(kind)
                    sock.linger = 0
                    sock.connect(pub.side_endpoint)
                    sock.send_multipart(frames)
                    assert sock.poll(5000), f"no reply to {frames!r:.60}"
                    reply = sock.recv_multipart()
                    assert len(reply) == 1
                    err = M.unpack(reply[0])
                    assert err["ok"] is False
                    assert re.search(needle, err["error"]), err["error"]
                    sock.close()
            # the server still works, and nothing changed
            with SideChannelClient(pub.side_endpoint, ctx) as c:
                assert [m.seq for _, ms in c.since("cam0@h", 0) for m in ms] == [1, 2, 3]
            assert _journal_rows(s.journal) == before
            assert pub.stats()["side_requests"] >= 2 * len(GARBAGE)
        finally:
            ctx.destroy(linger=0)


# --------------------------------------------------------------------------------------
# publisher killed with SIGKILL
# --------------------------------------------------------------------------------------


def _start_demo(tmp_path, journal, endpoint, side, *args) -> tuple[subprocess.Popen, str, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gaitlive.publish.demo", "--endpoint", endpoint,
         "--side-channel", side, "--journal", str(journal), "--heartbeat", "0.1", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    line = proc.stdout.readline().split()
    assert line and line[0] == "ready", proc.stderr.read() if proc.poll() is not None else line
    return proc, line[1], line[2]


def _count_scores(path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*) FROM scores").fetchone()[0]


def test_publisher_killed_with_sigkill_keeps_its_journal_and_the_listener_catches_up(tmp_path):
    journal = tmp_path / "journal.sqlite"
    proc, ep, side = _start_demo(tmp_path, journal, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*",
                                 "--count", "100000", "--rate", "200", "--publisher-id", "p")
    store = SQLiteStore(tmp_path / "scores.sqlite")
    # the listener only knows the first publisher's endpoints; the restarted publisher binds
    # the same ones
    listener = Listener(ep, store, ["pass"], request_timeout_s=0.5)
    th = threading.Thread(target=listener.run, daemon=True)
    th.start()
    try:
        sent = 0
        while sent < 40:  # kill it mid-stream
            sent = int(proc.stdout.readline().split()[1])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        with Journal(journal) as j:
            assert j.integrity_check() == "ok"
            seqs = [e.seq for e in j.since("p", 0, limit=100000)]
            assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 35
            bodies = [M.unpack(e.body)["pass_id"] for e in j.since("p", 0, limit=100000)]
            assert bodies == list(range(len(seqs)))
        n_before = len(seqs)
        # restart on the same journal and endpoints: the sequence continues
        proc, _, _ = _start_demo(tmp_path, journal, ep, side, "--count", "10", "--rate",
                                 "100", "--first", "1000", "--publisher-id", "p",
                                 "--linger", "30")
        for _ in range(10):
            proc.stdout.readline()
        _until(lambda: _count_scores(tmp_path / "scores.sqlite") == n_before + 10, 15,
               "listener to hold every journaled pass")
    finally:
        listener.stop_event.set()
        th.join(10)
        proc.kill()
        proc.wait(10)
        store.close()
    with Journal(journal) as j:
        entries = j.since("p", 0, limit=100000)
    assert [e.seq for e in entries] == list(range(1, n_before + 11))
    with sqlite3.connect(tmp_path / "scores.sqlite") as db:
        rows = db.execute("SELECT seq, pass_id FROM scores ORDER BY seq").fetchall()
    assert rows == [(e.seq, M.unpack(e.body)["pass_id"]) for e in entries]
    assert listener.open_gaps() == []


def test_a_slow_subscriber_loses_poses_and_counts_every_one(tmp_path):
    s = _settings(tmp_path, sndhwm=20, queue_size=100_000)
    poses = np.zeros((1, 8, 3), np.float32)
    with Publisher(s, "cam0") as pub, \
            Subscriber(pub.endpoint, ["pose", "status"], rcvhwm=20, max_lag_s=0.0) as sub:
        _wait_kind(sub, "status")
        for i in range(5000):  # the subscriber reads nothing meanwhile
            pub.publish_pose(i, 0.0, 0.0, poses, BODYPARTS)
        _until(lambda: pub.stats()["published"]["pose"] == 5000, 30, "all sent")
        got: list[int] = []
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 0.5:  # read until no pose came for 0.5 s
            m = sub.recv(0.1)
            if m is not None and m.kind == "pose":
                got.append(m.body["frame"])
                quiet_since = time.monotonic()
        pub.publish_pose(5000, 0.0, 0.0, poses, BODYPARTS)  # after the pipe drained
        m = _wait_kind(sub, "pose")
        got.append(m.body["frame"])
    assert got == sorted(got) and got[-1] == 5000
    assert sub.lost["pose"] > 0 and len(got) + sub.lost["pose"] == 5001
    assert sub.too_slow > 0  # the lag check saw it fall behind


def test_messages_after_close_are_dropped_not_raised_into_the_pipeline(tmp_path, caplog):
    pub = Publisher(_settings(tmp_path), "cam0").start()
    pub.publish_pass(synthetic_pass(0, "cam0"))
    pub.close()
    pub.publish_pose(1, 0.0, 0.0, np.zeros((1, 8, 3)), BODYPARTS)
    pub.publish_pass(synthetic_pass(1, "cam0"))
    assert pub.stats()["dropped_after_close"] == 2
    assert "NOT journaled" in caplog.text
    with Journal(tmp_path / "journal.sqlite") as j:
        assert j.count() == 1  # the one sent before close() was journaled


def _pose_frames(pub_id: str, epoch: str, run: str | None, seq: int) -> list[bytes]:
    body = M.pose_body(seq, 0.0, 0.0, np.zeros((1, 8, 3), np.float32), BODYPARTS)
    return M.encode("pose", "cam0", M.encode_header(pub_id, epoch, seq, 0.0, time.time(),
                                                    run=run), body)


def test_a_restarted_publisher_joined_late_is_not_counted_as_lost_poses():
    """Pose seqs restart at every start of the publisher; a subscriber whose first pose of
    the new run is seq 150 (it reconnected late) lost nothing of that run."""
    with Subscriber("tcp://127.0.0.1:5999", ["pose"]) as sub:
        for seq in (1, 2, 3):
            assert sub.decode(_pose_frames("cam0@h", "e1", "run1", seq)) is not None
        for seq in (150, 151, 153):  # the restart, joined late; then one real gap
            assert sub.decode(_pose_frames("cam0@h", "e1", "run2", seq)) is not None
        assert sub.lost["pose"] == 1
        # headers without a run (an older publisher) keep the old per-epoch counting
        for seq in (1, 2, 5):
            sub.decode(_pose_frames("old@h", "e1", None, seq))
        assert sub.lost["pose"] == 3


def test_every_start_of_a_publisher_has_its_own_run_on_the_wire(tmp_path):
    s = _settings(tmp_path)
    runs = []
    for _ in range(2):
        with Publisher(s, "cam0") as pub, Subscriber(pub.endpoint, ["status"]) as sub:
            msg = _wait_kind(sub, "status")
            assert msg.run == pub.run_id and msg.epoch == pub.epoch
            runs.append(msg.run)
    assert runs[0] != runs[1]  # same journal, same epoch, a new run


def test_pose_headers_carry_the_run_so_a_restart_is_not_counted_as_lost_poses(tmp_path):
    """Real publisher restarts on one endpoint; the subscriber of the second run joins late
    (its first pose of that run is seq 20): nothing of that run was lost."""
    ctx = zmq.Context()
    raw = ctx.socket(zmq.SUB)
    raw.linger = 0
    for t in (b"pose/", b"status/"):
        raw.subscribe(t)
    got: list[tuple[str, list[list[bytes]]]] = []
    endpoint = ""
    try:
        for n in (5, 25):
            s = _settings(tmp_path, **({"endpoint": endpoint} if endpoint else {}))
            with Publisher(s, "cam0") as pub:
                if not endpoint:
                    endpoint = pub.endpoint
                    raw.connect(endpoint)
                _until(lambda p=pub: raw.poll(100) and M.decode(raw.recv_multipart()).run
                       == p.run_id, 10, "a status of this run (connected)")
                for i in range(n):
                    pub.publish_pose(i, 0.0, 0.0, np.zeros((1, 8, 3), np.float32), BODYPARTS)
                poses: list[list[bytes]] = []
                while len(poses) < n:
                    assert raw.poll(5000), f"only {len(poses)} of {n} poses"
                    frames = raw.recv_multipart()
                    if frames[0].startswith(b"pose/"):
                        poses.append(frames)
                got.append((pub.run_id, poses))
    finally:
        ctx.destroy(linger=0)
    (run1, poses1), (run2, poses2) = got
    assert run1 != run2
    assert [M.decode(f).run for f in poses1] == [run1] * 5
    assert [M.decode(f).run for f in poses2] == [run2] * 25
    with Subscriber("tcp://127.0.0.1:5999", ["pose"]) as sub:  # decode() only
        for frames in poses1 + poses2[19:]:  # run 2 joined late, at its seq 20
            assert sub.decode(frames) is not None
        assert sub.lost["pose"] == 0


# --------------------------------------------------------------------------------------
# side channels bound to every interface, or that libzmq refuses
# --------------------------------------------------------------------------------------


def test_a_side_channel_bound_to_every_interface_is_advertised_on_loopback_with_a_warning(
        tmp_path, caplog):
    s = _settings(tmp_path, side_channel="tcp://*:*")
    with caplog.at_level(logging.WARNING, logger="gaitlive.publish.publisher"), \
            Publisher(s, "cam0", publisher_id="p") as pub, \
            Subscriber(pub.endpoint, ["status"]) as sub:
        pub.publish_pass(synthetic_pass(0, "cam0"))
        _until(lambda: pub.stats()["pass_seq"] == 1, 5, "journal")
        assert re.fullmatch(r"tcp://127\.0\.0\.1:\d+", pub.side_endpoint), pub.side_endpoint
        assert _wait_kind(sub, "status").side_channel == pub.side_endpoint
        with SideChannelClient(pub.side_endpoint, timeout_s=5) as c:  # it can be reached
            assert [st["last_seq"] for st in c.hello()] == [1]
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warning) == 1 and "tcp://*:*" in warning[0], warning
    assert "subscribers on other machines need publish.advertise" in warning[0]
    # given an address to advertise, that is what subscribers are told (and no warning)
    caplog.clear()
    s = _settings(tmp_path, side_channel="tcp://*:*", advertise="tcp://barn-pc:5557")
    with caplog.at_level(logging.WARNING, logger="gaitlive.publish.publisher"), \
            Publisher(s, "cam0", publisher_id="p") as pub:
        assert pub.side_endpoint == "tcp://barn-pc:5557"
    assert not caplog.records


def test_a_side_channel_libzmq_refuses_is_a_side_channel_error_and_leaks_no_socket():
    ctx = zmq.Context()
    client = SideChannelClient("tcp://bad!host:5557", ctx, timeout_s=0.2)
    with pytest.raises(SideChannelError, match=r"tcp://bad!host:5557: cannot connect"):
        client.hello()
    with pytest.raises(SideChannelError):  # and again: each try is a clean failure
        client.hello()
    client.close()
    # nothing was left open: term() returns (a leaked socket blocks it forever)
    th = threading.Thread(target=ctx.term, daemon=True)
    th.start()
    th.join(10)
    assert not th.is_alive(), "zmq.Context.term() blocked on a socket left open"


def test_the_demo_publisher_keeps_its_own_journal_and_camera(tmp_path):
    """A real run later in the same folder must not carry on the demo's stream."""
    r = subprocess.run([sys.executable, "-m", "gaitlive.publish.demo", "--count", "2",
                        "--rate", "50", "--endpoint", "tcp://127.0.0.1:*",
                        "--side-channel", "tcp://127.0.0.1:*"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "gaitlive-demo-journal.sqlite").is_file()
    assert not (tmp_path / "gaitlive-journal.sqlite").exists()
    with sqlite3.connect(tmp_path / "gaitlive-demo-journal.sqlite") as db:
        cams = db.execute("SELECT DISTINCT camera_id FROM passes").fetchall()
        assert cams == [("demo",)] and db.execute("SELECT COUNT(*) FROM passes").fetchone() == (2,)

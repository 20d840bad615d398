"""``gaitlive listen``: every pass score exactly once, across subscriber kills, late joins,
journal resets and lost journal rows (real sockets, real subprocesses)."""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gaitlive.config import PublishSettings
from gaitlive.publish import Publisher
from gaitlive.publish import messages as M
from gaitlive.publish.demo import synthetic_pass
from gaitlive.publish.listen import (
    PASS_COLUMNS,
    CSVStore,
    Listener,
    ListenError,
    PrintStore,
    SQLiteStore,
)

GAITLIVE = [sys.executable, "-m", "gaitlive.cli"]


def _settings(tmp_path, **kw) -> PublishSettings:
    base = dict(endpoint="tcp://127.0.0.1:*", side_channel="tcp://127.0.0.1:*",
                journal=str(tmp_path / "journal.sqlite"), heartbeat_s=0.1)
    base.update(kw)
    return PublishSettings(**base)


def _until(cond, timeout_s: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


def _rows(db_path: Path, sql: str = "SELECT seq, pass_id FROM scores ORDER BY seq") -> list:
    if not db_path.exists():
        return []
    with sqlite3.connect(db_path, timeout=10) as db:
        try:
            return db.execute(sql).fetchall()
        except sqlite3.OperationalError:  # table not created yet
            return []


class _Feeder(threading.Thread):
    """Publishes passes 0..n-1 at ``rate`` per second from a thread."""

    def __init__(self, pub: Publisher, n: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.pub, self.n, self.rate, self.sent = pub, n, rate, 0

    def run(self) -> None:
        for i in range(self.n):
            self.pub.publish_pass(synthetic_pass(i, self.pub.camera_id))
            self.sent = i + 1
            time.sleep(1 / self.rate)


def _listen_proc(*args: str) -> subprocess.Popen:
    return subprocess.Popen([*GAITLIVE, "listen", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_subscriber_killed_and_restarted_ends_with_every_score_exactly_once(tmp_path):
    db = tmp_path / "farm.sqlite"
    with Publisher(_settings(tmp_path), "cam0") as pub:
        feeder = _Feeder(pub, 150, rate=60)
        feeder.start()
        proc = _listen_proc(pub.endpoint, "--sqlite", str(db))
        try:
            _until(lambda: len(_rows(db)) >= 20, 20, "first scores")
            os.kill(proc.pid, signal.SIGKILL)  # no chance to clean up
            proc.wait(10)
            n_at_kill = len(_rows(db))
            _until(lambda: feeder.sent >= n_at_kill + 30, 20, "passes while it is down")
            # restarted without --side-channel: it finds the side channel in its database
            proc = _listen_proc(pub.endpoint, "--sqlite", str(db))
            feeder.join(20)
            _until(lambda: len(_rows(db)) == 150, 20, "all 150 scores")
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert _rows(db) == [(i + 1, i) for i in range(150)]
    assert _rows(db, "SELECT COUNT(*), COUNT(DISTINCT seq) FROM scores") == [(150, 150)]
    assert "catch-up" in err  # the second run fetched what it missed
    assert _rows(db, "SELECT COUNT(*) FROM gaps") == [(0,)]


def _run_listener(listener: Listener) -> threading.Thread:
    th = threading.Thread(target=listener.run, daemon=True)
    th.start()
    return th


def test_late_listener_fills_the_gap_from_the_advertised_side_channel(tmp_path):
    store = SQLiteStore(tmp_path / "farm.sqlite")
    with Publisher(_settings(tmp_path), "cam0") as pub:
        for i in range(5):
            pub.publish_pass(synthetic_pass(i, "cam0"))
        _until(lambda: pub.stats()["published"]["pass"] == 5, 5, "first passes sent")
        listener = Listener(pub.endpoint, store, ["pass"])  # no --side-channel
        th = _run_listener(listener)
        try:
            _until(lambda: listener.streams, 10, "first heartbeat")
            for i in range(5, 8):
                pub.publish_pass(synthetic_pass(i, "cam0"))
            _until(lambda: listener.stored == 8, 10, "8 scores")
        finally:
            listener.stop_event.set()
            th.join(10)
    store.close()
    assert _rows(tmp_path / "farm.sqlite") == [(i + 1, i) for i in range(8)]
    # the 5 passes sent before it started come by catch-up; a later one may too when it is
    # published while the catch-up is under way (then its live copy is the duplicate)
    assert 5 <= listener.caught_up <= 8 and listener.open_gaps() == []


def _journal_six_passes_without_2_and_3(pub, journal: str) -> None:
    """Publish 6 passes, wait until they are journaled, then prune seqs 2 and 3 from the
    journal (as an operator might): a gap no side channel can fill."""
    for i in range(6):
        pub.publish_pass(synthetic_pass(i, "cam0"))
    _until(lambda: pub.stats()["pass_seq"] == 6, 5, "journal")
    j = sqlite3.connect(journal)
    with j:
        j.execute("DELETE FROM passes WHERE seq IN (2, 3)")
    j.close()


def test_gaps_the_journal_cannot_fill_are_recorded(tmp_path, caplog):
    s = _settings(tmp_path)
    with Publisher(s, "cam0", publisher_id="p") as pub:
        _journal_six_passes_without_2_and_3(pub, s.journal)
        store = SQLiteStore(tmp_path / "farm.sqlite")
        listener = Listener(pub.endpoint, store, ["pass"], side_channel=pub.side_endpoint)
        th = _run_listener(listener)
        try:
            with caplog.at_level(logging.WARNING, logger="gaitlive.publish.listen"):
                _until(lambda: listener.stored == 4 and not listener.open_gaps(), 10, "catch-up")
                pub.publish_pass(synthetic_pass(6, "cam0"))
                _until(lambda: listener.stored == 5, 10, "live pass")
        finally:
            listener.stop_event.set()
            th.join(10)
            store.close()
    farm = tmp_path / "farm.sqlite"
    assert [r[0] for r in _rows(farm)] == [1, 4, 5, 6, 7]
    assert _rows(farm, "SELECT publisher_id, first_seq, last_seq, reason FROM gaps") == [
        ("p", 2, 3, "not in the publisher's journal")]
    assert "pass seqs 2..3 lost" in caplog.text
    # restarted on the same database, it does not ask for them again
    store = SQLiteStore(farm)
    assert store.covered("p", pub.epoch) == {1, 2, 3, 4, 5, 6, 7}
    store.close()


def test_publisher_with_a_recreated_journal_is_a_new_epoch(tmp_path, caplog):
    farm = tmp_path / "farm.sqlite"
    s1 = _settings(tmp_path, journal=str(tmp_path / "j1.sqlite"))
    with Publisher(s1, "cam0", publisher_id="p") as pub:
        for i in range(3):
            pub.publish_pass(synthetic_pass(i, "cam0"))
        _until(lambda: pub.stats()["pass_seq"] == 3, 5, "journal")
        endpoint, side = pub.endpoint, pub.side_endpoint
        store = SQLiteStore(farm)
        listener = Listener(endpoint, store, ["pass"], side_channel=side)
        th = _run_listener(listener)
        _until(lambda: listener.stored == 3, 10, "first epoch")
    epoch1 = pub.epoch
    # same id and endpoints, journal lost: a new epoch restarting at seq 1
    s2 = _settings(tmp_path, journal=str(tmp_path / "j2.sqlite"), endpoint=endpoint,
                   side_channel=side)
    try:
        with caplog.at_level(logging.WARNING, logger="gaitlive.publish.listen"), \
                Publisher(s2, "cam0", publisher_id="p") as pub2:
            for i in range(100, 102):
                pub2.publish_pass(synthetic_pass(i, "cam0"))
            _until(lambda: listener.stored == 5, 10, "second epoch")
    finally:
        listener.stop_event.set()
        th.join(10)
        store.close()
    assert pub2.epoch != epoch1
    rows = _rows(farm, "SELECT epoch, seq, pass_id FROM scores ORDER BY epoch = ?, seq"
                 .replace("?", f"'{pub2.epoch}'"))
    assert rows == [(epoch1, 1, 0), (epoch1, 2, 1), (epoch1, 3, 2),
                    (pub2.epoch, 1, 100), (pub2.epoch, 2, 101)]
    assert "new journal" in caplog.text


def test_csv_output_is_idempotent_and_survives_a_torn_last_line(tmp_path):
    out = tmp_path / "scores.csv"
    s = _settings(tmp_path)
    with Publisher(s, "cam0") as pub:
        for i in range(4):
            pub.publish_pass(synthetic_pass(i, "cam0"))
        _until(lambda: pub.stats()["pass_seq"] == 4, 5, "journal")
        for _ in range(2):  # the second run must add nothing
            store = CSVStore(out)
            listener = Listener(pub.endpoint, store, ["pass"], side_channel=pub.side_endpoint)
            th = _run_listener(listener)
            _until(lambda lis=listener: not lis.open_gaps() and lis.streams and
                   all(not st.wants_catchup for st in lis.streams.values()), 10, "catch-up")
            listener.stop_event.set()
            th.join(10)
            store.close()
        with open(out, "a") as fh:  # a crash in the middle of a row
            fh.write("p,abc,99,cam0,1.0")
        pub.publish_pass(synthetic_pass(4, "cam0"))
        store = CSVStore(out)
        listener = Listener(pub.endpoint, store, ["pass"], side_channel=pub.side_endpoint)
        th = _run_listener(listener)
        _until(lambda: listener.stored == 1, 10, "fifth pass")
        listener.stop_event.set()
        th.join(10)
        store.close()
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == PASS_COLUMNS
    assert [(int(r["seq"]), int(r["pass_id"]), float(r["score"])) for r in rows] == [
        (i + 1, i, float(i % 6)) for i in range(5)]
    assert json.loads(rows[2]["features"]) == synthetic_pass(2, "cam0").features


def test_print_output_and_topic_selection(tmp_path):
    import io

    buf = io.StringIO()
    with Publisher(_settings(tmp_path), "cam5") as pub:
        listener = Listener(pub.endpoint, PrintStore(buf), ["pass", "step"])
        th = _run_listener(listener)
        _until(lambda: listener.streams, 10, "heartbeat")
        from gaitlive.gait.events import StepEvent

        pub.publish_step(StepEvent(0, 1, "left", "strike", 5))
        pub.publish_pass(synthetic_pass(0, "cam5"))
        _until(lambda: listener.stored == 1 and buf.getvalue().count("\n") >= 2, 10, "output")
        listener.stop_event.set()
        th.join(10)
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert {line["topic"] for line in lines} == {"pass", "step"}  # status used, not shown
    p = next(line for line in lines if line["topic"] == "pass")
    assert (p["camera_id"], p["seq"], p["score"], p["scored"]) == ("cam5", 1, 0.0, True)


def test_listen_cli_errors_are_clear():
    r = subprocess.run([*GAITLIVE, "listen", "--topics", "pass,scores"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "unknown topic 'scores'" in r.stderr
    r = subprocess.run([*GAITLIVE, "listen", "--curve-server-key", "x.key"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--curve-client-cert" in r.stderr
    r = subprocess.run([*GAITLIVE, "listen", "--camera", "a/b"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "camera id" in r.stderr
    for args, what in ((["foo"], "subscriber endpoint: expected a ZeroMQ endpoint"),
                       (["tcp://127.0.0.1:70000"], "port 1-65535"),
                       (["--duration", "-1"], "--duration: expected seconds > 0"),
                       (["--timeout", "0"], "--timeout: expected seconds > 0"),
                       (["--side-channel", "foo"], "--side-channel: expected a ZeroMQ endpoint")):
        r = subprocess.run([*GAITLIVE, "listen", *args], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 2 and what in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_listen_cli_prints_json_lines(tmp_path):
    with Publisher(_settings(tmp_path), "cam0") as pub:
        for i in range(3):
            pub.publish_pass(synthetic_pass(i, "cam0"))
        _until(lambda: pub.stats()["pass_seq"] == 3, 5, "journal")
        r = subprocess.run([*GAITLIVE, "listen", pub.endpoint, "--side-channel",
                            pub.side_endpoint, "--print", "--duration", "1.5"],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    got = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(g["seq"], g["pass_id"]) for g in got] == [(1, 0), (2, 1), (3, 2)]


@pytest.mark.parametrize("bad", [b"garbage", b"SQLite format 3\x00" + b"\x01" * 200])
def test_listen_refuses_a_file_that_is_not_its_database(tmp_path, bad):
    p = tmp_path / "x.sqlite"
    p.write_bytes(bad)
    r = subprocess.run([*GAITLIVE, "listen", "--sqlite", str(p), "--duration", "0.1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "x.sqlite" in r.stderr and "not a gaitlive listen" in r.stderr
    assert p.read_bytes() == bad  # untouched


def test_messages_module_decodes_what_listen_stores(tmp_path):
    """A subscriber of its own (``iter_messages``) and a listener on the same publisher: the
    pass it decodes is the row the listener stored, field for field, and the messages match
    the published schema (the status heartbeat a listener relies on for tail gaps too)."""
    import jsonschema

    from gaitlive.publish import iter_messages

    schema = M.load_schema()
    store = SQLiteStore(tmp_path / "farm.sqlite")
    with Publisher(_settings(tmp_path), "cam0") as pub:
        listener = Listener(pub.endpoint, store, ["pass"], side_channel=pub.side_endpoint)
        th = _run_listener(listener)
        msgs = iter_messages(pub.endpoint, ["pass", "status"], "cam0", timeout_s=5)
        try:
            status = next(m for m in msgs if m.kind == "status")  # connected now
            _until(lambda: listener.streams, 10, "the listener's first heartbeat")
            sent = synthetic_pass(0, "cam0")
            pub.publish_pass(sent)
            got = next(m for m in msgs if m.kind == "pass")
            _until(lambda: listener.stored == 1, 10, "the stored score")
        finally:
            msgs.close()
            listener.stop_event.set()
            th.join(10)
    store.close()
    for m in (status, got):
        assert isinstance(m, M.Message) and m.side_channel == pub.side_endpoint
        jsonschema.validate({"topic": m.topic.decode(), "header": M.json_view(m.header),
                             "body": M.json_view(M.unpack(m.raw_body))}, schema,
                            cls=jsonschema.Draft202012Validator)
    assert got.body["pass_id"] == sent.pass_id and got.body["score"] == sent.score
    with sqlite3.connect(tmp_path / "farm.sqlite") as db:
        db.row_factory = sqlite3.Row
        (row,) = db.execute("SELECT * FROM scores").fetchall()
    assert (row["publisher_id"], row["epoch"], row["seq"], row["camera_id"]) == \
        (got.publisher_id, got.epoch, got.seq, "cam0")
    for k in ("individual", "pass_id", "start_frame", "end_frame", "n_steps", "score",
              "score_class", "confidence", "reason"):
        assert row[k] == got.body[k], k
    assert json.loads(row["features"]) == pytest.approx(got.body["features"])
    assert got.body["features"] == pytest.approx(sent.features)


class _SlowPoseSink(SQLiteStore):
    """A farm system that stalls for 1.5 s on its first pose."""

    def add_other(self, msg: M.Message) -> None:
        if msg.kind == "pose" and msg.body["frame"] == 0:
            time.sleep(1.5)
        super().add_other(msg)


def test_a_slow_subscriber_loses_poses_but_never_a_score(tmp_path):
    import numpy as np

    s = _settings(tmp_path, sndhwm=20, queue_size=100_000)
    store = _SlowPoseSink(tmp_path / "farm.sqlite")
    bodyparts = tuple(f"bp{i}" for i in range(8))
    with Publisher(s, "cam0") as pub:
        listener = Listener(pub.endpoint, store, ["pass", "pose"], rcvhwm=20)
        th = _run_listener(listener)
        try:
            _until(lambda: listener.streams, 10, "heartbeat")
            crowd = np.zeros((80, 8, 3), np.float32)  # 7.7 kB poses: 77 MB, beyond TCP buffers
            for i in range(10000):
                pub.publish_pose(i, 0.0, 0.0, crowd, bodyparts)
                if i % 250 == 249:  # a pass behind the poses already sent
                    _until(lambda n=i + 1: pub.stats()["published"]["pose"] == n, 10, "poses")
                    pub.publish_pass(synthetic_pass(i // 250, "cam0"))
            _until(lambda: listener.stored == 40, 30, "all 40 scores")
        finally:
            listener.stop_event.set()
            th.join(10)
            store.close()
    assert _rows(tmp_path / "farm.sqlite") == [(i + 1, i) for i in range(40)]
    assert listener.subscriber.lost["pose"] > 0  # it was too slow, and poses were dropped
    assert listener.caught_up > 0  # ... and so were passes, fetched again from the journal


def test_gaps_with_an_unreachable_side_channel_are_retried_and_reported(tmp_path, caplog):
    """A publisher whose side channel does not answer (here a bare PUB socket sending
    hand-encoded messages, advertising a port nobody listens on)."""
    import socket

    import zmq

    with socket.socket() as s:  # a port with nothing behind it
        s.bind(("127.0.0.1", 0))
        dead = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    store = SQLiteStore(tmp_path / "farm.sqlite")
    listener = Listener(f"tcp://127.0.0.1:{port}", store, ["pass"], request_timeout_s=0.2)

    def send(kind: str, seq: int, body: dict) -> None:
        pub.send_multipart(M.encode("pass" if kind == "pass" else "status", "cam0",
                                    M.encode_header("p", "e1", seq, time.monotonic(),
                                                    time.time(), side=dead), body))

    try:
        with caplog.at_level(logging.WARNING, logger="gaitlive.publish.listen"):
            th = _run_listener(listener)
            status = {"state": "running", "camera_id": "cam0", "model": "", "pass_seq": 0,
                      "published": {}, "queue_drops": 0}
            _until(lambda: (send("status", 1, status), listener.streams)[1], 10, "connected")
            for seq in (1, 3, 6):  # 2, 4 and 5 never arrive
                send("pass", seq, M.pass_body(synthetic_pass(seq - 1, "cam0")))
            _until(lambda: listener.stored == 3, 10, "live passes")
            _until(lambda: "not filled yet" in caplog.text, 10, "a failed catch-up")
            listener.stop_event.set()
            th.join(10)
    finally:
        pub.close(linger=0)
        ctx.term()
        store.close()
    assert listener.open_gaps() == [("p", "e1", 2, 2), ("p", "e1", 4, 5)]
    assert "exit with pass seqs 2..2" in caplog.text and "4..5" in caplog.text
    assert _rows(tmp_path / "farm.sqlite", "SELECT seq FROM scores ORDER BY seq") == [
        (1,), (3,), (6,)]
    # open gaps are not written off as lost: a later run will try again
    assert _rows(tmp_path / "farm.sqlite", "SELECT COUNT(*) FROM gaps") == [(0,)]


def test_publisher_restarted_under_a_new_id_is_another_stream(tmp_path):
    farm = tmp_path / "farm.sqlite"
    s = _settings(tmp_path)
    with Publisher(s, "cam0", publisher_id="old") as pub:
        pub.publish_pass(synthetic_pass(0, "cam0"))
        _until(lambda: pub.stats()["pass_seq"] == 1, 5, "journal")
        store = SQLiteStore(farm)
        listener = Listener(pub.endpoint, store, ["pass"])
        th = _run_listener(listener)
        _until(lambda: listener.stored == 1, 10, "first stream")
    s2 = _settings(tmp_path, endpoint=pub.endpoint, side_channel=pub.side_endpoint)
    try:
        with Publisher(s2, "cam0", publisher_id="new") as pub2:  # same journal file
            for i in (1, 2):
                pub2.publish_pass(synthetic_pass(i, "cam0"))
            _until(lambda: listener.stored == 3, 10, "second stream")
    finally:
        listener.stop_event.set()
        th.join(10)
        store.close()
    assert _rows(farm, "SELECT publisher_id, seq, pass_id FROM scores ORDER BY pass_id") == [
        ("old", 1, 0), ("new", 1, 1), ("new", 2, 2)]
    assert listener.open_gaps() == []


# --------------------------------------------------------------------------------------
# outputs that are not a listener's: refused before anything in them changes
# --------------------------------------------------------------------------------------


def test_listen_refuses_a_csv_that_is_not_its_own_and_leaves_it_unchanged(tmp_path):
    p = tmp_path / "human_scores.csv"
    data = b"video,score\nbarn1,2\nbarn2,3"  # no final line end: must not be "repaired"
    p.write_bytes(data)
    r = subprocess.run([*GAITLIVE, "listen", "--csv", str(p), "--duration", "0.1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gaitlive listen: error: --csv ")  # nothing else
    assert "human_scores.csv" in err[0] and "not a gaitlive listen CSV" in err[0]
    assert ",".join(PASS_COLUMNS) in err[0] and "'video,score'" in err[0]
    assert p.read_bytes() == data  # barn2,3 is still there
    assert sorted(x.name for x in tmp_path.iterdir()) == ["human_scores.csv"]
    # a gap file beside a new listen CSV that is not a listen gap file is not appended to
    gaps = tmp_path / "scores.csv.gaps.csv"
    gaps.write_bytes(b"cow,weight\n7,650\n")
    with pytest.raises(ListenError, match="its gap file .* is not a gaitlive listen gap file"):
        CSVStore(tmp_path / "scores.csv")
    assert gaps.read_bytes() == b"cow,weight\n7,650\n"
    assert not (tmp_path / "scores.csv").exists()


def test_csv_repairs_a_cut_short_last_row_of_its_own_file_and_logs_it(tmp_path, caplog):
    p = tmp_path / "scores.csv"
    store = CSVStore(p)
    msg = M.decode(M.encode("pass", "cam0", M.encode_header("p", "e1", 1, 0.0, 1.0),
                            M.pass_body(synthetic_pass(0, "cam0"))))
    assert store.add_pass(msg)
    store.close()
    whole = p.read_bytes()
    with open(p, "ab") as fh:  # a crash in the middle of the next row
        fh.write(b"p,e1,2,cam0,1.5")
    with caplog.at_level(logging.WARNING, logger="gaitlive.publish.listen"):
        store = CSVStore(p)
    store.close()
    assert p.read_bytes() == whole and store.has("p", "e1", 1)
    assert "removing a last line cut short (15 bytes)" in caplog.text
    # only the header, its line end lost: the header is kept and completed
    q = tmp_path / "header.csv"
    q.write_text(",".join(PASS_COLUMNS))
    CSVStore(q).close()
    assert q.read_text().splitlines() == [",".join(PASS_COLUMNS)]


def _foreign_dbs(tmp_path: Path) -> dict[str, Path]:
    """A publisher journal, another program's database, one with a ``scores`` table of its
    own columns, and a listen database with a table that is not a listener's."""
    out = {}
    s = _settings(tmp_path, journal=str(tmp_path / "gaitlive-journal.sqlite"))
    with Publisher(s, "cam0") as pub:
        for i in range(3):
            pub.publish_pass(synthetic_pass(i, "cam0"))
        _until(lambda: pub.stats()["pass_seq"] == 3, 5, "journal")
    out["journal"] = Path(s.journal)
    for name, sql in (("other", "CREATE TABLE herd (bird TEXT, weight REAL);"
                                "INSERT INTO herd VALUES ('a', 2.5);"),
                      ("scores", "CREATE TABLE scores (video TEXT, score REAL);"
                                 "INSERT INTO scores VALUES ('barn1', 2);")):
        out[name] = tmp_path / f"{name}.sqlite"
        with sqlite3.connect(out[name]) as db:
            db.executescript(sql)
        db.close()
    out["extra"] = tmp_path / "extra.sqlite"
    SQLiteStore(out["extra"]).close()
    with sqlite3.connect(out["extra"]) as db:
        db.execute("CREATE TABLE passes (x)")
    db.close()
    return out


def test_listen_refuses_a_journal_or_another_database_and_leaves_it_byte_identical(tmp_path):
    dbs = _foreign_dbs(tmp_path)
    for kind, p in dbs.items():
        before = p.read_bytes()
        others = {x.name for x in tmp_path.iterdir()}
        r = subprocess.run([*GAITLIVE, "listen", "--sqlite", str(p), "--duration", "0.5"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2, (kind, r.stderr)
        err = r.stderr.strip().splitlines()
        assert len(err) == 1 and "Traceback" not in r.stderr, (kind, r.stderr)
        assert err[0].startswith(f"gaitlive listen: error: --sqlite {p}: not a gaitlive listen "
                                 f"database (it has tables "), (kind, err)
        assert "give a new file or an earlier listen database" in err[0]
        assert p.read_bytes() == before, kind  # no scores/streams/gaps/steps added
        assert {x.name for x in tmp_path.iterdir()} == others, kind  # no -wal/-shm left
    assert "(it has tables passes, streams: no scores table)" in subprocess.run(
        [*GAITLIVE, "listen", "--sqlite", str(dbs["journal"])], capture_output=True,
        text=True, timeout=60).stderr
    with sqlite3.connect(dbs["journal"]) as db:  # the journal is still only a journal
        assert {r[0] for r in db.execute("SELECT name FROM sqlite_master")} >= {"passes"}
        assert not db.execute("SELECT 1 FROM sqlite_master WHERE name='scores'").fetchall()
    db.close()


def test_listen_database_new_empty_or_earlier_is_accepted(tmp_path):
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    earlier = tmp_path / "earlier.sqlite"
    store = SQLiteStore(earlier)
    msg = M.decode(M.encode("pass", "cam0", M.encode_header("p", "e1", 1, 0.0, 1.0),
                            M.pass_body(synthetic_pass(0, "cam0"))))
    store.add_pass(msg)
    store.close()
    for p in (tmp_path / "sub" / "new.sqlite", empty, earlier):
        store = SQLiteStore(p)
        store.close()
        assert _rows(p, "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name") == [
            ("gaps",), ("scores",), ("steps",), ("streams",)]
    assert SQLiteStore(earlier).has("p", "e1", 1)


def test_stored_side_channels_that_are_not_endpoints_cause_no_traceback(tmp_path, caplog):
    # a streams row whose side channel is not text, a number (what a journal's created_wall
    # column gave) or a bad address: skipped or a retried failure, never an exception
    p = tmp_path / "farm.sqlite"
    SQLiteStore(p).close()
    with sqlite3.connect(p) as db:
        db.executemany("INSERT INTO streams VALUES (?, ?, ?, ?)",
                       [("p0", "e0", "cam0", b"\x01\x02"), ("p1", "e1", "cam0", 1712345678.25),
                        ("p2", "e2", "cam0", "garbage")])
    db.close()
    store = SQLiteStore(p)
    assert [s[3] for s in store.known_streams()] == ["", "1712345678.25", "garbage"]
    listener = Listener("tcp://127.0.0.1:1", store, ["pass"], request_timeout_s=0.2)
    with caplog.at_level(logging.WARNING, logger="gaitlive.publish.listen"):
        assert listener.run(0.5) == 0
    store.close()
    assert "expected a ZeroMQ endpoint" in caplog.text and "'garbage'" in caplog.text
    assert "'1712345678.25'" in caplog.text


# --------------------------------------------------------------------------------------
# side channels that cannot be connected to; the CSV gap file; python -m gaitlive
# --------------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_advertised_side_channel_that_cannot_be_connected_to_is_a_retried_failure(
        tmp_path, caplog):
    """A publisher (a bare PUB socket, hand-encoded messages) advertising ``tcp://*:P`` --
    what a bind address in ``publish.advertise`` gave: the listener asks that port on the
    publisher's host, logs the failed catch-up, goes on storing live passes and stops at
    its duration (it used to hang on exit)."""
    import zmq

    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.linger = 0
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    side = f"tcp://*:{_free_port()}"
    store = SQLiteStore(tmp_path / "farm.sqlite")
    listener = Listener(f"tcp://127.0.0.1:{port}", store, ["pass"], request_timeout_s=0.2)
    status = {"state": "running", "camera_id": "cam0", "model": "", "pass_seq": 0,
              "published": {}, "queue_drops": 0}

    def send(kind: str, seq: int, body: dict) -> None:
        pub.send_multipart(M.encode(kind, "cam0", M.encode_header(
            "p", "e1", seq, time.monotonic(), time.time(), side=side), body))

    result: list[int] = []
    th = threading.Thread(target=lambda: result.append(listener.run(3.0)), daemon=True)
    try:
        with caplog.at_level(logging.WARNING, logger="gaitlive.publish.listen"):
            t0 = time.monotonic()
            th.start()
            _until(lambda: (send("status", 1, status), listener.streams)[1], 10, "connected")
            for seq in (1, 3):  # 2 never arrives: a gap to fill from the side channel
                send("pass", seq, M.pass_body(synthetic_pass(seq - 1, "cam0")))
            th.join(15)
            took = time.monotonic() - t0
    finally:
        pub.close(linger=0)
        ctx.term()
        store.close()
    assert not th.is_alive(), "the listener did not stop at its duration (hung on exit)"
    assert result == [0] and took < 10, took
    assert listener.stored == 2 and listener.open_gaps() == [("p", "e1", 2, 2)]
    # 'every interface' is asked on the host the publisher was reached on (nobody there)
    reached = "tcp://127.0.0.1:" + side.rsplit(":", 1)[1]
    assert "not filled yet" in caplog.text and f"side channel {reached}" in caplog.text
    assert "exit with pass seqs 2..2 of p" in caplog.text


def test_listen_cli_side_channel_libzmq_refuses_is_logged_and_duration_is_honoured():
    endpoint = f"tcp://127.0.0.1:{_free_port()}"  # nobody publishes there
    t0 = time.monotonic()
    r = subprocess.run([*GAITLIVE, "listen", endpoint, "--side-channel",
                        f"tcp://bad!host:{_free_port()}", "--duration", "1", "--timeout", "0.2"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert time.monotonic() - t0 < 20
    assert "cannot connect" in r.stderr and "will catch up when the publisher is heard" in r.stderr
    # a bind-only address is refused at once, with one line saying why
    r = subprocess.run([*GAITLIVE, "listen", endpoint, "--side-channel", "tcp://*:5557",
                        "--duration", "2"], capture_output=True, text=True, timeout=30)
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(err) == 1, r.stderr
    assert err[0].startswith("gaitlive listen: error: --side-channel: * means 'every "
                             "interface'") and "'tcp://*:5557'" in err[0]


def test_csv_restarts_record_an_unfillable_gap_once(tmp_path, caplog):
    s = _settings(tmp_path)
    out = tmp_path / "scores.csv"
    gaps = tmp_path / "scores.csv.gaps.csv"
    with Publisher(s, "cam0", publisher_id="p") as pub:
        _journal_six_passes_without_2_and_3(pub, s.journal)
        for run in range(3):  # three starts on the same CSV
            caplog.clear()
            store = CSVStore(out)
            listener = Listener(pub.endpoint, store, ["pass"], side_channel=pub.side_endpoint)
            th = _run_listener(listener)
            try:
                with caplog.at_level(logging.WARNING, logger="gaitlive.publish.listen"):
                    _until(lambda lis=listener: lis.streams and not lis.open_gaps() and all(
                        not st.wants_catchup for st in lis.streams.values()), 10, "catch-up")
            finally:
                listener.stop_event.set()
                th.join(10)
                store.close()
            assert ("pass seqs 2..3 lost" in caplog.text) == (run == 0), (run, caplog.text)
            assert store.covered("p", pub.epoch) == {1, 2, 3, 4, 5, 6}
    with open(gaps, newline="") as fh:
        rows = list(csv.reader(fh))
    assert [r[:5] for r in rows] == [
        ["publisher_id", "epoch", "first_seq", "last_seq", "reason"],
        ["p", pub.epoch, "2", "3", "not in the publisher's journal"]]
    with open(out, newline="") as fh:
        assert [int(r["seq"]) for r in csv.DictReader(fh)] == [1, 4, 5, 6]
    # a gap file with a row that is not one of ours is refused, naming the file and line
    with open(gaps, "a") as fh:
        fh.write("p,e1,two,3,x,1.0\n")
    with pytest.raises(ListenError, match=r"scores.csv.gaps.csv, line 3: expected integer"):
        CSVStore(out)


def test_python_m_gaitlive_runs_the_cli():
    r = subprocess.run([sys.executable, "-m", "gaitlive", "--help"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: gaitlive") and "listen" in r.stdout
    # the CLI's exit status is the process's
    r = subprocess.run([sys.executable, "-m", "gaitlive", "listen", "--duration", "-1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--duration: expected seconds > 0" in r.stderr, r.stderr


def test_listen_duration_bounds_a_side_channel_request_nobody_answers():
    """--duration 2 with --timeout 10 and a side channel nobody answers: the run ends at
    its duration, not after the request's 10 s (the start-up request used to wait them all),
    and the warning names the side channel once."""
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    side = f"tcp://127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    r = subprocess.run([*GAITLIVE, "listen", endpoint, "--side-channel", side,
                        "--duration", "2", "--timeout", "10"],
                       capture_output=True, text=True, timeout=60)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert took < 8.0, (took, r.stderr)  # (interpreter start-up included)
    assert f"side channel {side}: no answer" in r.stderr
    assert f"side channel {side}: side channel" not in r.stderr


@pytest.mark.parametrize("opt", ["--csv", "--sqlite"])
def test_listen_store_in_a_folder_that_cannot_be_one_fails_first(tmp_path, opt):
    """A store path under a file gets one line naming the option before anything is
    opened (it was a raw OS error, or 'not a gaitlive listen database'; walkthrough,
    2026-12-07)."""
    (tmp_path / "notes.txt").write_text("mine")
    r = subprocess.run([*GAITLIVE, "listen", opt, str(tmp_path / "notes.txt" / "s.db"),
                        "--duration", "0.1"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"gaitlive listen: error: {opt} ")
    assert "notes.txt is a file, not a folder" in err[0]
    assert (tmp_path / "notes.txt").read_text() == "mine"

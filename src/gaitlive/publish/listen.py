"""The reference farm-system subscriber behind ``gaitlive listen``: log every pass score once.

A :class:`Listener` subscribes to ``pass`` (and the ``status`` heartbeats) of one or all
cameras and writes each score to a :class:`ScoreStore` -- SQLite (``UNIQUE(publisher_id,
epoch, seq)``), CSV or stdout. It never loses a score:

* **gap** -- a ``pass`` whose ``seq`` skips numbers, or a heartbeat whose ``pass_seq`` is
  ahead of what is stored, makes it ask the publisher's side channel (advertised in the
  header, or ``--side-channel``) for everything after its last contiguous seq (Clone
  pattern); duplicates are recognised by ``(publisher id, epoch, seq)`` and ignored;
* **restart** -- on start it reloads the streams it has stored and asks each one's side
  channel for what came after; with ``--side-channel`` it also asks that publisher which
  streams it has (so even a fresh database fills up with the publisher's whole journal);
* **publisher restart** -- ZeroMQ reconnects the SUB socket by itself; a publisher restarted
  on the same journal continues its sequence (same epoch), one whose journal was recreated
  starts a new epoch at seq 1, logged as a reset and stored as a new stream;
* **unfillable gaps** -- seqs the publisher's journal no longer has are written to the
  ``gaps`` table (and logged); gaps not filled because the side channel does not answer
  are retried with back-off and reported at exit.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import zmq

from gaitlive.fileio import jsonable
from gaitlive.publish import messages as M
from gaitlive.publish.keys import ClientSecurity
from gaitlive.publish.sidechannel import SideChannelClient, SideChannelError
from gaitlive.publish.subscriber import Subscriber, parse_topics

log = logging.getLogger(__name__)

__all__ = ["Listener", "ScoreStore", "SQLiteStore", "CSVStore", "PrintStore", "PASS_COLUMNS",
           "ListenError"]

PASS_COLUMNS = ("publisher_id", "epoch", "seq", "camera_id", "t_wall", "received_wall",
                "individual", "pass_id", "start_frame", "end_frame", "n_steps", "score",
                "score_class", "confidence", "scored", "reason", "model", "features")


#: columns of the unfillable gaps (the ``gaps`` table, ``<file>.gaps.csv``)
GAP_COLUMNS = ("publisher_id", "epoch", "first_seq", "last_seq", "reason", "t_wall")
#: the tables of a listen database and their columns (what :class:`SQLiteStore` creates)
LISTEN_TABLES: dict[str, tuple[str, ...]] = {
    "scores": PASS_COLUMNS,
    "streams": ("publisher_id", "epoch", "camera_id", "side_channel"),
    "gaps": GAP_COLUMNS,
    "steps": ("publisher_id", "epoch", "seq", "camera_id", "t_wall", "individual", "pass_id",
              "foot", "kind", "strike_frame", "lift_frame", "t"),
}


def _csv_header(path: Path) -> tuple[str, ...]:
    """The first row of a CSV file, read only."""
    with open(path, "rb") as fh:
        first = fh.readline(64 * 1024).decode("utf-8", "replace")
    return tuple(next(csv.reader([first]), []))


class ListenError(ValueError):
    """A listener output cannot be opened or is not one of ours."""


def _finite_or_none(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _pass_row(msg: M.Message, received: float) -> dict[str, Any]:
    b = msg.body
    return {"publisher_id": msg.publisher_id, "epoch": msg.epoch, "seq": msg.seq,
            "camera_id": msg.camera_id, "t_wall": msg.header["t_wall"],
            "received_wall": received, "individual": b["individual"], "pass_id": b["pass_id"],
            "start_frame": b["start_frame"], "end_frame": b["end_frame"],
            "n_steps": b["n_steps"], "score": b["score"], "score_class": b["score_class"],
            "confidence": b["confidence"], "scored": bool(b["scored"]), "reason": b["reason"],
            "model": b.get("model", ""),
            "features": json.dumps({k: _finite_or_none(v) for k, v in b["features"].items()},
                                   sort_keys=True)}


# --------------------------------------------------------------------------------------
# Stores
# --------------------------------------------------------------------------------------


class ScoreStore:
    """Where a :class:`Listener` writes. Subclasses implement the storage; this base keeps
    the ``(publisher_id, epoch) -> stored seqs`` index used for de-duplication."""

    def __init__(self) -> None:
        self._seqs: dict[tuple[str, str], set[int]] = {}
        self._gaps: dict[tuple[str, str], set[int]] = {}
        self._cameras: dict[tuple[str, str], str] = {}
        self._sides: dict[tuple[str, str], str] = {}

    def known_streams(self) -> list[tuple[str, str, str, str]]:
        """``(publisher_id, epoch, camera_id, side_channel)`` of every stored stream."""
        keys = set(self._seqs) | set(self._cameras)
        return [(p, e, self._cameras.get((p, e), ""), self._sides.get((p, e), ""))
                for p, e in sorted(keys)]

    def covered(self, pub: str, epoch: str) -> set[int]:
        """Seqs stored or recorded as unfillable gaps for one stream."""
        return self._seqs.get((pub, epoch), set()) | self._gaps.get((pub, epoch), set())

    def has(self, pub: str, epoch: str, seq: int) -> bool:
        """Whether pass ``seq`` of stream ``(pub, epoch)`` is stored."""
        return seq in self._seqs.get((pub, epoch), ())

    def add_pass(self, msg: M.Message) -> bool:
        """Store a pass score; False (nothing written) if it is a duplicate."""
        key = (msg.publisher_id, msg.epoch)
        if msg.seq in self._seqs.get(key, ()):
            return False
        self._write_pass(_pass_row(msg, time.time()))
        self._seqs.setdefault(key, set()).add(msg.seq)
        self._cameras.setdefault(key, msg.camera_id)
        return True

    def note_stream(self, pub: str, epoch: str, camera: str, side: str | None) -> None:
        """Remember a stream and where its side channel is (for catch-up after a restart)."""
        key = (pub, epoch)
        changed = self._cameras.get(key) != camera or (side and self._sides.get(key) != side)
        self._cameras[key] = camera
        if side:
            self._sides[key] = side
        if changed:
            self._write_stream(pub, epoch, camera, self._sides.get(key, ""))

    def add_gap(self, pub: str, epoch: str, first: int, last: int, reason: str) -> None:
        """Record seqs ``first..last`` of a stream as lost for good."""
        self._gaps.setdefault((pub, epoch), set()).update(range(first, last + 1))
        self._write_gap(pub, epoch, first, last, reason)

    def add_other(self, msg: M.Message) -> None:
        """Store (or show) a message of another topic (step, status, pose, frame)."""

    def _write_pass(self, row: dict[str, Any]) -> None:
        raise NotImplementedError

    def _write_stream(self, pub: str, epoch: str, camera: str, side: str) -> None:
        pass

    def _write_gap(self, pub: str, epoch: str, first: int, last: int, reason: str) -> None:
        pass

    def close(self) -> None:
        pass


def _check_store_path(path: Path, option: str) -> None:
    """A :class:`ListenError` naming ``option`` when the store cannot be written at
    ``path`` (a folder, a read-only file, a folder that is a file or cannot be written:
    the store's journal or gap file goes beside it), before anything is opened."""
    from gaitlive.fileio import check_output_file

    try:
        check_output_file(path, f"{option} {path}")
    except ValueError as e:
        raise ListenError(str(e)) from None


class SQLiteStore(ScoreStore):
    """Scores in SQLite (WAL): tables ``scores`` (UNIQUE publisher_id, epoch, seq),
    ``streams``, ``steps`` and ``gaps``. Each score is committed as it arrives."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        _check_store_path(self.path, "--sqlite")
        try:
            self._check_existing()
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise ListenError(f"--sqlite {self.path}: cannot create its folder "
                                  f"{self.path.parent} ({e.strerror or e})") from None
            db = self._db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None,
                                            check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            cols = ", ".join(f"{c} {self._type(c)}" for c in PASS_COLUMNS)
            db.executescript(f"""
                CREATE TABLE IF NOT EXISTS scores ({cols},
                    UNIQUE (publisher_id, epoch, seq));
                CREATE TABLE IF NOT EXISTS streams (publisher_id TEXT, epoch TEXT,
                    camera_id TEXT, side_channel TEXT, PRIMARY KEY (publisher_id, epoch));
                CREATE TABLE IF NOT EXISTS gaps (publisher_id TEXT, epoch TEXT,
                    first_seq INTEGER, last_seq INTEGER, reason TEXT, t_wall REAL);
                CREATE TABLE IF NOT EXISTS steps (publisher_id TEXT, epoch TEXT, seq INTEGER,
                    camera_id TEXT, t_wall REAL, individual INTEGER, pass_id INTEGER,
                    foot TEXT, kind TEXT, strike_frame INTEGER, lift_frame INTEGER, t REAL);
            """)
            for pub, epoch, seq in db.execute("SELECT publisher_id, epoch, seq FROM scores"):
                self._seqs.setdefault((pub, epoch), set()).add(seq)
            for pub, epoch, cam, side in db.execute(
                    "SELECT publisher_id, epoch, camera_id, side_channel FROM streams"):
                self._cameras[(pub, epoch)] = cam if isinstance(cam, str) else ""
                if side and isinstance(side, str):
                    self._sides[(pub, epoch)] = side
            for pub, epoch, a, b in db.execute(
                    "SELECT publisher_id, epoch, first_seq, last_seq FROM gaps"):
                self._gaps.setdefault((pub, epoch), set()).update(range(a, b + 1))
        except sqlite3.DatabaseError as e:
            raise ListenError(f"--sqlite {self.path}: not a gaitlive listen database "
                              f"({e})") from None

    def _check_existing(self) -> None:
        """Raise :class:`ListenError` when ``path`` is a database with tables that are not a
        listen database's (a publisher journal, another program's data): nothing of ours is
        added to it. Opened read-only, so the file is left exactly as it was."""
        if self.path.is_dir():
            raise ListenError(f"--sqlite {self.path}: is a folder (expected a database file)")
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return  # new (or empty) file: ours to create
        # read-only; without a -wal file everything is in the main file, and immutable=1
        # reads it without creating -wal/-shm files beside it
        wal = self.path.with_name(self.path.name + "-wal")
        uri = self.path.resolve().as_uri() + ("?mode=ro" if wal.exists() else
                                              "?mode=ro&immutable=1")
        db = sqlite3.connect(uri, uri=True, timeout=10.0)
        try:
            tables = [r[0] for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                if not r[0].startswith("sqlite_")]
            if not tables:
                return
            others = [t for t in tables if t not in LISTEN_TABLES]
            why = ("no scores table" if "scores" not in tables else
                   f"table {others[0]} is not one of a listen database's" if others else "")
            for name, cols in LISTEN_TABLES.items():
                if why:
                    break
                if name in tables:
                    have = tuple(r[1] for r in db.execute(f"PRAGMA table_info({name})"))
                    if have != cols:
                        why = f"table {name} has columns {','.join(have)}"
        finally:
            db.close()
        if why:
            raise ListenError(f"--sqlite {self.path}: not a gaitlive listen database (it has "
                              f"tables {', '.join(tables)}: {why}); give a new file or an "
                              f"earlier listen database")

    @staticmethod
    def _type(col: str) -> str:
        if col in ("seq", "individual", "pass_id", "start_frame", "end_frame", "n_steps",
                   "score_class", "scored"):
            return "INTEGER"
        if col in ("t_wall", "received_wall", "score", "confidence"):
            return "REAL"
        return "TEXT"

    def _write_pass(self, row: dict[str, Any]) -> None:
        cols = ", ".join(PASS_COLUMNS)
        marks = ", ".join("?" * len(PASS_COLUMNS))
        self._db.execute(f"INSERT OR IGNORE INTO scores ({cols}) VALUES ({marks})",
                         [row[c] for c in PASS_COLUMNS])

    def _write_stream(self, pub: str, epoch: str, camera: str, side: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO streams VALUES (?, ?, ?, ?)",
                         (pub, epoch, camera, side))

    def _write_gap(self, pub: str, epoch: str, first: int, last: int, reason: str) -> None:
        self._db.execute("INSERT INTO gaps VALUES (?, ?, ?, ?, ?, ?)",
                         (pub, epoch, first, last, reason, time.time()))

    def add_other(self, msg: M.Message) -> None:
        if msg.kind == "step":
            b = msg.body
            self._db.execute(
                "INSERT INTO steps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (msg.publisher_id, msg.epoch, msg.seq, msg.camera_id, msg.header["t_wall"],
                 b["individual"], b["pass_id"], b["foot"], b["kind"], b["strike_frame"],
                 b["lift_frame"], b["t"]))

    def close(self) -> None:
        self._db.close()


class CSVStore(ScoreStore):
    """Pass scores appended to a CSV file (one row each, flushed as it arrives).

    Reopening the file reads its rows back (for de-duplication and catch-up); a last line
    cut short by a crash is removed first. Gaps go to ``<file>.gaps.csv``."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        _check_store_path(self.path, "--csv")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ListenError(f"--csv {self.path}: cannot create its folder "
                              f"{self.path.parent} ({e.strerror or e})") from None
        if self.path.is_dir():
            raise ListenError(f"--csv {self.path}: is a folder (expected a CSV file)")
        self._gaps_path = self.path.with_name(self.path.name + ".gaps.csv")
        # before anything is changed: a file that is not ours is left alone
        if self._gaps_path.is_file() and self._gaps_path.stat().st_size > 0 \
                and _csv_header(self._gaps_path) != GAP_COLUMNS:
            raise ListenError(f"--csv {self.path}: its gap file {self._gaps_path} is not a "
                              f"gaitlive listen gap file (expected the columns "
                              f"{','.join(GAP_COLUMNS)}); move it away or give another --csv")
        if self._gaps_path.is_file() and self._gaps_path.stat().st_size > 0:
            self._load_gaps()
        if self.path.exists() and self.path.stat().st_size > 0:
            header = _csv_header(self.path)
            if header != PASS_COLUMNS:
                got = ",".join(header)
                got = got if len(got) <= 120 else got[:117] + "..."
                raise ListenError(f"--csv {self.path}: not a gaitlive listen CSV (expected the "
                                  f"columns {','.join(PASS_COLUMNS)}, got {got!r}); give a new "
                                  f"file or an earlier listen CSV")
            self._repair_tail()
            with open(self.path, newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                for i, row in enumerate(reader, start=2):
                    try:
                        key = (row["publisher_id"], row["epoch"])
                        self._seqs.setdefault(key, set()).add(int(row["seq"]))
                        self._cameras[key] = row["camera_id"]
                    except (TypeError, ValueError):
                        raise ListenError(f"--csv {self.path}: line {i}: bad seq "
                                          f"{row.get('seq')!r}") from None
            self._fh: TextIO = open(self.path, "a", newline="", encoding="utf-8")  # noqa: SIM115
        else:
            self._fh = open(self.path, "w", newline="", encoding="utf-8")  # noqa: SIM115
            csv.writer(self._fh).writerow(PASS_COLUMNS)
            self._fh.flush()
        self._writer = csv.DictWriter(self._fh, PASS_COLUMNS)

    def _load_gaps(self) -> None:
        """Read the seqs recorded as lost in ``<file>.gaps.csv`` back (as
        :class:`SQLiteStore` reads its ``gaps`` table), so a restart does not record them
        again."""
        self._repair_tail(self._gaps_path)
        with open(self._gaps_path, newline="", encoding="utf-8") as fh:
            for i, row in enumerate(csv.DictReader(fh), start=2):
                try:
                    first, last = int(row["first_seq"]), int(row["last_seq"])
                    key = (row["publisher_id"], row["epoch"])
                except (TypeError, ValueError):
                    raise ListenError(f"--csv {self.path}: its gap file {self._gaps_path}, "
                                      f"line {i}: expected integer first_seq and last_seq, "
                                      f"got {row.get('first_seq')!r}, "
                                      f"{row.get('last_seq')!r}") from None
                self._gaps.setdefault(key, set()).update(range(first, last + 1))

    def _repair_tail(self, path: Path | None = None) -> None:
        """Remove a last line cut short by a crash in the middle of a row (a listen CSV's
        rows, and its gap file's, always end with a line end); the header line is kept."""
        path = path or self.path
        with open(path, "rb+") as fh:
            data = fh.read()
            if not data or data.endswith(b"\n"):
                return
            header_end = data.find(b"\n") + 1
            if header_end == 0:  # only the header, its line end lost
                log.warning("%s: adding the line end missing after the header", path)
                fh.write(b"\r\n")
                return
            cut = data.rfind(b"\n") + 1
            log.warning("%s: removing a last line cut short (%d bytes)", path,
                        len(data) - cut)
            fh.truncate(cut)

    def _write_pass(self, row: dict[str, Any]) -> None:
        self._writer.writerow(row)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def _write_gap(self, pub: str, epoch: str, first: int, last: int, reason: str) -> None:
        new = not self._gaps_path.exists()
        with open(self._gaps_path, "a", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            if new:
                w.writerow(GAP_COLUMNS)
            w.writerow((pub, epoch, first, last, reason, time.time()))

    def close(self) -> None:
        self._fh.close()


class PrintStore(ScoreStore):
    """Every message as one JSON line on stdout (passes de-duplicated in memory)."""

    def __init__(self, out: TextIO | None = None) -> None:
        super().__init__()
        self.out = out or sys.stdout

    def _emit(self, obj: dict[str, Any]) -> None:
        self.out.write(json.dumps(jsonable(obj), allow_nan=False) + "\n")
        self.out.flush()

    def _write_pass(self, row: dict[str, Any]) -> None:
        self._emit({"topic": "pass", **row, "features": json.loads(row["features"])})

    def _write_gap(self, pub: str, epoch: str, first: int, last: int, reason: str) -> None:
        self._emit({"topic": "gap", "publisher_id": pub, "epoch": epoch, "first_seq": first,
                    "last_seq": last, "reason": reason})

    def add_other(self, msg: M.Message) -> None:
        body = dict(msg.body)
        if msg.kind == "pose":
            body["poses"] = msg.poses().tolist()
        elif msg.kind == "frame":
            body["jpeg"] = len(body["jpeg"])
        self._emit({"topic": msg.kind, "camera_id": msg.camera_id,
                    "publisher_id": msg.publisher_id, "seq": msg.seq, **body})


# --------------------------------------------------------------------------------------
# Listener
# --------------------------------------------------------------------------------------


@dataclass
class _Stream:
    pub: str
    epoch: str
    camera: str
    side: str = ""
    have: int = 0  # every seq <= have is stored (or recorded as an unfillable gap)
    target: int = 0  # highest seq known to exist
    ahead: set[int] = field(default_factory=set)
    probe: bool = False  # ask the side channel even without a known gap
    next_try: float = 0.0
    backoff: float = 0.25
    failing: str = ""

    def advance(self) -> None:
        while self.have + 1 in self.ahead:
            self.have += 1
            self.ahead.discard(self.have)

    @property
    def wants_catchup(self) -> bool:
        return self.probe or self.target > self.have

    def missing(self) -> list[tuple[int, int]]:
        """Runs ``(first, last)`` of seqs up to ``target`` that are not stored."""
        out: list[tuple[int, int]] = []
        first = None
        for seq in range(self.have + 1, self.target + 2):
            if seq <= self.target and seq not in self.ahead:
                first = seq if first is None else first
            elif first is not None:
                out.append((first, seq - 1))
                first = None
        return out


class Listener:
    """Subscribe, store every pass score once, fill gaps from the side channels.

    Parameters
    ----------
    endpoint
        Publisher (or relay backend) PUB endpoint.
    store
        Where scores go.
    topics
        Topics to store/show; ``status`` heartbeats are always received when ``pass`` is.
    camera
        Only this camera id (None: all).
    side_channel
        Side channel to use when a publisher advertises none, and to ask at start which
        streams exist.
    security
        CURVE client settings (used for the SUB and side-channel sockets).
    request_timeout_s
        How long one side-channel request waits.
    rcvhwm
        Receive high-water mark of the SUB socket (messages).
    """

    def __init__(self, endpoint: str, store: ScoreStore, topics: Iterable[str] = ("pass",),
                 camera: str | None = None, side_channel: str | None = None, *,
                 security: ClientSecurity | None = None, request_timeout_s: float = 2.0,
                 rcvhwm: int = 10000) -> None:
        self.endpoint = endpoint
        self.store = store
        self.topics = parse_topics(topics)
        self.camera = M.validate_camera_id(camera) if camera else None
        self.side_channel = side_channel
        self.security = security
        self.request_timeout_s = request_timeout_s
        self.rcvhwm = rcvhwm
        self.subscriber: Subscriber | None = None
        self.streams: dict[tuple[str, str], _Stream] = {}
        self._epoch_of: dict[str, str] = {}
        self._clients: dict[str, SideChannelClient] = {}
        self.stored = 0
        self.duplicates = 0
        self.caught_up = 0
        self.stop_event = threading.Event()

    # ---------------------------------------------------------------- streams
    def _stream(self, pub: str, epoch: str, camera: str, quiet: bool = False) -> _Stream:
        st = self.streams.get((pub, epoch))
        if st is None:
            old = self._epoch_of.get(pub)
            if old is not None and old != epoch and not quiet:
                log.warning("publisher %s restarted with a new journal (epoch %s -> %s): its "
                            "sequence starts again at 1", pub, old, epoch)
            st = _Stream(pub, epoch, camera)
            covered = self.store.covered(pub, epoch)
            st.ahead = set(covered)
            st.advance()
            st.target = max(covered, default=0)
            self.streams[(pub, epoch)] = st
        self._epoch_of[pub] = epoch
        return st

    def _learn_side(self, st: _Stream, msg: M.Message) -> bool:
        """Take the side channel a message advertises, as this listener can reach it;
        whether it is new for the stream."""
        side = M.connectable(msg.side_channel, self.endpoint) if msg.side_channel else None
        if side and side != st.side:
            st.side = side
            return True
        return False

    def _handle_pass(self, msg: M.Message, via: str) -> None:
        st = self._stream(msg.publisher_id, msg.epoch, msg.camera_id)
        self._learn_side(st, msg)
        self.store.note_stream(st.pub, st.epoch, st.camera, st.side)
        if self.store.add_pass(msg):
            self.stored += 1
            if via == "catch-up":
                self.caught_up += 1
            score = msg.body.get("score")
            log.info("pass %s #%d (%s) %s", msg.publisher_id, msg.seq, via,
                     f"score {score:.2f}" if isinstance(score, (int, float))
                     else f"not scored ({msg.body.get('reason') or 'no score'})")
        else:
            self.duplicates += 1
        st.target = max(st.target, msg.seq)
        if msg.seq > st.have:
            st.ahead.add(msg.seq)
            st.advance()

    def _handle_status(self, msg: M.Message) -> None:
        st = self._stream(msg.publisher_id, msg.epoch, msg.camera_id)
        if self._learn_side(st, msg):
            self.store.note_stream(st.pub, st.epoch, st.camera, st.side)
        seq = msg.body.get("pass_seq", 0)
        if isinstance(seq, int) and seq > st.target:
            st.target = seq

    def handle(self, msg: M.Message) -> None:
        """Process one received message."""
        if msg.kind == "pass":
            if "pass" in self.topics:
                self._handle_pass(msg, "live")
            return
        if msg.kind == "status" and "pass" in self.topics:
            self._handle_status(msg)
        if msg.kind in self.topics:
            self.store.add_other(msg)

    # ---------------------------------------------------------------- catch-up
    def _client(self, endpoint: str) -> SideChannelClient:
        c = self._clients.get(endpoint)
        if c is None:
            try:  # a bad address (a stored or advertised one) is a failed request, retried
                M.validate_endpoint(endpoint, "side channel", wildcard=False)
            except (M.MessageError, TypeError, AttributeError) as e:
                raise SideChannelError(str(e) if isinstance(e, M.MessageError) else
                                       f"side channel: expected an endpoint, got "
                                       f"{endpoint!r}") from None
            c = self._clients[endpoint] = SideChannelClient(
                endpoint, self._ctx, security=self.security, timeout_s=self.request_timeout_s)
        return c

    def _discover(self) -> None:
        """Ask ``side_channel`` which streams its journal has (start-up catch-up)."""
        if not self.side_channel:
            return
        try:
            streams = self._client(self.side_channel).hello()
        except SideChannelError as e:
            log.warning("%s (will catch up when the publisher is heard)", e)
            return
        for s in streams:
            if self.camera and s["camera"] != self.camera:
                continue
            st = self._stream(s["pub"], s["epoch"], s["camera"])
            st.side = st.side or self.side_channel
            st.target = max(st.target, int(s["last_seq"]))

    def catch_up(self, st: _Stream) -> bool:
        """Fetch what ``st`` misses from its side channel; False if it did not answer."""
        endpoint = st.side or self.side_channel
        now = time.monotonic()
        if not endpoint:
            if st.failing != "no side channel":
                log.warning("publisher %s: seqs %d..%d missing and no side channel known yet "
                            "(waiting for its heartbeat, or pass --side-channel)", st.pub,
                            st.have + 1, st.target)
                st.failing = "no side channel"
            st.next_try = now + 1.0
            return False
        first_missing = st.have + 1
        try:
            for status, msgs in self._client(endpoint).since(st.pub, st.have, epoch=st.epoch,
                                                             camera=self.camera):
                if status["reset"] and status["epoch"] != st.epoch:
                    if st.target > st.have:
                        log.warning("publisher %s: journal epoch %s is gone (now %s); seqs "
                                    "%d..%d of the old epoch cannot be recovered", st.pub,
                                    st.epoch, status["epoch"], st.have + 1, st.target)
                        for a, b in st.missing():
                            self._record_gap(st, a, b, "publisher journal was recreated")
                    else:
                        log.info("publisher %s: epoch %s (complete) was followed by epoch %s",
                                 st.pub, st.epoch, status["epoch"])
                    st.probe = False
                    st.have = st.target
                    new = self._stream(st.pub, status["epoch"], st.camera, quiet=True)
                    new.side = new.side or endpoint
                    st = new
                for m in msgs:
                    self._handle_pass(m, "catch-up")
                st.target = max(st.target, int(status["last_seq"]))
        except SideChannelError as e:
            st.next_try = now + st.backoff
            st.backoff = min(st.backoff * 2, 30.0)
            if st.failing != str(e):
                if st.target >= first_missing:
                    log.warning("publisher %s: seqs %d..%d not filled yet: %s (retrying)",
                                st.pub, first_missing, st.target, e)
                else:
                    log.warning("publisher %s: cannot check for scores missed after seq %d: "
                                "%s (retrying)", st.pub, st.have, e)
                st.failing = str(e)
            return False
        except M.MessageError as e:
            st.next_try = now + 5.0
            log.warning("publisher %s: bad side-channel reply: %s", st.pub, e)
            return False
        if st.failing:
            log.info("publisher %s: side channel %s answers again", st.pub, endpoint)
        st.failing, st.backoff, st.probe = "", 0.25, False
        if st.have < st.target:  # the journal does not have them: lost for good
            for a, b in st.missing():
                self._record_gap(st, a, b, "not in the publisher's journal")
            st.ahead.update(range(st.have + 1, st.target + 1))
            st.advance()
        return True

    def _record_gap(self, st: _Stream, first: int, last: int, reason: str) -> None:
        log.warning("publisher %s epoch %s: pass seqs %d..%d lost (%s)", st.pub, st.epoch,
                    first, last, reason)
        self.store.add_gap(st.pub, st.epoch, first, last, reason)

    def open_gaps(self) -> list[tuple[str, str, int, int]]:
        """``(publisher, epoch, first, last)`` of each run of pass seqs not (yet) filled."""
        return [(s.pub, s.epoch, a, b) for s in self.streams.values() for a, b in s.missing()]

    # ---------------------------------------------------------------- main loop
    def run(self, duration_s: float | None = None) -> int:
        """Listen until :attr:`stop_event` is set (or ``duration_s`` passed)."""
        wanted = set(self.topics) | ({"status"} if "pass" in self.topics else set())
        self._ctx = zmq.Context()
        try:
            sub = Subscriber(self.endpoint, [t for t in M.TOPICS if t in wanted], self.camera,
                             security=self.security, ctx=self._ctx, max_lag_s=5.0,
                             rcvhwm=self.rcvhwm)
        except BaseException:
            self._ctx.destroy(linger=0)
            raise
        self.subscriber = sub
        end = None if duration_s is None else time.monotonic() + duration_s
        if duration_s is not None and duration_s < self.request_timeout_s:
            # no side-channel request may outlast the run (a dead one waits its timeout)
            self.request_timeout_s = max(duration_s, 0.1)
        log.info("listening to %s (topics %s, camera %s)", self.endpoint, ",".join(self.topics),
                 self.camera or "all")
        silent_warned = False
        t_start = time.monotonic()
        try:
            if "pass" in self.topics:
                for pub, epoch, camera, side in self.store.known_streams():
                    if self.camera and camera and camera != self.camera:
                        continue
                    st = self._stream(pub, epoch, camera, quiet=True)
                    st.side = side or st.side
                    st.probe = True  # ask what came after, even without a visible gap
                self._discover()
            while not self.stop_event.is_set():
                if end is not None and time.monotonic() >= end:
                    break
                if sub.socket.poll(100):
                    for _ in range(1000):
                        try:
                            frames = sub.socket.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        msg = sub.decode(frames)
                        if msg is None:
                            continue
                        try:
                            self.handle(msg)
                        except (OSError, sqlite3.Error) as e:
                            # not marked as stored: the next catch-up fetches it again
                            log.error("could not store %s #%d of %s: %s", msg.kind, msg.seq,
                                      msg.publisher_id, e)
                now = time.monotonic()
                if not silent_warned and not sub.received and now - t_start > 5.0:
                    why = sub.handshake_problem()
                    if why:
                        log.error("nothing received from %s in 5 s: %s", self.endpoint, why)
                    else:
                        log.warning("nothing received from %s in 5 s: is a publisher running "
                                    "there (or a relay, with publishers connected)?",
                                    self.endpoint)
                    silent_warned = True
                for st in list(self.streams.values()):
                    if st.wants_catchup and now >= st.next_try:
                        try:
                            self.catch_up(st)
                        except (OSError, sqlite3.Error) as e:
                            st.next_try = now + 1.0
                            log.error("could not store caught-up passes of %s: %s", st.pub, e)
        finally:
            for c in self._clients.values():
                c.close()
            self._clients.clear()
            sub.close()
            # closes any socket still open too: term() would wait for it forever
            self._ctx.destroy(linger=0)
        for pub, epoch, a, b in self.open_gaps():
            log.warning("exit with pass seqs %d..%d of %s (epoch %s) not filled", a, b, pub,
                        epoch)
        lost = ", ".join(f"{n} {k}" for k, n in sub.lost.items() if n and k != "pass")
        log.info("listen: %d scores stored (%d by catch-up), %d duplicates ignored, "
                 "%d malformed messages%s", self.stored, self.caught_up, self.duplicates,
                 sub.malformed, f", lost at the high-water mark: {lost}" if lost else "")
        return 0

"""The publisher's pass-score journal: SQLite in WAL mode, written before publishing.

Every pass score is appended here (one committed transaction, ``synchronous=FULL``) before
it is sent on the PUB socket, and the journal assigns its sequence number. The side channel
(:mod:`gaitlive.publish.sidechannel`) serves missed scores from it, so a subscriber that
was down, slow or late can always get every score back.

A journal file can hold several *streams*, one per publisher id (e.g. two cameras writing
to the same file). Each stream has an ``epoch``: a random id made when the stream is first
written. A publisher restarted on the same journal keeps its epoch and continues its
sequence; a deleted journal starts a new epoch at sequence 1, which subscribers recognise
as a reset.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["Journal", "JournalEntry", "JournalError", "StreamInfo"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS streams (
    publisher_id TEXT PRIMARY KEY,
    epoch TEXT NOT NULL,
    camera_id TEXT NOT NULL,
    created_wall REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS passes (
    publisher_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    camera_id TEXT NOT NULL,
    t_mono REAL NOT NULL,
    t_wall REAL NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (publisher_id, seq)
) WITHOUT ROWID;
"""


class JournalError(ValueError):
    """The journal file cannot be opened or is not a gaitlive journal."""


@dataclass(frozen=True)
class JournalEntry:
    """One journaled pass: its sequence number, times and the msgpack body as published."""

    seq: int
    camera_id: str
    t_mono: float
    t_wall: float
    body: bytes


@dataclass(frozen=True)
class StreamInfo:
    """A publisher stream in a journal."""

    publisher_id: str
    epoch: str
    camera_id: str
    last_seq: int


class Journal:
    """A pass-score journal (SQLite, WAL mode).

    Parameters
    ----------
    path
        The SQLite file; created (with its folder) when missing.
    readonly
        Open for reading only (the side channel's connection). A missing file then raises
        :class:`JournalError`.

    Notes
    -----
    A :class:`Journal` object is used by one thread at a time (it may be handed to another
    thread, e.g. the publisher's); other threads open their own (WAL lets readers run beside
    the writer).
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        try:
            if readonly:
                if not self.path.is_file():
                    raise JournalError(f"{self.path}: journal not found")
                self._db = sqlite3.connect(Path(self.path).resolve().as_uri() + "?mode=ro",
                                           uri=True,
                                           timeout=10.0, isolation_level=None,
                                           check_same_thread=False)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None,
                                           check_same_thread=False)
                mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if mode.lower() != "wal":
                    raise JournalError(f"{self.path}: could not switch to WAL mode (got {mode})")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.executescript(_SCHEMA)
            self._db.execute("SELECT publisher_id, epoch FROM streams LIMIT 1").fetchall()
        except sqlite3.DatabaseError as e:
            raise JournalError(f"{self.path}: not a gaitlive journal ({e})") from None

    # ---------------------------------------------------------------- streams
    def stream(self, publisher_id: str, camera_id: str) -> StreamInfo:
        """The stream of ``publisher_id``, created with a new epoch when absent."""
        row = self._db.execute("SELECT epoch, camera_id FROM streams WHERE publisher_id=?",
                               (publisher_id,)).fetchone()
        if row is None:
            if self.readonly:
                raise JournalError(f"{self.path}: no stream for publisher {publisher_id!r}")
            epoch = secrets.token_hex(8)
            self._db.execute("INSERT INTO streams VALUES (?, ?, ?, ?)",
                             (publisher_id, epoch, camera_id, time.time()))
            log.info("journal %s: new stream %s epoch %s", self.path, publisher_id, epoch)
            return StreamInfo(publisher_id, epoch, camera_id, 0)
        return StreamInfo(publisher_id, row[0], row[1], self.last_seq(publisher_id))

    def streams(self) -> list[StreamInfo]:
        """Every stream in the journal with its last sequence number."""
        rows = self._db.execute(
            "SELECT s.publisher_id, s.epoch, s.camera_id, COALESCE(MAX(p.seq), 0) "
            "FROM streams s LEFT JOIN passes p ON p.publisher_id = s.publisher_id "
            "GROUP BY s.publisher_id ORDER BY s.publisher_id").fetchall()
        return [StreamInfo(*r) for r in rows]

    def last_seq(self, publisher_id: str) -> int:
        """The highest sequence number journaled for ``publisher_id`` (0 when none)."""
        row = self._db.execute("SELECT MAX(seq) FROM passes WHERE publisher_id=?",
                               (publisher_id,)).fetchone()
        return int(row[0] or 0)

    # ---------------------------------------------------------------- write / read
    def append(self, publisher_id: str, camera_id: str, body: bytes, t_mono: float,
               t_wall: float) -> int:
        """Journal one pass body and return its sequence number (committed on return)."""
        if self.readonly:
            raise JournalError(f"{self.path}: opened read-only")
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT MAX(seq) FROM passes WHERE publisher_id=?",
                             (publisher_id,)).fetchone()
            seq = int(row[0] or 0) + 1
            db.execute("INSERT INTO passes VALUES (?, ?, ?, ?, ?, ?)",
                       (publisher_id, seq, camera_id, float(t_mono), float(t_wall),
                        sqlite3.Binary(body)))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return seq

    def since(self, publisher_id: str, after: int, limit: int = 1000,
              camera_id: str | None = None) -> list[JournalEntry]:
        """Journaled passes of ``publisher_id`` with ``seq > after``, oldest first."""
        sql = ("SELECT seq, camera_id, t_mono, t_wall, body FROM passes "
               "WHERE publisher_id=? AND seq>?")
        params: list[object] = [publisher_id, int(after)]
        if camera_id is not None:
            sql += " AND camera_id=?"
            params.append(camera_id)
        sql += " ORDER BY seq LIMIT ?"
        params.append(int(limit))
        return [JournalEntry(r[0], r[1], r[2], r[3], bytes(r[4]))
                for r in self._db.execute(sql, params)]

    def count(self, publisher_id: str | None = None) -> int:
        """Number of journaled passes (of one publisher, or all)."""
        if publisher_id is None:
            return int(self._db.execute("SELECT COUNT(*) FROM passes").fetchone()[0])
        return int(self._db.execute("SELECT COUNT(*) FROM passes WHERE publisher_id=?",
                                    (publisher_id,)).fetchone()[0])

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` ("ok" for an intact file)."""
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

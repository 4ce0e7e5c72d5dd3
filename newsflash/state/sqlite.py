"""One SQLite file (WAL) shared by threads and processes: a connection per thread, explicit
transactions, and a schema that refuses to be read by an older newsflash.

`newsflash serve` answers from uvicorn's thread pool while a send reads the same file from
another process; sqlite3 connections must not cross threads, so each thread opens its own.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from newsflash.errors import NewsflashError

__all__ = ["StateError", "WalDatabase", "enable_wal"]


class StateError(NewsflashError):
    """A state file cannot be opened: written by a newer newsflash, or not a database."""


def _busy(e: sqlite3.Error) -> bool:
    """Another connection holds the lock: worth waiting for, never a reason to move a file."""
    return e.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def enable_wal(conn: sqlite3.Connection, attempts: int = 100) -> None:
    """Switch to WAL, waiting out a second process that creates the same file right now.

    Changing the journal mode needs an exclusive lock and SQLite does not call its busy
    handler for it, so "database is locked" comes back at once; a short bounded retry is the
    documented remedy.
    """
    for attempt in range(attempts):
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if not _busy(e) or attempt == attempts - 1:
                raise
            time.sleep(0.05 + random.random() * 0.05)


class WalDatabase:
    """A SQLite file with one schema, opened lazily once per thread.

    synchronous=FULL: an unsubscribe or a stored event is answered only once it is on disk,
    and SendGrid does not resend a batch it saw answered 2xx.
    """

    def __init__(
        self,
        path: Path,
        schema: str,
        version: int,
        *,
        foreign_keys: bool = False,
        error: type[NewsflashError] = StateError,
        if_damaged: str = "move it aside and start again, or restore it from a backup",
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self._read_only = read_only
        self._if_damaged = if_damaged
        self._schema = schema
        self._version = version
        self._foreign_keys = foreign_keys
        self._error = error
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._writer = threading.Lock()
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.connection()  # create the file and its tables now, so errors surface at start

    def _open(self) -> sqlite3.Connection:
        # mode=ro: a reader that must not move the file's mtime nor wait on a writer's lock.
        ro = self._read_only
        where = f"{self.path.resolve().as_uri()}?mode=ro" if ro else str(self.path)
        try:
            conn = sqlite3.connect(
                where, timeout=10.0, isolation_level=None, check_same_thread=False, uri=ro
            )
        except sqlite3.DatabaseError as e:  # read-only: the file is not there
            raise self._unopenable(e) from e
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            if self._read_only:
                self._check_version(conn, exact=True)
            else:
                self._prepare(conn)
        except sqlite3.DatabaseError as e:
            conn.close()
            if _busy(e):
                raise self._error(
                    f"{self.path} is busy: another newsflash process has held it for over 10 s "
                    f"({e}); wait for it to finish and run this again"
                ) from e
            raise self._unopenable(e) from e
        except BaseException:
            conn.close()
            raise
        return conn

    def _unopenable(self, e: sqlite3.DatabaseError) -> NewsflashError:
        return self._error(
            f"{self.path}: cannot open it as a SQLite database ({e}); {self._if_damaged}"
        )

    def _prepare(self, conn: sqlite3.Connection) -> None:
        enable_wal(conn)
        # FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on power loss, and
        # losing the ledger's "in flight" commit after its request left invites a double send.
        conn.execute("PRAGMA synchronous = FULL")
        if self._foreign_keys:
            conn.execute("PRAGMA foreign_keys = ON")
        self._check_version(conn, exact=False)
        # One script, one transaction: executescript() would commit a BEGIN issued before it.
        conn.executescript(
            f"BEGIN IMMEDIATE; {self._schema} PRAGMA user_version = {self._version}; COMMIT;"
        )

    def _check_version(self, conn: sqlite3.Connection, *, exact: bool) -> None:
        """A newer schema is refused; a read-only open also refuses an older one, which only a
        writer may bring up to date (its tables may lack what this newsflash reads)."""
        found = conn.execute("PRAGMA user_version").fetchone()[0]
        if found > self._version:
            raise self._error(
                f"{self.path} was written by a newer newsflash (schema {found}, this one "
                f"knows {self._version}); upgrade newsflash"
            )
        if exact and found < self._version:
            raise self._error(
                f"{self.path} has schema {found}, older than this newsflash's {self._version}; "
                "a command that writes it (a build or a send) brings it up to date"
            )

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (autocommit: every transaction is an explicit BEGIN)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            with self._guard:
                self._all.append(conn)
        return conn

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """IMMEDIATE takes the write lock up front, so a check and the write it guards agree.

        Threads of one process queue on a lock first: SQLite's busy handler would make them
        poll with sleeps of up to 100 ms, which is what a p99 measures. Other processes still
        meet at SQLite's own lock.
        """
        conn = self.connection()
        with self._writer:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            if conn.in_transaction:
                conn.execute("COMMIT")

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """One snapshot, so the rows of one answer agree with each other."""
        conn = self.connection()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    def close(self) -> None:
        with self._guard:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

"""A partner list's accepted rows, merged by address in a private SQLite scratch database.

Why SQLite and not a dict: a million partners held as Python objects (a dict of the merge,
then the audience's tuples) peaked at 585 MB. Here each row goes into a database that lives in
a temporary file SQLite deletes itself (`sqlite3.connect("")`: unlinked as it opens, so even a
SIGKILL leaves nothing behind), with a page cache of a few MB, so a list of any length is read
and kept in flat memory. It is not the ledger (no schema to migrate, no second writer, nothing
another process sees) nor a scratch file under state/ (which a kill would leave to clean up).

Every accepted row goes into `people` as it is read, so the reader keeps no per-partner
structure; after the last row one index on the address finds each address that stands on
several rows, and their later rows are folded into the first, in Python, by the one merge
rule (`merge`), which also words the warnings.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from newsflash.subscriber_list import (
    DEFAULT_LANGUAGE,
    STATUS_WEIGHT,
    Recipient,
    SubscriberList,
    SubscriberProblem,
    split_segments,
)

__all__ = ["Roster", "Row", "segment_text"]

Row = tuple[int, str, str, str, str, str, str, str, str]
"""(line, key, email, first_name, last_name, organisation, segments, status, language as
written, '' when blank): one accepted row, as the reader hands it over."""

_COLUMNS = "line, key, email, first, last, org, segments, status, language"
# No index while the rows go in: a unique index on a million addresses in list order (random
# to a b-tree) missed SQLite's page cache on most rows (40 s at 1M); one sort at the end is
# a few seconds. `why` is the audience's (see `choose`).
_SCHEMA = """
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -8000;
CREATE TABLE people (line INTEGER PRIMARY KEY, key TEXT NOT NULL, email TEXT NOT NULL,
  first TEXT, last TEXT, org TEXT, segments TEXT, status TEXT, language TEXT, why TEXT);
"""
_CHUNK = 4096  # rows handed to SQLite at once: one executemany, a few hundred KB
_IN = "(SELECT value FROM json_each(?))"  # any number of keys as one parameter


@functools.lru_cache(maxsize=4096)
def segment_text(raw: str) -> str:
    """A segments cell as the roster stores it, each name between spaces (" a wg1 "), so
    membership is one `instr` and a merge is a set union; cached like split_segments."""
    return _between_spaces(split_segments(raw))


def _between_spaces(names: frozenset[str]) -> str:
    return f" {' '.join(sorted(names))} " if names else ""


class Roster:
    """The list read: its merged partners in SQLite, with its problems and held addresses."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: tuple[SubscriberProblem, ...] = ()
        self.held: frozenset[str] = frozenset()
        self._db = sqlite3.connect("", check_same_thread=False)  # one thread at a time
        self._db.executescript(_SCHEMA)
        self._pending: list[Row] = []

    def close(self) -> None:
        self._db.close()  # and SQLite deletes its file

    def __enter__(self) -> Roster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, row: Row) -> None:
        self._pending.append(row)
        if len(self._pending) >= _CHUNK:
            self._flush()

    def _flush(self) -> None:
        self._db.executemany(
            f"INSERT INTO people ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)", self._pending
        )
        self._pending.clear()

    def merge(self) -> list[SubscriberProblem]:
        """Fold each later row of an address into its first, which stays alone on the
        roster; the warnings, by line."""
        self._flush()
        self._db.execute("CREATE INDEX people_by_key ON people (key, line)")
        warnings: list[SubscriberProblem] = []
        merged: list[tuple[str, str, str, str, str, str, int]] = []
        gone: list[tuple[int]] = []
        key, kept, blank = "", None, False  # the address being merged, so far
        query = (
            f"SELECT {_COLUMNS} FROM people WHERE key IN "
            "(SELECT key FROM people GROUP BY key HAVING count(*) > 1) ORDER BY key, line"
        )
        for row in self._db.execute(query):
            if kept is None or row[1] != key:
                if kept is not None:
                    merged.append(_stored(kept))
                key, kept, blank = str(row[1]), _recipient(row), not row[8]
                continue
            later, given = _recipient(row), bool(row[8])
            kept, note = merge(kept, later, blank and given)
            blank = blank and not given
            warnings.append(SubscriberProblem(self.path, later.line, note, "warning"))
            gone.append((later.line,))
        if kept is not None:
            merged.append(_stored(kept))
        self._db.executemany(
            "UPDATE people SET first = ?, last = ?, org = ?, segments = ?, status = ?, "
            "language = ? WHERE line = ?",
            merged,
        )
        self._db.executemany("DELETE FROM people WHERE line = ?", gone)
        warnings.sort(key=lambda p: p.line or 0)
        return warnings

    def present(self, keys: Iterable[str]) -> frozenset[str]:
        """Which of these lowercased addresses stand on an accepted row."""
        found = self._db.execute(f"SELECT key FROM people WHERE key IN {_IN}", (_json(keys),))
        return frozenset(k for (k,) in found)

    def first_row(self, key: str) -> tuple[int, str]:
        """The line and address of the row an address was merged into."""
        line, email = self._db.execute(
            "SELECT line, email FROM people WHERE key = ?", (key,)
        ).fetchone()
        return int(line), str(email)

    def recipients(self) -> Iterator[Recipient]:
        """Everyone on the list, merged, in list order."""
        for row in self._db.execute(f"SELECT {_COLUMNS} FROM people ORDER BY line"):
            yield _recipient(row)

    def to_list(self) -> SubscriberList:
        """The whole list as Python objects, for the commands that show or count it."""
        return SubscriberList(self.path, tuple(self.recipients()), self.problems, self.held)

    # The send's audience (sending/audience.py): `why` is NULL for a partner it mails, else
    # the reason they are left out (their status, or a suppression).

    def choose(self, wanted: frozenset[str]) -> None:
        """The one audience rule, as SubscriberList.audience: subscribed, not held, in a
        segment asked for (none asked: every segment)."""
        names = sorted(wanted)
        in_segment = " OR ".join(["instr(segments, ?) > 0"] * len(names)) or "1"
        self._db.execute(
            f"UPDATE people SET why = CASE WHEN status = 'subscribed' AND key NOT IN {_IN} "
            f"AND ({in_segment}) THEN NULL ELSE status END",
            (_json(self.held), *(f" {n} " for n in names)),
        )

    def leave_out(self, keys: Iterable[str], why: str) -> int:
        """Take these lowercased addresses out of the audience, saying why; how many left."""
        cursor = self._db.execute(
            f"UPDATE people SET why = ? WHERE why IS NULL AND key IN {_IN}", (why, _json(keys))
        )
        return cursor.rowcount

    def audience_size(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM people WHERE why IS NULL").fetchone()[0])

    def audience_keys(self, chunk: int) -> Iterator[list[str]]:
        """The audience's addresses, lowercased, `chunk` at a time; each chunk a query of its
        own, so the caller may take some out of the audience between chunks."""
        after = -1
        while rows := self._db.execute(
            "SELECT line, key FROM people WHERE why IS NULL AND line > ? ORDER BY line LIMIT ?",
            (after, chunk),
        ).fetchall():
            after = rows[-1][0]
            yield [k for _, k in rows]

    def audience(self) -> Iterator[str]:
        """The audience's addresses as the list writes them, in list order."""
        return (e for e, _ in self.audience_organisations())

    def audience_organisations(self) -> Iterator[tuple[str, str]]:
        """The audience's addresses, each with its (merged, cleaned) organisation: what the
        ledger freezes for the report to count by."""
        query = "SELECT email, org FROM people WHERE why IS NULL ORDER BY line"
        return iter(self._db.execute(query))

    def names(self, keys: Sequence[str]) -> dict[str, tuple[str, str, str]]:
        """(address, first name, last name) of those of these keys in the audience: one
        query for a batch, its rows fetched as one row of JSON. sqlite3 lets go of the GIL
        at every row it steps, and the send claims a batch while other batches' threads
        build their payloads, so each of a thousand rows waited to get it back."""
        (packed,) = self._db.execute(
            "SELECT json_group_array(json_array(key, email, first, last)) FROM people "
            f"WHERE why IS NULL AND key IN {_IN}",
            (_json(keys),),
        ).fetchone()
        return {key: (email, first, last) for key, email, first, last in json.loads(packed)}

    def reasons(self, keys: Sequence[str]) -> dict[str, str | None]:
        """Why each of these keys that is on the list is out of the audience (None: in it)."""
        rows = self._db.execute(f"SELECT key, why FROM people WHERE key IN {_IN}", (_json(keys),))
        return dict(rows)


def merge(first: Recipient, later: Recipient, take_language: bool) -> tuple[Recipient, str]:
    """First row wins for names; segments add up; the strongest opt-out status wins; the
    first language given wins (`take_language`: none was given before `later`)."""
    status = first.status
    status_note = ""
    if STATUS_WEIGHT[later.status] > STATUS_WEIGHT[first.status]:
        status = later.status
        status_note = (
            f"; status {later.status!r} from line {later.line} wins over "
            f"{first.status!r} so nobody who opted out is mailed"
        )
    elif later.status != first.status:
        status_note = f"; status {first.status!r} from line {first.line} wins over {later.status!r}"
    combined = Recipient(
        email=first.email,
        first_name=first.first_name or later.first_name,
        last_name=first.last_name or later.last_name,
        organisation=first.organisation or later.organisation,
        segments=first.segments | later.segments,
        status=status,
        language=later.language if take_language else first.language,
        line=first.line,
    )
    note = (
        f"{later.email} also appears on line {first.line}; merged into line {first.line} "
        f"(names from line {first.line} kept where given, segments combined{status_note}); "
        "delete one of the two rows"
    )
    return combined, note


def _recipient(row: Sequence[object]) -> Recipient:
    line, _, email, first, last, org, segments, status, language = row
    return Recipient(
        email=str(email),
        first_name=str(first),
        last_name=str(last),
        # Interned: a list names each organisation for several of its people, and repeats a
        # handful of languages and statuses (a copy each is 50 bytes a partner).
        organisation=sys.intern(str(org)),
        segments=split_segments(str(segments)),
        status=sys.intern(str(status)),
        language=sys.intern(str(language)) if language else DEFAULT_LANGUAGE,
        line=int(str(line)),
    )


def _stored(r: Recipient) -> tuple[str, str, str, str, str, str, int]:
    """A merged partner as `people` keeps it: what the merge can change, then its line."""
    language = "" if r.language == DEFAULT_LANGUAGE else r.language
    segments = _between_spaces(r.segments)
    return (r.first_name, r.last_name, r.organisation, segments, r.status, language, r.line)


def _json(keys: Iterable[str]) -> str:
    return json.dumps(list(keys))

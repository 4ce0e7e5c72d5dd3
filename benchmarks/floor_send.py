"""The floor a send is measured against: the same design in plain Python, with no checks.

What newsflash's send does, reduced to what it cannot do without: read the partner list with the
csv module, keep the subscribed rows, freeze each batch into SQLite before its request and
settle it after the answer, sign each partner's unsubscribe token (HMAC-SHA256), build the same
Mail Send JSON (one personalization per partner: to, substitutions, custom_args, List-Unsubscribe
headers) and post it over one keep-alive HTTP connection, or `concurrency` of them. No address
validation, no duplicate check, no suppressions, no progress, no retries, no rendering (the
email's html and text are read from a build made before the clock starts).

    python benchmarks/floor_send.py WORKSPACE URL KEY [--concurrency N]

prints one JSON line (recipients, requests, seconds, peak_mb) as bench_send's child does, so
bench_send.py can run both in the same way and print newsflash's time as a ratio to this one.
It imports nothing from newsflash: a floor that shared our code would share our costs.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import hmac
import http.client
import json
import resource
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

BATCH = 1000
EDITION = "2022-02"
SECRET = b"floor-benchmark-secret-of-32-characters"
UNSUBSCRIBE = "https://newsflash.example.org/unsubscribe/"


def partners(csv_path: Path) -> Iterator[tuple[str, str]]:
    """(email, first name) of every subscribed row, streamed."""
    with open(csv_path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if row["status"] == "subscribed":
                yield row["email"], row["first_name"]


def batches(csv_path: Path) -> Iterator[list[tuple[str, str, str]]]:
    batch: list[tuple[str, str, str]] = []
    for email, name in partners(csv_path):
        rid = hashlib.sha256(email.lower().encode()).hexdigest()[:16]
        batch.append((rid, email, name))
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def token(rid: str) -> str:
    mac = hmac.new(SECRET, b"newsflash/unsubscribe/v1\x00" + rid.encode(), hashlib.sha256)
    return rid + "." + base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def payload(batch: list[tuple[str, str, str]], html: str, text: str) -> bytes:
    personalizations = []
    for rid, email, name in batch:
        tok = token(rid)
        personalizations.append(
            {
                "to": [{"email": email, "name": name}],
                "substitutions": {"-first_name-": name, "-unsubscribe_token-": tok},
                "custom_args": {"edition": EDITION, "recipient_id": rid},
                "headers": {
                    "List-Unsubscribe": f"<{UNSUBSCRIBE}{tok}>",
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                },
            }
        )
    body = {
        "personalizations": personalizations,
        "from": {"email": "newsflash@example.org", "name": "ASA Newsflash"},
        "subject": "ASA Newsflash No. 1",
        "content": [{"type": "text/plain", "value": text}, {"type": "text/html", "value": html}],
    }
    return json.dumps(body).encode()


class Floor:
    """Batches through `concurrency` keep-alive connections; each one in SQLite before and after."""

    def __init__(self, workspace: Path, url: str, key: str) -> None:
        built = workspace / "build" / EDITION
        self.html = (built / "email.html").read_text(encoding="utf-8")
        self.text = (built / "email.txt").read_text(encoding="utf-8")
        self.csv_path = workspace / "subscribers.csv"
        self.url = urlsplit(url)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.db = sqlite3.connect(workspace / "floor.sqlite", check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE batches (id INTEGER PRIMARY KEY, state TEXT)")
        self.db.execute("CREATE TABLE recipients (rid TEXT PRIMARY KEY, batch INTEGER)")
        self.lock = threading.Lock()
        self.requests = 0
        self.sent = 0

    def freeze(self, number: int, batch: list[tuple[str, str, str]]) -> None:
        with self.lock, self.db:
            self.db.execute("INSERT INTO batches VALUES (?, 'in_flight')", (number,))
            self.db.executemany(
                "INSERT INTO recipients VALUES (?, ?)", [(rid, number) for rid, _, _ in batch]
            )

    def post(self, conn: http.client.HTTPConnection, number: int, body: bytes, n: int) -> None:
        conn.request("POST", "/v3/mail/send", body=body, headers=self.headers)
        answer = conn.getresponse()
        answer.read()
        if answer.status != 202:
            raise SystemExit(f"batch {number}: HTTP {answer.status}")
        with self.lock, self.db:
            self.db.execute("UPDATE batches SET state = 'accepted' WHERE id = ?", (number,))
            self.requests += 1
            self.sent += n

    def worker(self, work: Iterator[tuple[int, list[tuple[str, str, str]]]]) -> None:
        conn = http.client.HTTPConnection(self.url.hostname or "", self.url.port)
        while True:
            with self.lock:
                item = next(work, None)
            if item is None:
                break
            number, batch = item
            self.freeze(number, batch)
            self.post(conn, number, payload(batch, self.html, self.text), len(batch))
        conn.close()

    def run(self, concurrency: int) -> None:
        work = enumerate(batches(self.csv_path), 1)
        threads = [threading.Thread(target=self.worker, args=(work,)) for _ in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("url")
    parser.add_argument("key")
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    start = time.perf_counter()
    floor = Floor(args.workspace, args.url, args.key)
    floor.run(args.concurrency)
    wall = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {"recipients": floor.sent, "requests": floor.requests, "seconds": wall}
    print(json.dumps({**result, "peak_mb": peak_kb / 1024}))


if __name__ == "__main__":
    main()

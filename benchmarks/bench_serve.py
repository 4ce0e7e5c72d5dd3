"""How many SendGrid events per second `newsflash serve` stores, and how many one-click
unsubscribes it answers, on this machine.

    python benchmarks/bench_serve.py                   # 200 batches of 100 events, 2000 clicks
    python benchmarks/bench_serve.py --batches 50 --clients 2

The server is the real command (`newsflash serve`, uvicorn, one process) in a child process,
on a fresh workspace with a synthetic partner list; the clients are threads here, each with
one keep-alive connection, posting batches of 100 distinct events signed beforehand with a key
pair made for the run (ECDSA P-256 over timestamp + body, as SendGrid signs). Every event is
stored and applied (one in ten is a bounce, so the suppression store is written too), and the
stores are counted afterwards so a fast wrong answer cannot pass. Latency is per request, from
sending to the whole answer read.

Target (issue 10): at least 5,000 events/s with p99 under 100 ms.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from newsflash.subscribers import recipient_id
from newsflash.tokens import Signer

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret-" + "s" * 40
TARGET = {"events_per_s": 5000.0, "p99_ms": 100.0}


def make_workspace(folder: Path, partners: int) -> None:
    for name in ("config.toml",):
        shutil.copy(ROOT / name, folder / name)
    with open(folder / "subscribers.csv", "w", encoding="utf-8") as f:
        f.write("email,first_name,segments,status\n")
        for i in range(partners):
            f.write(f"partner{i:06d}@example.org,First{i},partners,subscribed\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(folder: Path, port: int, public_key: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "NEWSFLASH_SECRET": SECRET,
        "SENDGRID_WEBHOOK_PUBLIC_KEY": public_key,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from newsflash.cli import main; main()",
            "--config",
            str(folder / "config.toml"),
            "serve",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("newsflash serve did not start")


def signed_batches(
    key: ec.EllipticCurvePrivateKey, batches: int, size: int
) -> list[tuple[bytes, dict[str, str]]]:
    now = int(time.time())
    out = []
    for b in range(batches):
        events = [
            {
                "email": f"partner{(b * size + n) % 100000:06d}@example.org",
                "timestamp": now - 5,
                "event": "bounce" if n % 10 == 0 else "delivered",
                "type": "bounce",
                "sg_event_id": f"bench-{b}-{n}",
                "sg_message_id": f"m{b}.filter",
                "edition": "2026-03",
                "recipient_id": "0123456789abcdef",
            }
            for n in range(size)
        ]
        body = json.dumps(events).encode()
        ts = str(now)
        sig = base64.b64encode(key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
        out.append(
            (
                body,
                {
                    "Content-Type": "application/json",
                    "X-Twilio-Email-Event-Webhook-Signature": sig,
                    "X-Twilio-Email-Event-Webhook-Timestamp": ts,
                },
            )
        )
    return out


def hammer(
    port: int, requests: list[tuple[str, bytes, dict[str, str]]], clients: int
) -> tuple[float, list[float]]:
    """Send the requests over `clients` keep-alive connections; wall seconds, latencies (s)."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    shares = [requests[c::clients] for c in range(clients)]

    def client(share: list[tuple[str, bytes, dict[str, str]]]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        for path, body, headers in share:
            started = time.perf_counter()
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            mine.append(time.perf_counter() - started)
            if resp.status != 200:
                failures.append(f"{path[:40]}: {resp.status}")
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(s,)) for s in shares]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} request(s) failed, e.g. {failures[0]}")
    return wall, latencies


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def count(db: Path, sql: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--batches", type=int, default=200, help="webhook batches to post")
    ap.add_argument("--size", type=int, default=100, help="events per batch")
    ap.add_argument("--clicks", type=int, default=2000, help="one-click unsubscribes to post")
    ap.add_argument("--clients", type=int, default=4, help="concurrent client connections")
    args = ap.parse_args(argv)

    key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        folder = Path(tmp)
        make_workspace(folder, args.clicks)
        port = free_port()
        server = start_server(folder, port, public)
        try:
            batches = signed_batches(key, args.batches, args.size)
            wall, lat = hammer(
                port, [("/webhooks/sendgrid", b, h) for b, h in batches], args.clients
            )
            signer = Signer([SECRET])
            clicks = [
                (
                    f"/unsubscribe/{signer.unsubscribe_token(recipient_id(f'partner{i:06d}@example.org'))}",
                    b"List-Unsubscribe=One-Click",
                    {"Content-Type": "application/x-www-form-urlencoded"},
                )
                for i in range(args.clicks)
            ]
            click_wall, click_lat = hammer(port, clicks, args.clients)
        finally:
            server.terminate()
            server.wait(10)
        stored = count(folder / "state" / "events.sqlite", "SELECT COUNT(*) FROM events")
        suppressed = count(
            folder / "state" / "suppressions.sqlite",
            "SELECT COUNT(*) FROM suppressions WHERE lifted_at IS NULL",
        )
    events = args.batches * args.size
    if stored != events:
        raise SystemExit(f"stored {stored} events, expected {events}")
    expected_suppressed = (
        len(
            {
                (b * args.size + n) % 100000
                for b in range(args.batches)
                for n in range(0, args.size, 10)
            }
        )
        + args.clicks
    )
    if suppressed != expected_suppressed:
        raise SystemExit(f"{suppressed} suppressions, expected {expected_suppressed}")

    rows: list[tuple[str, str, str, str, str]] = [
        (
            "webhook",
            f"{events} events in {args.batches} batches",
            f"{events / wall:,.0f} events/s",
            f"{percentile(lat, 50) * 1000:.1f}",
            f"{percentile(lat, 99) * 1000:.1f}",
        ),
        (
            "one-click",
            f"{args.clicks} unsubscribes",
            f"{args.clicks / click_wall:,.0f} /s",
            f"{percentile(click_lat, 50) * 1000:.1f}",
            f"{percentile(click_lat, 99) * 1000:.1f}",
        ),
    ]
    print(f"newsflash serve, {args.clients} concurrent clients, {os.cpu_count()} CPUs")
    print(f"{'endpoint':<10} {'load':<28} {'throughput':>16} {'p50 ms':>8} {'p99 ms':>8}")
    for r in rows:
        print(f"{r[0]:<10} {r[1]:<28} {r[2]:>16} {r[3]:>8} {r[4]:>8}")
    ok: Callable[[bool], str] = lambda good: "met" if good else "MISSED"  # noqa: E731
    p99 = percentile(lat, 99) * 1000
    rate_ok = ok(events / wall >= TARGET["events_per_s"])
    print(
        f"target >= {TARGET['events_per_s']:,.0f} events/s: {rate_ok}; "
        f"p99 < {TARGET['p99_ms']:.0f} ms: {ok(p99 < TARGET['p99_ms'])}"
    )


if __name__ == "__main__":
    main()

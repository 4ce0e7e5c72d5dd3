"""How fast and how lean a real send is: 1k, 10k and 100k synthetic partners, loopback SendGrid.

    python benchmarks/bench_send.py            # 1k, 10k, 100k (+ the naive baseline at 1k)
    python benchmarks/bench_send.py --sizes 1000 10000

Each measurement is a fresh workspace (the sample edition, config.toml with batch_size 1000, a
generated subscribers.csv) sent by `send_edition` in a child process, so its peak RSS
(getrusage ru_maxrss: interpreter, imports and all) is the sender's alone. The strict fake
SendGrid (tests/fake_sendgrid.py) runs in another process, so its CPU and memory are not
counted as ours, though its validation time is part of the wall time as a real API's would be.
Wall time covers everything `newsflash send` does: reading the partner list, building the
edition, freezing the recipients into the SQLite ledger, every request, every ledger update.

The naive baseline is the same code with batch_size = 1 (one request per recipient, as a
simple loop over the list would do). It runs at 1k only; its 10k/100k rows are a linear
extrapolation and are labelled so.

Targets (issue #3): 100k recipients, ledger included, in under 5 s, with at most 100 requests
and under 200 MB peak.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ED = "2022-02"
API_KEY = "SG.bench-key"
TARGET = {"seconds": 5.0, "requests": 100, "peak_mb": 200.0}


def make_workspace(folder: Path, n: int, batch_size: int) -> Path:
    for name in ("config.toml",):
        shutil.copy(ROOT / name, folder / name)
    shutil.copytree(ROOT / "submissions", folder / "submissions")
    config = folder / "config.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace("batch_size = 1000", f"batch_size = {batch_size}"), encoding="utf-8"
    )
    segments = ("partners;wg1", "partners;wg2", "partners;battery", "partners", "partners;projects")
    with open(folder / "subscribers.csv", "w", encoding="utf-8") as f:
        f.write("email,first_name,last_name,organisation,segments,status,language\n")
        for i in range(n):
            f.write(
                f"partner{i:06d}@org{i % 997}.example.org,First{i},Last{i},"
                f"Organisation {i % 997},{segments[i % len(segments)]},subscribed,en\n"
            )
    return folder


def child(workspace: Path) -> None:
    """Runs in the measured process: one complete send, then a JSON line with the numbers."""
    start = time.perf_counter()
    from newsflash.config import load_config
    from newsflash.sending.send import send_edition

    config = load_config(workspace / "config.toml")
    report = send_edition(config, ED)
    wall = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    assert report.complete, report
    print(
        json.dumps(
            {
                "recipients": report.accepted_now,
                "requests": report.requests,
                "seconds": wall,
                "peak_mb": peak_kb / 1024,
            }
        )
    )


def start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fake_sendgrid.py"), "--key", API_KEY],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        proc.kill()
        raise SystemExit(f"the fake SendGrid did not start: {url!r}")
    return proc, url


def measure(n: int, batch_size: int, repeat: int = 1) -> dict[str, float]:
    """The run with the median wall time of `repeat` runs (each on a fresh server/workspace)."""
    runs = sorted((measure_once(n, batch_size) for _ in range(repeat)), key=lambda r: r["seconds"])
    return runs[len(runs) // 2]


def measure_once(n: int, batch_size: int) -> dict[str, float]:
    server, url = start_server()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-send-") as tmp:
            ws = make_workspace(Path(tmp), n, batch_size)
            env = {**os.environ, "SENDGRID_API_KEY": API_KEY, "NEWSFLASH_SENDGRID_HOST": url}
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(ws)],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode != 0:
                raise SystemExit(f"send of {n} failed:\n{out.stdout}\n{out.stderr}")
            result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
            return result
    finally:
        server.terminate()
        server.wait(timeout=10)


def row(label: str, n: int, r: dict[str, float], note: str = "") -> str:
    rate = n / r["seconds"] if r["seconds"] else float("inf")
    peak = f"{r['peak_mb']:.0f}" if r.get("peak_mb") else "—"
    return (
        f"| {n:>10,} | {label:<20} | {int(r['requests']):>8,} | {r['seconds']:>7.2f} "
        f"| {rate:>12,.0f} | {peak:>7} | {note} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs per size; the table shows the median by wall time",
    )
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    print(
        "| recipients | sender               | requests |  wall s | recipients/s | peak MB | note |"
    )
    print(
        "|-----------:|:---------------------|---------:|--------:|-------------:|--------:|:-----|"
    )
    results = {n: measure(n, 1000, args.repeat) for n in args.sizes}
    naive = None if args.no_baseline else measure(1_000, 1)
    for n in args.sizes:
        print(row("newsflash (batches)", n, results[n], "measured"))
        if naive is not None:
            if n == 1_000:
                print(row("naive: 1 per request", n, naive, "measured"))
            else:
                scale = n / 1_000
                guess = {
                    "requests": naive["requests"] * scale,
                    "seconds": naive["seconds"] * scale,
                    "peak_mb": 0.0,
                }
                print(row("naive: 1 per request", n, guess, "extrapolated from 1k"))
    big = results.get(100_000)
    if big is not None:
        ok = (
            big["seconds"] < TARGET["seconds"]
            and big["requests"] <= TARGET["requests"]
            and big["peak_mb"] < TARGET["peak_mb"]
        )
        print(
            f"\ntarget for 100k: < {TARGET['seconds']:g} s, <= {TARGET['requests']} requests, "
            f"< {TARGET['peak_mb']:g} MB peak: {'met' if ok else 'MISSED'}"
        )


if __name__ == "__main__":
    main()

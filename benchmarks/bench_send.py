"""How fast and how lean a real send is: 1k, 10k and 100k synthetic partners, loopback SendGrid.

    python benchmarks/bench_send.py            # 1k, 10k, 100k (+ the naive baseline at 1k)
    python benchmarks/bench_send.py --sizes 1000 10000

Each measurement is a fresh workspace (the sample edition, config.toml with batch_size 1000, a
generated subscribers.csv) sent by `send_edition` in a child process, so its peak RSS
(getrusage ru_maxrss: interpreter, imports and all) is the sender's alone. The strict fake
SendGrid (tests/fake_sendgrid.py) runs in another process, so its CPU and memory are not
counted as ours, though its validation time is part of the wall time as a real API's would be.
Wall time covers everything `newsflash send` does: the imports, reading the partner list,
building the edition, freezing the recipients into the SQLite ledger, every request, every
ledger update. The workspace is built once with `newsflash build` before either sender's clock
starts, as a secretariat builds and approves before sending, so the send's build finds the
email that build rendered in state/render-cache (it still loads and checks every item file).

The floor (benchmarks/floor_send.py) is the same design in plain Python with no checks: the
csv module, json, keep-alive connections, per-batch state in SQLite, signed tokens. It runs
against a fresh server of its own in turn with newsflash at each size (with `--repeat N`,
newsflash first in one pair and the floor first in the next), so the ratio in the table, the
median of the pairs' ratios, compares runs made seconds apart on the same machine, whatever
else the machine is doing.
`--latency 0.25` makes every answer wait 250 ms, as the real API's do; `--concurrency N` gives
the floor N connections (newsflash's own setting comes from config.toml).

Targets: 100k partners at most 1.5x the floor, at most 100 requests, under 150 MB peak.
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
TARGET = {"ratio": 1.5, "requests": 100, "peak_mb": 150.0}
SECRET = "bench-secret-" + "x" * 32


def make_workspace(folder: Path, n: int, batch_size: int) -> Path:
    for name in ("config.toml",):
        shutil.copy(ROOT / name, folder / name)
    shutil.copytree(ROOT / "submissions", folder / "submissions")
    config = folder / "config.toml"
    text = config.read_text(encoding="utf-8")
    text = text.replace("batch_size = 1000", f"batch_size = {batch_size}")
    # What is measured is the send: no approval to give first, and no pull of SendGrid's
    # suppression lists before it (the floor has neither; a real send's sync is a few requests).
    text = text.replace("require_approval = true", "require_approval = false")
    text = text.replace("[sendgrid]\n", "[sendgrid]\nsync_before_send = false\n", 1)
    assert "require_approval = false" in text and "sync_before_send = false" in text
    config.write_text(text, encoding="utf-8")
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


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    server = [sys.executable, str(ROOT / "tests" / "fake_sendgrid.py"), "--key", API_KEY]
    proc = subprocess.Popen(
        [*server, "--latency", str(latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        proc.kill()
        raise SystemExit(f"the fake SendGrid did not start: {url!r}")
    return proc, url


def measure(n: int, args: argparse.Namespace) -> tuple[dict[str, float], dict[str, float], float]:
    """newsflash's and the floor's median runs, and the median of each pair's ratio.

    The two senders run in turn, newsflash first in one pair and the floor first in the next,
    so a change in the machine's load between runs falls on both alike: run all of one
    sender's repeats before the other's and a busy minute lands on one side only.
    """
    ours: list[dict[str, float]] = []
    floors: list[dict[str, float]] = []
    for i in range(args.repeat):
        for floor in (False, True) if i % 2 == 0 else (True, False):
            (floors if floor else ours).append(measure_once(n, args, floor=floor))
    ratios = sorted(a["seconds"] / b["seconds"] for a, b in zip(ours, floors, strict=True))
    return _median(ours), _median(floors), ratios[len(ratios) // 2]


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]


def measure_once(n: int, args: argparse.Namespace, *, floor: bool) -> dict[str, float]:
    server, url = start_server(args.latency)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-send-") as tmp:
            ws = make_workspace(Path(tmp), n, 1000)
            env = {
                **os.environ,
                "SENDGRID_API_KEY": API_KEY,
                "NEWSFLASH_SENDGRID_HOST": url,
                "NEWSFLASH_SECRET": SECRET,
            }
            # Built (untimed) before either sender, as a secretariat builds and approves an
            # edition before sending it: the send then reads that build's email from
            # state/render-cache, the floor reads build/.
            build = [sys.executable, "-m", "newsflash.cli", "build", ED]
            subprocess.run(build, cwd=ws, env=env, capture_output=True, check=True)
            if floor:
                command = [sys.executable, str(ROOT / "benchmarks" / "floor_send.py"), str(ws)]
                command += [url, API_KEY, "--concurrency", str(args.concurrency)]
            else:
                command = [sys.executable, __file__, "--child", str(ws)]
            out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                raise SystemExit(f"send of {n} failed:\n{out.stdout}\n{out.stderr}")
            result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
            return result
    finally:
        server.terminate()
        server.wait(timeout=10)


def row(label: str, n: int, r: dict[str, float], ratio: str) -> str:
    rate = n / r["seconds"] if r["seconds"] else float("inf")
    return (
        f"| {n:>10,} | {label:<10} | {int(r['requests']):>8,} | {r['seconds']:>7.2f} "
        f"| {ratio:>5} | {rate:>12,.0f} | {r['peak_mb']:>7.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    parser.add_argument("--concurrency", type=int, default=1, help="the floor's connections")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per size; the table shows the median"
    )
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    print(f"answer latency {args.latency * 1000:.0f} ms, floor concurrency {args.concurrency}")
    print("| recipients | sender     | requests |  wall s | ratio | recipients/s | peak MB |")
    print("|-----------:|:-----------|---------:|--------:|------:|-------------:|--------:|")
    results = {}
    for n in args.sizes:
        ours, floor, ratio = results[n] = measure(n, args)
        print(row("newsflash", n, ours, f"{ratio:.2f}"), flush=True)
        print(row("floor", n, floor, "1.00"), flush=True)
    if args.repeat > 1:
        print(f"\nratio: the median of {args.repeat} pairs' ratios, each pair run in turn")
    if 100_000 in results:
        ours, floor, ratio = results[100_000]
        ok = (
            ratio <= TARGET["ratio"]
            and ours["requests"] <= TARGET["requests"]
            and ours["peak_mb"] < TARGET["peak_mb"]
        )
        print(
            f"\ntarget for 100k: <= {TARGET['ratio']:g}x the floor, <= {TARGET['requests']:g} "
            f"requests, < {TARGET['peak_mb']:g} MB peak: {'met' if ok else 'MISSED'} "
            f"({ratio:.2f}x, {ours['requests']:.0f} requests, {ours['peak_mb']:.0f} MB)"
        )


if __name__ == "__main__":
    main()

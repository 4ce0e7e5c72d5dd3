"""`newsflash check --links` and linkcheck: every link fetched from a loopback server that
answers 200, 404, 500, a redirect loop, a redirect to an error, a hang, HEAD refused but GET
fine, and a name under .invalid that cannot resolve; dead links named by item, file and line;
one request per distinct URL; the cache saving a second request.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from calendar_helpers import FAR, REVIEWER, body, notices, set_schedule
from click.testing import CliRunner

from newsflash.cli import main
from newsflash.config import Config, load_config
from newsflash.items import load_items
from newsflash.linkcheck.check import check_links, known_dead
from newsflash.linkcheck.fetch import fetch_all
from newsflash.linkcheck.result import LinkResult
from newsflash.schedule import jobs

HANG_SECONDS = 5.0


class _Handler(BaseHTTPRequestHandler):
    """Each path is one kind of answer; every request is counted by (method, path)."""

    seen: Counter[tuple[str, str]]

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return

    def _answer(self, status: int, location: str = "") -> None:
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Length", "2")
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(b"ok")

    def _route(self) -> None:
        self.seen[(self.command, self.path)] += 1
        path = self.path
        if path == "/ok":
            self._answer(200)
        elif path == "/gone":
            self._answer(404)
        elif path == "/broken":
            self._answer(500)
        elif path == "/loop":
            self._answer(302, "/loop")
        elif path == "/moved":
            self._answer(301, "/missing")
        elif path == "/hang":
            time.sleep(HANG_SECONDS)
            self._answer(200)
        elif path == "/no-head":
            self._answer(405 if self.command == "HEAD" else 200)
        elif path == "/to-ok":
            self._answer(302, "/ok")
        elif path == "/to-ftp":
            self._answer(302, "ftp://files.example.org/x")
        elif path == "/head-forbidden":
            self._answer(403 if self.command == "HEAD" else 200)
        else:
            self._answer(404)

    do_HEAD = _route
    do_GET = _route


@pytest.fixture
def server() -> Iterator[tuple[str, Counter[tuple[str, str]]]]:
    seen: Counter[tuple[str, str]] = Counter()
    handler = type("Handler", (_Handler,), {"seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def _item(folder: Path, name: str, title: str, contact: str, body: str, link: str = "") -> None:
    lines = ["---", f"title: {title}", "section: alliance", "date: 2026-06-01", "status: ready"]
    lines += [f"contact: {contact}"] + ([f"link: {link}"] if link else []) + ["---", body, ""]
    (folder / name).write_text("\n".join(lines), encoding="utf-8")


def _workspace(workspace: Path, base: str, *, timeout: float = 1.0) -> Config:
    """The sample newsletter with its items replaced by two whose links point at `base`."""
    folder = workspace / "submissions"
    for old in folder.rglob("*.md"):
        old.unlink()
    _item(
        folder,
        "links-a.md",
        "Links of every kind",
        "a-lead@example.org",
        f"Fine: [ok]({base}/ok).\n\nGone: [404]({base}/gone).\nBroken: [500]({base}/broken).\n\n"
        f"Loop: [loop]({base}/loop) and [moved]({base}/moved).\n\nSlow: [hang]({base}/hang).\n\n"
        f"No HEAD: [405]({base}/no-head), [403]({base}/head-forbidden).\n\n"
        "Nowhere: [dns](http://nowhere.invalid/page). Mail: [us](mailto:x@example.org).",
        link=f"{base}/ok",
    )
    _item(
        folder,
        "links-b.md",
        "The same dead link again",
        "b-lead@example.org",
        f"Also gone: [here]({base}/gone).",
    )
    config_path = workspace / "config.toml"
    text = config_path.read_text(encoding="utf-8")
    for key, value in (("timeout", timeout), ("concurrency", 3), ("cache_hours", 1)):
        text, n = re.subn(rf"^{key} = \d+ ", f"{key} = {value} ", text, count=1, flags=re.M)
        assert n == 1, key  # the sample's [links] table, changed in place
    config_path.write_text(text, encoding="utf-8")
    return load_config(config_path)


def _items(config: Config) -> list:  # type: ignore[type-arg]
    return list(load_items(config.submissions_dir, config.section_keys).items)


def test_every_kind_of_dead_link_is_reported_by_item_file_and_line_and_live_ones_are_not(
    workspace: Path, server: tuple[str, Counter[tuple[str, str]]]
) -> None:
    base, _ = server
    config = _workspace(workspace, base)
    started = time.monotonic()
    report = check_links(config, _items(config))
    elapsed = time.monotonic() - started
    dead = {(d.link.item_key, d.link.url): d for d in report.dead}
    reasons = {url: d.result.reason for (_, url), d in dead.items()}
    assert set(reasons) == {
        f"{base}/gone",
        f"{base}/broken",
        f"{base}/loop",
        f"{base}/moved",
        f"{base}/hang",
        "http://nowhere.invalid/page",
    }
    assert reasons[f"{base}/gone"] == "HTTP 404 Not Found"
    assert reasons[f"{base}/broken"] == "HTTP 500 Internal Server Error"
    assert reasons[f"{base}/loop"].startswith("redirect loop")
    assert reasons[f"{base}/moved"] == (
        f"redirects to {base}/missing, which answers HTTP 404 Not Found"
    )
    assert reasons[f"{base}/hang"] == "timed out: no answer in time"
    assert reasons["http://nowhere.invalid/page"] == (
        "DNS failure: the name nowhere.invalid does not resolve"
    )
    assert elapsed < HANG_SECONDS - 1  # the hang was cut by the 1 s timeout, not waited out
    gone_a = dead[("links-a.md", f"{base}/gone")]
    assert gone_a.link.path == config.submissions_dir / "links-a.md"
    assert gone_a.link.line == 11  # the body's third line, after 8 lines of front matter
    assert gone_a.link.contact == "a-lead@example.org"
    assert dead[("links-b.md", f"{base}/gone")].link.line == 8
    assert dead[("links-a.md", f"{base}/hang")].link.line == 16
    assert "links-a.md:11: " in str(gone_a) and "'Links of every kind'" in str(gone_a)


def test_head_refused_or_forbidden_is_tried_again_with_get(
    workspace: Path, server: tuple[str, Counter[tuple[str, str]]]
) -> None:
    base, seen = server
    config = _workspace(workspace, base)
    report = check_links(config, _items(config))
    dead_urls = {d.link.url for d in report.dead}
    assert f"{base}/no-head" not in dead_urls and f"{base}/head-forbidden" not in dead_urls
    assert seen[("HEAD", "/no-head")] == 1 and seen[("GET", "/no-head")] == 1
    assert seen[("HEAD", "/head-forbidden")] == 1 and seen[("GET", "/head-forbidden")] == 1
    assert seen[("GET", "/ok")] == 0  # a HEAD that works is enough


def test_a_url_in_two_items_and_a_button_is_fetched_once(
    workspace: Path, server: tuple[str, Counter[tuple[str, str]]]
) -> None:
    base, seen = server
    config = _workspace(workspace, base)
    report = check_links(config, _items(config))
    assert seen[("HEAD", "/ok")] == 1  # in the body and as the 'read more' button
    assert seen[("HEAD", "/gone")] == 1 and seen[("GET", "/gone")] == 1  # in both items
    assert [d.link.item_key for d in report.dead if d.link.url == f"{base}/gone"] == [
        "links-a.md",
        "links-b.md",
    ]
    assert not any(link.url.startswith("mailto:") for link in report.links)


def test_the_cache_saves_a_second_request_for_working_links_until_it_expires(
    workspace: Path, server: tuple[str, Counter[tuple[str, str]]]
) -> None:
    base, seen = server
    config = _workspace(workspace, base)
    now = [1_800_000_000.0]
    first = check_links(config, _items(config), clock=lambda: now[0])
    now[0] += 1800  # half an hour later: cache_hours = 1
    second = check_links(config, _items(config), clock=lambda: now[0])
    assert first.from_cache == 0 and first.fetched == 9
    assert second.from_cache == 3  # /ok, /no-head, /head-forbidden worked
    assert seen[("HEAD", "/ok")] == 1 and seen[("GET", "/no-head")] == 1
    assert seen[("HEAD", "/gone")] == 2  # a dead link is fetched again: it may be back
    assert len(second.dead) == len(first.dead)
    now[0] += 3600  # past the hour: fetched again
    check_links(config, _items(config), clock=lambda: now[0])
    assert seen[("HEAD", "/ok")] == 2


def test_the_send_reads_the_dead_links_of_the_last_check_without_fetching(
    workspace: Path, server: tuple[str, Counter[tuple[str, str]]]
) -> None:
    base, seen = server
    config = _workspace(workspace, base)
    assert known_dead(config, _items(config)) == []  # never checked: nothing known
    check_links(config, _items(config))
    before = sum(seen.values())
    dead = known_dead(config, _items(config))
    assert sum(seen.values()) == before
    again = check_links(config, _items(config))
    assert {d.link.url for d in dead} == {d.link.url for d in again.dead}


def test_check_links_prints_each_dead_link_with_its_file_and_line_and_exits_1(
    workspace: Path, server: tuple[str, Counter[tuple[str, str]]]
) -> None:
    base, _ = server
    config = _workspace(workspace, base)
    result = CliRunner().invoke(main, ["--config", str(config.path), "check", "--links"])
    out = result.output
    assert result.exit_code == 1, out
    assert "10 in edition" in out and "9 distinct: 9 fetched, 0 from the cache), 7 dead" in out
    assert f"links-a.md:12: {base}/broken (HTTP 500 Internal Server Error)" in " ".join(out.split())
    assert "Traceback" not in out


def test_check_without_links_fetches_nothing(
    workspace: Path, server: tuple[str, Counter[tuple[str, str]]]
) -> None:
    base, seen = server
    config = _workspace(workspace, base)
    result = CliRunner().invoke(main, ["--config", str(config.path), "check"])
    assert result.exit_code == 0, result.output
    assert "dead" not in result.output and sum(seen.values()) == 0


def test_the_proof_job_mails_each_dead_link_to_its_items_contact_and_all_to_the_reviewers(
    workspace: Path, server: tuple[str, Counter[tuple[str, str]]]
) -> None:
    base, _ = server
    _workspace(workspace, base)
    config = set_schedule(workspace, jobs={"send": FAR, "proof": {"day": "last thu"}})
    line = jobs.run_proof(str(config.path))
    assert line.endswith("links: 9 checked, 7 dead, told their contacts")
    dead_mail = {str(m["To"]): body(m) for m in notices(config) if "dead link" in str(m["Subject"])}
    assert set(dead_mail) == {"a-lead@example.org", "b-lead@example.org", REVIEWER}
    a_text, b_text = dead_mail["a-lead@example.org"], dead_mail["b-lead@example.org"]
    assert f"- {base}/broken\n  in 'Links of every kind' (" in a_text.replace("\r\n", "\n")
    assert "links-a.md:12): HTTP 500 Internal Server Error" in a_text
    assert "links-b.md" not in a_text and "links-a.md" not in b_text
    assert "links-b.md:8): HTTP 404 Not Found" in b_text
    listed = dead_mail[REVIEWER].replace("\r\n", "\n")
    for path in ("gone", "broken", "loop", "moved", "hang"):
        assert f"- {base}/{path}\n" in listed
    assert listed.count(f"- {base}/gone\n") == 2 and "- http://nowhere.invalid/page\n" in listed
    assert "found 7 dead link(s)" in dead_mail[REVIEWER]


def test_a_send_with_dead_links_warns_and_still_sends(
    workspace: Path,
    server: tuple[str, Counter[tuple[str, str]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    base, _ = server
    _workspace(workspace, base)
    config = set_schedule(workspace, jobs={"send": FAR})
    check_links(config, _items(config))
    caplog.set_level(logging.WARNING, logger="newsflash.schedule.jobs")
    line = jobs.run_send(str(config.path))
    assert line.startswith("sent edition"), line
    warned = [r.getMessage() for r in caplog.records if "dead link" in r.getMessage()]
    assert len(warned) == 7 and any(f"links-a.md:12: {base}/broken" in w for w in warned)


def test_hostile_answers_redirect_to_another_scheme_refused_connection_and_a_good_redirect(
    server: tuple[str, Counter[tuple[str, str]]],
) -> None:
    base, _ = server
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    results = fetch_all(
        [f"{base}/to-ok", f"{base}/to-ftp", f"http://127.0.0.1:{port}/", "http://[::1"],
        timeout=1,
        concurrency=2,
    )
    good = results[f"{base}/to-ok"]
    assert good.ok and good.status == 200 and good.final_url == f"{base}/ok"
    ftp = results[f"{base}/to-ftp"]
    assert not ftp.ok and ftp.reason.startswith("not a web address httpx can fetch")
    refused = results[f"http://127.0.0.1:{port}/"]
    assert not refused.ok and refused.reason.startswith("cannot connect")
    assert not results["http://[::1"].ok  # a malformed address is a dead link, not a crash


def test_the_check_runs_where_an_event_loop_is_already_running(
    server: tuple[str, Counter[tuple[str, str]]],
) -> None:
    """As under a sync Playwright session or inside an ASGI handler: asyncio.run alone fails."""
    base, _ = server

    async def inside() -> dict[str, LinkResult]:
        return fetch_all([f"{base}/ok", f"{base}/gone"], timeout=1, concurrency=2)

    # Its own thread: after the browser tests, Playwright's loop runs in this one already.
    with ThreadPoolExecutor(max_workers=1) as pool:
        results = pool.submit(asyncio.run, inside()).result()
    assert results[f"{base}/ok"].ok and not results[f"{base}/gone"].ok

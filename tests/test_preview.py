"""The live preview: both widths, rebuilds on save, errors on the page instead of a crash."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import local_only

from newsflash.errors import NewsflashError
from newsflash.state import ledgers
from newsflash.web.preview import PreviewServer
from newsflash.web.previewer import Previewer

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "items"
LAUNCH = "submissions/2022-02/newsflash-launch.md"
LAUNCH_TITLE = "The ASA launches the partners’ Newsflash"


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return str(r.read().decode("utf-8"))


def eventually(check: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s")
        time.sleep(0.05)


def retitle(workspace: Path, title: str) -> None:
    path = workspace / LAUNCH
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(f"title: {LAUNCH_TITLE}", f"title: {title}"), encoding="utf-8")


@pytest.fixture
def server(workspace: Path) -> Iterator[PreviewServer]:
    with PreviewServer(workspace / "config.toml", "2022-02", port=0) as s:
        yield s


def test_page_shows_subject_checks_left_out_and_plain_text(server: PreviewServer) -> None:
    page = get(server.url)
    assert "ASA Newsflash No. 1 – The launch of partners’ Newsflash" in page
    assert "The first ASA Newsflash, Working Group 1 meets" in page  # the preheader
    assert "Gmail clips" in page and "links" in page and "alt" in page
    assert "drafts/wg2-training-offer.md" in page and "status is &#39;draft&#39;" in page
    assert "pinned to edition 2022-03" in page
    assert 'id="desktop"' in page and 'id="phone"' in page
    assert "Dear Alex," in page  # the plain text, personalised with the sample partner
    email = get(server.url + "email.html")
    assert LAUNCH_TITLE in email and "-recipient_id-" not in email


def test_an_item_change_moves_the_version(server: PreviewServer, workspace: Path) -> None:
    before = get(server.url + "version")
    retitle(workspace, "A brand-new headline")
    eventually(lambda: get(server.url + "version") != before)
    assert "A brand-new headline" in get(server.url + "email.html")


def test_an_editors_atomic_save_is_noticed(server: PreviewServer, workspace: Path) -> None:
    """Many editors write a temporary file and rename it over the original."""
    before = get(server.url + "version")
    path = workspace / LAUNCH
    tmp = path.with_name(".newsflash-launch.md.swp")
    tmp.write_text(
        path.read_text(encoding="utf-8").replace(LAUNCH_TITLE, "Saved atomically"), encoding="utf-8"
    )
    os.replace(tmp, path)
    eventually(lambda: get(server.url + "version") != before)
    assert "Saved atomically" in get(server.url + "email.html")


def test_events_stream_announces_a_rebuild(server: PreviewServer, workspace: Path) -> None:
    versions: list[str] = []

    def listen() -> None:
        with urllib.request.urlopen(server.url + "events", timeout=10) as r:
            for raw in r:
                line = raw.decode().strip()
                if line.startswith("data: "):
                    versions.append(line[6:])
                if len(versions) == 2:
                    return

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    eventually(lambda: len(versions) == 1)
    retitle(workspace, "Streamed headline")
    t.join(timeout=3)
    assert len(versions) == 2 and versions[0] != versions[1]
    assert versions[1] == get(server.url + "version")


def test_broken_config_is_shown_and_the_preview_recovers(
    server: PreviewServer, workspace: Path
) -> None:
    config = workspace / "config.toml"
    good = config.read_text(encoding="utf-8")
    config.write_text(good.replace("[newsletter]", "[newsletter]\nnmae = 'typo'"), encoding="utf-8")
    eventually(lambda: "unknown key" in get(server.url))
    page = get(server.url)
    assert "newsletter.nmae" in page and "last build that worked" in page
    assert LAUNCH_TITLE in get(server.url + "email.html")  # the last good build stays
    config.write_text(good, encoding="utf-8")
    eventually(lambda: "build-error" not in get(server.url))


def test_broken_template_is_shown(server: PreviewServer, workspace: Path) -> None:
    footer = workspace / "templates" / "partials" / "footer.mjml.j2"
    footer.write_text(footer.read_text() + "{% if %}\n")
    eventually(lambda: "template error" in get(server.url))
    assert "footer.mjml.j2" in get(server.url)


def test_an_unexpected_exception_is_shown(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("renderer exploded")

    previewer = Previewer(workspace / "config.toml", "2022-02")
    monkeypatch.setattr(ledgers, "build_edition", boom)
    assert previewer.rebuild()
    snap = previewer.snapshot()
    assert snap.error == "unexpected error: RuntimeError: renderer exploded"
    assert snap.trace and "boom" in snap.trace


def test_a_rebuild_that_changes_nothing_keeps_the_version(workspace: Path) -> None:
    previewer = Previewer(workspace / "config.toml", "2022-02")
    assert previewer.rebuild()
    assert not previewer.rebuild()


def test_a_wrong_edition_id_is_a_usage_error(workspace: Path) -> None:
    with pytest.raises(NewsflashError, match="YYYY-MM"):
        Previewer(workspace / "config.toml", "2022-2")


def test_the_preview_writes_nothing(server: PreviewServer, workspace: Path) -> None:
    get(server.url)
    assert not {"build", "state", "site", "outbox"} & {p.name for p in workspace.iterdir()}


@pytest.mark.parametrize(
    ("options", "address"), [((), "127.0.0.1"), (("--host", "127.0.0.2"), "127.0.0.2")]
)
def test_the_command_prints_the_url_and_stops_on_ctrl_c(
    workspace: Path, options: tuple[str, ...], address: str
) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "newsflash.cli",
            "--config",
            str(workspace / "config.toml"),
            "preview",
            "2022-02",
            "--port",
            "0",
            *options,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        url = next(w for line in lines for w in line.split() if w.startswith(f"http://{address}:"))
        assert "Newsflash" in get(url)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0, out
        assert "preview stopped" in out and "Traceback" not in out
    finally:
        if proc.poll() is None:
            proc.kill()


# -- in a browser --------------------------------------------------------------------------------


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    p = browser.new_page(viewport={"width": 1280, "height": 900})
    p.blocked = local_only(p)
    yield p
    assert p.blocked == [], f"requests left the machine: {p.blocked}"
    p.close()


@pytest.mark.browser
def test_preview_shows_the_email_at_desktop_and_phone_widths(
    page: Any, server: PreviewServer
) -> None:
    page.goto(server.url)
    for frame_id, width in (("desktop", 600), ("phone", 375)):
        box = page.locator(f"iframe#{frame_id}").bounding_box()
        assert box is not None and box["width"] == width
        frame = page.frame_locator(f"iframe#{frame_id}")
        frame.get_by_role("heading", name="The launch of partners’ Newsflash").wait_for()
        handle = page.locator(f"iframe#{frame_id}").element_handle()
        inner = handle.content_frame().evaluate("innerWidth")
        assert inner == width
    assert page.locator("#subject").inner_text().startswith("ASA Newsflash No. 1")


@pytest.mark.browser
def test_editing_an_item_updates_the_open_page(
    page: Any, server: PreviewServer, workspace: Path
) -> None:
    page.goto(server.url)
    desktop = page.frame_locator("iframe#desktop")
    desktop.get_by_text(LAUNCH_TITLE).first.wait_for()
    retitle(workspace, "Partners get their own Newsflash")
    # No page.reload(): the page must notice by itself.
    desktop.get_by_text("Partners get their own Newsflash").first.wait_for(timeout=3000)
    page.frame_locator("iframe#phone").get_by_text(
        "Partners get their own Newsflash"
    ).first.wait_for(timeout=3000)
    assert "Partners get their own Newsflash" in page.locator("#plain-text").inner_text()


@pytest.mark.browser
def test_a_broken_item_shows_its_message_and_the_rest_still_renders(
    page: Any, server: PreviewServer, workspace: Path
) -> None:
    page.goto(server.url)
    shutil.copy(FIXTURES / "missing_title.md", workspace / "submissions" / "2022-02" / "oops.md")
    problems = page.locator("#item-problems")
    problems.wait_for(timeout=3000)
    text = problems.inner_text()
    assert "2022-02/oops.md" in text and "title" in text
    assert "2022-02/oops.md: invalid" in page.locator("#left-out").inner_text()
    desktop = page.frame_locator("iframe#desktop")
    desktop.get_by_text(LAUNCH_TITLE).first.wait_for()
    desktop.get_by_text("Battery subgroup presents the first ALBATTS results").first.wait_for()


# -- web hostilities: DNS rebinding, other methods, traversal, headers (issue 8) -----------------


def request(
    server: PreviewServer,
    path: str = "/",
    *,
    method: str = "GET",
    hosts: tuple[str, ...] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, dict[str, str], str]:
    """One request with exactly the Host header lines given (None: the right one; (): none)."""
    address, port = server.httpd.server_address[:2]
    conn = http.client.HTTPConnection(str(address), port, timeout=5)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for value in (f"{address}:{port}",) if hosts is None else hosts:
            conn.putheader("Host", value)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        return response.status, {k.lower(): v for k, v in response.getheaders()}, text
    finally:
        conn.close()


HOSTILE_HOSTS = [
    "rebind.attacker.example",  # a name the attacker's DNS points at 127.0.0.1
    "rebind.attacker.example:8000",
    "",
    " ",
    "127.0.0.1.evil.com",
    "127.0.0.1.evil.com:8000",
    "localhost.evil.com",
    "evil.com#.localhost",
    "localhost@evil",
    "user@localhost",
    "localhost.",  # a trailing dot makes it a DNS name an outside resolver may answer
    "localhost:8000:8000",
    "localhost:http",
    "localhost:123456",
    "localhost:-1",
    "127.1",
    "127.0.0.2",
    "2130706433",  # 127.0.0.1 as one number
    "0.0.0.0",
    "::1",  # IPv6 without brackets is not a Host
    "[::1",
    "[::1]x",
    "[::ffff:127.0.0.1]",
    "[::2]",
    "[fe80::1%25lo]",
    "[]",
    "EVIL.EXAMPLE",
    "LOCALHOST.EVIL.COM",
    "loc\u00e4lhost",
    "localhost\t",
]


@pytest.mark.parametrize("host", HOSTILE_HOSTS)
def test_a_request_for_any_other_host_is_refused_with_421(server: PreviewServer, host: str) -> None:
    refusal = request(server, hosts=("some.other.name",))[2]
    assert f"answers only at {server.url}" in refusal and "Newsflash" not in refusal
    for path in ("/", "/email.html", "/email.txt", "/version", "/events"):
        status, headers, text = request(server, path, hosts=(host,))
        assert status == 421, (host, path)
        assert headers["content-type"].startswith("text/plain")
        assert text == refusal  # the same few words, whatever came in: nothing echoed back


def test_a_request_without_a_host_header_is_refused(server: PreviewServer) -> None:
    status, _, text = request(server, hosts=())
    assert status == 421 and "answers only" in text


def test_a_request_with_two_host_headers_is_refused(server: PreviewServer) -> None:
    status, _, _ = request(server, hosts=("127.0.0.1", "rebind.attacker.example"))
    assert status == 421
    status, _, _ = request(server, hosts=("localhost", "localhost"))
    assert status == 421


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.1:{port}",
        "localhost",
        "localhost:{port}",
        "LOCALHOST:{port}",
        "LocalHost",
        "[::1]",
        "[::1]:{port}",
        "[0:0:0:0:0:0:0:1]:{port}",
        "localhost:9000",  # through an SSH tunnel the browser sees another port
    ],
)
def test_the_loopback_names_are_answered_with_or_without_the_port(
    server: PreviewServer, host: str
) -> None:
    port = server.httpd.server_address[1]
    status, _, text = request(server, hosts=(host.format(port=port),))
    assert status == 200 and "Newsflash" in text


def test_the_host_given_with_host_is_answered_too(workspace: Path) -> None:
    with PreviewServer(workspace / "config.toml", "2022-02", port=0, host="127.0.0.2") as s:
        port = s.httpd.server_address[1]
        for host in ("127.0.0.2", f"127.0.0.2:{port}", "localhost"):
            assert request(s, hosts=(host,))[0] == 200, host
        assert request(s, hosts=("127.0.0.3",))[0] == 421


def test_a_host_that_is_not_an_address_of_this_machine_is_a_clear_error(
    workspace: Path,
) -> None:
    """192.0.2.1 is a documentation address no machine has (and needs no DNS lookup)."""
    with pytest.raises(NewsflashError, match=r"--host 192\.0\.2\.1.*--host 127\.0\.0\.1"):
        PreviewServer(workspace / "config.toml", "2022-02", port=0, host="192.0.2.1")


def test_a_request_target_in_absolute_form_is_refused(server: PreviewServer) -> None:
    status, _, text = request(server, "http://rebind.attacker.example/")
    assert status == 400 and "Newsflash" not in text


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
def test_every_method_but_get_is_refused_so_no_other_site_can_change_anything(
    server: PreviewServer, method: str
) -> None:
    """A cross-site form can POST to 127.0.0.1; nothing here does anything when it does."""
    before = get(server.url + "version")
    status, headers, _ = request(
        server,
        "/",
        method=method,
        headers={
            "Origin": "https://attacker.example",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        body=b"rebuild=1",
    )
    assert status == 405 and headers["allow"] == "GET"
    assert "access-control-allow-origin" not in headers
    assert get(server.url + "version") == before


@pytest.mark.parametrize(
    "path",
    [
        "/../config.toml",
        "/..%2fconfig.toml",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/email.html/../../config.toml",
        "//etc/passwd",
        "//rebind.attacker.example/email.html",
        "/submissions/2022-02/newsflash-launch.md",
        "/config.toml",
        "/.git/config",
        "/email.html%00.txt",
        "/\\..\\config.toml",
    ],
)
def test_no_path_reaches_a_file_of_the_workspace(server: PreviewServer, path: str) -> None:
    status, headers, text = request(server, path)
    assert status == 404, path
    assert "[sendgrid]" not in text and "root:" not in text and "title:" not in text
    assert headers["x-content-type-options"] == "nosniff"


def test_every_page_tells_the_browser_not_to_sniff_frame_or_leak_it(
    server: PreviewServer,
) -> None:
    for path in ("/", "/email.html", "/email.txt", "/version", "/nowhere"):
        headers = request(server, path)[1]
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "no-referrer", path
        assert headers["cross-origin-resource-policy"] == "same-origin", path
        assert "frame-ancestors" in headers["content-security-policy"], path
        assert headers["cache-control"] == "no-store", path
    refused = request(server, hosts=("rebind.attacker.example",))[1]
    assert refused["x-content-type-options"] == "nosniff"


def test_the_page_runs_only_its_own_script_and_cannot_be_framed(server: PreviewServer) -> None:
    _, headers, page = request(server, "/")
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "connect-src 'self'" in csp and "frame-src 'self'" in csp
    assert headers["x-frame-options"] == "DENY"
    [nonce] = re.findall(r"'nonce-([^']+)'", csp)
    assert f'<script nonce="{nonce}">' in page
    assert request(server, "/")[1]["content-security-policy"] != csp  # a new nonce each time


def test_the_email_may_show_images_but_runs_no_script(server: PreviewServer) -> None:
    _, headers, _ = request(server, "/email.html")
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "img-src" in csp and "frame-ancestors 'self'" in csp
    assert headers["x-frame-options"] == "SAMEORIGIN"


def test_a_preview_on_ipv6_loopback_answers_for_its_bracketed_address(workspace: Path) -> None:
    with PreviewServer(workspace / "config.toml", "2022-02", port=0, host="::1") as s:
        assert s.url.startswith("http://[::1]:")
        assert "Newsflash" in get(s.url)
        assert request6(s, "[::1]") == 200 and request6(s, "rebind.attacker.example") == 421


def request6(server: PreviewServer, host: str) -> int:
    conn = http.client.HTTPConnection("::1", server.httpd.server_address[1], timeout=5)
    try:
        conn.putrequest("GET", "/", skip_host=True)
        conn.putheader("Host", host)
        conn.endheaders()
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.mark.browser
def test_the_page_works_in_a_browser_under_its_content_security_policy(
    page: Any, server: PreviewServer, workspace: Path
) -> None:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(server.url)
    frame = page.frame_locator("iframe#desktop")
    frame.get_by_text(LAUNCH_TITLE).first.wait_for()
    box = page.locator("iframe#desktop").bounding_box()
    assert box is not None and box["height"] != 1200  # fitted to the email by the page's script
    retitle(workspace, "Reloaded under the policy")
    frame.get_by_text("Reloaded under the policy").first.wait_for(timeout=3000)
    assert not [e for e in errors if "Content Security Policy" in e], errors

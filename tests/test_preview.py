"""The live preview: both widths, rebuilds on save, errors on the page instead of a crash."""

from __future__ import annotations

import os
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

from newsflash import pipeline
from newsflash.errors import NewsflashError
from newsflash.web.preview import Previewer, PreviewServer

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
    monkeypatch.setattr(pipeline, "build_edition", boom)
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


def test_the_command_prints_the_url_and_stops_on_ctrl_c(workspace: Path) -> None:
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
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        url = next(w for line in lines for w in line.split() if w.startswith("http://127.0.0.1"))
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

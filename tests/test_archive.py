"""The web archive: sent editions only, newest first, web versions without personal links, a
valid Atom feed, and a layout that matches the email's "view in browser" link."""

from __future__ import annotations

import functools
import http.server
import json
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import local_only
from click.testing import CliRunner

from newsflash import pipeline
from newsflash.cli import main
from newsflash.config import Config, load_config
from newsflash.state import ledgers
from newsflash.state.ledger import Ledger, LedgerRecipient
from newsflash.web import archive

A = "{http://www.w3.org/2005/Atom}"
BASE = "https://newsflash.example.org"
TAGS = ("-recipient_id-", "-first_name-", "-first_name_html-")
FEB_TITLES = ("The ASA launches the partners’ Newsflash", "Working Group 1 holds its first meeting")


def send(config: Config, edition_id: str, *, accept: bool = True) -> pipeline.BuiltEdition:
    """Record a send of the edition as it builds now, through the ledger's own API."""
    build = ledgers.build_edition(config, edition_id)
    with Ledger(archive.ledger_file(config)) as ledger, ledger.sending(edition_id):
        ledger.start_send(
            edition_id,
            build.edition.manifest_hash,
            json.dumps(build.edition.manifest, sort_keys=True),
            [LedgerRecipient("r1", "a@example.org"), LedgerRecipient("r2", "b@example.org")],
        )
        batch = ledger.next_batch(edition_id, 1000)
        assert batch is not None
        if accept:
            ledger.mark_accepted(batch.id, "msg-1")
        else:
            ledger.mark_failed(batch.id, "HTTP 400")
    return build


@pytest.fixture
def config(workspace: Path) -> Config:
    return load_config(workspace / "config.toml")


@pytest.fixture
def site(config: Config) -> Path:
    """February and March sent; April started but refused, so not sent."""
    send(config, "2022-02")
    send(config, "2022-03")
    send(config, "2022-04", accept=False)
    archive.write_site(config)
    return config.site_dir


def hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', html)


def test_index_lists_every_sent_edition_newest_first(site: Path) -> None:
    index = (site / "index.html").read_text()
    links = [h for h in hrefs(index) if re.fullmatch(r"\d{4}-\d{2}/index.html", h)]
    assert links == ["2022-03/index.html", "2022-02/index.html"]
    assert "2022-04" not in index
    assert "No. 2 · March 2022" in index and "No. 1 · February 2022" in index
    assert all((site / link).is_file() for link in links)
    assert not (site / "2022-04").exists()


def test_feed_is_atom_with_absolute_links(site: Path) -> None:
    root = ET.parse(site / "feed.xml").getroot()
    assert root.tag == f"{A}feed"
    assert root.findtext(f"{A}id") == f"{BASE}/"
    assert root.findtext(f"{A}title") == "ASA Newsflash"
    assert datetime.fromisoformat(root.findtext(f"{A}updated", "").replace("Z", "+00:00"))
    assert root.find(f"{A}author/{A}name") is not None
    self_link = root.find(f"{A}link[@rel='self']")
    assert self_link is not None and self_link.get("href") == f"{BASE}/feed.xml"
    entries = root.findall(f"{A}entry")
    assert [e.findtext(f"{A}id") for e in entries] == [f"{BASE}/2022-03/", f"{BASE}/2022-02/"]
    for entry in entries:
        link = entry.find(f"{A}link[@rel='alternate']")
        assert link is not None and link.get("href") == entry.findtext(f"{A}id")
        assert entry.findtext(f"{A}title", "").startswith("No. ")
        assert entry.findtext(f"{A}summary")
        datetime.fromisoformat(entry.findtext(f"{A}updated", "").replace("Z", "+00:00"))
        # the absolute link is the published path of a file the archive wrote
        path = link.get("href", "").removeprefix(BASE + "/")
        assert (site / path / "index.html").is_file()


def test_the_emails_view_in_browser_link_points_at_the_archive_page(
    config: Config, site: Path
) -> None:
    html = ledgers.build_edition(config, "2022-02").email.html
    view = re.search(r'href="([^"]+)"[^>]*>View in your browser', html)
    assert view is not None and view.group(1) == f"{BASE}/2022-02/"
    assert (site / view.group(1).removeprefix(BASE + "/") / "index.html").is_file()


def test_pages_have_no_personal_links_or_tags(site: Path) -> None:
    for page in [site / "index.html", *site.glob("*/index.html")]:
        html = page.read_text()
        assert "unsubscribe" not in html.lower(), page
        assert not [t for t in TAGS if t in html], page
        assert "Dear " not in html, page


def test_links_between_pages_are_relative(site: Path) -> None:
    index = (site / "index.html").read_text()
    internal = [h for h in hrefs(index) if "example.org" in h or h.endswith(".html")]
    assert internal and all(not h.startswith(("http", "/")) for h in internal)
    page = (site / "2022-02" / "index.html").read_text()
    # Links only: the email's images (logo, picture) may live under the same address.
    assert '<a href="../index.html"' in page and not [h for h in hrefs(page) if BASE in h]


def test_the_archive_publishes_the_contributors_guide_as_a_page_with_this_newsletters_sections(
    workspace: Path,
) -> None:
    """Regression (issue 13): notices sent contributors to docs/contributors.md, a path in a
    repository they never see. The guide is a page of the site now, at the address they get."""
    path = workspace / "config.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('title = "Agenda"', 'title = "Events & dates"'), "utf-8")
    config = load_config(path)

    archive.write_site(config)

    page = (config.site_dir / "contributors" / "index.html").read_text(encoding="utf-8")
    assert "<h1>Writing an item for the Newsflash</h1>" in page
    assert "<table>" in page and "<code>section</code>" in page  # Markdown rendered
    assert "<strong>one small text file</strong>" in page and "<!-- sections" not in page
    assert "<td>Events &amp; dates</td>" in page and "<td>Agenda</td>" not in page
    index = (config.site_dir / "index.html").read_text(encoding="utf-8")
    assert 'href="contributors/index.html"' in index
    assert '<a href="../index.html">Past editions</a>' in page


def test_a_workspaces_own_contributors_guide_is_the_one_published(config: Config) -> None:
    own = config.path.parent / "docs" / "contributors.md"
    own.parent.mkdir()
    own.write_text("# How we take items\n\nWrite to <b>us</b>.\n", encoding="utf-8")

    archive.write_site(config)

    page = (config.site_dir / "contributors" / "index.html").read_text(encoding="utf-8")
    assert "<h1>How we take items</h1>" in page
    assert "Write to &lt;b&gt;us&lt;/b&gt;." in page  # its HTML shown, never run


def test_web_versions_carry_the_items_each_send_recorded(config: Config) -> None:
    send(config, "2022-02")
    march = send(config, "2022-03")
    assert [i.key for i in march.edition.items] == ["2022-03/drives-final-conference.md"]
    # After the sends: a new unpinned item, and a February item edited.
    (config.submissions_dir / "late.md").write_text(
        "---\ntitle: A late arrival\nsection: alliance\ndate: 2022-03-30\n---\nLate.\n"
    )
    launch = config.submissions_dir / "2022-02" / "newsflash-launch.md"
    launch.write_text(launch.read_text() + "\nA sentence added later.\n")
    result = archive.write_site(config)
    feb = (config.site_dir / "2022-02" / "index.html").read_text()
    mar = (config.site_dir / "2022-03" / "index.html").read_text()
    assert all(t in feb for t in FEB_TITLES) and "DRIVES final conference" not in feb
    assert "DRIVES final conference" in mar
    assert "A late arrival" not in feb + mar
    assert any("newsflash-launch.md changed since it was sent" in n for n in result.notes)


def test_no_sent_edition_writes_an_empty_archive(config: Config) -> None:
    result = archive.write_site(config)
    assert result.pages == ()
    assert "No edition has been sent yet" in (config.site_dir / "index.html").read_text()
    assert ET.parse(config.site_dir / "feed.xml").getroot().findall(f"{A}entry") == []


def test_cli_archive(config: Config) -> None:
    send(config, "2022-02")
    result = CliRunner().invoke(main, ["--config", str(config.path), "archive"])
    assert result.exit_code == 0, result.output
    assert "1 sent edition(s)" in result.output
    assert (config.site_dir / "2022-02" / "index.html").is_file()


# -- in a browser --------------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def site_url(site: Path) -> Iterator[str]:
    """site/ served as any static web server would."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.browser
def test_archive_in_a_browser_links_to_every_sent_edition(browser: Any, site_url: str) -> None:
    page = browser.new_page()
    blocked = local_only(page)
    try:
        page.goto(site_url)
        links = page.locator("ol.editions a")
        assert links.count() == 2
        titles = [links.nth(i).inner_text() for i in range(2)]
        for i, title in enumerate(titles):
            page.locator("ol.editions a").nth(i).click()
            page.wait_for_load_state()
            assert page.url.endswith(("/2022-03/index.html", "/2022-02/index.html")[i])
            page.get_by_role("heading", name=title).wait_for()
            assert page.get_by_text("Unsubscribe").count() == 0
            body = page.content()
            assert not [t for t in TAGS if t in body]
            page.get_by_role("link", name="Past editions").click()
            page.wait_for_load_state()
            assert page.url == site_url + "index.html"
        assert page.locator("link[rel=alternate][type='application/atom+xml']").count() == 1
        assert blocked == []
    finally:
        page.close()

"""The send records each item's title and links with the manifest the ledger keeps, so the
report maps each click to its item without parsing the item files (nor importing the parser):
as partners got them, whatever the files say since; a send by an older newsflash (nothing
recorded) or a damaged record falls back to the item files, with the same figures.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from newsflash.config import Config, load_config
from newsflash.reports import edition_report
from newsflash.reports.figures import NO_ITEM
from newsflash.reports.rows import EditionReport
from newsflash.reports.sources import accepted
from newsflash.sending.approval import approve
from newsflash.sending.send import send_edition
from newsflash.state.events import EventStore, parse_event
from newsflash.state.ledger import Ledger

ED = "2022-02"
BATTERY, AGENDA = "2022-02/battery-albatts-results.md", "2022-02/agenda-drives-albatts.md"
ALBATTS = "https://www.project-albatts.eu/"  # the battery item's 'read more'
PROGRAMME = "https://example.org/programme"  # added to the agenda item below
BATTERY_TITLE = "Battery subgroup presents the first ALBATTS results"


@pytest.fixture
def sent(workspace: Path) -> Config:
    """The sample edition, one link added to the agenda item, sent through the outbox; each
    partner clicks both links and one link no item has."""
    agenda = workspace / "submissions" / AGENDA
    agenda.write_text(
        agenda.read_text(encoding="utf-8") + f"\nSee [the programme]({PROGRAMME}).\n",
        encoding="utf-8",
    )
    config = load_config(workspace / "config.toml")
    approve(config, ED, "ana")
    assert send_edition(config, ED).complete
    rows = accepted(_ledger(config), ED)
    urls = [ALBATTS, PROGRAMME, "https://example.org/elsewhere"]
    store = EventStore.in_state(config.state_dir)
    store.record(
        [
            parse_event(
                {"event": "click", "email": email, "recipient_id": rid, "edition": ED,
                 "url": url, "useragent": "Mozilla/5.0", "timestamp": 2_000_000_000 + n,
                 "sg_event_id": f"c{n}-{url}"}
            )
            for n, (rid, email, _) in enumerate(rows)
            for url in urls
        ]
    )  # fmt: skip
    store.close()
    return config


def _ledger(config: Config) -> Path:
    return config.state_dir / "outbox-ledger.sqlite"


def _manifest(config: Config) -> dict[str, Any]:
    with Ledger(_ledger(config)) as ledger:
        manifest = ledger.manifest(ED)
    assert manifest is not None
    return manifest


def _store_manifest(config: Config, manifest: dict[str, Any]) -> None:
    with sqlite3.connect(_ledger(config)) as conn:
        conn.execute("UPDATE sends SET manifest_json = ?", (json.dumps(manifest),))


def _by_item(report: EditionReport) -> dict[str, tuple[str, int]]:
    return {i.item_key: (i.title, i.clickers) for i in report.engagement.items}


def test_a_send_records_each_items_title_and_links_with_its_manifest(sent: Config) -> None:
    clickable = _manifest(sent)["clickable"]
    assert set(clickable) == {i["path"] for i in _manifest(sent)["items"]}
    assert clickable[BATTERY] == {"title": BATTERY_TITLE, "links": [ALBATTS]}
    assert PROGRAMME in clickable[AGENDA]["links"]


def test_clicks_map_to_the_items_as_sent_whatever_the_files_say_since(sent: Config) -> None:
    before = edition_report(sent, ED)
    partners = len(accepted(_ledger(sent), ED))
    assert _by_item(before)[BATTERY] == (BATTERY_TITLE, partners)
    assert _by_item(before)[AGENDA][1] == _by_item(before)[NO_ITEM][1] == partners
    battery = sent.submissions_dir / BATTERY
    battery.write_text(
        battery.read_text(encoding="utf-8")
        .replace(BATTERY_TITLE, "A new title")
        .replace(ALBATTS, "https://example.org/moved"),
        encoding="utf-8",
    )
    (sent.submissions_dir / AGENDA).unlink()
    after = edition_report(sent, ED)
    assert after == before
    assert not any("gone from submissions" in note for note in after.notes)


def test_a_send_an_older_newsflash_recorded_nothing_for_maps_clicks_from_the_item_files(
    sent: Config,
) -> None:
    recorded = edition_report(sent, ED)
    older = _manifest(sent)
    del older["clickable"]
    _store_manifest(sent, older)
    assert edition_report(sent, ED) == recorded
    (sent.submissions_dir / AGENDA).unlink()  # as before: a file gone is a note
    report = edition_report(sent, ED)
    assert _by_item(report)[AGENDA] == (AGENDA, 0)
    assert any(f"gone from submissions since the send: {AGENDA}" in n for n in report.notes)


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    def damage(clickable: dict[str, Any]) -> None:
        clickable[BATTERY][path] = value

    return damage


# A record the report cannot trust: each is read from the item files instead.
DAMAGED: dict[str, Callable[[dict[str, Any]], None]] = {
    "an item missing from the record": lambda c: c.pop(BATTERY),
    "an item's entry not an object": lambda c: c.update({BATTERY: [ALBATTS]}),
    "a title that is not text": _set("title", 7),
    "no title": lambda c: c[BATTERY].pop("title"),
    "links that are not a list": _set("links", ALBATTS),
    "a link that is not text": _set("links", [ALBATTS, None]),
}


@pytest.mark.parametrize("damage", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_damaged_record_of_the_items_falls_back_to_the_item_files(
    sent: Config, damage: Callable[[dict[str, Any]], None]
) -> None:
    recorded = edition_report(sent, ED)
    manifest = _manifest(sent)
    damage(manifest["clickable"])
    _store_manifest(sent, manifest)
    assert edition_report(sent, ED) == recorded


@pytest.mark.parametrize("record", [None, "a string", [1, 2]], ids=["null", "text", "a list"])
def test_a_record_of_the_wrong_kind_falls_back_to_the_item_files(
    sent: Config, record: object
) -> None:
    recorded = edition_report(sent, ED)
    _store_manifest(sent, {**_manifest(sent), "clickable": record})
    assert edition_report(sent, ED) == recorded


def test_the_report_of_a_recorded_send_imports_no_item_parser(sent: Config) -> None:
    """What made reading the items cost: the Markdown parser, the sanitiser, the YAML."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from newsflash.config import load_config\n"
        "from newsflash.reports import edition_report\n"
        f"edition_report(load_config(Path({str(sent.path)!r})), {ED!r})\n"
        "heavy = ('newsflash.items', 'markdown_it', 'nh3', 'newsflash.subscriber_parser')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"

"""The loop closed: a partner's one-click unsubscribe, from the link in a real email to the
next send that no longer mails them, whatever subscribers.csv still says.

Every part is real: the outbox writes the .eml, its List-Unsubscribe header gives the URL,
`newsflash serve`'s app answers it under uvicorn on 127.0.0.1, the suppression store keeps it,
and the next send reads the store.
"""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from conftest import TEST_SECRET
from serve_helpers import running

from newsflash.config import Config, load_config
from newsflash.sending.send import send_edition
from newsflash.serve.app import create_app
from newsflash.state.suppressions import SuppressionStore
from newsflash.transports.factory import make_transport

ANNA = "anna.keller@example.org"
MARC = "marc.dubois@example.com"


def _config(workspace: Path) -> Config:
    path = workspace / "config.toml"
    text = path.read_text(encoding="utf-8").replace(
        "require_approval = true", "require_approval = false"
    )
    text += '\n[editions."2022-03"]\ntitle = "March"\n'
    path.write_text(text, encoding="utf-8")
    # March gets an item of its own, so there is something to send.
    item = workspace / "submissions" / "march-note.md"
    item.write_text(
        "---\ntitle: A note for March\nsection: alliance\ndate: 2022-03-01\nedition: '2022-03'\n"
        "status: ready\n---\nA short note.\n",
        encoding="utf-8",
    )
    return load_config(path)


def _link_in(eml: Path) -> str:
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    header = " ".join(str(msg["List-Unsubscribe"]).split())
    match = re.search(r"<(https://[^>]+)>", header)
    assert match, header
    return match.group(1)


def _transport(config: Config) -> Any:
    return make_transport(config)


def test_a_one_click_unsubscribe_from_a_real_email_keeps_the_partner_out_of_the_next_send(
    workspace: Path,
) -> None:
    config = _config(workspace)
    report = send_edition(config, "2022-02", transport=_transport(config))
    assert report.complete
    (anna_eml,) = (config.outbox_dir / "2022-02").glob(f"*{ANNA}.eml")
    link = _link_in(anna_eml)
    assert "sample" not in link and "/unsubscribe/" in link

    app = create_app(config, environ={"NEWSFLASH_SECRET": TEST_SECRET})
    with running(app) as server:
        answer = server.form(urlsplit(link).path, "List-Unsubscribe=One-Click")
    assert answer.status == 200
    store = SuppressionStore.in_state(config.state_dir)
    try:
        assert store.suppressed([ANNA]) == {ANNA}
    finally:
        store.close()
    assert "subscribed" in (workspace / "subscribers.csv").read_text(encoding="utf-8")

    march = send_edition(config, "2022-03", transport=_transport(config))
    assert march.complete
    sent = {p.name.split("-", 1)[1] for p in (config.outbox_dir / "2022-03").glob("*.eml")}
    assert ANNA + ".eml" not in sent
    assert len(sent) == len(list((config.outbox_dir / "2022-02").glob("*.eml"))) - 1


def test_a_partner_suppressed_during_a_send_is_not_mailed_by_its_later_batches(
    workspace: Path,
) -> None:
    config = _config(workspace)
    text = (workspace / "config.toml").read_text(encoding="utf-8")
    (workspace / "config.toml").write_text(
        re.sub(r"batch_size = \d+", "batch_size = 1", text), encoding="utf-8"
    )
    config = load_config(workspace / "config.toml")
    store = SuppressionStore.in_state(config.state_dir)
    mailed: list[int] = []

    def after_batch(done: int, total: int) -> None:
        mailed.append(done)
        if done == 1:  # Marc (second on the list) clicks one-click after the first batch
            store.add(MARC, "unsubscribe", "one-click")

    try:
        report = send_edition(config, "2022-02", transport=_transport(config), progress=after_batch)
    finally:
        store.close()
    assert report.complete
    names = [p.name for p in (config.outbox_dir / "2022-02").glob("*.eml")]
    assert any(ANNA in n for n in names)  # the first batch
    assert not any(MARC in n for n in names), names
    assert report.skipped == 1

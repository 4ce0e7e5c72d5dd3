"""A secretariat's first month, as the README's "Start a newsletter" and "Each month" tell it.

Every step is the installed `newsflash` command run in a temporary folder: no repository
checkout on the path (the working directory is the new workspace; PYTHONPATH holds only the
clock below), so the workspace finds no config.toml or templates/ but its own and the
package's. The processes run at fixed instants: a `sitecustomize` on PYTHONPATH starts
time-machine at NEWSFLASH_TEST_NOW, so the coming edition is the same whatever day this runs.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from newsflash.render import template_hash

pytestmark = pytest.mark.slow

BRUSSELS = ZoneInfo("Europe/Brussels")
JUNE = dt.datetime(2026, 6, 17, 14, 0, tzinfo=BRUSSELS)  # the coming send: Tue 7 July, 09:00
JULY = dt.datetime(2026, 7, 8, 10, 0, tzinfo=BRUSSELS)  # the day after it: August is coming
NEWSFLASH = Path(sys.executable).with_name("newsflash")
SITECUSTOMIZE = """\
import os
import time_machine

time_machine.travel(os.environ["NEWSFLASH_TEST_NOW"], tick=True).start()
"""
PARTNERS = (
    "anna.keller@example.org,Anna,Keller,Autoteile Nord,,subscribed,de\n"
    "marc.dubois@example.com,Marc,Dubois,Institut Mobilité,,subscribed,fr\n"
    "left@example.net,Lea,Left,Gone GmbH,,unsubscribed,de\n"
)


class Secretariat:
    """Runs newsflash as the secretariat would: in the workspace, one command at a time."""

    def __init__(self, home: Path, clock_dir: Path) -> None:
        self.home = home
        self.cwd = home
        self.now = JUNE
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "SENDGRID_API_KEY", "NEWSFLASH_SENDGRID_HOST")
        }
        self.env.update(
            PYTHONPATH=str(clock_dir), NEWSFLASH_REVIEWER="ana", COLUMNS="200", NO_COLOR="1"
        )

    def run(self, *args: str, ok: bool = True) -> str:
        env = {**self.env, "NEWSFLASH_TEST_NOW": self.now.isoformat()}
        done = subprocess.run(
            [str(NEWSFLASH), *args],
            cwd=self.cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        out = done.stdout + done.stderr
        assert (done.returncode == 0) is ok, (
            f"newsflash {' '.join(args)} -> {done.returncode}\n{out}"
        )
        assert "Traceback" not in out, out
        return out

    def new_item(self, title: str) -> Path:
        """`newsflash new`, then the contributor writes the item and marks it ready."""
        out = self.run("new", "news", "--title", title)
        path = Path(out.split("created", 1)[1].split()[0])
        text = path.read_text(encoding="utf-8").replace("status: draft", "status: ready", 1)
        text = text.replace("Write the item here in Markdown", f"{title}: the details", 1)
        path.write_text(text, encoding="utf-8")
        return path


@pytest.fixture
def secretariat(tmp_path: Path) -> Secretariat:
    clock_dir = tmp_path / "clock"
    clock_dir.mkdir()
    (clock_dir / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()
    return Secretariat(home, clock_dir)


def test_the_first_month_from_init_to_the_outbox_and_the_start_of_the_next(
    secretariat: Secretariat,
) -> None:
    s = secretariat
    assert NEWSFLASH.is_file(), "the package is not installed in this interpreter's env"
    out = s.run("init", "alliance-news")
    assert "Edition No. 1 is 2026-07" in out
    s.cwd = s.home / "alliance-news"
    assert not (s.cwd / "templates").exists()  # the package's design, no copy
    with (s.cwd / "subscribers.csv").open("a", encoding="utf-8") as f:
        f.write(PARTNERS)
    (s.cwd / "submissions" / "example-first-item.md").unlink()

    first = s.new_item("The working group meets in Brussels")
    second = s.new_item("A new training offer for battery technicians")
    before = (s.cwd / "config.toml").read_text(encoding="utf-8")
    out = s.run("edition", "new", "2026-07", "--title", "Our first Newsflash")
    assert 'added [editions."2026-07"] to' in out
    after = (s.cwd / "config.toml").read_text(encoding="utf-8")
    assert after.startswith(before)  # every comment kept; the table added at the end
    assert '[editions."2026-07"]\ntitle = "Our first Newsflash"' in after

    assert "2 valid, 0 with errors" in s.run("check")
    out = s.run("build")
    assert "edition 2026-07 (the coming one by the schedule" in out
    assert "subject: Our Newsflash No. 1 – July 2026" in out
    assert "warning" not in out
    html = (s.cwd / "build" / "2026-07" / "email.html").read_text(encoding="utf-8")
    assert "The working group meets in Brussels" in html and "battery technicians" in html

    assert "approved" in s.run("approve")
    out = s.run("send")
    assert "2026-07" in out
    sent = sorted((s.cwd / "outbox" / "2026-07").glob("*.eml"))
    assert len(sent) == 2  # the unsubscribed partner is not mailed
    messages = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in sent]
    assert sorted(m["To"] for m in messages) == [
        "Anna Keller <anna.keller@example.org>",
        "Marc Dubois <marc.dubois@example.com>",
    ]
    assert all(m["Subject"] == "Our Newsflash No. 1 – July 2026" for m in messages)
    assert "accepted" in s.run("status")
    assert "1 sent edition(s)" in s.run("archive")
    assert (s.cwd / "site" / "2026-07" / "index.html").is_file()

    s.now = JULY  # the send went out yesterday: the coming edition is August's
    s.run("edition", "new", "2026-08", "--title", "Summer news")
    third = s.new_item("The summer school opens")
    out = s.run("build")
    assert "edition 2026-08 (the coming one by the schedule" in out
    assert "subject: Our Newsflash No. 2 – August 2026" in out
    manifest = json.loads((s.cwd / "build" / "2026-08" / "manifest.json").read_text("utf-8"))
    assert [i["path"] for i in manifest["items"]] == [third.name]
    left_out = {lo["path"]: lo["reason"] for lo in manifest["left_out"]}
    assert left_out == {
        first.name: "already published in an edition that was sent",
        second.name: "already published in an edition that was sent",
    }
    # the design came from the package alone: no templates/ anywhere it could have found one
    assert manifest["template_sha256"] == template_hash(s.home / "no-templates-here")

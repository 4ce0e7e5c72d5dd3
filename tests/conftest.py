"""Shared fixtures: no test reaches the internet or reads the calendar; browsers are Debian's.

Network: every test runs with outbound connections limited to loopback; a test that tries to
reach anything else fails loudly instead of silently depending on the network.

Clock: every test runs at a fixed instant (`clock`, time-machine with the clock ticking on from
there), so nothing depends on the day or the hour the suite runs. A module that needs other
instants overrides the fixture with parameters (test_timetable, test_scheduler and test_jobs
run at several, including the hour after a first-Tuesday send: calendar_helpers' `clock`).
Processes a test starts run on the real clock, so what they schedule must not depend on it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from fake_sendgrid import DEFAULT_API_KEY, FakeSendGrid, running_server

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("NEWSFLASH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "tests" / "artifacts"

# A Wednesday in mid-June, 14:00 in Brussels: far from a first-Tuesday send, a month's end and
# a daylight-saving change, so a test that still depends on the calendar shows it elsewhere.
DEFAULT_NOW = dt.datetime(2026, 6, 17, 14, 0, tzinfo=ZoneInfo("Europe/Brussels"))


def at_instant(instant: dt.datetime) -> Iterator[dt.datetime]:
    """Run a test from `instant` on, the clock ticking as usual (sleeps and timeouts still work)."""
    with time_machine.travel(instant, tick=True):
        yield instant


@pytest.fixture(autouse=True)
def clock() -> Iterator[dt.datetime]:
    yield from at_instant(DEFAULT_NOW)


# What signs unsubscribe tokens in tests, as NEWSFLASH_SECRET does in a real shell.
TEST_SECRET = "test-secret-for-unsubscribe-tokens-0123456789"


def token(recipient: str) -> str:
    """The signed unsubscribe token a send under TEST_SECRET puts in `recipient`'s email."""
    from newsflash.tokens import Signer

    return Signer([TEST_SECRET]).unsubscribe_token(recipient)


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_local(address: Any) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if not _is_local(address):
        raise OSError(f"network blocked in tests: connection to {address!r} refused")
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if not _is_local(address):
        raise OSError(f"network blocked in tests: connection to {address!r} refused")
    return _real_connect_ex(self, address)


_real_getaddrinfo = socket.getaddrinfo


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    """Names other than loopback's never reach a DNS server: they fail as an unknown name does
    (the link check's tests rely on that for a name that cannot resolve)."""
    name = host.decode() if isinstance(host, bytes) else host
    if name is None or _is_local((name, 0)) or name == socket.gethostname():
        return _real_getaddrinfo(host, *args, **kwargs)
    raise socket.gaierror(socket.EAI_NONAME, f"name lookup blocked in tests: {name}")


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    monkeypatch.setenv("NEWSFLASH_SECRET", TEST_SECRET)
    monkeypatch.delenv("NEWSFLASH_SENDGRID_HOST", raising=False)


@pytest.fixture(autouse=True)
def _own_config_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A cache folder of the test's own (newsflash/config_cache.py keeps validated configs
    there): no test writes the user's ~/.cache, none finds a Config another one kept."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


@pytest.fixture(autouse=True)
def _idle_writes_done() -> Iterator[None]:
    """The writes a test left to idle_writes (its items' parses, for the next process) done
    before the next test starts, so none lands in another test's cache folder."""
    from newsflash import idle_writes

    yield
    idle_writes.flush()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A copy of the sample newsletter (config, items, partner list) to change; like the
    sample, it has no templates/ of its own and uses the package's."""
    for name in ("config.toml", "subscribers.csv"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "submissions", tmp_path / "submissions")
    return tmp_path


def own_template(workspace: Path, name: str, extra: str = "") -> Path:
    """Give `workspace` its own copy of the package's template `name` (e.g.
    "partials/footer.mjml.j2") with `extra` appended, written in one step, as a
    secretariat customising the design would; returns its path."""
    from newsflash.render import PACKAGE_TEMPLATES

    path = workspace / "templates" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text((PACKAGE_TEMPLATES / name).read_text(encoding="utf-8") + extra, "utf-8")
    return path


def missing_tool(reason: str) -> None:
    """A checker the machine lacks: skip with the reason, except under CI where it must fail
    (.ci/run installs every one)."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason + " (required under CI=true)")
    pytest.skip(reason)


def chromium_or_skip() -> str:
    """The browser's path; a missing browser skips, except under CI where it must fail."""
    if not Path(CHROMIUM).exists():
        missing_tool(
            f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) "
            "to run browser tests"
        )
    return CHROMIUM


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session, driven by Playwright with Debian's binary."""
    path = chromium_or_skip()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover
        if os.environ.get("CI"):
            pytest.fail("playwright is not installed (pip install -e '.[test]')")
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def sg(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSendGrid]:
    """The strict fake SendGrid on 127.0.0.1, where a send's key and host point; a test file
    that needs another one (a shared server, latency, more keys) defines its own `sg`."""
    with running_server() as server:
        monkeypatch.setenv("SENDGRID_API_KEY", DEFAULT_API_KEY)
        monkeypatch.setenv("NEWSFLASH_SENDGRID_HOST", server.url)
        yield server

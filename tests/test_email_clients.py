"""The sample email through the checkers mail professionals use, run for real on this machine.

- SpamAssassin (Debian's `spamassassin -t -L`, local rules only) on an .eml the outbox wrote;
- axe-core in Chromium, WCAG A/AA and best practice, light, dark and at 375 px;
- doiuse-email (caniemail.com's support data) for Gmail, Outlook and Apple Mail.

`.ci/run` installs all three (apt-get install spamassassin; `npm ci` in tests/node/). Where one
is missing its tests skip and say how to install it; under CI=true they fail instead.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import shutil
import subprocess
from collections import Counter
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from conftest import missing_tool

from newsflash.config import load_config
from newsflash.pipeline import build_edition, write_build
from newsflash.sending.approval import approve
from newsflash.sending.send import send_edition

EDITION = "2022-02"
NODE_DIR = Path(__file__).resolve().parent / "node"
AXE = NODE_DIR / "node_modules" / "axe-core" / "axe.min.js"
LINTER = NODE_DIR / "lint-email.mjs"
NPM_HINT = "install the checkers with: (cd tests/node && npm ci)"
MAX_SPAM_SCORE = 0.1

# caniemail's client ids: Gmail (web, apps, mobile web), Outlook for Windows, for macOS and
# outlook.com, and Apple Mail on macOS and iOS. (doiuse-email does not list outlook.com; the
# runner adds it from the same data.)
CLIENTS = (
    "gmail.desktop-webmail",
    "gmail.ios",
    "gmail.android",
    "gmail.mobile-webmail",
    "outlook.windows",
    "outlook.macos",
    "outlook.outlook-com",
    "apple-mail.macos",
    "apple-mail.ios",
)

# What caniemail reports and why each is harmless here: (feature, client pattern) -> reason.
ALLOWED: dict[tuple[str, str], str] = {
    ("@media", r"outlook\.windows|gmail\.mobile-webmail"): (
        "the media queries only widen columns and switch on dark colours; without them the "
        "email is the 600 px single-column layout MJML gives Outlook in conditional tables"
    ),
    (
        "Type selector|Class selector|ID selector|Descendant combinator|Chaining selectors",
        r"gmail\.mobile-webmail",
    ): (
        "Gmail's mobile web view ignores <style>; every rule that shapes the email is inlined "
        "by premailer, and what stays in <head> (MJML's reset, the responsive and dark rules) "
        "is enhancement"
    ),
    ("Chaining selectors", r"outlook\.(windows|outlook-com)"): (
        "MJML's `.moz-text-html .mj-column-per-100` (for Thunderbird) and the dark-mode rules "
        "inside @media (prefers-color-scheme), which neither client applies: Outlook for "
        "Windows takes its columns from conditional tables, outlook.com darkens by itself"
    ),
    ("target attribute", r"gmail\..*|outlook\.(macos|outlook-com)"): (
        "mj-button always writes target=_blank (for the web archive); these clients ignore it "
        "and open the link in the browser, as with every other link"
    ),
    ("display:none", r"gmail\.mobile-webmail"): (
        "the preheader then shows as a first line: it is the edition's one-line summary"
    ),
    ("overflow", r"outlook\.windows"): (
        "the preheader is also hidden with mso-hide:all, which Outlook for Windows obeys"
    ),
    ("outline|border-radius", r"outlook\.windows"): (
        "MJML's image reset and the rounded corners of the button and the card: Outlook for "
        "Windows draws square corners and no outline, which is how it looks there"
    ),
    ("Local anchors", r"gmail\.ios|gmail\.android|outlook\.(ios|android)"): (
        "the contents links do nothing in these apps; the list still reads as a summary and "
        "every item is a scroll away (test_email_design checks the <a name> targets)"
    ),
}


def _allowance(error: str) -> tuple[str, str] | None:
    m = re.match(r"`(.+)` is not supported by `(.+)`", error)
    if not m:
        return None
    feature, client = m.groups()
    for key in ALLOWED:
        if re.fullmatch(key[0], feature) and re.fullmatch(key[1], client):
            return key
    return None


@pytest.fixture
def built(workspace: Path) -> Path:
    """The sample's email.html as `newsflash build` writes it (tags unfilled)."""
    config = load_config(workspace / "config.toml")
    return write_build(config, build_edition(config, EDITION)) / "email.html"


@pytest.fixture
def outbox_eml(workspace: Path) -> Path:
    """One partner's .eml, written by the outbox transport as `newsflash send` does."""
    config = load_config(workspace / "config.toml")
    approve(config, EDITION, "ana")
    send_edition(config, EDITION)
    files = sorted((workspace / "outbox" / EDITION).glob("*.eml"))
    assert files, "the outbox wrote nothing"
    return files[0]


def spam_score(eml: Path, home: Path) -> tuple[float, list[str]]:
    """SpamAssassin's score and the rules that scored, offline (-L: no network tests)."""
    spamassassin = shutil.which("spamassassin")
    if spamassassin is None:
        missing_tool("spamassassin not found: apt-get install -y spamassassin")
    assert spamassassin is not None
    home.mkdir(exist_ok=True)  # its user_prefs go here, not into the real home
    run = subprocess.run(
        [spamassassin, "-t", "-L"],
        input=eml.read_bytes(),
        capture_output=True,
        env={**os.environ, "HOME": str(home)},
        timeout=120,
        check=True,
    )
    report = run.stdout.decode("utf-8", "replace")
    m = re.search(r"Content analysis details:\s+\((-?[\d.]+) points", report)
    assert m, f"no score in SpamAssassin's report:\n{report[-2000:]}"
    hits = re.findall(r"^\s*(-?\d+\.\d+)\s+([A-Z0-9_]+)\s", report, re.MULTILINE)
    return float(m.group(1)), [f"{name} ({pts})" for pts, name in hits if float(pts) != 0]


def test_spamassassin_scores_an_outbox_email_at_most_a_tenth_of_a_point(
    outbox_eml: Path, tmp_path: Path
) -> None:
    score, hits = spam_score(outbox_eml, tmp_path / "home")
    assert score <= MAX_SPAM_SCORE, f"SpamAssassin scored {score}: {hits}"


def test_spamassassin_still_scores_the_old_white_preheader(
    outbox_eml: Path, tmp_path: Path
) -> None:
    """The checker can fail: MJML's preheader (hidden, white on white) scored before."""
    msg = email.message_from_bytes(outbox_eml.read_bytes(), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    html_part = msg.get_body(("html",))
    assert isinstance(html_part, EmailMessage)
    html = html_part.get_content()
    white = 'style="display:none;font-size:1px;color:#ffffff;line-height:1px;max-height:0px;'
    hostile = re.sub(r'class="nf-preheader" style="', white, html, count=1)
    assert hostile != html
    html_part.set_content(hostile, subtype="html", cte="quoted-printable")
    eml = tmp_path / "white-preheader.eml"
    eml.write_bytes(msg.as_bytes())
    score, hits = spam_score(eml, tmp_path / "home")
    assert any(h.startswith("HTML_FONT_LOW_CONTRAST") for h in hits), (score, hits)


def run_axe(page: Any) -> list[dict[str, Any]]:
    if not AXE.is_file():
        missing_tool(f"{AXE} not found: {NPM_HINT}")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """() => axe.run(document, {runOnly: {type: 'tag', values: [
             'wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']},
             resultTypes: ['violations']})"""
    )
    assert result["passes"], "axe ran no rule that passed: the page was empty"
    return [
        {
            "rule": v["id"],
            "impact": v["impact"],
            "nodes": [n["html"][:120] for n in v["nodes"][:3]],
        }
        for v in result["violations"]
    ]


@pytest.mark.browser
@pytest.mark.parametrize(
    ("width", "scheme"), [(600, "light"), (600, "dark"), (375, "light"), (375, "dark")]
)
def test_axe_core_finds_no_violation_and_no_best_practice_issue(
    browser: Any, built: Path, width: int, scheme: str
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 800}, color_scheme=scheme)
    try:
        page = context.new_page()
        page.route(
            "**/*",
            lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort(),
        )
        page.goto(built.as_uri())
        violations = run_axe(page)
    finally:
        context.close()
    assert violations == [], json.dumps(violations, indent=1)


def test_axe_core_finds_a_missing_alt_text(browser: Any, tmp_path: Path) -> None:
    """The checker can fail: an image without alt is a violation it reports."""
    page_file = tmp_path / "bad.html"
    page_file.write_text(
        '<!DOCTYPE html><html lang="en"><head><title>t</title></head><body><main>'
        '<img src="data:," width="10" height="10"></main></body></html>'
    )
    page = browser.new_page()
    try:
        page.goto(page_file.as_uri())
        rules = {v["rule"] for v in run_axe(page)}
    finally:
        page.close()
    assert "image-alt" in rules


def caniemail_errors(html: Path) -> list[str]:
    node = shutil.which("node")
    if node is None:
        missing_tool("node not found: apt-get install -y nodejs npm, then " + NPM_HINT)
    if not (NODE_DIR / "node_modules" / "doiuse-email").is_dir():
        missing_tool(f"doiuse-email not installed in {NODE_DIR}: {NPM_HINT}")
    assert node is not None
    run = subprocess.run(
        [node, str(LINTER), str(html), *CLIENTS],
        capture_output=True,
        text=True,
        cwd=NODE_DIR,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    errors: list[str] = json.loads(run.stdout)["errors"]
    return errors


def test_caniemail_finds_no_error_beyond_the_allow_list(built: Path) -> None:
    errors = caniemail_errors(built)
    unexplained = Counter(e for e in errors if _allowance(e) is None)
    assert not unexplained, "caniemail: unsupported in a client, and not allowed:\n" + "\n".join(
        f"{n} × {e}" for e, n in unexplained.items()
    )
    unused = set(ALLOWED) - {_allowance(e) for e in errors}
    assert not unused, f"allow-list entries nothing needs any more, remove them: {unused}"


def test_caniemail_reports_what_the_allow_list_does_not_cover(built: Path, tmp_path: Path) -> None:
    """The checker can fail: an id-only anchor and a CSS grid are named for Outlook."""
    html = built.read_text(encoding="utf-8").replace(
        "<body", '<body><div style="display:grid"><a href="#x">x</a></div>', 1
    )
    bad = tmp_path / "bad.html"
    bad.write_text(html, encoding="utf-8")
    unexplained = [e for e in caniemail_errors(bad) if _allowance(e) is None]
    assert any("outlook.windows" in e and "grid" in e for e in unexplained), unexplained

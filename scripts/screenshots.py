"""Screenshots of the sample edition for the README: python scripts/screenshots.py

Builds the sample edition (2022-02) of this repository in memory, fills the personal fields
with the sample partner (as build/2022-02/preview.eml does) and photographs the whole email in
Debian's Chromium at 600 px (desktop) and 375 px (phone):

    docs/img/sample-desktop.png
    docs/img/sample-phone.png

Nothing leaves the machine: every request but the page itself is aborted. The browser is
/usr/bin/chromium unless NEWSFLASH_CHROMIUM names another (apt-get install -y chromium).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from newsflash import personalise
from newsflash.config import load_config
from newsflash.pipeline import SAMPLE_PERSON, build_edition

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("NEWSFLASH_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = (("sample-desktop.png", 600), ("sample-phone.png", 375))


def sample_html(config_path: Path, edition: str) -> str:
    config = load_config(config_path)
    build = build_edition(config, edition)
    subs = personalise.substitutions(SAMPLE_PERSON, config.model.newsletter.greeting_fallback)
    return personalise.apply(build.email.html, subs)


def shoot(html: str, out: Path) -> list[tuple[Path, int]]:
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} not found: apt-get install -y chromium, or set NEWSFLASH_CHROMIUM")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for name, width in SHOTS:
                page = browser.new_page(
                    viewport={"width": width, "height": 800},
                    device_scale_factor=1,
                    color_scheme="light",
                )
                page.route("**/*", _local_only)
                page.set_content(html, wait_until="load")
                path = out / name
                page.screenshot(path=str(path), full_page=True)
                written.append((path, width))
                page.close()
        finally:
            browser.close()
    return written


def _local_only(route: Any) -> None:
    if route.request.url.startswith(("about:", "data:")):
        route.continue_()
    else:
        route.abort()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edition", default="2022-02")
    ap.add_argument("--config", type=Path, default=ROOT / "config.toml")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = ap.parse_args()
    for path, width in shoot(sample_html(args.config, args.edition), args.out):
        print(
            f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {width} px "
            f"wide, {path.stat().st_size // 1024} KB"
        )


if __name__ == "__main__":
    main()

"""Screenshots of the sample edition for the README: python scripts/screenshots.py

Builds the sample edition (2022-02) of this repository in memory, fills the personal fields
with the sample partner (as build/2022-02/preview.eml does) and photographs the whole email in
Debian's Chromium:

    docs/img/sample-desktop.png     600 px, light
    docs/img/sample-phone.png       375 px, light
    docs/img/sample-dark.png        600 px, prefers-color-scheme: dark
    docs/img/sample-images-off.png  600 px, every image blocked (as Outlook does by default)

Nothing leaves the machine: the sample logo's address is answered with docs/img/sample-logo.png
and every other request is aborted. The browser is /usr/bin/chromium unless NEWSFLASH_CHROMIUM
names another (apt-get install -y chromium).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
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
LOGO_FILE = ROOT / "docs" / "img" / "sample-logo.png"
# (file, width, colour scheme, images shown)
SHOTS = (
    ("sample-desktop.png", 600, "light", True),
    ("sample-phone.png", 375, "light", True),
    ("sample-dark.png", 600, "dark", True),
    ("sample-images-off.png", 600, "light", False),
)


def sample_html(config_path: Path, edition: str) -> tuple[str, str]:
    """The sample partner's email, and the logo's address (empty without a logo)."""
    config = load_config(config_path)
    build = build_edition(config, edition)
    subs = personalise.substitutions(SAMPLE_PERSON, config.model.newsletter.greeting_fallback)
    logo = config.model.newsletter.logo
    return personalise.apply(build.email.html, subs), logo.url if logo else ""


def router(logo_url: str, images: bool) -> Callable[[Any], None]:
    """Serve the sample logo from disk when images are on; abort everything else."""

    def route(r: Any) -> None:
        url = r.request.url
        if url.startswith(("about:", "data:")):
            r.continue_()
        elif images and logo_url and url == logo_url and LOGO_FILE.is_file():
            r.fulfill(path=str(LOGO_FILE), content_type="image/png")
        else:
            r.abort()

    return route


def shoot(html: str, logo_url: str, out: Path) -> list[tuple[Path, int]]:
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} not found: apt-get install -y chromium, or set NEWSFLASH_CHROMIUM")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for name, width, scheme, images in SHOTS:
                page = browser.new_page(
                    viewport={"width": width, "height": 800},
                    device_scale_factor=1,
                    color_scheme=scheme,
                )
                page.route("**/*", router(logo_url, images))
                page.set_content(html, wait_until="load")
                path = out / name
                page.screenshot(path=str(path), full_page=True)
                written.append((path, width))
                page.close()
        finally:
            browser.close()
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edition", default="2022-02")
    ap.add_argument("--config", type=Path, default=ROOT / "config.toml")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = ap.parse_args()
    html, logo_url = sample_html(args.config, args.edition)
    for path, width in shoot(html, logo_url, args.out):
        print(
            f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {width} px "
            f"wide, {path.stat().st_size // 1024} KB"
        )


if __name__ == "__main__":
    main()

"""Screenshots of the sample edition for the README: python scripts/screenshots.py

Builds the sample edition (2022-02) of this repository in memory, fills the personal fields
with the sample partner (as build/2022-02/preview.eml does) and photographs the whole email in
Debian's Chromium:

    docs/img/sample-desktop.png     600 px, light
    docs/img/sample-phone.png       375 px, light
    docs/img/sample-dark.png        600 px, prefers-color-scheme: dark
    docs/img/sample-images-off.png  600 px, every image blocked (as Outlook does by default)

Nothing leaves the machine: the sample's images (its logo and the edition's picture, published
under {web_base_url}/img/) are answered from docs/img/ and every other request is aborted.
The browser is /usr/bin/chromium unless NEWSFLASH_CHROMIUM names another (apt-get install -y
chromium).
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
IMAGES = ROOT / "docs" / "img"
TYPES = {".png": "image/png", ".jpg": "image/jpeg"}
# (file, width, colour scheme, images shown)
SHOTS = (
    ("sample-desktop.png", 600, "light", True),
    ("sample-phone.png", 375, "light", True),
    ("sample-dark.png", 600, "dark", True),
    ("sample-images-off.png", 600, "light", False),
)


def sample_html(config_path: Path, edition: str) -> tuple[str, str]:
    """The sample partner's email, and where its images are published."""
    config = load_config(config_path)
    build = build_edition(config, edition)
    subs = personalise.substitutions(SAMPLE_PERSON, config.model.newsletter.greeting_fallback)
    images_url = config.model.newsletter.web_base_url.rstrip("/") + "/img/"
    return personalise.apply(build.email.html, subs), images_url


def router(images_url: str, images: bool) -> Callable[[Any], None]:
    """Serve the sample's images from docs/img/ when images are on; abort everything else."""

    def route(r: Any) -> None:
        url = r.request.url
        local = IMAGES / url.removeprefix(images_url)
        if url.startswith(("about:", "data:")):
            r.continue_()
        elif images and url.startswith(images_url) and local.suffix in TYPES and local.is_file():
            r.fulfill(path=str(local), content_type=TYPES[local.suffix])
        else:
            r.abort()

    return route


def shoot(html: str, images_url: str, out: Path) -> list[tuple[Path, int]]:
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
                page.route("**/*", router(images_url, images))
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
    html, images_url = sample_html(args.config, args.edition)
    for path, width in shoot(html, images_url, args.out):
        print(
            f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {width} px "
            f"wide, {path.stat().st_size // 1024} KB"
        )


if __name__ == "__main__":
    main()

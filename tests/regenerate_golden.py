"""Rewrite the golden output of the sample edition: python tests/regenerate_golden.py

The golden files in tests/golden/2022-02/ are what `newsflash build 2022-02` writes for the
repository's own sample (config.toml, submissions/; the package's templates), with the parts
that change from run to run normalised: the preview's Date, Message-ID and MIME boundary.
test_golden.py builds the sample afresh and compares. Run this after an intended change to the
templates, the config or the sample items, then review `git diff tests/golden/` before committing.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

from newsflash.config import load_config
from newsflash.pipeline import build_edition, write_build

ROOT = Path(__file__).resolve().parent.parent
EDITION = "2022-02"
GOLDEN = ROOT / "tests" / "golden" / EDITION
FILES = ("email.html", "email.txt", "email.mjml", "manifest.json", "preview.eml")
SAMPLE = ("config.toml", "subscribers.csv", "submissions")  # templates: the package's

FIXED_DATE = b"Tue, 01 Feb 2022 09:00:00 +0100"  # 09:00 in Brussels
FIXED_BOUNDARY = b"===============golden-boundary=="
# Keys of manifest.json whose value depends on when or where the build ran. None today; a key
# added later (a timestamp, say) goes here rather than into the golden file.
VOLATILE_MANIFEST_KEYS: tuple[str, ...] = ("built_at", "generated_at", "build_time")


def copy_sample(src: Path, dst: Path) -> Path:
    """Copy the sample newsletter byte for byte (the manifest hashes config and templates)."""
    for name in SAMPLE:
        if (src / name).is_dir():
            shutil.copytree(src / name, dst / name)
        else:
            shutil.copy(src / name, dst / name)
    return dst


def normalise_eml(data: bytes) -> bytes:
    """Fix the preview's Date, the random part of its Message-ID and its MIME boundary."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    head = re.sub(rb"(?m)^Date: [^\r\n]*", b"Date: " + FIXED_DATE, head, count=1)
    # make_msgid gives <time.pid.random.IDSTRING@domain>: keep the idstring and domain. The
    # header is folded or not depending on the random part's length, so unfold it too.
    head = re.sub(
        rb"(?m)^Message-ID:\s*<\d+\.\d+\.\d+\.([^>\s]*)>",
        rb"Message-ID: <golden.\1>",
        head,
        count=1,
    )
    m = re.search(rb'boundary="([^"]+)"', head)
    if m:
        boundary = m.group(1)
        head = head.replace(boundary, FIXED_BOUNDARY)
        body = body.replace(boundary, FIXED_BOUNDARY)
    return head + sep + body


def normalise_manifest(data: bytes) -> bytes:
    doc = json.loads(data)
    for key in VOLATILE_MANIFEST_KEYS:
        if key in doc:
            doc[key] = "<normalised>"
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def normalise(name: str, data: bytes) -> bytes:
    if name == "preview.eml":
        return normalise_eml(data)
    if name == "manifest.json":
        return normalise_manifest(data)
    return data


def build_files(workspace: Path, edition: str = EDITION) -> dict[str, bytes]:
    """Build `edition` in a workspace (a copy of the sample) and return its normalised files."""
    config = load_config(workspace / "config.toml")
    out = write_build(config, build_edition(config, edition))
    return {name: normalise(name, (out / name).read_bytes()) for name in FILES}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="newsflash-golden-") as tmp:
        files = build_files(copy_sample(ROOT, Path(tmp)))
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        path = GOLDEN / name
        old = path.read_bytes() if path.exists() else None
        path.write_bytes(data)
        state = "new" if old is None else ("unchanged" if old == data else "updated")
        print(f"{state:9} {path.relative_to(ROOT)}")
    print("Review the changes with: git diff tests/golden/")
    return 0


if __name__ == "__main__":
    sys.exit(main())

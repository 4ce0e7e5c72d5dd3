"""The email design ships inside the package; a workspace's templates/ overrides it file by file.

A workspace without templates/ builds with the package's design; one file there replaces the
package's file of that name and nothing else; an override made while a renderer is running
(the preview, the scheduler) is used at its next render. The wheel and the sdist carry the
templates, so an installed newsflash needs no repository checkout.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from conftest import own_template

from newsflash.config import load_config
from newsflash.errors import RenderError
from newsflash.pipeline import build_edition
from newsflash.render import PACKAGE_TEMPLATES, Renderer, template_hash

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(
    p.relative_to(PACKAGE_TEMPLATES).as_posix() for p in PACKAGE_TEMPLATES.rglob("*.j2")
)
MARKER = "<mj-text>Our own footer, marker 7f3a</mj-text>"


def footer_override(workspace: Path) -> Path:
    path = workspace / "templates" / "partials" / "footer.mjml.j2"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<mj-section><mj-column>{MARKER}</mj-column></mj-section>\n", "utf-8")
    return path


def test_the_repository_keeps_one_copy_of_the_templates_inside_the_package() -> None:
    assert not (ROOT / "templates").exists()
    assert "edition.mjml.j2" in SHIPPED and "edition.txt.j2" in SHIPPED
    assert "partials/footer.mjml.j2" in SHIPPED


def test_a_workspace_without_templates_builds_with_the_packages_design(workspace: Path) -> None:
    config = load_config(workspace / "config.toml")
    assert not config.templates_dir.exists()
    built = build_edition(config, "2022-02")
    assert built.email.ok
    assert "Automotive Skills Alliance" in built.email.html  # the package's footer
    assert "Our own footer" not in built.email.html


def test_one_file_in_templates_overrides_that_file_and_nothing_else(workspace: Path) -> None:
    config = load_config(workspace / "config.toml")
    before = build_edition(config, "2022-02").email
    footer_override(workspace)
    after = build_edition(config, "2022-02").email
    assert "Our own footer, marker 7f3a" in after.html
    assert "Our own footer" not in before.html
    # the header and the items still come from the package's templates
    for title in ("The ASA launches the partners’ Newsflash", "Working Group 1"):
        assert title in after.html
    assert after.text == before.text  # edition.txt.j2 is not overridden


def test_an_override_made_while_the_renderer_runs_is_used_and_its_removal_too(
    workspace: Path,
) -> None:
    config = load_config(workspace / "config.toml")
    renderer = Renderer(config)
    assert "marker 7f3a" not in build_edition(config, "2022-02", renderer).email.html
    path = footer_override(workspace)
    assert "marker 7f3a" in build_edition(config, "2022-02", renderer).email.html
    path.unlink()
    assert "marker 7f3a" not in build_edition(config, "2022-02", renderer).email.html


def test_unchanged_copies_hash_as_no_copies_and_an_edit_changes_the_hash(workspace: Path) -> None:
    config = load_config(workspace / "config.toml")
    bare = template_hash(config.templates_dir)
    for name in SHIPPED:
        own_template(workspace, name)
    assert template_hash(config.templates_dir) == bare
    own_template(workspace, "partials/item.mjml.j2", "\n")
    assert template_hash(config.templates_dir) != bare


def test_a_fault_in_a_workspace_template_names_the_file_and_the_way_back(
    workspace: Path,
) -> None:
    path = own_template(workspace, "partials/footer.mjml.j2", "{% if %}\n")
    config = load_config(workspace / "config.toml")
    with pytest.raises(RenderError) as raised:
        build_edition(config, "2022-02")
    message = str(raised.value)
    assert str(path) in message
    assert "delete your copy in templates/ to use newsflash's own" in message
    assert "git checkout" not in message and "repository" not in message


def _build(kind: str, tmp_path: Path) -> Path:
    """Build a wheel or an sdist of a copy of the source (the checkout stays clean)."""
    src = tmp_path / "src"
    shutil.copytree(
        ROOT / "newsflash", src / "newsflash", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    out = tmp_path / "dist"
    hook = "build_wheel" if kind == "wheel" else "build_sdist"
    code = f"from setuptools import build_meta as b; print(b.{hook}({str(out)!r}))"
    out.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=src, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return out / done.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_the_wheel_carries_every_template(tmp_path: Path) -> None:
    names = zipfile.ZipFile(_build("wheel", tmp_path)).namelist()
    carried = sorted(
        n.removeprefix("newsflash/templates/")
        for n in names
        if "/templates/" in n and n.startswith("newsflash/templates/")
    )
    assert carried == SHIPPED


@pytest.mark.slow
def test_the_sdist_carries_every_template(tmp_path: Path) -> None:
    with tarfile.open(_build("sdist", tmp_path)) as sdist:
        names = sdist.getnames()
    carried = sorted(
        n.split("/newsflash/templates/", 1)[1]
        for n in names
        if "/newsflash/templates/" in n and n.endswith(".j2")
    )
    assert carried == SHIPPED


def test_an_edit_behind_a_linked_template_folder_changes_the_hash(
    workspace: Path, tmp_path: Path
) -> None:
    """Jinja2 loads a partial through a linked folder, so an edit there changes the email and
    must change the manifest's hash too, or an approval outlives the edit."""
    footer = own_template(tmp_path / "shared", "partials/footer.mjml.j2")
    (workspace / "templates").mkdir()
    (workspace / "templates" / "partials").symlink_to(footer.parent, target_is_directory=True)
    (footer.parent / "loop").symlink_to(workspace / "templates", target_is_directory=True)
    config = load_config(workspace / "config.toml")
    before = template_hash(config.templates_dir)
    footer.write_text(footer.read_text("utf-8") + "\n<!-- edited behind the link -->\n", "utf-8")
    assert template_hash(config.templates_dir) != before

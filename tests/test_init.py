"""`newsflash init DIR`: a new workspace that checks and builds at once, never overwriting one.

The config.toml it writes is generated from the config model; the key test below walks the
model, so a key added to config.py without reaching the new file fails here.
"""

from __future__ import annotations

import re
import tomllib
import typing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from pydantic import BaseModel

from newsflash.cli import main
from newsflash.config import ConfigModel, load_config, parse_config
from newsflash.config_text import _is_model, config_text
from newsflash.pipeline import build_edition, check_items, write_build
from newsflash.render import PACKAGE_TEMPLATES, template_hash
from newsflash.subscribers import COLUMNS, load_subscribers
from newsflash.workspace import EXAMPLE_ITEM, WorkspaceExists, init_workspace

COMMENTED_KEY = re.compile(r"^#(?=[\w\[])", re.MULTILINE)


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def uncommented(text: str) -> str:
    """The config with every `#key = value` and `#[table]` line switched on."""
    return COMMENTED_KEY.sub("", text)


def _table_model(annotation: Any) -> type[BaseModel] | None:
    """The model of a table, a list of tables (sections) or a table of tables (editions)."""
    found = _is_model(annotation)
    if found is None:
        args = [a for a in typing.get_args(annotation) if isinstance(a, type)]
        found = next((a for a in args if issubclass(a, BaseModel)), None)
    return found


def model_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every key path the model knows, nested tables included (`schedule.send.hour`)."""
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        keys.add(prefix + name)
        nested = _table_model(field.annotation)
        if nested is not None:
            keys |= model_keys(nested, f"{prefix}{name}.")
    return keys


def data_keys(data: Any, prefix: str = "") -> set[str]:
    """Every key path a parsed config holds; editions' ids and list rows are looked through."""
    if isinstance(data, list):
        return set().union(*(data_keys(row, prefix) for row in data if isinstance(row, dict)))
    keys: set[str] = set()
    for name, value in data.items():
        keys.add(prefix + name)
        if name == "editions" and not prefix:
            keys |= set().union(*(data_keys(t, "editions.") for t in value.values()))
        elif isinstance(value, dict | list):
            keys |= data_keys(value, f"{prefix}{name}.")
    return keys


def test_the_key_walk_sees_nested_tables_lists_of_tables_and_inline_tables() -> None:
    known = model_keys(ConfigModel)
    for key in (
        "schedule.send.hour",
        "sections.intro",
        "editions.editorial",
        "newsletter.logo.alt",
    ):
        assert key in known


def test_every_key_the_config_model_knows_is_in_the_new_config_toml() -> None:
    text = config_text("2026-07")
    written = data_keys(tomllib.loads(uncommented(text)))
    missing = model_keys(ConfigModel) - written
    assert not missing, f"config_text leaves out {sorted(missing)}"


def test_the_new_config_loads_as_written_and_with_every_key_switched_on() -> None:
    text = config_text("2026-07")
    parse_config(text, Path("config.toml"))
    parse_config(uncommented(text), Path("config.toml"))  # every example value is valid too
    for line in text.splitlines():
        assert len(line) <= 100, f"a line a reader must scroll for: {line}"


def test_every_key_comes_with_its_description_from_the_model() -> None:
    text = config_text("2026-07")
    for name, field in ConfigModel.model_fields["newsletter"].annotation.model_fields.items():  # type: ignore[union-attr]
        assert (
            f"# {field.description}\n#{name} =" in text
            or f"# {field.description}\n{name} =" in text
        )


def test_init_makes_a_workspace_that_checks_and_builds_at_once(tmp_path: Path) -> None:
    made = init_workspace(tmp_path / "news")
    assert made.first_edition == "2026-07"  # the clock: 17 June; the first send, 7 July
    assert not (tmp_path / "news" / "templates").exists()
    config = load_config(tmp_path / "news" / "config.toml")
    loaded = check_items(config)
    assert [i.key for i in loaded.items] == [EXAMPLE_ITEM.name] and not loaded.problems
    sl = load_subscribers(config.subscribers_path)
    assert not sl.problems and sl.counts().get("total", 0) == 0
    assert (tmp_path / "news" / "subscribers.csv").read_text() == ",".join(COLUMNS) + "\n"
    built = build_edition(config, made.first_edition)
    assert [i.title for i in built.edition.items] == ["Welcome to our newsletter"]
    assert built.edition.number == 1 and built.email.ok
    assert (write_build(config, built) / "email.html").is_file()


def test_the_init_command_checks_and_builds_in_the_new_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli("init", "news").exit_code == 0
    monkeypatch.chdir(tmp_path / "news")
    assert cli("check").exit_code == 0
    result = cli("build")
    assert result.exit_code == 0, result.output
    assert "edition 2026-07 (the coming one" in result.output
    assert (tmp_path / "news" / "build" / "2026-07" / "email.html").is_file()


def test_init_refuses_a_folder_that_has_a_config_toml_and_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("# ours\n", encoding="utf-8")
    with pytest.raises(WorkspaceExists, match="never overwrites"):
        init_workspace(tmp_path)
    result = CliRunner().invoke(main, ["init", str(tmp_path)])
    assert result.exit_code == 1
    assert "exists already" in result.output and "Traceback" not in result.output
    assert (tmp_path / "config.toml").read_text(encoding="utf-8") == "# ours\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


def test_init_keeps_every_file_that_is_there_already_and_says_so(tmp_path: Path) -> None:
    ours = "email,status\nanna@example.org,subscribed\n"
    (tmp_path / "subscribers.csv").write_text(ours, encoding="utf-8")
    (tmp_path / "notes.txt").write_text("the secretariat's notes", encoding="utf-8")
    made = init_workspace(tmp_path)
    assert made.kept == (tmp_path / "subscribers.csv",)
    assert (tmp_path / "subscribers.csv").read_text(encoding="utf-8") == ours
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "the secretariat's notes"
    assert (tmp_path / "config.toml").is_file()


def test_init_into_a_file_is_refused_with_a_message(tmp_path: Path) -> None:
    (tmp_path / "news").write_text("a file", encoding="utf-8")
    result = CliRunner().invoke(main, ["init", str(tmp_path / "news")])
    assert result.exit_code in (1, 2) and "Traceback" not in result.output
    assert (tmp_path / "news").read_text(encoding="utf-8") == "a file"


def test_init_with_templates_copies_the_design_which_hashes_as_none(tmp_path: Path) -> None:
    plain = init_workspace(tmp_path / "plain")
    custom = init_workspace(tmp_path / "custom", templates=True)
    copied = sorted(
        p.relative_to(tmp_path / "custom" / "templates").as_posix()
        for p in (tmp_path / "custom" / "templates").rglob("*.j2")
    )
    shipped = sorted(
        p.relative_to(PACKAGE_TEMPLATES).as_posix() for p in PACKAGE_TEMPLATES.rglob("*.j2")
    )
    assert copied == shipped and "partials/footer.mjml.j2" in copied
    assert template_hash(plain.folder / "templates") == template_hash(custom.folder / "templates")


def test_the_example_item_is_ready_and_pinned_to_edition_one(tmp_path: Path) -> None:
    made = init_workspace(tmp_path)
    config = load_config(tmp_path / "config.toml")
    (item,) = check_items(config).items
    assert item.status == "ready" and item.edition == made.first_edition
    assert "delete this file" in (tmp_path / EXAMPLE_ITEM).read_text(encoding="utf-8")


def test_a_dangling_config_toml_link_counts_as_a_newsletter_and_is_not_replaced(
    tmp_path: Path,
) -> None:
    (tmp_path / "config.toml").symlink_to(tmp_path / "elsewhere" / "config.toml")
    with pytest.raises(WorkspaceExists):
        init_workspace(tmp_path)
    assert (tmp_path / "config.toml").is_symlink() and not (tmp_path / "elsewhere").exists()


def test_a_folder_in_the_way_of_a_file_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "submissions").write_text("a file where the folder goes", encoding="utf-8")
    result = CliRunner().invoke(main, ["init", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "is a file where newsflash init needs a folder" in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["submissions"]  # nothing written
    assert (tmp_path / "submissions").read_text(encoding="utf-8").startswith("a file")

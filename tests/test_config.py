"""config.toml: the sample loads; every mistake is one error naming the key and the file;
secrets are refused; paths resolve next to the config file, so one install runs several
newsletters."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pydantic
import pytest

from newsflash.config import Config, load_config, parse_config
from newsflash.errors import ConfigError, NewsflashError

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = (ROOT / "config.toml").read_text(encoding="utf-8")
PATH = Path("/srv/newsletter/config.toml")


def edited(old: str, new: str) -> str:
    assert SAMPLE.count(old) == 1, old
    return SAMPLE.replace(old, new)


def config_error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, PATH)
    message = str(info.value)
    assert message.startswith(f"{PATH}: "), message
    assert isinstance(info.value, NewsflashError)
    return message


def test_sample_config_loads_into_typed_settings() -> None:
    config = load_config(ROOT / "config.toml")
    nl = config.model.newsletter
    assert (nl.name, nl.first_edition, nl.language) == ("ASA Newsflash", "2022-02", "en")
    assert config.section_keys == ("alliance", "wg1", "wg2", "battery", "projects", "events")
    assert config.model.sendgrid.batch_size == 1000
    assert config.model.call_to_action is not None
    assert config.model.call_to_action.link_text == "Find out how here"
    assert config.edition_settings("2022-02").title.startswith("The launch of partners")
    assert config.edition_settings("2030-01").title == ""  # editions without settings
    assert config.submissions_dir == ROOT / "submissions"
    assert len(config.sha256) == 64


def test_config_is_frozen() -> None:
    config = load_config(ROOT / "config.toml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.sha256 = "x"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        config.model.newsletter.name = "Other"  # type: ignore[misc]


def test_unknown_key_names_key_file_and_what_was_meant() -> None:
    message = config_error(edited('name = "ASA Newsflash"', 'nmae = "ASA Newsflash"'))
    assert "unknown key 'newsletter.nmae'" in message
    assert "did you mean 'name'?" in message


def test_unknown_table_names_the_table_and_what_was_meant() -> None:
    message = config_error(SAMPLE + '\n[sendgird]\nhost = "https://api.sendgrid.com"\n')
    assert "unknown key 'sendgird'" in message
    assert "did you mean 'sendgrid'?" in message


def test_unknown_key_in_a_section_names_which_section() -> None:
    message = config_error(edited('key = "battery"', 'key = "battery"\ntitel = "Batteries"'))
    assert "unknown key 'sections[4].titel'" in message
    assert "did you mean 'title'?" in message


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("batch_size = 1000", 'batch_size = "many"', "'sendgrid.batch_size'"),
        ("batch_size = 1000", "batch_size = 5000", "'sendgrid.batch_size'"),
        ("sandbox = false", 'sandbox = "maybe"', "'sendgrid.sandbox'"),
        ('segments = ["partners"]', 'segments = "partners"', "'audience.segments'"),
        ('name = "ASA Newsflash"', "name = 7", "'newsletter.name'"),
        ('first_edition = "2022-02"', 'first_edition = "Feb 2022"', "'newsletter.first_edition'"),
    ],
)
def test_wrong_type_or_value_names_the_key_and_the_value(old: str, new: str, key: str) -> None:
    message = config_error(edited(old, new))
    assert key in message
    assert "(got " in message
    assert "\n" not in message  # one problem, one line


def test_missing_required_key_is_named() -> None:
    message = config_error(edited('from_email = "newsflash@example.org"\n', ""))
    assert "missing key 'sender.from_email'" in message


def test_missing_sections_are_named() -> None:
    message = config_error(SAMPLE.split("# Sections appear")[0])
    assert "missing key 'sections'" in message


def test_every_config_mistake_is_reported_at_once() -> None:
    text = edited('name = "ASA Newsflash"', 'nmae = "ASA Newsflash"').replace(
        "batch_size = 1000", 'batch_size = "many"'
    )
    lines = config_error(text).splitlines()
    assert len(lines) == 3  # unknown nmae, missing name, wrong batch_size
    assert all(line.startswith(f"{PATH}: ") for line in lines)


@pytest.mark.parametrize(
    ("where", "line"),
    [
        ("[sendgrid]\n", 'api_key = "SG.s3cr3t-value"'),
        ("[sendgrid]\n", 'apikey = "SG.s3cr3t-value"'),
        ("[sender]\n", 'password = "s3cr3t-value"'),
        ("[newsletter]\n", 'token = "s3cr3t-value"'),
    ],
)
def test_secret_in_config_is_refused_pointing_at_the_environment(where: str, line: str) -> None:
    message = config_error(edited(where, f"{where}{line}\n"))
    assert "looks like a secret" in message
    assert "SENDGRID_API_KEY" in message
    assert line.split(" = ")[0] in message
    assert "s3cr3t" not in message  # the value itself never appears


def test_secret_at_top_level_is_refused() -> None:
    message = config_error('sendgrid_api_key = "SG.s3cr3t-value"\n' + SAMPLE)
    assert "'sendgrid_api_key'" in message
    assert "SENDGRID_API_KEY" in message
    assert "s3cr3t" not in message


def test_invalid_toml_names_file_line_and_what_to_check() -> None:
    message = config_error(edited('name = "ASA Newsflash"', 'name = "ASA Newsflash'))
    assert "not valid TOML" in message
    assert "line 5" in message
    assert "Check quotes and brackets" in message


def test_table_declared_twice_is_invalid_toml() -> None:
    message = config_error(SAMPLE + '\n[newsletter]\nname = "Again"\n')
    assert "not valid TOML" in message
    assert "newsletter" in message


def test_key_given_twice_in_a_table_is_invalid_toml() -> None:
    message = config_error(edited('name = "ASA Newsflash"', 'name = "A"\nname = "B"'))
    assert "not valid TOML" in message
    assert "line 6" in message


def test_section_key_given_twice_is_refused() -> None:
    message = config_error(edited('key = "wg2"', 'key = "wg1"'))
    assert "wg1 appear twice in [[sections]]" in message


def test_edition_settings_for_a_bad_edition_id_are_refused() -> None:
    message = config_error(edited('[editions."2022-02"]', '[editions."2022-2"]'))
    assert '[editions."2022-2"]' in message
    assert "write YYYY-MM" in message


def test_missing_config_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no such config file.*--config PATH"):
        load_config(tmp_path / "config.toml")


def test_config_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(SAMPLE.replace("’", "'").replace("–", "-").encode("utf-16"))
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(path)


def test_paths_resolve_relative_to_the_config_file_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.toml").write_text(
        edited(
            "[build]\n",
            '[paths]\nsubmissions = "items"\nbuild = "/tmp/absolute-build"\n\n[build]\n',
        ),
        encoding="utf-8",
    )
    config = load_config(Path("other/config.toml"))
    assert config.path == tmp_path / "other" / "config.toml"
    assert config.submissions_dir == tmp_path / "other" / "items"
    assert config.templates_dir == tmp_path / "other" / "templates"
    assert config.subscribers_path == tmp_path / "other" / "subscribers.csv"
    assert config.build_dir == Path("/tmp/absolute-build")


def second_newsletter(folder: Path) -> Config:
    """Another newsletter with its own name, sections and one item, in `folder`."""
    folder.mkdir(parents=True)
    shutil.copytree(ROOT / "templates", folder / "templates")
    shutil.copy(ROOT / "subscribers.csv", folder / "subscribers.csv")
    text = SAMPLE.replace('name = "ASA Newsflash"', 'name = "Battery Bulletin"').replace(
        'first_edition = "2022-02"', 'first_edition = "2021-11"'
    )
    (folder / "config.toml").write_text(text, encoding="utf-8")
    (folder / "submissions").mkdir()
    (folder / "submissions" / "cells.md").write_text(
        "---\ntitle: Cell production in Vaasa\nsection: battery\ndate: 2022-02-01\n---\n"
        "GigaVaasa grows.\n",
        encoding="utf-8",
    )
    return load_config(folder / "config.toml")


def test_second_newsletter_builds_into_its_own_build_folder(workspace: Path) -> None:
    second_newsletter(workspace / "other")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "newsflash.cli",
            "--config",
            "other/config.toml",
            "build",
            "2022-02",
        ],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    out = workspace / "other" / "build" / "2022-02"
    assert sorted(p.name for p in out.iterdir()) == [
        "email.html",
        "email.mjml",
        "email.txt",
        "manifest.json",
        "preview.eml",
    ]
    assert not (workspace / "build").exists()  # the first newsletter is untouched
    html = (out / "email.html").read_text(encoding="utf-8")
    assert "Cell production in Vaasa" in html
    assert "Battery Bulletin" in html
    assert "No. 4" in html  # numbered from the second newsletter's own first edition
    assert "Working Group 1 holds its first meeting" not in html

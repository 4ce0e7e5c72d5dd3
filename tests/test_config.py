"""config.toml: the sample loads; every mistake is one error naming the key and the file;
secrets are refused; paths resolve next to the config file, so one install runs several
newsletters."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import shutil
import subprocess
import sys
import tomllib
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
import tomli_w
from click.testing import CliRunner
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from newsflash import config_values as cv
from newsflash.cli import main
from newsflash.config import Config, ConfigModel, load_config, parse_config
from newsflash.errors import ConfigError, NewsflashError
from newsflash.web.preview import Previewer

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
    with pytest.raises(dataclasses.FrozenInstanceError):
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


# -- the hostile config: every setting a header, a URL or a format string is built from ----------
#
# The keys come from the config model itself, so a setting added later is covered the day it
# is added. Each case must be refused at load with one line naming the key and the file, and
# `newsflash check` must exit 1 with that line and no traceback.

DATA = tomllib.loads(SAMPLE)
INVISIBLE = {
    "CR": "\r",
    "LF": "\n",
    "CRLF": "\r\n",
    "NUL": "\0",
    "TAB": "\t",
    "ESC": "\x1b",
    "VT": "\x0b",
    "DEL": "\x7f",
    "NEL": "\x85",
    "U+2028": "\u2028",
    "U+2029": "\u2029",
    "RLO": "\u202e",
}
Loc = tuple[str | int, ...]


def _members(annotation: Any) -> list[Any]:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def _plain(annotation: Any) -> Any:
    if typing.get_origin(annotation) is Annotated:
        return typing.get_args(annotation)[0]
    return annotation


def settings(model: Any = ConfigModel, prefix: Loc = ()) -> Iterator[tuple[Loc, FieldInfo]]:
    """Every leaf setting of the model, with where it sits in the file: a table inside a list
    or a dict is entered at its first example (sections[1], editions."2022-02")."""
    for name, field in model.model_fields.items():
        loc = (*prefix, name)
        leaf = True
        for member in _members(field.annotation):
            origin, args = typing.get_origin(member), typing.get_args(member)
            if isinstance(member, type) and issubclass(member, BaseModel):
                yield from settings(member, loc)
                leaf = False
            elif origin is tuple and isinstance(args[0], type) and issubclass(args[0], BaseModel):
                yield from settings(args[0], (*loc, 0))
                leaf = False
            elif origin is dict:
                yield from settings(args[1], (*loc, "2022-02"))
                leaf = False
        if leaf:
            yield loc, field


def accepted_types(field: FieldInfo) -> set[type]:
    """What TOML value types a setting takes: a list of str counts as list."""
    kinds: set[type] = set()
    for member in _members(field.annotation):
        member = _plain(member)
        kinds.add(list if typing.get_origin(member) is tuple else member)
    if float in kinds:
        kinds.add(int)
    return kinds


def string_settings() -> list[tuple[Loc, FieldInfo]]:
    return [(loc, f) for loc, f in settings() if accepted_types(f) & {str, list}]


def key_name(loc: Loc) -> str:
    """The key as a user reads it in an error: sections[1].title, editions."2022-02".title."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        elif part == "2022-02":
            out += f'."{part}"'
        else:
            out += f".{part}" if out else part
    return out


def sample_value(loc: Loc) -> Any:
    node: Any = DATA
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError):
            return None
    return node


def with_setting(loc: Loc, value: Any) -> str:
    """The sample config with one setting changed (tables created as needed)."""
    data = copy.deepcopy(DATA)
    node: Any = data
    for part in loc[:-1]:
        node = node[part] if isinstance(part, int) else node.setdefault(part, {})
    node[loc[-1]] = value
    return tomli_w.dumps(data)


def valid_text(loc: Loc) -> str:
    """A value the setting accepts: the sample's, or plain words where the sample has none."""
    value = sample_value(loc)
    if isinstance(value, list):
        value = value[0] if value else None
    return "Plain words" if value is None else str(value)


def hostile(loc: Loc, field: FieldInfo, char: str) -> Any:
    """A valid value of the setting with `char` in its middle (in a list, as its second item)."""
    text = valid_text(loc)
    middle = len(text) // 2
    bad = text[:middle] + char + text[middle:]
    return [text, bad] if list in accepted_types(field) else bad


STRING_SETTINGS = string_settings()
HEADER_KEYS = {
    "newsletter.name",
    "newsletter.subject",
    'editions."2022-02".title',
    "sender.from_email",
    "sender.from_name",
    "sender.reply_to",
    "sender.unsubscribe_url",
    "sender.unsubscribe_mailto",
    "sendgrid.categories",
}


def refused_by_check(tmp_path: Path, text: str, key: str) -> str:
    """`newsflash check` on `text`: exit 1, one error line naming the key and the file."""
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(path), "check"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {path}: ")
    assert f"'{key}'" in lines[0], lines[0]
    return lines[0]


def test_the_header_settings_are_among_the_string_settings_the_suite_covers() -> None:
    keys = {key_name(loc) for loc, _ in STRING_SETTINGS}
    assert keys >= HEADER_KEYS
    assert len(keys) >= 60  # every table's strings, schedule jobs and paths included


def test_every_string_setting_takes_its_sample_value() -> None:
    """The hostile cases below start from these values, so a refusal is the character's."""
    for loc, field in STRING_SETTINGS:
        value = [valid_text(loc)] if list in accepted_types(field) else valid_text(loc)
        parse_config(with_setting(loc, value), PATH)


@pytest.mark.parametrize("char", INVISIBLE.values(), ids=INVISIBLE.keys())
@pytest.mark.parametrize(
    ("loc", "field"), STRING_SETTINGS, ids=[key_name(loc) for loc, _ in STRING_SETTINGS]
)
def test_a_control_or_invisible_character_in_a_string_setting_is_refused_naming_the_key(
    loc: Loc, field: FieldInfo, char: str, tmp_path: Path
) -> None:
    text = with_setting(loc, hostile(loc, field, char))
    if cv.MULTILINE in field.metadata and char in "\n\t":
        parse_config(text, PATH)  # Markdown paragraphs: line breaks and tabs are fine
        return
    key = key_name(loc)
    message = config_error(text)
    assert f"'{key}'" in message
    assert f"(U+{ord(char[0]):04X})" in message
    assert "\n" not in message and "\r" not in message  # the value is shown escaped
    refused_by_check(tmp_path, text, key)


def wrong_values(field: FieldInfo) -> list[Any]:
    """TOML values of every type the setting does not take."""
    candidates: dict[type, Any] = {
        str: "1000",
        int: 1000,
        float: 1.5,
        bool: True,
        list: ["a"],
        dict: {"a": "b"},
        dt.date: dt.date(2022, 2, 1),
    }
    kinds = accepted_types(field)
    if any(isinstance(k, type) and issubclass(k, BaseModel) for k in kinds):
        kinds.add(dict)
    return [v for k, v in candidates.items() if k not in kinds]


def tables() -> Iterator[Loc]:
    """Every table of the file, where a whole table can be written as a plain value."""
    for name, field in ConfigModel.model_fields.items():
        yield (name,)
        for member in _members(field.annotation):
            if typing.get_origin(member) is dict:
                yield (name, "2022-02")


TYPED = [(loc, value) for loc, field in settings() for value in wrong_values(field)] + [
    (loc, "1000") for loc in tables()
]


@pytest.mark.parametrize(
    ("loc", "value"), TYPED, ids=[f"{key_name(loc)}={value!r}" for loc, value in TYPED]
)
def test_a_value_of_the_wrong_type_is_refused_naming_the_key(
    loc: Loc, value: Any, tmp_path: Path
) -> None:
    text = with_setting(loc, value)
    key = key_name(loc)
    message = config_error(text)
    assert f"'{key}'" in message
    assert "(got " in message
    refused_by_check(tmp_path, text, key)


URL_KEYS = {
    ("newsletter", "website"): ("https", "http"),
    ("newsletter", "web_base_url"): ("https",),
    ("call_to_action", "url"): ("https", "http"),
    ("sendgrid", "host"): ("https",),
}
BAD_URLS = {
    "javascript": "javascript:alert(document.cookie)",
    "data": "data:text/html,<script>alert(1)</script>",
    "mailto": "mailto:someone@example.org",
    "no scheme": "newsflash.example.org",
    "scheme-relative": "//newsflash.example.org",
    "leading space": " https://newsflash.example.org",
    "trailing space": "https://newsflash.example.org ",
    "inner space": "https://newsflash.example.org/a b",
    "space in host": "https://news flash.example.org",
    "no host": "https://",
    "single-label host": "https://intranet",
    "user before host": "https://newsflash.example.org@evil.example.com",
    "angle bracket": "https://newsflash.example.org/<script>",
    "quote": 'https://newsflash.example.org/"onmouseover="x',
    "ftp": "ftp://newsflash.example.org",
    "empty": "",
}
URL_CASES = [(loc, name, url) for loc in URL_KEYS for name, url in BAD_URLS.items()]


@pytest.mark.parametrize(
    ("loc", "url"),
    [(loc, url) for loc, _, url in URL_CASES],
    ids=[f"{key_name(loc)}-{name}" for loc, name, _ in URL_CASES],
)
def test_a_bad_url_is_refused_naming_the_key(loc: Loc, url: str, tmp_path: Path) -> None:
    text = with_setting(loc, url)
    assert f"'{key_name(loc)}'" in config_error(text)
    refused_by_check(tmp_path, text, key_name(loc))


@pytest.mark.parametrize(
    "url",
    [
        "http://newsflash.example.org/unsubscribe?r={recipient_id}",
        "javascript:alert('{recipient_id}')",
        "https://newsflash.example.org/unsubscribe?r= {recipient_id}",
        "https://unsubscribe?r={recipient_id}",
        "https://me@newsflash.example.org/unsubscribe?r={recipient_id}",
        "{recipient_id}",
    ],
)
def test_an_unsubscribe_url_that_is_not_plain_https_is_refused(url: str, tmp_path: Path) -> None:
    """RFC 8058's one-click POST goes to an https URL; the placeholders do not excuse it."""
    text = with_setting(("sender", "unsubscribe_url"), url)
    assert "'sender.unsubscribe_url'" in config_error(text)
    refused_by_check(tmp_path, text, "sender.unsubscribe_url")


@pytest.mark.parametrize(
    ("loc", "url"),
    [
        (("newsletter", "web_base_url"), "http://newsflash.example.org"),
        (("newsletter", "web_base_url"), "https://newsflash.example.org/?from=email"),
        (("newsletter", "web_base_url"), "https://newsflash.example.org/#top"),
        (("sendgrid", "host"), "http://api.sendgrid.com"),
        (("sendgrid", "host"), "https://api.sendgrid.com/v3/mail/send"),
        (("sendgrid", "host"), "https://api.sendgrid.com?x=1"),
    ],
)
def test_a_base_url_refuses_http_and_what_cannot_be_appended_to(
    loc: Loc, url: str, tmp_path: Path
) -> None:
    """The API key travels to the host and the archive links build on the base: https only,
    and nothing after the host (or path) that a built URL would land behind."""
    text = with_setting(loc, url)
    assert f"'{key_name(loc)}'" in config_error(text)
    refused_by_check(tmp_path, text, key_name(loc))


def test_links_in_the_body_may_be_http_and_hosts_may_end_in_a_slash() -> None:
    config = parse_config(
        edited('url = "https://automotive-skills-alliance.eu/join-us/"', 'url = "http://a.eu/j"')
        .replace('host = "https://api.sendgrid.com"', 'host = "https://api.eu.sendgrid.com/"')
        .replace(
            'web_base_url = "https://newsflash.example.org"',
            'web_base_url = "https://alliance.example.org/newsflash/"',
        ),
        PATH,
    )
    assert config.model.call_to_action is not None
    assert config.model.call_to_action.url == "http://a.eu/j"
    assert config.model.sendgrid.host == "https://api.eu.sendgrid.com/"


ADDRESS_KEYS: list[Loc] = [
    ("sender", "from_email"),
    ("sender", "reply_to"),
    ("sender", "unsubscribe_mailto"),
    ("schedule", "reviewers"),
    ("schedule", "contributors"),
]
BAD_ADDRESSES = {
    "no at": "secretariat",
    "no domain dot": "secretariat@localhost",
    "display name": "ASA Secretariat <secretariat@example.org>",
    "angle brackets": "<secretariat@example.org>",
    "two ats": "secretariat@@example.org",
    "space": "secre tariat@example.org",
    "two addresses": "a@example.org, b@example.org",
    "trailing dot": "secretariat@example.org.",
    "non-ascii local part": "sécrétariat@example.org",
    "special-use domain": "secretariat@example.test",
    "mailto prefix": "mailto:secretariat@example.org",
}
ADDRESS_CASES = [(loc, name, a) for loc in ADDRESS_KEYS for name, a in BAD_ADDRESSES.items()]


@pytest.mark.parametrize(
    ("loc", "address"),
    [(loc, a) for loc, _, a in ADDRESS_CASES],
    ids=[f"{key_name(loc)}-{name}" for loc, name, _ in ADDRESS_CASES],
)
def test_a_bad_address_is_refused_naming_the_key(loc: Loc, address: str, tmp_path: Path) -> None:
    value: Any = ["secretariat@example.org", address] if loc[0] == "schedule" else address
    text = with_setting(loc, value)
    key = key_name(loc) + ("[2]" if loc[0] == "schedule" else "")
    message = config_error(text)
    assert f"'{key}'" in message
    assert "address" in message
    refused_by_check(tmp_path, text, key)


@pytest.mark.parametrize(
    "address", ["unsub?x@example.org", "unsub#x@example.org", "u%x@example.org"]
)
def test_an_unsubscribe_mailto_that_would_break_its_mailto_link_is_refused(address: str) -> None:
    """The address goes into `mailto:ADDRESS?subject=...` as it is."""
    message = config_error(with_setting(("sender", "unsubscribe_mailto"), address))
    assert "'sender.unsubscribe_mailto'" in message
    assert "mailto: link" in message


def test_the_from_address_is_required_and_optional_addresses_may_be_empty() -> None:
    assert "'sender.from_email'" in config_error(with_setting(("sender", "from_email"), ""))
    text = tomli_w.dumps(
        {**DATA, "sender": {**DATA["sender"], "reply_to": "", "unsubscribe_mailto": ""}}
    )
    sender = parse_config(text, PATH).model.sender
    assert (sender.reply_to, sender.unsubscribe_mailto) == ("", "")


def test_an_international_domain_is_kept_as_punycode_for_sendgrid() -> None:
    """SendGrid takes ASCII addresses only; the same rule as for the partner list."""
    config = parse_config(with_setting(("sender", "from_email"), "news@bücher.example.org"), PATH)
    assert config.model.sender.from_email == "news@xn--bcher-kva.example.org"


@pytest.mark.parametrize(
    ("where", "line", "key"),
    [
        ("[sendgrid]\n", 'API_KEY = "SG.s3cr3t-value"', "sendgrid.API_KEY"),
        ("[sendgrid]\n", 'sendgrid_key = "SG.s3cr3t-value"', "sendgrid.sendgrid_key"),
        ("[sendgrid]\n", 'webhook_secret = "s3cr3t-value"', "sendgrid.webhook_secret"),
        ("[sendgrid]\n", 'webhook_public_key = "s3cr3t-value"', "sendgrid.webhook_public_key"),
        ("[sendgrid]\n", 'access_token = "s3cr3t-value"', "sendgrid.access_token"),
        ("[schedule]\n", 'smtp_password = "s3cr3t-value"', "schedule.smtp_password"),
    ],
)
def test_a_key_named_like_a_secret_is_refused_without_echoing_it(
    where: str, line: str, key: str, tmp_path: Path
) -> None:
    text = edited(where, f"{where}{line}\n")
    message = config_error(text)
    assert f"key '{key}' looks like a secret" in message
    assert "s3cr3t" not in message
    assert "s3cr3t" not in refused_by_check(tmp_path, text, key)


SENDGRID_KEY = "SG.s3cr3tAbCdEfGhIjKlMnOpQr.s3cr3tAbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_"


@pytest.mark.parametrize(
    ("loc", "value"),
    [
        (("sender", "from_name"), SENDGRID_KEY),
        (("newsletter", "tagline"), f"  {SENDGRID_KEY}  "),
        (("sendgrid", "categories"), ["newsflash", SENDGRID_KEY]),
        (
            ("sender", "unsubscribe_url"),
            f"https://x.example.org/u?k={SENDGRID_KEY}&r={{recipient_id}}",
        ),
        (("editions", "2022-02", "editorial"), f"Our key:\n\n{SENDGRID_KEY}\n"),
    ],
    ids=["from_name", "tagline-padded", "categories", "inside-a-url", "editorial"],
)
def test_an_api_key_pasted_as_a_value_is_refused_without_echoing_it(
    loc: Loc, value: Any, tmp_path: Path
) -> None:
    text = with_setting(loc, value)
    key = key_name(loc) + ("[2]" if isinstance(value, list) else "")
    message = config_error(text)
    assert f"'{key}' holds what looks like a SendGrid API key" in message
    assert "SENDGRID_API_KEY" in message
    assert "s3cr3t" not in message
    assert "s3cr3t" not in refused_by_check(tmp_path, text, key)


@pytest.mark.parametrize(
    ("zone", "meant"),
    [
        ("Europe/Brussel", "Europe/Brussels"),
        ("europe/brussels", "Europe/Brussels"),
        ("Europe/Bruxelles", "Europe/Brussels"),
        ("Europe", None),
        ("../../../etc/passwd", None),
        ("/etc/localtime", None),
        ("", None),
        ("Mars/Olympus_Mons", None),
    ],
)
def test_a_time_zone_that_does_not_exist_is_refused_at_load(
    zone: str, meant: str | None, tmp_path: Path
) -> None:
    """Found by `check`, not by the scheduler or the preview page as a ZoneInfo traceback."""
    text = with_setting(("newsletter", "timezone"), zone)
    message = config_error(text)
    assert "'newsletter.timezone': is not a time zone" in message
    if meant:
        assert f"did you mean '{meant}'?" in message
    refused_by_check(tmp_path, text, "newsletter.timezone")


PLACEHOLDER_CASES = {
    "subject-unknown": ("newsletter", "subject", "{name} No. {numbr}", "did you mean '{number}'?"),
    "subject-positional": ("newsletter", "subject", "{name} No. {0}", "unknown placeholder '{0}'"),
    "subject-empty": ("newsletter", "subject", "{name} No. {}", "unknown placeholder '{}'"),
    "subject-attribute": ("newsletter", "subject", "{title.__class__}", "unknown placeholder"),
    "subject-index": ("newsletter", "subject", "{name[0]}", "unknown placeholder"),
    "subject-format": ("newsletter", "subject", "{title:>999999999}", "without a format"),
    "subject-conversion": ("newsletter", "subject", "{title!r}", "without a format"),
    "subject-open": ("newsletter", "subject", "{name No. {number}", "literal brace"),
    "subject-close": ("newsletter", "subject", "name} No. {number}", "literal brace"),
    "greeting-unknown": ("newsletter", "greeting", "Dear {firstname},", "'{first_name}'"),
    "unsubscribe-no-id": (
        "sender",
        "unsubscribe_url",
        "https://newsflash.example.org/unsubscribe?e={edition}",
        "must hold {recipient_id}",
    ),
    "unsubscribe-unknown": (
        "sender",
        "unsubscribe_url",
        "https://newsflash.example.org/u?r={recipient_id}&e={edtion}",
        "did you mean '{edition}'?",
    ),
    "unsubscribe-literal-only": (
        "sender",
        "unsubscribe_url",
        "https://newsflash.example.org/u?r={{recipient_id}}",
        "must hold {recipient_id}",
    ),
}


@pytest.mark.parametrize(
    ("table", "key", "value", "says"), PLACEHOLDER_CASES.values(), ids=PLACEHOLDER_CASES.keys()
)
def test_a_template_with_a_wrong_placeholder_is_refused_at_load(
    table: str, key: str, value: str, says: str, tmp_path: Path
) -> None:
    """Not later, as a KeyError in `build` or an unsubscribe link that unsubscribes no one."""
    text = with_setting((table, key), value)
    message = config_error(text)
    assert f"'{table}.{key}'" in message
    assert says in message
    refused_by_check(tmp_path, text, f"{table}.{key}")


def test_doubled_braces_in_the_subject_are_a_literal_brace() -> None:
    config = parse_config(with_setting(("newsletter", "subject"), "{{beta}} {name}"), PATH)
    assert config.model.newsletter.subject.format(name="N") == "{beta} N"


def typo(name: str) -> str:
    """The key with two letters swapped, as a tired hand writes it."""
    return name[0] + name[2] + name[1] + name[3:] if name[1] != name[2] else name + "s"


def table_locs(model: Any = ConfigModel, prefix: Loc = ()) -> Iterator[tuple[Loc, Any]]:
    """Every table of the model (entered at its first example inside a list or a dict)."""
    yield prefix, model
    for name, field in model.model_fields.items():
        for member in _members(field.annotation):
            origin, args = typing.get_origin(member), typing.get_args(member)
            if isinstance(member, type) and issubclass(member, BaseModel):
                yield from table_locs(member, (*prefix, name))
            elif origin is tuple and isinstance(args[0], type) and issubclass(args[0], BaseModel):
                yield from table_locs(args[0], (*prefix, name, 0))
            elif origin is dict:
                yield from table_locs(args[1], (*prefix, name, "2022-02"))


TABLES = [(loc, model) for loc, model in table_locs() if loc]


@pytest.mark.parametrize(("loc", "model"), TABLES, ids=[key_name(loc) for loc, _ in TABLES])
def test_a_misspelt_key_in_any_table_gets_a_did_you_mean(
    loc: Loc, model: Any, tmp_path: Path
) -> None:
    name = next(iter(model.model_fields))
    value = sample_value((*loc, name))
    value = valid_text((*loc, name)) if value is None else value
    text = with_setting((*loc, typo(name)), value)
    message = config_error(text)
    key = f"{key_name(loc)}.{typo(name)}"
    assert f"unknown key '{key}' (did you mean '{name}'?)" in message
    refused_by_check(tmp_path, text, key)


@pytest.mark.parametrize(
    ("edition", "meant"),
    [
        ("2022-2", "2022-02"),
        ("2022/02", "2022-02"),
        ("2022-02 ", "2022-02"),
        ("02-2022", None),
        ("2022-13", None),
        ("Feb 2022", None),
        ("2022-02-01", None),
        ("latest", None),
    ],
)
def test_an_edition_table_that_is_not_yyyy_mm_is_refused_with_what_was_meant(
    edition: str, meant: str | None, tmp_path: Path
) -> None:
    data = copy.deepcopy(DATA)
    data["editions"] = {edition: data["editions"]["2022-02"]}
    text = tomli_w.dumps(data)
    message = config_error(text)
    assert f'[editions."{edition}"]' in message
    assert "write YYYY-MM" in message
    if meant:
        assert f"did you mean '{meant}'?" in message
    refused_by_check(tmp_path, text, f'[editions."{edition}"]')


def test_every_bad_edition_table_is_reported_not_only_the_first() -> None:
    data = copy.deepcopy(DATA)
    data["editions"] = {"2022-2": {}, "2022-03": {"titel": "x"}, "March": {}}
    lines = config_error(tomli_w.dumps(data)).splitlines()
    assert len(lines) == 3
    assert "unknown key 'editions.\"2022-03\".titel' (did you mean 'title'?)" in lines[1]


@pytest.mark.parametrize(
    ("loc", "value"),
    [
        (("newsletter", "accent_color"), "red;background:url(https://x.example.org/)"),
        (("newsletter", "accent_color"), "#0b4f8"),
        (("newsletter", "language"), 'en" onload="x'),
        (("newsletter", "language"), "english language"),
        (("sendgrid", "categories"), ["x" * 256]),
        (("sendgrid", "categories"), [f"c{n}" for n in range(9)]),
        (("sendgrid", "categories"), [""]),
        (("sendgrid", "asm_group_id"), 0),
        (("build", "size_limit_kb"), 0),
    ],
)
def test_values_that_reach_the_email_markup_or_sendgrid_are_checked(
    loc: Loc, value: Any, tmp_path: Path
) -> None:
    """A colour or a language goes into an attribute; SendGrid takes ten categories of at most
    255 characters, two of which newsflash adds itself."""
    text = with_setting(loc, value)
    key = key_name(loc) + ("[1]" if isinstance(value, list) and len(value) == 1 else "")
    assert f"'{key}'" in config_error(text)
    refused_by_check(tmp_path, text, key)


def test_every_hostile_setting_is_reported_at_once_one_line_each() -> None:
    data = copy.deepcopy(DATA)
    data["newsletter"]["subject"] = "{name}\r\nBcc: everyone@example.org"
    data["sender"]["from_name"] = "ASA\nBcc: x@example.org"
    data["sender"]["reply_to"] = "not an address"
    data["sendgrid"]["batch_size"] = "1000"
    data["newsletter"]["timezone"] = "Europe/Brussel"
    lines = config_error(tomli_w.dumps(data)).splitlines()
    assert len(lines) == 5
    assert all(line.startswith(f"{PATH}: '") for line in lines)


@pytest.mark.parametrize(
    "command", [["check"], ["build", "2022-02"], ["approve", "2022-02"], ["send", "2022-02"]]
)
def test_a_header_injection_in_the_subject_stops_every_command_before_it_writes(
    workspace: Path, command: list[str]
) -> None:
    """Found at load: `approve` does not approve it, and `send` freezes no ledger and writes
    no outbox it would then fail halfway through."""
    path = workspace / "config.toml"
    path.write_text(
        with_setting(("newsletter", "subject"), "{name}\r\nBcc: everyone@example.org"),
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["--config", str(path), *command])
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [
        f"error: {path}: 'newsletter.subject': holds a carriage return (U+000D) at character "
        "7; write it as one line of visible text (got '{name}\\r\\nBcc: everyone@example.org')."
    ]
    for generated in ("build", "outbox", "state"):
        assert not (workspace / generated).exists()


def test_a_hostile_config_is_one_line_from_the_installed_command(workspace: Path) -> None:
    (workspace / "config.toml").write_text(
        with_setting(("sender", "from_name"), "ASA\nBcc: everyone@example.org"),
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "newsflash.cli", "check"],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert "'sender.from_name': holds a line break (U+000A)" in result.stderr


def test_the_preview_page_names_a_wrong_time_zone_instead_of_a_traceback(workspace: Path) -> None:
    path = workspace / "config.toml"
    path.write_text(with_setting(("newsletter", "timezone"), "Europe/Brussel"), encoding="utf-8")
    previewer = Previewer(path)  # this month's edition: the time zone decides which that is
    previewer.rebuild()
    snap = previewer.snapshot()
    assert snap.trace is None
    assert snap.error is not None and "'newsletter.timezone': is not a time zone" in snap.error
    assert "did you mean 'Europe/Brussels'?" in snap.error

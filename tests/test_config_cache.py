"""The config cache (newsflash/config_cache.py): a kept Config is exactly what validating
config.toml gives, and whatever the cache cannot vouch for is a full validation, never an
error and never another result.

Every test has its own cache folder (conftest's XDG_CACHE_HOME). A hit is told from a miss by
whether parse_config ran (the real one, counted), or, across processes, by what was imported.
"""

from __future__ import annotations

import ast
import copy
import os
import pickle
import shutil
import subprocess
import sys
import threading
import tomllib
import zoneinfo
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsflash import config_cache
from newsflash.config import Config, load_config, parse_config
from newsflash.config_cache import load_cached
from newsflash.errors import ConfigError
from newsflash.settings_table import Table, as_dict

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = (ROOT / "config.toml").read_text(encoding="utf-8")
DATA = tomllib.loads(SAMPLE)


def cache_files() -> list[Path]:
    folder = config_cache.cache_folder()
    assert folder is not None
    return sorted(folder.glob("*.pickle")) if folder.is_dir() else []


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The paths parse_config validated through the cache: empty after a call, a hit."""
    seen: list[Path] = []
    real = config_cache.parse_config

    def counted(text: str, path: Path) -> Config:
        seen.append(path)
        return real(text, path)

    monkeypatch.setattr(config_cache, "parse_config", counted)
    return seen


def same(kept: Any, fresh: Any, where: str = "config") -> None:
    """Equal value by value, with equal types (30 is not 30.0) and the same fields set."""
    assert type(kept) is type(fresh), where
    if isinstance(fresh, Table):
        assert list(vars(kept)) == list(vars(fresh)) == list(fresh.FIELDS), where
        for name in fresh.FIELDS:
            same(getattr(kept, name), getattr(fresh, name), f"{where}.{name}")
    elif isinstance(fresh, tuple | list):
        assert len(kept) == len(fresh), where
        for n, (a, b) in enumerate(zip(kept, fresh, strict=True)):
            same(a, b, f"{where}[{n}]")
    elif isinstance(fresh, dict):
        assert list(kept) == list(fresh), where
        for k in fresh:
            same(kept[k], fresh[k], f"{where}.{k}")
    else:
        assert kept == fresh, where


def assert_exact(kept: Config, path: Path) -> None:
    """`kept` is what validating the file at `path` gives now, field by field."""
    fresh = load_config(path)
    assert kept == fresh
    assert (kept.path, kept.sha256) == (fresh.path, fresh.sha256)
    assert as_dict(kept.model) == as_dict(fresh.model)
    assert kept.content_sha256("2022-02") == fresh.content_sha256("2022-02")
    same(kept.model, fresh.model)


def write(folder: Path, text: str) -> Path:
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def hit(path: Path, validations: list[Path]) -> Config:
    """load_cached twice: the first keeps the Config, the second must come from the cache."""
    load_cached(path)
    del validations[:]
    config = load_cached(path)
    assert validations == [], "the second load validated again: not a hit"
    return config


def test_the_sample_config_from_the_cache_is_the_validated_one_field_by_field(
    workspace: Path, validations: list[Path]
) -> None:
    path = workspace / "config.toml"
    first = load_cached(path)
    assert validations == [path.resolve()] and len(cache_files()) == 1
    kept = hit(path, validations)
    assert kept is not first  # read from the file, not the same object
    assert_exact(kept, path)


# Valid values for settings, beyond the sample's: every table, every optional key, the
# types TOML can give (an int where a float is declared, an international address that
# validation rewrites to punycode), and tables left out so their defaults apply.
VALUES: dict[tuple[str, ...], list[Any]] = {
    ("newsletter", "tagline"): ["", "One line"],
    ("newsletter", "language"): ["de", "pt-BR"],
    ("newsletter", "timezone"): ["UTC", "America/New_York"],
    ("newsletter", "subject"): ["{title}", "{name} – {month} ({number})"],
    ("newsletter", "greeting"): ["Hello {first_name}!", "Dear partner,"],
    ("newsletter", "accent_color"): ["#abc", "#123456"],
    ("newsletter", "logo"): [{"url": "https://example.org/l.png", "alt": "A", "width": 16}],
    ("sender", "from_email"): ["news@bücher.example", "Secretariat@Example.org"],
    ("sender", "reply_to"): ["", "reply@example.org"],
    ("sender", "unsubscribe_mailto"): ["", "off@example.org"],
    ("sections",): [
        [{"key": "only", "title": "Only"}],
        [{"key": "a", "title": "A", "intro": "x"}, {"key": "b", "title": "B"}],
    ],
    ("editions",): [{}, {"2022-03": {"title": "T", "editorial": "Two\n\nparagraphs"}}],
    ("audience", "segments"): [[], ["a", "b"]],
    ("build", "size_warn_kb"): [1, 80],
    ("sendgrid", "host"): ["https://api.eu.sendgrid.com"],
    ("sendgrid", "timeout"): [5, 2.5],
    ("sendgrid", "asm_group_id"): [7],
    ("sendgrid", "sandbox"): [True],
    ("sendgrid", "concurrency"): [1, 16],
    ("sendgrid", "categories"): [[], ["a", "b"]],
    ("schedule", "reviewers"): [[], ["r@example.org", "s@bücher.example"]],
    ("schedule", "grace_hours"): [0, 1.5],
    ("schedule", "send"): [{"day": "1st tue", "hour": 9}, {"enabled": False, "minute": 5}],
    ("schedule", "report"): [{"after_send": "36 hours", "hour": "*"}],
    ("links", "cache_hours"): [0, 12.5],
    ("receipts", "exclude"): [["x@example.org"]],
    ("serve", "public_url"): ["", "https://n.example.org/base/"],
    ("paths", "state"): ["elsewhere/state"],
}
LEFT_OUT: list[tuple[str, ...]] = [
    ("call_to_action",),
    ("editions",),
    ("audience",),
    ("build",),
    ("sendgrid",),
    ("schedule",),
    ("serve",),
    ("links",),
    ("receipts",),
    ("paths",),
    ("newsletter", "logo"),
    ("newsletter", "tagline"),
    ("sender", "reply_to"),
    ("schedule", "proof"),
]


def with_changes(sets: dict[tuple[str, ...], Any], drops: list[tuple[str, ...]]) -> str:
    data = copy.deepcopy(DATA)
    for loc, value in sets.items():
        node = data
        for part in loc[:-1]:
            node = node.setdefault(part, {})
        node[loc[-1]] = value
    for loc in drops:
        node = data
        for part in loc[:-1]:
            node = node.get(part, {})
        node.pop(loc[-1], None)
    return tomli_w.dumps(data)


@st.composite
def valid_configs(draw: st.DrawFn) -> str:
    sets = {
        loc: draw(st.sampled_from(values)) for loc, values in VALUES.items() if draw(st.booleans())
    }
    drops = [loc for loc in LEFT_OUT if loc not in sets and draw(st.booleans())]
    return with_changes(sets, drops)


def test_every_value_in_the_table_validates_so_the_random_configs_are_valid(
    tmp_path: Path,
) -> None:
    for loc, values in VALUES.items():
        for value in values:
            parse_config(with_changes({loc: value}, []), tmp_path / "config.toml")
    for loc in LEFT_OUT:
        parse_config(with_changes({}, [loc]), tmp_path / "config.toml")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=valid_configs())
def test_a_random_valid_config_from_the_cache_is_the_validated_one_field_by_field(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    path = write(tmp_path_factory.mktemp("random"), text)
    load_cached(path)
    kept = config_cache._read(
        config_cache._file(config_cache.cache_folder() or Path(), path.resolve()),
        config_cache._key(text, path.resolve()),
        path.resolve(),
    )
    assert kept is not None, "a valid config was not kept"
    assert_exact(kept, path)
    assert_exact(load_cached(path), path)


def test_a_config_that_does_not_validate_is_refused_as_ever_and_never_kept(
    workspace: Path,
) -> None:
    path = workspace / "config.toml"
    path.write_text(SAMPLE.replace("batch_size = 1000", "batch_sise = 1000"), encoding="utf-8")
    with pytest.raises(ConfigError) as uncached:
        load_config(path)
    for _ in range(2):
        with pytest.raises(ConfigError) as cached:
            load_cached(path)
        assert str(cached.value) == str(uncached.value)
        assert "sendgrid.batch_sise" in str(cached.value)
    assert cache_files() == []


def test_a_missing_or_undecodable_config_gets_load_configs_own_error(tmp_path: Path) -> None:
    for path, setup in (
        (tmp_path / "absent.toml", lambda p: None),
        (tmp_path / "latin1.toml", lambda p: p.write_bytes("name = 'é'".encode("latin-1"))),
    ):
        setup(path)
        with pytest.raises(ConfigError) as uncached:
            load_config(path)
        with pytest.raises(ConfigError) as cached:
            load_cached(path)
        assert str(cached.value) == str(uncached.value)
    assert cache_files() == []


def test_one_byte_changed_in_config_validates_again_and_gives_the_edit(
    workspace: Path, validations: list[Path]
) -> None:
    """Even an edit that keeps the file's size and its modification time."""
    path = workspace / "config.toml"
    hit(path, validations)
    times = os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns
    path.write_text(SAMPLE.replace('"ASA Newsflash"', '"ASA Newsflasi"'), encoding="utf-8")
    os.utime(path, ns=times)
    edited = load_cached(path)
    assert validations == [path.resolve()]
    assert edited.model.newsletter.name == "ASA Newsflasi"
    assert_exact(edited, path)
    path.write_text(SAMPLE.replace("batch_size = 1000", "batch_size = 0"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"sendgrid\.batch_size"):
        load_cached(path)  # the Config kept for the earlier text is not this file's


def test_the_same_bytes_at_another_path_validate_for_that_path(
    tmp_path: Path, validations: list[Path]
) -> None:
    """A copied or moved workspace: paths resolve next to the file, so the path is keyed."""
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    hit(write(one, SAMPLE), validations)
    moved = load_cached(write(two, SAMPLE))
    assert validations == [(two / "config.toml").resolve()]
    assert moved.state_dir == (two / "state").resolve()
    assert len(cache_files()) == 2


def test_a_linked_config_is_keyed_by_the_file_it_points_at(
    tmp_path: Path, validations: list[Path]
) -> None:
    real = tmp_path / "real"
    real.mkdir()
    write(real, SAMPLE)
    link = tmp_path / "config.toml"
    link.symlink_to(real / "config.toml")
    via_link = hit(link, validations)
    assert via_link.path == (real / "config.toml") and via_link.root == real
    assert_exact(via_link, link)


def test_a_changed_package_fingerprint_validates_again(
    workspace: Path, validations: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an older newsflash, Python or pydantic kept is not used after an upgrade."""
    path = workspace / "config.toml"
    real = config_cache.package_fingerprint
    monkeypatch.setattr(config_cache, "package_fingerprint", lambda: "an older newsflash")
    load_cached(path)
    monkeypatch.setattr(config_cache, "package_fingerprint", real)
    del validations[:]
    assert_exact(load_cached(path), path)
    assert validations == [path.resolve()]


def kept_file(path: Path) -> Path:
    """Load `path` once through the cache and return the file it was kept in."""
    load_cached(path)
    folder = config_cache.cache_folder()
    assert folder is not None
    file = config_cache._file(folder, path.resolve())
    assert file in cache_files()
    return file


def forged(path: Path, **changes: Any) -> tuple[Any, ...]:
    """A whole, well-formed entry for `path` under its true key whose parts are replaced."""
    text = path.read_text(encoding="utf-8")
    real = path.resolve()
    parts = {
        "format": config_cache.FORMAT,
        "key": config_cache._key(text, real),
        "config": parse_config(text.replace("ASA Newsflash", "Forged"), real),
    }
    parts.update(changes)
    return (parts["format"], parts["key"], parts["config"])


class RunsCode:
    """What an attacker pickles: unpickling it would call os.system."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def uncertain_files(marker: Path) -> Iterator[tuple[str, Callable[[Path, Path], None]]]:
    """(what, how to spoil the kept file of a config) for each case the cache cannot trust."""

    def put(data: bytes) -> Callable[[Path, Path], None]:
        return lambda file, path: file.write_bytes(data)

    def entry(**changes: Any) -> Callable[[Path, Path], None]:
        return lambda file, path: file.write_bytes(pickle.dumps(forged(path, **changes)))

    yield "empty", put(b"")
    yield "random bytes", put(os.urandom(512))
    yield "not a pickle", put(b'{"format": 1}')
    yield "truncated", lambda file, path: file.write_bytes(file.read_bytes()[:-40])
    yield "cut in half", lambda file, path: file.write_bytes(file.read_bytes()[:2000])
    yield "runs os.system", put(pickle.dumps(RunsCode(marker)))
    yield "runs code inside a tuple", put(pickle.dumps((1, "key", RunsCode(marker))))
    yield "a class not allowed", put(pickle.dumps(zoneinfo.ZoneInfo("UTC")))
    yield "a newsflash function", put(pickle.dumps(config_cache.load_cached))
    yield "a bare Config", lambda file, path: file.write_bytes(pickle.dumps(forged(path)[2]))
    yield "an older format", entry(format=0)
    yield "a foreign key", entry(key="0" * 64)
    yield "another path", entry(config=parse_config(SAMPLE, Path("/elsewhere/config.toml")))
    yield "a Config around a dict", entry(config=Config(Path("/x"), {}, ""))  # type: ignore[arg-type]
    yield "too deep", put(b"(" * 100_000 + b".")

    def writable_by_others(file: Path, path: Path) -> None:
        file.write_bytes(pickle.dumps(forged(path)))
        file.chmod(0o664)

    def a_folder(file: Path, path: Path) -> None:
        file.unlink()
        file.mkdir()

    yield "group-writable", writable_by_others
    yield "a folder in its place", a_folder


def test_every_uncertain_kept_file_is_a_full_validation_never_an_error_nor_run(
    tmp_path: Path, validations: list[Path]
) -> None:
    marker = tmp_path / "code-ran"
    cases = list(uncertain_files(marker))
    assert len(cases) == 17
    for n, (what, spoil) in enumerate(cases):
        folder = tmp_path / str(n)
        folder.mkdir()
        path = write(folder, SAMPLE)
        file = kept_file(path)
        spoil(file, path)
        del validations[:]
        config = load_cached(path)
        assert validations == [path.resolve()], what
        assert config.model.newsletter.name == "ASA Newsflash", what
        assert_exact(config, path)
        assert not marker.exists(), f"{what}: the cache ran code from the file"
        if file.is_dir():
            file.rmdir()


def test_a_forged_entry_is_what_the_test_above_refuses_for_its_flaw_alone(
    workspace: Path, validations: list[Path]
) -> None:
    """The control of the forged cases: unflawed, the forgery is believed (which is why the
    folder is private and a file others may write is not read)."""
    path = workspace / "config.toml"
    file = kept_file(path)
    file.write_bytes(pickle.dumps(forged(path)))
    file.chmod(0o600)
    assert load_cached(path).model.newsletter.name == "Forged"


def test_a_cache_folder_that_cannot_be_made_costs_nothing_but_speed(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, validations: list[Path]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    path = workspace / "config.toml"
    for _ in range(2):
        assert_exact(load_cached(path), path)
    assert len(validations) == 2
    assert blocker.read_text(encoding="utf-8") == "not a folder"


def test_a_relative_xdg_cache_home_is_ignored_for_the_home_cache(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The XDG spec: a relative path is invalid. It would put the cache in the working folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(workspace)
    load_cached(workspace / "config.toml")
    assert not (workspace / "relative").exists()
    folder = tmp_path / "home" / ".cache" / "newsflash" / "config"
    assert len(list(folder.glob("*.pickle"))) == 1
    assert folder.stat().st_mode & 0o777 == 0o700
    assert next(folder.glob("*.pickle")).stat().st_mode & 0o777 == 0o600


def test_a_time_zone_the_machine_no_longer_knows_validates_again(
    tmp_path: Path, validations: list[Path]
) -> None:
    """The tz database is updated apart from Python: the one answer the key cannot hold."""
    zones = tmp_path / "zones"
    (zones / "Test").mkdir(parents=True)
    shutil.copy(zoneinfo.TZPATH[0] + "/Europe/Brussels", zones / "Test" / "Gone")
    path = write(tmp_path, SAMPLE.replace('"Europe/Brussels"', '"Test/Gone"'))
    try:
        zoneinfo.reset_tzpath(to=[str(zones)])
        hit(path, validations)
        (zones / "Test" / "Gone").unlink()
        zoneinfo.ZoneInfo.clear_cache()
        with pytest.raises(ConfigError, match=r"newsletter\.timezone"):
            load_cached(path)
    finally:
        zoneinfo.reset_tzpath()
        zoneinfo.ZoneInfo.clear_cache()


def test_a_config_holding_an_api_key_is_refused_every_time_and_never_kept(tmp_path: Path) -> None:
    """The key is only ever refused: it is neither kept nor lets a later load skip the check."""
    key = "SG.abcdefghijklmnopqrstuv.abcdefghijklmnopqrstuvwxyz0123456789"
    text = SAMPLE.replace("[sendgrid]\n", f'[sendgrid]\napi_key = "{key}"\n', 1)
    assert key in text
    path = write(tmp_path, SAMPLE)
    before = kept_file(path).read_bytes()
    write(tmp_path, text)
    for _ in range(2):
        with pytest.raises(ConfigError, match=r"Secrets never go in config\.toml"):
            load_cached(path)
    assert [f.read_bytes() for f in cache_files()] == [before]
    folder = config_cache.cache_folder()
    assert folder is not None
    kept = [f.read_bytes() for f in folder.rglob("*") if f.is_file()]
    assert not any(b"abcdefghijklmnopqrstuv" in data for data in kept)


def test_commands_keeping_the_same_config_at_once_never_leave_half_a_file(
    workspace: Path,
) -> None:
    """Writers replace the file whole while a reader reads it: every read is a hit."""
    path = workspace / "config.toml"
    config = load_config(path)
    real = path.resolve()
    key = config_cache._key(SAMPLE, real)
    folder = config_cache.cache_folder()
    assert folder is not None
    file = config_cache._file(folder, real)
    config_cache._keep(folder, file, key, config)
    misses: list[int] = []
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            config_cache._keep(folder, file, key, config)

    def reader() -> None:
        for _ in range(300):
            if config_cache._read(file, key, real) is None:
                misses.append(1)
        stop.set()

    threads = [threading.Thread(target=writer) for _ in range(3)]
    threads.append(threading.Thread(target=reader))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert misses == []
    assert [p.name for p in folder.iterdir()] == [file.name]  # no temporary file left


PROBE = """
import sys
from pathlib import Path
from newsflash.config_cache import load_cached
config = load_cached(Path(sys.argv[1]))
print(repr([
    "email_validator" in sys.modules,
    "pydantic" in sys.modules,
    "newsflash.config_model" in sys.modules,
    config.content_sha256("2022-02"),
]))
"""


def probe(path: Path) -> list[Any]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: list[Any] = ast.literal_eval(done.stdout.strip())
    return result


def test_a_hit_imports_neither_email_validator_nor_pydantic_nor_the_models(
    workspace: Path,
) -> None:
    path = workspace / "config.toml"
    miss, again = probe(path), probe(path)
    assert miss[:3] == [True, True, True]  # validating needs all three
    assert again[:3] == [False, False, False]
    assert again[3] == miss[3] == load_config(path).content_sha256("2022-02")


def test_the_next_command_sees_an_edit_of_config_toml(workspace: Path) -> None:
    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "newsflash.cli", "check"],
            cwd=workspace,
            capture_output=True,
            text=True,
            timeout=120,
        )

    before = check()
    assert before.returncode == 0, before.stdout + before.stderr
    path = workspace / "config.toml"
    path.write_text(SAMPLE.replace("batch_size = 1000", "batch_sise = 1000"), encoding="utf-8")
    broken = check()
    assert broken.returncode == 1
    assert "unknown key 'sendgrid.batch_sise'" in broken.stderr
    assert "Traceback" not in broken.stderr
    path.write_text(SAMPLE, encoding="utf-8")
    assert check().stdout == before.stdout


@pytest.mark.parametrize("flaw", ["writable by others", "a link"])
def test_a_cache_folder_others_may_write_or_a_linked_one_is_never_read_nor_written(
    flaw: str,
    workspace: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    validations: list[Path],
) -> None:
    """An XDG_CACHE_HOME on a shared folder: another user could plant a forged Config there,
    or swap the file being written for a link to one of the user's own files."""
    shared = tmp_path / "shared"
    folder = shared / "newsflash" / "config"
    if flaw == "a link":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        (shared / "newsflash").mkdir(parents=True)
        folder.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    else:
        folder.mkdir(parents=True)
        folder.chmod(0o777)
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared))
    path = workspace / "config.toml"
    planted = config_cache._file(folder, path.resolve())
    planted.write_bytes(pickle.dumps(forged(path)))
    planted.chmod(0o600)
    before = planted.read_bytes()
    for _ in range(2):
        config = load_cached(path)
        assert config.model.newsletter.name == "ASA Newsflash"
        assert_exact(config, path)
    assert len(validations) == 2
    assert planted.read_bytes() == before


def test_a_kept_file_that_sets_a_class_attribute_is_refused_and_changes_no_class(
    workspace: Path, validations: list[Path]
) -> None:
    """Pickle's BUILD applied to the Config class itself would set Config.state_dir for the
    whole process, even from a file whose key then fails."""
    path = workspace / "config.toml"
    file = kept_file(path)
    state = pickle.dumps(("/tmp/elsewhere",), 4)[2:-1]
    body = b"\x80\x04cnewsflash.config_loaded\nConfig\nN}" + pickle.dumps("state_dir", 4)[2:-1]
    body += b"cpathlib\nPosixPath\n" + state + b"Rs\x86b."
    file.write_bytes(body)
    file.chmod(0o600)
    del validations[:]
    config = load_cached(path)
    assert validations == [path.resolve()]
    assert config.state_dir == workspace.resolve() / "state"
    assert "state_dir" not in vars(Config) or not isinstance(vars(Config)["state_dir"], Path)

"""The up-to-date check of `newsflash build EDITION`, as make has one.

A full build of a named edition leaves state/build-stamp/<edition>.json: a digest of each input
its result depends on, taken before the build and again after it (the stamp is written only if
both agree), a digest of every file in build/<edition>/, and what it printed, in order, with
its exit code. The next `newsflash build EDITION` takes the same digests without loading
config.toml's models, the item parser, rich or the renderer; if every one is equal and the
files are still there with those bytes, it prints what the full build printed and writes
nothing. Whatever it cannot be sure of (no stamp, an unreadable or foreign one, one digest
that differs, a file missing or edited, a read error) is a full build, never an error.

The inputs: the command line (edition, options, --config as given, the working folder),
config.toml's bytes, the name and bytes of every file under the items folder and templates/,
what the ledgers say was published (the build reads them for edition selection), newsflash's
files, Python's version and the installed distributions (render_cache's fingerprint), the
environment (all of it, but for a shell's own bookkeeping that nothing reads), and the
terminal (whether each standard stream is one, its size and encoding: rich lays the output out
by them). subscribers.csv is not an input: a build never reads it.

The clock: a build's warnings consult today only for an edition that no item points at
(which_edition.near_an_item); such a build is never stamped. The preview's Date and
Message-ID are the instant and a random id of the build that wrote it: a kept preview keeps
them, as make keeps a target's date, since nothing it describes has changed.

The stamp lives in state/, beside the render cache: generated and git-ignored, the workspace's
memory (removing state/ forgets both), not in build/, whose files are what the stamp vouches
for and what the secretariat hands on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar, cast

from newsflash.errors import NewsflashError
from newsflash.files import write_atomic
from newsflash.render_cache import package_fingerprint, tree_digest
from newsflash.state.ledgers import published_in

if TYPE_CHECKING:
    from newsflash.config import Config

FORMAT = 1
FOLDER = "build-stamp"  # under state/
DEFAULT_STATE = "state"  # config_model.Paths.state's default: a different one only costs speed
_EDITION = re.compile(r"[0-9]{4}-[0-9]{2}")
# Set by the shell as it goes (the last folder, the nesting depth, the last argument), or anew
# for each login, terminal or service run (ssh's, tmux's and screen's, the session manager's,
# systemd's): nothing newsflash or its libraries read, and keying them would make the first
# build of every session a full one. tests/test_build_stamp.py checks a build reads none.
UNREAD_ENV = frozenset(
    {"OLDPWD", "SHLVL", "_"}
    | {"SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY", "SSH_AUTH_SOCK", "SSH_AGENT_PID"}
    | {"XDG_SESSION_ID", "XDG_SESSION_TYPE", "XDG_SESSION_CLASS", "DBUS_SESSION_BUS_ADDRESS"}
    | {"TMUX", "TMUX_PANE", "STY", "WINDOWID", "TERM_SESSION_ID", "SECURITYSESSIONID"}
    | {"INVOCATION_ID", "JOURNAL_STREAM", "MOTD_SHOWN", "GPG_AGENT_INFO"}
)
_STREAMS = ("out", "err")
T = TypeVar("T")


@dataclass(frozen=True)
class Request:
    """What the command line asks: a named edition and every option that shapes the build."""

    config_path: Path
    edition: str
    options: dict[str, bool]

    @classmethod
    def named(cls, config_path: Path, edition: str | None, **options: bool) -> Request | None:
        """The request of an edition named as YYYY-MM, or None: the coming edition depends
        on the clock and the calendar, and an id that is not one gets the full build's error."""
        if edition is None or not _EDITION.fullmatch(edition):
            return None
        return cls(config_path, edition, dict(sorted(options.items())))

    @property
    def config_file(self) -> Path:
        return self.config_path.resolve()


@dataclass(frozen=True)
class Where:
    """The folders a build reads and writes, as config.toml resolved them."""

    submissions: Path
    templates: Path
    state: Path
    out: Path

    @classmethod
    def of(cls, config: Config, edition_id: str) -> Where:
        return cls(
            config.submissions_dir,
            config.templates_dir,
            config.state_dir,
            config.build_dir / edition_id,
        )

    def as_json(self) -> dict[str, str]:
        return {k: str(v) for k, v in vars(self).items()}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_digest(value: object) -> str:
    return _sha256(json.dumps(value, sort_keys=True).encode())


def _terminal() -> list[object]:
    """What rich lays the output out by: a terminal on each standard stream, its size, the
    encoding and whether the streams print to a terminal."""
    fds: list[object] = []
    for fd in (0, 1, 2):
        try:
            size: object = list(os.get_terminal_size(fd))
        except (OSError, ValueError):
            size = None
        fds.append([os.isatty(fd), size])
    for stream in (sys.stdout, sys.stderr):
        isatty = getattr(stream, "isatty", None)
        shown = bool(isatty and isatty())
        fds.append([getattr(stream, "encoding", None), getattr(stream, "errors", None), shown])
    return fds


def inputs(request: Request, where: Where) -> dict[str, str]:
    """The digest of each input of the build; OSError or a NewsflashError (a ledger that
    will not read) if one cannot be read."""
    seen = published_in(where.state, request.edition, read_only=True)
    env = sorted((k, v) for k, v in os.environ.items() if k not in UNREAD_ENV)
    return {
        "request": _json_digest(
            [
                FORMAT,
                str(request.config_path),
                os.path.realpath(request.config_file),  # a link retargeted: another workspace
                os.getcwd(),
                request.edition,
                request.options,
                where.as_json(),
            ]
        ),
        "config": _sha256(request.config_file.read_bytes()),
        "items": tree_digest([where.submissions]),
        "templates": tree_digest([where.templates]),
        "published": _json_digest(
            [sorted(seen.items), None if seen.frozen is None else sorted(seen.frozen)]
        ),
        "code": package_fingerprint(),
        "environment": _json_digest(env),
        "terminal": _json_digest(_terminal()),
    }


def outputs(folder: Path) -> dict[str, str]:
    """Every file under build/<edition>/ by name, with the digest of its bytes."""
    return {
        p.relative_to(folder).as_posix(): _sha256(p.read_bytes())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def stamp_path(request: Request) -> Path:
    """Where the stamp of this request's edition is: under config.toml's [paths] state, read
    with tomllib alone (a value config.toml's models would refuse finds no stamp)."""
    config_file = request.config_file
    data = tomllib.loads(config_file.read_text(encoding="utf-8"))
    paths = data.get("paths", {})
    state = paths.get("state", DEFAULT_STATE) if isinstance(paths, dict) else None
    if not isinstance(state, str):
        raise ValueError("no [paths] state")
    return config_file.parent / state / FOLDER / f"{request.edition}.json"


@dataclass(frozen=True)
class Kept:
    """What an up-to-date build prints again: the full build's output, in order, and its code."""

    tape: tuple[tuple[str, str], ...]
    exit_code: int

    def play(self) -> int:
        for stream, text in self.tape:
            (sys.stdout if stream == "out" else sys.stderr).write(text)
        sys.stdout.flush()
        sys.stderr.flush()
        return self.exit_code


def _kept(doc: object) -> tuple[Where, dict[str, str], dict[str, str], Kept]:
    """The stamp's parts, or ValueError/KeyError/TypeError if it is not what this module wrote."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError("not a stamp of this format")
    where = Where(**{k: Path(str(v)) for k, v in dict(doc["where"]).items()})
    digests = {str(k): str(v) for k, v in dict(doc["inputs"]).items()}
    files = {str(k): str(v) for k, v in dict(doc["outputs"]).items()}
    tape = tuple((str(s), str(t)) for s, t in doc["tape"])
    code = doc["exit_code"]
    well_formed = type(code) is int and code in (0, 1) and files  # 1.0 and True are not 1
    if not well_formed or any(s not in _STREAMS for s, _ in tape):
        raise ValueError("not a stamp this module wrote")
    return where, digests, files, Kept(tape, code)


def replay(request: Request) -> Kept | None:
    """What to print if the build of `request` is up to date, else None (a full build)."""
    try:
        doc = json.loads(stamp_path(request).read_bytes())
        where, digests, files, kept = _kept(doc)
        if inputs(request, where) != digests or outputs(where.out) != files:
            return None
    except (OSError, ValueError, KeyError, TypeError, RecursionError, NewsflashError):
        return None  # RecursionError: a stamp nested deeper than json will read
    return kept


class _Tee:
    """A standard stream that also keeps, in order with the other one, what was written."""

    def __init__(self, stream: TextIO, name: str, tape: list[tuple[str, str]]) -> None:
        self._stream = stream
        self._name = name
        self._tape = tape

    def write(self, text: str) -> int:
        self._tape.append((self._name, text))
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@dataclass
class Watch:
    """A full build watched for its stamp: the inputs before it, what it printed, the inputs
    after it. No request (the coming edition, an id that is not one) watches nothing."""

    request: Request | None
    tape: list[tuple[str, str]] = field(default_factory=list)
    _where: Where | None = None
    _before: dict[str, str] | None = None
    _config_before: str | None = None

    def __post_init__(self) -> None:
        """config.toml's digest before the build loads it, so that an edit between the two
        cannot be stamped as the build's input."""
        self._config_before = self._try(lambda r: _sha256(r.config_file.read_bytes()))

    def _try(self, fn: Callable[[Request], T]) -> T | None:
        """fn's answer, or None if there is no request or an input will not read."""
        if self.request is None:
            return None
        try:
            return fn(self.request)
        except (OSError, NewsflashError):
            return None

    def start(self, config: Config, edition_id: str) -> None:
        """Forget the edition's stamp (the build about to run replaces what it vouched for)
        and take the inputs' digests."""
        self._where = where = Where.of(config, edition_id)
        if self.request is None:
            return
        with contextlib.suppress(OSError):
            (where.state / FOLDER / f"{self.request.edition}.json").unlink(missing_ok=True)
        self._before = self._try(lambda r: inputs(r, where))

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """Keep what the build prints while it prints it."""
        out, err = sys.stdout, sys.stderr
        sys.stdout = cast(TextIO, _Tee(out, "out", self.tape))
        sys.stderr = cast(TextIO, _Tee(err, "err", self.tape))
        try:
            yield
        finally:
            sys.stdout, sys.stderr = out, err

    def finish(self, exit_code: int, *, clock_free: bool) -> None:
        """Write the stamp if the build may be kept: its inputs read the same before and
        after, its warnings did not consult today. A stamp that cannot be written costs the
        next build its speed, not its result."""
        where, before = self._where, self._before
        if self.request is None or where is None or before is None or not clock_free:
            return
        if before.get("config") != self._config_before:
            return
        if self._try(lambda r: inputs(r, where)) != before:
            return
        files = self._try(lambda r: outputs(where.out))
        if not files:
            return
        doc = {
            "format": FORMAT,
            "where": where.as_json(),
            "inputs": before,
            "outputs": files,
            "tape": self.tape,
            "exit_code": exit_code,
        }
        with contextlib.suppress(OSError):
            write_atomic(where.state / FOLDER / f"{self.request.edition}.json", json.dumps(doc))

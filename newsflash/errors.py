"""One exception root, so the CLI can turn every expected failure into one clear line.

A caller that needs to tell one failure from another catches its subclass here (or the one
defined beside the code that raises it, such as files.LockHeld or state.sqlite.StateError);
every one of them is a NewsflashError, so nothing expected ever reaches the user as a
traceback."""

from __future__ import annotations


class NewsflashError(Exception):
    """An expected failure the user can act on; its message says what is wrong and what to do."""


class ConfigError(NewsflashError):
    """config.toml is missing, malformed, or holds an unknown key or a wrong type."""


class BuildError(NewsflashError):
    """The edition cannot be built or fails a hard check (e.g. Gmail clipping)."""


class EditionIdError(BuildError):
    """Not an edition id (YYYY-MM), or one before the first edition; a usage error to callers
    that take an id from the user, a config error to config.toml's reader."""


class RenderError(BuildError):
    """The templates or MJML could not turn an edition into an email. The build catches this
    one to look for the item to blame; any other BuildError stops the build as it is."""


class SubscribersError(NewsflashError):
    """subscribers.csv cannot be read at all (a bad row is a problem, not an error)."""


class LedgerError(NewsflashError):
    """The send ledger refuses an operation (a concurrent send, a changed edition)."""


class TransportError(NewsflashError):
    """A transport failed in a way that stops the send; carries the provider's answer."""

    def __init__(self, message: str, *, status: int | None = None, body: str = "") -> None:
        self.status = status
        self.body = body
        super().__init__(message)


class SendInProgress(LedgerError):
    """Another process holds the edition's send lock: this run must send nothing."""


class NotApproved(NewsflashError):
    """config.toml requires approval and the edition as built now is not the one approved.

    `description` says why (never approved, or what changed since), for the reviewers."""

    def __init__(self, message: str, *, description: str) -> None:
        self.description = description
        super().__init__(message)

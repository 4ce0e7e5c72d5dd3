"""SendGrid's suppression endpoints for :class:`fake_sendgrid.FakeSendGrid`, as strict as the spec.

The spec is SendGrid's OpenAPI description of the suppressions API (twilio/sendgrid-oai,
``sendgrid-suppressions-v3.openapi.json``). What is served, on the same server as Mail Send:

- ``GET /v3/suppression/{bounces,blocks,spam_reports,invalid_emails,unsubscribes}``: paged
  with ``limit`` (1-500, SendGrid's maximum; default 500) and ``offset`` (>= 0); any other
  value, or an unknown query parameter, is a 400. Entries are objects with ``created`` (unix
  time) and ``email``, plus the list's own fields (``reason``/``status``, ``ip``). Bounces
  also require the ``Accept: application/json`` header the spec marks as required.
- ``GET /v3/asm/groups/{id}/suppressions``: the group's addresses, an array of strings (not
  paged in the spec); 404 for a group that does not exist.
- ``POST /v3/asm/suppressions/global`` and ``POST /v3/asm/groups/{id}/suppressions``: body
  ``{"recipient_emails": [...]}`` (required, an array of addresses) -> 201 echoing them; a
  group that does not exist puts them on the global list, as the spec says.
- ``DELETE /v3/asm/suppressions/global/{email}``, ``DELETE /v3/asm/groups/{id}/suppressions/
  {email}``, ``DELETE /v3/suppression/{list}/{email}`` -> 204 (also when the address was not
  listed: SendGrid answers 204 either way).
- ``DELETE /v3/suppression/{bounces,blocks,spam_reports,invalid_emails}`` with
  ``{"emails": [...]}`` or ``{"delete_all": true}`` (not both, not neither) -> 204.

Auth, rate limiting, injected faults and the ``X-RateLimit-*`` headers are the server's, as for
Mail Send. An ``On-Behalf-Of`` header naming no known subuser -> 403.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs, unquote

#: The paged lists, by their path segment under /v3/suppression/.
PAGED_LISTS: Final = ("bounces", "blocks", "spam_reports", "invalid_emails", "unsubscribes")
#: What the global list is called on the ASM paths.
GLOBAL: Final = "unsubscribes"
MAX_LIMIT: Final = 500
_EMAIL: Final = re.compile(r'[^@\s<>()\[\],;:\\"]+@[^@\s<>()\[\],;:\\"]+\.[^@\s<>()\[\],;:\\".]+')
_LIST_PATH: Final = re.compile(r"/v3/suppression/([a-z_]+)(?:/([^/]+))?")
_GROUP_PATH: Final = re.compile(r"/v3/asm/groups/([^/]+)/suppressions(?:/([^/]+))?")
_GLOBAL_PATH: Final = re.compile(r"/v3/asm/suppressions/global(?:/([^/]+))?")
_DELETABLE: Final = frozenset({"bounces", "blocks", "spam_reports", "invalid_emails"})

JSON = Any


@dataclass
class Answer:
    """What the endpoint answers: status, a JSON body (None: empty) and extra headers."""

    status: int
    body: JSON = None
    headers: dict[str, str] = field(default_factory=dict)


def _error(status: int, message: str, field_name: str | None = None) -> Answer:
    return Answer(status, {"errors": [{"field": field_name, "message": message}]})


def is_suppression_path(path: str) -> bool:
    return path.startswith(("/v3/suppression/", "/v3/asm/"))


class SuppressionLists:
    """The account's suppression lists; tests fill them with :meth:`add` and read them back."""

    def __init__(self) -> None:
        self.lists: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in PAGED_LISTS}
        self.groups: dict[int, dict[str, None]] = {}
        self.subusers: set[str] = set()

    # ---- test helpers ----------------------------------------------------------------------

    def add(self, list_name: str, email: str, created: int = 1_700_000_000, **fields: Any) -> None:
        """Put `email` on a paged list (``bounces``... ``unsubscribes``) with its fields."""
        self.lists[list_name][email] = {"created": created, "email": email, **fields}

    def add_many(self, list_name: str, emails: Iterable[str], created: int = 1_700_000_000) -> None:
        for email in emails:
            self.add(list_name, email, created, **_default_fields(list_name))

    def add_group(self, group_id: int, emails: Iterable[str] = ()) -> None:
        """Create ASM group `group_id` (if new) holding `emails`."""
        group = self.groups.setdefault(group_id, {})
        group.update(dict.fromkeys(emails))

    def emails(self, list_name: str) -> list[str]:
        return list(self.lists[list_name])

    def group(self, group_id: int) -> list[str]:
        return list(self.groups[group_id])

    # ---- routing ---------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, body: JSON) -> Answer:
        """Answer one request whose auth and body framing the server has already checked."""
        if m := _GLOBAL_PATH.fullmatch(path):
            return self._global(method, m.group(1), body)
        if m := _GROUP_PATH.fullmatch(path):
            return self._group(method, m.group(1), m.group(2), body)
        m = _LIST_PATH.fullmatch(path)
        if m is None or m.group(1) not in self.lists:
            return _error(404, "not found")
        name, email = m.group(1), m.group(2)
        if email is not None:
            if method != "DELETE":
                return _error(405, "method not allowed")
            self.lists[name].pop(unquote(email), None)
            return Answer(204)
        if method == "GET":
            return self._page(name, query)
        if method == "DELETE" and name in _DELETABLE:
            return self._delete_many(name, body)
        return _error(405, "method not allowed")

    def needs_body(self, method: str, path: str) -> bool:
        """Whether this request must carry a JSON body (POSTs, and the list DELETEs)."""
        if method == "POST":
            return True
        m = _LIST_PATH.fullmatch(path)
        return method == "DELETE" and m is not None and m.group(2) is None

    def _page(self, name: str, query: str) -> Answer:
        try:
            params = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
        except ValueError:
            return _error(400, "invalid query string")
        unknown = set(params) - {"limit", "offset", "start_time", "end_time", "email"}
        if unknown:
            return _error(400, f"unknown query parameter {sorted(unknown)[0]}", sorted(unknown)[0])
        limit = _int_param(params, "limit", MAX_LIMIT)
        offset = _int_param(params, "offset", 0)
        if limit is None or not 1 <= limit <= MAX_LIMIT:
            return _error(400, f"limit must be an integer from 1 to {MAX_LIMIT}", "limit")
        if offset is None or offset < 0:
            return _error(400, "offset must be an integer of at least 0", "offset")
        entries = list(self.lists[name].values())
        return Answer(200, entries[offset : offset + limit])

    def _delete_many(self, name: str, body: JSON) -> Answer:
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object")
        emails, delete_all = body.get("emails"), body.get("delete_all")
        if delete_all is not None and not isinstance(delete_all, bool):
            return _error(400, "delete_all must be a boolean", "delete_all")
        if (emails is not None) == bool(delete_all):
            return _error(400, "give either emails or delete_all, not both or neither", None)
        if delete_all:
            self.lists[name].clear()
            return Answer(204)
        problem = _check_emails(emails, "emails")
        if problem:
            return problem
        for email in emails:
            self.lists[name].pop(email, None)
        return Answer(204)

    def _global(self, method: str, email: str | None, body: JSON) -> Answer:
        if email is not None:
            if method != "DELETE":
                return _error(405, "method not allowed")
            self.lists[GLOBAL].pop(unquote(email), None)
            return Answer(204)
        if method != "POST":
            return _error(405, "method not allowed")
        emails, problem = _recipient_emails(body)
        if problem:
            return problem
        for address in emails:
            self.lists[GLOBAL].setdefault(address, {"created": _now(), "email": address})
        return Answer(201, {"recipient_emails": emails})

    def _group(self, method: str, group_text: str, email: str | None, body: JSON) -> Answer:
        if not group_text.isdigit():
            return _error(400, "group_id must be an integer", "group_id")
        group_id = int(group_text)
        group = self.groups.get(group_id)
        if email is not None:
            if method != "DELETE":
                return _error(405, "method not allowed")
            if group is not None:
                group.pop(unquote(email), None)
            return Answer(204)
        if method == "GET":
            if group is None:
                return _error(404, "Group not found")
            return Answer(200, list(group))
        if method != "POST":
            return _error(405, "method not allowed")
        emails, problem = _recipient_emails(body)
        if problem:
            return problem
        for address in emails:
            if group is None:  # the spec: a group that does not exist means the global list
                self.lists[GLOBAL].setdefault(address, {"created": _now(), "email": address})
            else:
                group[address] = None
        return Answer(201, {"recipient_emails": emails})


def _now() -> int:
    return int(time.time())


def _default_fields(list_name: str) -> dict[str, Any]:
    if list_name in ("bounces", "blocks"):
        return {"reason": "550 5.1.1 The email account does not exist", "status": "5.1.1"}
    if list_name == "spam_reports":
        return {"ip": "10.63.202.100"}
    if list_name == "invalid_emails":
        return {"reason": "Mail domain mentioned in email address is unknown"}
    return {}


def _int_param(params: dict[str, list[str]], name: str, default: int) -> int | None:
    values = params.get(name)
    if not values:
        return default
    if len(values) != 1 or not re.fullmatch(r"-?\d{1,12}", values[0]):
        return None
    return int(values[0])


def _check_emails(emails: JSON, where: str) -> Answer | None:
    if not isinstance(emails, list):
        return _error(400, f"{where} must be an array of email addresses", where)
    for position, email in enumerate(emails):
        if not isinstance(email, str) or not _EMAIL.fullmatch(email) or len(email) > 320:
            return _error(400, "does not contain a valid address", f"{where}.{position}")
    return None


def _recipient_emails(body: JSON) -> tuple[list[str], Answer | None]:
    if not isinstance(body, dict):
        return [], _error(400, "the body must be a JSON object")
    if "recipient_emails" not in body:
        return [], _error(400, "recipient_emails is required", "recipient_emails")
    emails = body["recipient_emails"]
    problem = _check_emails(emails, "recipient_emails")
    return (emails if problem is None else []), problem

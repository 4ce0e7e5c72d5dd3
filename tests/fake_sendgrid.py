"""A local, strict stand-in for SendGrid's v3 Mail Send endpoint.

Why this exists: the newsletter is sent once, to real partners, through SendGrid. Mocking the
``sendgrid`` library would only prove that our code calls a mock the way we think the API
behaves. This server speaks HTTP like ``api.sendgrid.com`` does, so the real client library and
our transport run unmodified against it, and it refuses everything the real API refuses (the
rules are written out below, taken from SendGrid's OpenAPI description of ``POST /v3/mail/send``
and from the limits SendGrid documents outside that description). A request this server
accepts should therefore be accepted in production too, and the failure modes a transport must
survive (rate limiting, 5xx, time-outs, an answer that never comes after the mail was accepted)
can be produced on demand.

Typical use in a test::

    from fake_sendgrid import running_server

    with running_server() as sg:
        client = sendgrid.SendGridAPIClient(api_key="SG.test-key", host=sg.url)
        client.send(body)
        assert sg.all_recipients() == ["alex@example.com"]

Manual use / benchmarks: ``python tests/fake_sendgrid.py --port 8025`` prints its URL and serves
until interrupted.

Endpoint behaviour (``POST /v3/mail/send``), checked in this order:

1. An injected fault, if one is queued (see :meth:`FakeSendGrid.inject`).
2. Body larger than ``max_body_bytes`` (default 30,000,000 bytes, SendGrid's "under 30 MB")
   -> 413; neither ``Content-Length`` nor chunked encoding -> 411.
3. ``Authorization: Bearer <key>``: unknown or missing key -> 401; a key listed in
   ``keys_without_scope`` (a real key lacking the ``mail.send`` scope) -> 403.
4. Rate limit, if ``rate_limit=(limit, window_seconds)`` was given -> 429.
5. ``Content-Type`` must be ``application/json`` -> 415 otherwise; ``Content-Encoding: gzip``
   is accepted (SendGrid allows it), any other encoding -> 415.
6. The body must be strict JSON (no NaN/Infinity, UTF-8) holding an object -> 400 otherwise.
7. Validation (:func:`validate_mail_send`) -> 400 listing *all* errors found.
8. Accepted: 202 with an empty body and a fresh ``X-Message-Id``; with
   ``mail_settings.sandbox_mode.enable`` true: 200 with an empty body and no message id, and
   nothing counts as delivered.

SendGrid's suppression lists (bounces, blocks, spam reports, invalid emails, global and ASM group
unsubscribes: paged reads, adds, deletes) are served too, by ``fake_sendgrid_suppressions``,
with the same auth, rate limiting and faults; ``FakeSendGrid.suppressions`` holds the lists.

Other paths answer 404 and other methods on the mail send path answer 405, both with SendGrid's
JSON error shape, except :data:`PORTAL_PATH`: a stand-in for whatever a wrong ``host`` or a
captive proxy serves (an HTML page with 200 to any method), where an injected redirect points by
default, so a test can see whether a client followed the redirect (and what it sent there).
Every API (JSON) response carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset``; without a configured ``rate_limit`` they describe a nominal window of
10,000 requests per second that is never enforced.

Deliberate deviation: a to/cc/bcc ``name`` containing an unquoted ``,`` or ``;`` is refused
with 400. The real API answers 202 and then silently drops the recipient (SendGrid documents
the limitation; see sendgrid/sendgrid-python#291), which is worse than an error for a newsletter
that is sent once; pass ``strict_names=False`` to accept such names as the real API does.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import gzip
import json
import math
import os
import re
import signal
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import urlsplit

from fake_sendgrid_suppressions import SuppressionLists, is_suppression_path

__all__ = [
    "DEFAULT_API_KEY",
    "FAULT_KINDS",
    "MAIL_SEND_PATH",
    "PORTAL_PATH",
    "AcceptedRequest",
    "FakeSendGrid",
    "LoggedRequest",
    "is_sandbox",
    "main",
    "running_server",
    "validate_mail_send",
]

MAIL_SEND_PATH: Final = "/v3/mail/send"
#: A page that is not the API: 200 and HTML to anything, like a captive portal or a web site.
PORTAL_PATH: Final = "/portal"
PORTAL_PAGE: Final = b"<!doctype html><title>Welcome</title><p>Please log in to continue.</p>"
DEFAULT_API_KEY: Final = "SG.test-key"

#: SendGrid says "the total size of your email ... must be less than 30MB"; we measure the
#: request body, which is at least as large as the message it describes.
DEFAULT_MAX_BODY_BYTES: Final = 30_000_000

MAX_PERSONALIZATIONS: Final = 1000
MAX_RECIPIENTS: Final = 1000
MAX_CATEGORIES: Final = 10
MAX_CATEGORY_LENGTH: Final = 255
MAX_CUSTOM_ARGS_BYTES: Final = 10_000
MAX_SUBSTITUTIONS_BYTES: Final = 10_000
MAX_REPLY_TO_LIST: Final = 1000
MAX_GROUPS_TO_DISPLAY: Final = 25
MAX_SEND_AT_AHEAD_SECONDS: Final = 72 * 3600

#: Headers SendGrid writes itself and refuses to let a request override (compared lower-cased).
RESERVED_HEADERS: Final = frozenset(
    name.lower()
    for name in (
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "Content-Type",
        "Content-Transfer-Encoding",
        "To",
        "From",
        "Subject",
        "Reply-To",
        "CC",
        "BCC",
    )
)

#: Known ``mail_settings`` / ``tracking_settings`` members and the JSON type of each property.
_MAIL_SETTINGS: Final[dict[str, dict[str, type]]] = {
    "bypass_list_management": {"enable": bool},
    "bypass_spam_management": {"enable": bool},
    "bypass_bounce_management": {"enable": bool},
    "bypass_unsubscribe_management": {"enable": bool},
    "footer": {"enable": bool, "text": str, "html": str},
    "sandbox_mode": {"enable": bool},
}
_TRACKING_SETTINGS: Final[dict[str, dict[str, type]]] = {
    "click_tracking": {"enable": bool, "enable_text": bool},
    "open_tracking": {"enable": bool, "substitution_tag": str},
    "subscription_tracking": {"enable": bool, "text": str, "html": str, "substitution_tag": str},
    "ganalytics": {
        "enable": bool,
        "utm_source": str,
        "utm_medium": str,
        "utm_term": str,
        "utm_content": str,
        "utm_campaign": str,
    },
}

_HELP_BASE: Final = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message."

#: A deliberately basic address check: one ``@``, no whitespace or address-list punctuation,
#: a dotted domain without empty labels. It catches the mistakes a pipeline makes (a name in
#: the email field, a missing domain, two addresses in one string) without pretending to be
#: RFC 5322.
_ATOM: Final = r'[^@\s<>()\[\],;:\\".]+'
_EMAIL_RE: Final = re.compile(rf'[^@\s<>()\[\],;:\\"]+@(?:{_ATOM}\.)+{_ATOM}')
#: RFC 5322 field names: printable ASCII except the colon.
_HEADER_NAME_RE: Final = re.compile(r"[!-9;-~]+")

_AUTH_INVALID_MESSAGE: Final = "The provided authorization grant is invalid, expired, or revoked"

#: Fault kinds understood by :meth:`FakeSendGrid.inject`, besides any HTTP status 100-599.
FAULT_KINDS: Final = frozenset(
    {"hang", "slow", "drop", "accept_then_hang", "accept_then_drop", "body"}
)

#: Nominal rate-limit window reported when no limit is configured (never enforced).
_NOMINAL_RATE_LIMIT: Final = (10_000, 1.0)

_READ_CHUNK: Final = 1 << 20

JSONObject = dict[str, Any]
ErrorItem = dict[str, Any]


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _type_name(value: object) -> str:
    """JSON type name of ``value``, for messages shaped like SendGrid's schema errors."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _is_int(value: object) -> bool:
    """True for JSON integers; ``bool`` is an ``int`` subclass in Python but not in JSON."""
    return isinstance(value, int) and not isinstance(value, bool)


def _help_for(field_path: str | None) -> str | None:
    """SendGrid-style help link: the field path without array indexes, at most two levels."""
    if field_path is None:
        return None
    parts = [part for part in field_path.split(".") if not part.isdigit()]
    return _HELP_BASE + ".".join(parts[:2])


class _Errors:
    """Collects every problem in a request, because SendGrid reports them all at once."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[ErrorItem] = []

    def add(self, field_path: str | None, message: str, help_anchor: str | None = None) -> None:
        help_url = _HELP_BASE + help_anchor if help_anchor else _help_for(field_path)
        self.items.append({"message": message, "field": field_path, "help": help_url})

    def wrong_type(self, field_path: str, expected: str, value: object) -> None:
        self.add(field_path, f"Invalid type. Expected: {expected}, given: {_type_name(value)}.")


def _utf8_len(text: str) -> int:
    """Byte length of ``text`` in UTF-8; cheap for ASCII, which is the common case."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _string_map_size(value: JSONObject) -> int:
    """Size of a string-to-string object as SendGrid budgets it: UTF-8 bytes of keys+values."""
    total = 0
    for key, item in value.items():
        total += _utf8_len(key)
        if isinstance(item, str):
            total += _utf8_len(item)
    return total


def _check_string_map(value: object, path: str, errors: _Errors) -> JSONObject | None:
    """An object whose values are all strings (custom_args, substitutions)."""
    if not isinstance(value, dict):
        errors.wrong_type(path, "object", value)
        return None
    for key, item in value.items():
        if not isinstance(item, str):
            errors.add(
                f"{path}.{key}",
                f"Invalid type. Expected: string, given: {_type_name(item)}. "
                f"All values of {path.rsplit('.', 1)[-1]} must be strings.",
            )
    return value


def _check_headers(value: object, path: str, errors: _Errors) -> None:
    """Custom headers: an object of string values that must not override SendGrid's own."""
    if not isinstance(value, dict):
        errors.wrong_type(path, "object", value)
        return
    for name, header_value in value.items():
        if name.lower() in RESERVED_HEADERS:
            errors.add(
                f"{path}.{name}",
                f"The {name} header is reserved and may not be set in headers. You may not "
                "override: x-sg-id, x-sg-eid, received, dkim-signature, Content-Type, "
                "Content-Transfer-Encoding, To, From, Subject, Reply-To, CC, BCC.",
                "headers",
            )
        elif not _HEADER_NAME_RE.fullmatch(name):
            errors.add(
                f"{path}.{name}",
                "Header names must be printable US-ASCII characters without spaces or colons.",
                "headers",
            )
        if not isinstance(header_value, str):
            errors.add(
                f"{path}.{name}",
                f"Invalid type. Expected: string, given: {_type_name(header_value)}. "
                "Header values must be strings.",
                "headers",
            )


def _check_address(
    value: object,
    path: str,
    errors: _Errors,
    *,
    strict_names: bool = False,
) -> str | None:
    """A ``{"email": ..., "name": ...}`` object; returns the email when it is usable."""
    if not isinstance(value, dict):
        errors.wrong_type(path, "object", value)
        return None
    email = value.get("email")
    result: str | None = None
    if not isinstance(email, str):
        if email is None:
            errors.add(f"{path}.email", "The email parameter is required.")
        else:
            errors.wrong_type(f"{path}.email", "string", email)
    elif not _EMAIL_RE.fullmatch(email) or len(email) > 320 or not email.isascii():
        # SendGrid takes ASCII addresses only (an IDN domain must come as punycode).
        errors.add(f"{path}.email", "Does not contain a valid address.")
    else:
        result = email
    if "name" in value:
        name = value["name"]
        if not isinstance(name, str):
            errors.wrong_type(f"{path}.name", "string", name)
        elif strict_names and (";" in name or "," in name) and not _is_quoted(name):
            errors.add(
                f"{path}.name",
                "Recipient names may not contain ',' or ';' unless the whole name is wrapped "
                'in double quotes (e.g. "\\"Doe, Jane\\""). SendGrid itself accepts such a '
                "request and then drops the recipient.",
                "personalizations.to",
            )
    return result


def _is_quoted(name: str) -> bool:
    return len(name) >= 2 and name[0] == '"' and name[-1] == '"'


def _check_send_at(value: object, path: str, errors: _Errors, now: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        errors.wrong_type(path, "integer", value)
    elif value > now + MAX_SEND_AT_AHEAD_SECONDS:
        errors.add(path, "The send_at time may not be more than 72 hours in the future.")
    elif value < 0:
        errors.add(path, "The send_at time must be a unix timestamp.")


def _check_nonempty_string(value: object, path: str, errors: _Errors, what: str) -> str | None:
    """Returns the string when it is one and not empty, so callers can go on checking it."""
    if not isinstance(value, str):
        errors.wrong_type(path, "string", value)
        return None
    if not value:
        errors.add(path, f"The {what} must be a string at least one character in length.")
        return None
    return value


def _check_settings(
    value: object, path: str, known: dict[str, dict[str, type]], errors: _Errors
) -> JSONObject | None:
    """``mail_settings`` / ``tracking_settings``: objects of objects with typed properties."""
    if not isinstance(value, dict):
        errors.wrong_type(path, "object", value)
        return None
    for name, setting in value.items():
        props = known.get(name)
        if props is None:
            continue  # the API ignores settings it does not know
        if not isinstance(setting, dict):
            errors.wrong_type(f"{path}.{name}", "object", setting)
            continue
        for prop, expected in props.items():
            if prop in setting and not isinstance(setting[prop], expected):
                expected_name = "boolean" if expected is bool else "string"
                errors.wrong_type(f"{path}.{name}.{prop}", expected_name, setting[prop])
    return value


def _setting_enabled(settings: object, name: str) -> bool:
    if not isinstance(settings, dict):
        return False
    setting = settings.get(name)
    return isinstance(setting, dict) and setting.get("enable") is True


def is_sandbox(body: object) -> bool:
    """Whether a request body asks for sandbox mode (validate only, deliver nothing)."""
    return isinstance(body, dict) and _setting_enabled(body.get("mail_settings"), "sandbox_mode")


def validate_mail_send(
    body: object, *, now: float | None = None, strict_names: bool = True
) -> list[ErrorItem]:
    """Every reason SendGrid would refuse ``body`` with a 400, as SendGrid error objects.

    An empty list means the request is acceptable. The work is linear in the size of the
    request: the 1000-personalization requests of a real newsletter send are checked in a
    few milliseconds. ``now`` (unix time) bounds ``send_at``; ``strict_names`` refuses
    recipient names that SendGrid would accept but then drop (see the module docstring).
    """
    errors = _Errors()
    if not isinstance(body, dict):
        errors.add(None, f"The request body must be a JSON object, given: {_type_name(body)}.")
        return errors.items
    current = time.time() if now is None else now

    template_id = body.get("template_id")
    has_template = False
    if "template_id" in body:
        has_template = (
            _check_nonempty_string(template_id, "template_id", errors, "template_id") is not None
        )
    dynamic_template = has_template and isinstance(template_id, str) and template_id[:2] == "d-"

    root_custom_args: JSONObject | None = None
    root_custom_args_size = 0
    if "custom_args" in body:
        root_custom_args = _check_string_map(body["custom_args"], "custom_args", errors)
        if root_custom_args is not None:
            root_custom_args_size = _string_map_size(root_custom_args)
            if root_custom_args_size > MAX_CUSTOM_ARGS_BYTES:
                errors.add(
                    "custom_args",
                    f"The custom_args may not exceed {MAX_CUSTOM_ARGS_BYTES:,} bytes "
                    f"(keys and values, UTF-8); found {root_custom_args_size:,}.",
                )

    every_personalization_has_subject = _check_personalizations(
        body.get("personalizations"),
        errors,
        now=current,
        strict_names=strict_names,
        dynamic_template=dynamic_template,
        root_custom_args=root_custom_args,
        root_custom_args_size=root_custom_args_size,
    )

    if "from" not in body or not isinstance(body["from"], dict) or "email" not in body["from"]:
        errors.add(
            "from.email",
            "The from object must be provided for every email send. It is an object that "
            'requires the email parameter, but may also contain a name parameter.  e.g. {"email" '
            ': "example@example.com"}  or {"email" : "example@example.com", "name" : "Example '
            'Recipient"}.',
            "from",
        )
    else:
        _check_address(body["from"], "from", errors)

    if "reply_to" in body:
        _check_address(body["reply_to"], "reply_to", errors)
        if "reply_to_list" in body:
            errors.add(
                "reply_to_list",
                "The reply_to and reply_to_list properties are mutually exclusive; use one.",
            )
    if "reply_to_list" in body:
        _check_reply_to_list(body["reply_to_list"], errors)

    if "subject" in body:
        _check_nonempty_string(body["subject"], "subject", errors, "subject")
    elif not has_template and not every_personalization_has_subject:
        errors.add(
            "subject",
            "The subject is required. You can get around this requirement if you use a "
            "template with a subject defined or if every personalization has a subject defined.",
        )

    if "content" in body:
        _check_content(body["content"], errors, required=not has_template)
    elif not has_template:
        errors.add(
            "content",
            "Unless a valid template_id is provided, the content parameter is required. There "
            "must be at least one defined content block. We typically suggest both text/plain "
            "and text/html blocks are included, but only one block is required.",
        )

    if "attachments" in body:
        _check_attachments(body["attachments"], errors)
    if "headers" in body:
        _check_headers(body["headers"], "headers", errors)
    if "categories" in body:
        _check_categories(body["categories"], errors)
    if "send_at" in body:
        _check_send_at(body["send_at"], "send_at", errors, current)
    if "batch_id" in body:
        _check_nonempty_string(body["batch_id"], "batch_id", errors, "batch_id")
    if "asm" in body:
        _check_asm(body["asm"], errors)
    if "ip_pool_name" in body:
        pool = body["ip_pool_name"]
        if not isinstance(pool, str):
            errors.wrong_type("ip_pool_name", "string", pool)
        elif not 2 <= len(pool) <= 64:
            errors.add("ip_pool_name", "The ip_pool_name must be between 2 and 64 characters.")
    if "mail_settings" in body:
        settings = _check_settings(body["mail_settings"], "mail_settings", _MAIL_SETTINGS, errors)
        if settings is not None and _setting_enabled(settings, "bypass_list_management"):
            for other in (
                "bypass_spam_management",
                "bypass_bounce_management",
                "bypass_unsubscribe_management",
            ):
                if _setting_enabled(settings, other):
                    errors.add(
                        f"mail_settings.{other}",
                        "bypass_list_management cannot be combined with other bypass filters.",
                    )
    if "tracking_settings" in body:
        _check_settings(body["tracking_settings"], "tracking_settings", _TRACKING_SETTINGS, errors)
    return errors.items


def _check_personalizations(
    value: object,
    errors: _Errors,
    *,
    now: float,
    strict_names: bool,
    dynamic_template: bool,
    root_custom_args: JSONObject | None,
    root_custom_args_size: int,
) -> bool:
    """Check the envelopes; returns whether every personalization carries its own subject."""
    if not isinstance(value, list) or not value:
        errors.add(
            "personalizations",
            "The personalizations field is required and must have at least one personalization.",
        )
        return False
    if len(value) > MAX_PERSONALIZATIONS:
        errors.add(
            "personalizations",
            f"The personalizations field may have at most {MAX_PERSONALIZATIONS} "
            f"personalizations; found {len(value)}.",
        )

    seen: dict[str, str] = {}  # lower-cased address -> field where it first appeared
    recipients = 0
    all_have_subject = True
    for index, personalization in enumerate(value):
        base = f"personalizations.{index}"
        if not isinstance(personalization, dict):
            errors.wrong_type(base, "object", personalization)
            all_have_subject = False
            continue

        to = personalization.get("to")
        if not isinstance(to, list) or not to:
            errors.add(
                f"{base}.to",
                "The to array is required for all personalization objects, and must have at "
                "least one email object with a valid email address.",
            )
        for kind in ("to", "cc", "bcc"):
            addresses = personalization.get(kind)
            if addresses is None and kind not in personalization:
                continue
            if not isinstance(addresses, list):
                if kind != "to":
                    errors.wrong_type(f"{base}.{kind}", "array", addresses)
                continue
            recipients += len(addresses)
            for position, address in enumerate(addresses):
                path = f"{base}.{kind}.{position}"
                email = _check_address(address, path, errors, strict_names=strict_names)
                if email is None:
                    continue
                key = email.lower()
                first = seen.get(key)
                if first is None:
                    seen[key] = path
                else:
                    errors.add(
                        f"{path}.email",
                        "Each email address in the personalization block should be unique "
                        "between to, cc, and bcc, and appear only once in the whole "
                        f"personalizations array. We found {email} again in {path} "
                        f"(first in {first}).",
                        "recipient-errors",
                    )

        if "subject" in personalization:
            _check_nonempty_string(personalization["subject"], f"{base}.subject", errors, "subject")
        else:
            all_have_subject = False
        if "from" in personalization:
            _check_address(personalization["from"], f"{base}.from", errors)
        if "headers" in personalization:
            _check_headers(personalization["headers"], f"{base}.headers", errors)
        if "substitutions" in personalization:
            path = f"{base}.substitutions"
            substitutions = _check_string_map(personalization["substitutions"], path, errors)
            if substitutions is not None:
                if dynamic_template:
                    errors.add(path, "Substitutions may not be used with dynamic templating.")
                size = _string_map_size(substitutions)
                if size > MAX_SUBSTITUTIONS_BYTES:
                    errors.add(
                        path,
                        f"The substitutions of one personalization may not exceed "
                        f"{MAX_SUBSTITUTIONS_BYTES:,} bytes; found {size:,}.",
                    )
        if "dynamic_template_data" in personalization:
            data = personalization["dynamic_template_data"]
            if not isinstance(data, dict):
                errors.wrong_type(f"{base}.dynamic_template_data", "object", data)
        if "custom_args" in personalization:
            path = f"{base}.custom_args"
            custom_args = _check_string_map(personalization["custom_args"], path, errors)
            if custom_args is not None:
                _check_merged_custom_args(
                    custom_args, path, errors, root_custom_args, root_custom_args_size
                )
        if "send_at" in personalization:
            _check_send_at(personalization["send_at"], f"{base}.send_at", errors, now)

    if recipients > MAX_RECIPIENTS:
        errors.add(
            "personalizations",
            f"The number of recipients (to, cc and bcc) in one request may be at most "
            f"{MAX_RECIPIENTS}; found {recipients}.",
            "recipient-errors",
        )
    return all_have_subject


def _check_merged_custom_args(
    custom_args: JSONObject,
    path: str,
    errors: _Errors,
    root: JSONObject | None,
    root_size: int,
) -> None:
    """The message-level custom_args plus this personalization's (which override) <= 10 kB.

    Computed without building the merged object so that 1000 personalizations stay linear.
    """
    size = _string_map_size(custom_args) + root_size
    if root:
        for key in custom_args:
            overridden = root.get(key)
            if isinstance(overridden, str):
                size -= _utf8_len(key) + _utf8_len(overridden)
    if size > MAX_CUSTOM_ARGS_BYTES:
        errors.add(
            path,
            f"The total custom_args size (message level plus personalization, keys and values, "
            f"UTF-8) may not exceed {MAX_CUSTOM_ARGS_BYTES:,} bytes; found {size:,}.",
        )


def _check_reply_to_list(value: object, errors: _Errors) -> None:
    if not isinstance(value, list):
        errors.wrong_type("reply_to_list", "array", value)
        return
    if len(value) > MAX_REPLY_TO_LIST:
        errors.add(
            "reply_to_list", f"The reply_to_list may have at most {MAX_REPLY_TO_LIST} items."
        )
    seen: set[str] = set()
    for position, item in enumerate(value):
        email = _check_address(item, f"reply_to_list.{position}", errors)
        if email is not None:
            if email.lower() in seen:
                errors.add(
                    f"reply_to_list.{position}.email", "The reply_to_list items must be unique."
                )
            seen.add(email.lower())


def _check_content(value: object, errors: _Errors, *, required: bool) -> None:
    """Content blocks: typed, non-empty, text/plain first then text/html, each at most once."""
    if not isinstance(value, list):
        errors.wrong_type("content", "array", value)
        return
    if not value:
        if required:
            errors.add(
                "content",
                "Unless a valid template_id is provided, the content parameter is required. "
                "There must be at least one defined content block.",
            )
        return
    mimes: list[str | None] = []
    for position, block in enumerate(value):
        path = f"content.{position}"
        if not isinstance(block, dict):
            errors.wrong_type(path, "object", block)
            mimes.append(None)
            continue
        mime = _check_nonempty_string(block.get("type"), f"{path}.type", errors, "content type")
        if mime is not None and any(ch in mime for ch in ";\r\n"):
            errors.add(f"{path}.type", "The content type cannot contain ';', or CRLF characters.")
        mimes.append(mime.strip().lower() if mime is not None else None)
        _check_nonempty_string(block.get("value"), f"{path}.value", errors, "content value")

    # SendGrid builds multipart/alternative in array order and insists on plain, html, rest.
    expected = {"text/plain": 0, "text/html": 1 if "text/plain" in mimes else 0}
    seen: set[str] = set()
    for position, mime in enumerate(mimes):
        if mime not in expected:
            continue
        if mime in seen:
            errors.add(
                f"content.{position}.type",
                "If present, text/plain and text/html may only be provided once.",
            )
        elif position != expected[mime]:
            errors.add(
                f"content.{position}.type",
                "If present, text/plain must be first, followed by text/html, followed by any "
                "other content.",
            )
        seen.add(mime)


def _check_attachments(value: object, errors: _Errors) -> None:
    if not isinstance(value, list):
        errors.wrong_type("attachments", "array", value)
        return
    for position, attachment in enumerate(value):
        path = f"attachments.{position}"
        if not isinstance(attachment, dict):
            errors.wrong_type(path, "object", attachment)
            continue
        content = _check_nonempty_string(
            attachment.get("content"), f"{path}.content", errors, "attachment content"
        )
        if content is not None:
            try:
                base64.b64decode(content, validate=True)
            except (binascii.Error, ValueError):
                errors.add(f"{path}.content", "The attachment content must be base64 encoded.")
        _check_nonempty_string(attachment.get("filename"), f"{path}.filename", errors, "filename")
        if "type" in attachment:
            _check_nonempty_string(attachment["type"], f"{path}.type", errors, "attachment type")
        disposition = attachment.get("disposition", "attachment")
        if disposition not in ("inline", "attachment"):
            errors.add(
                f"{path}.disposition",
                "The disposition must be either 'inline' or 'attachment'.",
            )
        if "content_id" in attachment:
            _check_nonempty_string(
                attachment["content_id"], f"{path}.content_id", errors, "content_id"
            )
        elif disposition == "inline":
            errors.add(
                f"{path}.content_id",
                "The content_id parameter is required if the disposition is set to inline.",
            )


def _check_categories(value: object, errors: _Errors) -> None:
    if not isinstance(value, list):
        errors.wrong_type("categories", "array", value)
        return
    if len(value) > MAX_CATEGORIES:
        errors.add(
            "categories",
            f"Too many categories: at most {MAX_CATEGORIES} are allowed per request; "
            f"found {len(value)}.",
        )
    seen: set[str] = set()
    for position, category in enumerate(value):
        path = f"categories.{position}"
        if not isinstance(category, str):
            errors.wrong_type(path, "string", category)
            continue
        if len(category) > MAX_CATEGORY_LENGTH:
            errors.add(path, f"A category cannot exceed {MAX_CATEGORY_LENGTH} characters.")
        if category in seen:
            errors.add(path, f"The categories must be unique; {category!r} is repeated.")
        seen.add(category)


def _check_asm(value: object, errors: _Errors) -> None:
    if not isinstance(value, dict):
        errors.wrong_type("asm", "object", value)
        return
    if "group_id" not in value:
        errors.add("asm.group_id", "The asm.group_id is required when asm is present.")
    elif not _is_int(value["group_id"]):
        errors.wrong_type("asm.group_id", "integer", value["group_id"])
    if "groups_to_display" in value:
        groups = value["groups_to_display"]
        if not isinstance(groups, list):
            errors.wrong_type("asm.groups_to_display", "array", groups)
            return
        if len(groups) > MAX_GROUPS_TO_DISPLAY:
            errors.add(
                "asm.groups_to_display",
                f"The asm.groups_to_display may have at most {MAX_GROUPS_TO_DISPLAY} items.",
            )
        for position, group in enumerate(groups):
            if not _is_int(group):
                errors.wrong_type(f"asm.groups_to_display.{position}", "integer", group)


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AcceptedRequest:
    """A request the server accepted (202, or 200 in sandbox mode).

    ``headers`` has lower-cased names. ``message_id`` is the ``X-Message-Id`` sent back, or
    ``None`` for sandbox requests (the fake sends none then, so a transport must not insist on
    one for a 200). ``answered`` is False when an
    injected ``accept_then_drop``/``accept_then_hang`` fault kept the answer from the client:
    the mail counts as delivered even though the client never learnt it.
    """

    body: JSONObject
    message_id: str | None
    headers: dict[str, str]
    sandbox: bool
    received_at: float
    answered: bool = True

    @property
    def to_addresses(self) -> list[str]:
        """The ``to`` addresses of this request, in order; none for sandbox requests."""
        if self.sandbox:
            return []
        return [
            address["email"]
            for personalization in self.body["personalizations"]
            for address in personalization["to"]
        ]


@dataclass(frozen=True)
class LoggedRequest:
    """Any request the server saw, whatever the outcome; useful to count a client's attempts.

    ``status`` is ``None`` when no answer was sent (``drop``/``accept_then_drop``).
    ``fault`` names the injected fault that the request consumed. Requests still in flight
    when :meth:`FakeSendGrid.reset` runs are not logged afterwards.
    """

    method: str
    path: str
    headers: dict[str, str]
    status: int | None
    fault: str | None
    errors: list[ErrorItem] = field(default_factory=list)


@dataclass(frozen=True)
class _Fault:
    kind: str
    seconds: float
    reset_in: float
    location: str | None = None
    body: bytes = b""
    at_once: bool = False

    @property
    def status(self) -> int | None:
        """The injected HTTP status, or None for the kinds that are not one."""
        return int(self.kind) if self.kind.isdigit() else None


# --------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------


class _RateWindow:
    """A fixed window per server: ``limit`` requests, then 429 until the window ends."""

    def __init__(self, limit: int, window: float, enforced: bool, clock: Callable[[], float]):
        self.limit = limit
        self.window = window
        self.enforced = enforced
        self._clock = clock
        self._start: float | None = None
        self._count = 0

    def _roll(self, now: float) -> None:
        if self._start is None or now >= self._start + self.window:
            self._start = now
            self._count = 0

    def _headers(self, now: float) -> dict[str, str]:
        start = now if self._start is None else self._start
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.limit - self._count)),
            "X-RateLimit-Reset": str(math.ceil(start + self.window)),
        }

    def peek(self) -> dict[str, str]:
        now = self._clock()
        self._roll(now)
        return self._headers(now)

    def acquire(self) -> tuple[bool, dict[str, str]]:
        """Count one request; False (and the 429 headers) when the window is used up."""
        now = self._clock()
        self._roll(now)
        if self.enforced and self._count >= self.limit:
            return False, self._headers(now)
        self._count += 1
        return True, self._headers(now)

    def reset(self) -> None:
        self._start = None
        self._count = 0


@dataclass
class _Exchange:
    """One request in flight, and what the request log will say about it."""

    handler: _Handler
    method: str
    path: str
    headers: dict[str, str]
    generation: int
    wake: threading.Event
    fault: _Fault | None = None
    errors: list[ErrorItem] = field(default_factory=list)


class _Drop(Exception):
    """Raised inside the handler to close the connection without an answer."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # benchmarks open many connections at once
    fake: FakeSendGrid

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that went away (time-out tests do that on purpose)."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.0: one request per connection, so there is no keep-alive state to get wrong."""

    server: _HTTPServer
    protocol_version = "HTTP/1.0"
    timeout = 60  # a client that stops sending mid-body must not pin a thread forever

    def version_string(self) -> str:
        return "nginx"

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr line; tests and benchmarks read their own output."""

    def _dispatch(self) -> None:
        self.server.fake._serve(self)

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch


class FakeSendGrid:
    """A strict fake of ``POST /v3/mail/send``; see the module docstring for the rules.

    Options:

    - ``api_keys``: keys answered normally (default ``{"SG.test-key"}``).
    - ``keys_without_scope``: keys that exist but lack the mail.send scope -> 403.
    - ``rate_limit``: ``(limit_per_window, window_seconds)``; requests beyond -> 429.
    - ``max_body_bytes``: body size above which the answer is 413 (default 30,000,000).
    - ``strict_names``: refuse recipient names SendGrid would silently drop (default True).
    - ``clock``: unix-time source for rate-limit windows and ``send_at`` checks.
    - ``host``/``port``: where to listen; port 0 (default) picks a free one.
    - ``latency``: seconds every Mail Send request waits before it is answered (default 0), as
      the real API's few hundred milliseconds do; benchmarks use it to show requests in flight.

    Attributes/helpers: ``url``, ``port``, ``accepted_requests``, ``delivered_requests``,
    ``sandbox_requests``, ``request_log``, ``all_recipients()``, ``inject()``,
    ``pending_faults``, ``reset()``, ``start()``, ``stop()``. The mutable sets ``api_keys``
    and ``keys_without_scope`` may be changed while running (e.g. to revoke a key).
    """

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = (DEFAULT_API_KEY,),
        keys_without_scope: Iterable[str] = (),
        rate_limit: tuple[int, float] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        strict_names: bool = True,
        clock: Callable[[], float] = time.time,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
    ) -> None:
        self.api_keys: set[str] = set(api_keys)
        self.latency = latency
        self.keys_without_scope: set[str] = set(keys_without_scope)
        self.max_body_bytes = max_body_bytes
        self.strict_names = strict_names
        self._clock = clock
        limit, window = rate_limit if rate_limit is not None else _NOMINAL_RATE_LIMIT
        if limit < 1 or window <= 0:
            raise ValueError("rate_limit must be (limit >= 1, window_seconds > 0)")
        self._rate = _RateWindow(limit, window, rate_limit is not None, clock)
        self._lock = threading.Lock()
        self._accepted: list[AcceptedRequest] = []
        self._log: list[LoggedRequest] = []
        #: The account's suppression lists (see fake_sendgrid_suppressions); fill them in tests.
        self.suppressions = SuppressionLists()
        self._faults: deque[_Fault] = deque()
        # Sleeping handlers wait on ``_wake``; reset() and stop() set it so that no injected hang
        # outlives the test that asked for it. ``_generation`` lets a handler that started before
        # a reset() know that its late bookkeeping belongs to a finished test.
        self._wake = threading.Event()
        self._generation = 0
        self._httpd = _HTTPServer((host, port), _Handler, bind_and_activate=True)
        self._httpd.fake = self
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL to hand to ``SendGridAPIClient(host=...)``, e.g. ``http://127.0.0.1:5432``."""
        host = self._httpd.server_address[0]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://{host}:{self.port}"

    def start(self) -> FakeSendGrid:
        """Serve in a daemon thread; returns self so ``FakeSendGrid().start()`` reads well."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"fake-sendgrid-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; wakes handlers sleeping in injected hangs so nothing lingers."""
        with self._lock:
            self._generation += 1
            self._wake.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> FakeSendGrid:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- test helpers ----------------------------------------------------------------------

    @property
    def accepted_requests(self) -> list[AcceptedRequest]:
        """Every accepted request, sandbox ones included (check ``.sandbox``), oldest first."""
        with self._lock:
            return list(self._accepted)

    @property
    def delivered_requests(self) -> list[AcceptedRequest]:
        """Accepted requests that would deliver mail (not sandbox), oldest first."""
        with self._lock:
            return [request for request in self._accepted if not request.sandbox]

    @property
    def sandbox_requests(self) -> list[AcceptedRequest]:
        with self._lock:
            return [request for request in self._accepted if request.sandbox]

    @property
    def request_log(self) -> list[LoggedRequest]:
        """Every request seen, accepted or not, oldest first."""
        with self._lock:
            return list(self._log)

    def all_recipients(self) -> list[str]:
        """``to`` addresses of all delivered (non-sandbox) requests, in order, as sent."""
        return [email for request in self.delivered_requests for email in request.to_addresses]

    def edition_recipients(self, edition_id: str) -> list[str]:
        """``to`` addresses of the delivered personalizations whose ``custom_args`` name
        ``edition_id``: the edition's own copies, not the notes (receipts, notices) that go
        through the same API without them."""
        return [
            p["to"][0]["email"]
            for request in self.delivered_requests
            for p in request.body["personalizations"]
            if isinstance(p.get("custom_args"), dict)
            and p["custom_args"].get("edition") == edition_id
        ]

    def inject(
        self,
        kind: str | int,
        *,
        seconds: float = 5.0,
        reset_in: float = 1.0,
        times: int = 1,
        location: str | None = None,
        body: bytes = b"",
        at_once: bool = False,
    ) -> None:
        """Queue a fault; each API request consumes the oldest one (``times`` queues N).

        ``at_once``: answer this fault without the server's ``latency``, so its answer is the
        first back even when requests sent before it are still waiting (concurrency tests
        need to know which answer the client sees first).

        Kinds:

        - ``"400"``..``"599"`` (or the int): answer that status with a SendGrid-shaped JSON
          error, record nothing. ``"401"`` uses the real invalid-key body; ``"429"`` carries
          ``X-RateLimit-Remaining: 0`` and ``X-RateLimit-Reset`` = now + ``reset_in``.
        - ``"200"``..``"299"``: what a host that is not SendGrid's Mail Send might answer (a
          web server, a captive proxy): that status with a small HTML page (no body for 204),
          whatever the request, sandbox or not; nothing is recorded. (The real API answers only
          202, or 200 in sandbox mode.)
        - ``"300"``..``"399"``: a redirect to ``location`` (default: this server's
          :data:`PORTAL_PATH`), as a wrong host or a captive proxy answers; nothing recorded.
        - ``"100"``..``"199"``: an interim response. The request is processed normally (and
          recorded if accepted); that interim status line is written just before the final
          answer. Python's http.client skips only ``100 Continue``: it takes any
          other 1xx for the final answer, so the client never learns that the mail was taken.
        - ``"hang"``: read the request, sleep ``seconds``, then answer 504; nothing is
          recorded. For client time-out tests: the client gives up, SendGrid never took it.
        - ``"slow"``: sleep ``seconds``, then process the request normally (may accept it).
        - ``"drop"``: read the request and close the connection without an answer; nothing is
          recorded.
        - ``"accept_then_hang"``: process normally; if the request is accepted it is recorded
          at once (``answered=False``), then the answer (202) is delayed ``seconds``. Models
          "SendGrid accepted the mail but the answer never came" -> a retry duplicates it.
        - ``"accept_then_drop"``: process normally; if accepted, record it (``answered=False``)
          and close the connection without an answer.
        - ``"body"``: answer 200 with ``body`` as it is (``Content-Type: application/json``),
          whatever it holds: for clients that must survive a hostile or broken answer.

        Requests that fail auth, rate limiting or validation under an ``accept_then_*`` fault
        are answered with their error as usual (the fault is still used up). Faults are only
        consumed by requests to ``POST /v3/mail/send`` and to the suppression endpoints.
        """
        name = str(kind)
        if name.isdigit():
            if not 100 <= int(name) <= 599 or len(name) != 3:
                raise ValueError(f"injected status must be 100-599, got {name}")
        elif name not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {name!r}; known: {sorted(FAULT_KINDS)}")
        with self._lock:
            for _ in range(times):
                self._faults.append(_Fault(name, seconds, reset_in, location, body, at_once))

    @property
    def pending_faults(self) -> list[str]:
        """Kinds of the injected faults not yet consumed, next first."""
        with self._lock:
            return [fault.kind for fault in self._faults]

    def reset(self) -> None:
        """Forget recorded requests, queued faults, the rate-limit window and the suppressions.

        Requests still sleeping in an injected hang are woken up and will record nothing.
        """
        with self._lock:
            self._generation += 1
            self._wake.set()
            self._wake = threading.Event()
            self._accepted.clear()
            self._log.clear()
            self._faults.clear()
            self._rate.reset()
            self.suppressions = SuppressionLists()

    # ---- request handling ------------------------------------------------------------------

    def _serve(self, handler: _Handler) -> None:
        with self._lock:
            exchange = _Exchange(
                handler=handler,
                method=handler.command,
                path=urlsplit(handler.path).path,
                headers={name.lower(): value for name, value in handler.headers.items()},
                generation=self._generation,
                wake=self._wake,
            )
        try:
            self._serve_inner(exchange)
        except _Drop:
            # Logged before the handler returns, i.e. before the client can see the socket close.
            self._log_exchange(exchange, None)
            handler.close_connection = True

    def _log_exchange(self, exchange: _Exchange, status: int | None) -> None:
        entry = LoggedRequest(
            exchange.method,
            exchange.path,
            exchange.headers,
            status,
            exchange.fault.kind if exchange.fault else None,
            exchange.errors,
        )
        with self._lock:
            if exchange.generation == self._generation:
                self._log.append(entry)

    def _serve_inner(self, exchange: _Exchange) -> int:
        handler, headers = exchange.handler, exchange.headers
        if exchange.path == PORTAL_PATH:
            self._read_body(handler, headers)
            return self._send_page(exchange, 200, PORTAL_PAGE, {})
        if is_suppression_path(exchange.path):
            return self._serve_suppressions(exchange)
        if exchange.path != MAIL_SEND_PATH:
            self._read_body(handler, headers)
            return self._error(exchange, 404, "not found")
        if exchange.method != "POST":
            self._read_body(handler, headers)
            not_allowed: ErrorItem = {"message": "method not allowed", "field": None, "help": None}
            return self._send(exchange, 405, [not_allowed], {"Allow": "POST"})

        with self._lock:
            fault = exchange.fault = self._faults.popleft() if self._faults else None

        raw, body_problem = self._read_body(handler, headers)
        if self.latency and not (fault is not None and fault.at_once):
            exchange.wake.wait(self.latency)

        if fault is not None:
            early = self._apply_early_fault(exchange, fault)
            if early is not None:
                return early

        if body_problem == 413:
            return self._error(exchange, 413, "content too large")
        if body_problem == 411:
            return self._error(exchange, 411, "length required")
        if body_problem == 400:
            return self._error(exchange, 400, "Bad Request")

        key = _bearer_key(headers.get("authorization"))
        if key is None or (key not in self.api_keys and key not in self.keys_without_scope):
            return self._error(exchange, 401, _AUTH_INVALID_MESSAGE)
        if key in self.keys_without_scope:
            return self._error(exchange, 403, "access forbidden")

        with self._lock:
            allowed, rate_headers = self._rate.acquire()
        if not allowed:
            too_many: ErrorItem = {"field": None, "message": "too many requests"}
            return self._send(exchange, 429, [too_many], rate_headers)

        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            return self._error(exchange, 415, "Content-Type should be application/json.")
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding == "gzip":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError, zlib.error):
                return self._error(exchange, 400, "The gzip-compressed body is invalid.")
            if len(raw) > self.max_body_bytes:
                return self._error(exchange, 413, "content too large")
        elif encoding != "identity":
            return self._error(exchange, 415, f"Unsupported Content-Encoding: {encoding}.")

        try:
            body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError, RecursionError):
            return self._error(exchange, 400, "Bad Request")

        problems = validate_mail_send(body, now=self._clock(), strict_names=self.strict_names)
        if problems:
            return self._send(exchange, 400, problems, rate_headers)

        sandbox = is_sandbox(body)
        message_id = None if sandbox else _new_message_id()
        answered = fault is None or not fault.kind.startswith("accept_then_")
        record = AcceptedRequest(body, message_id, headers, sandbox, time.time(), answered)
        with self._lock:
            if exchange.generation == self._generation:
                self._accepted.append(record)

        if fault is not None and fault.kind == "accept_then_drop":
            raise _Drop
        if fault is not None and fault.kind == "accept_then_hang":
            exchange.wake.wait(fault.seconds)
        if sandbox:
            return self._send(exchange, 200, None, rate_headers)
        return self._send(exchange, 202, None, {**rate_headers, "X-Message-Id": message_id or ""})

    def _serve_suppressions(self, exchange: _Exchange) -> int:
        """The suppression endpoints: fault, framing, auth, rate limit, then the lists."""
        handler, headers = exchange.handler, exchange.headers
        with self._lock:
            fault = exchange.fault = self._faults.popleft() if self._faults else None
        raw, body_problem = self._read_body(handler, headers)
        if fault is not None:
            early = self._apply_early_fault(exchange, fault)
            if early is not None:
                return early
        if body_problem is not None and body_problem != 411:
            return self._error(exchange, body_problem, _STATUS_MESSAGES.get(body_problem, ""))
        key = _bearer_key(headers.get("authorization"))
        if key is None or (key not in self.api_keys and key not in self.keys_without_scope):
            return self._error(exchange, 401, _AUTH_INVALID_MESSAGE)
        behalf = headers.get("on-behalf-of")
        if key in self.keys_without_scope or (
            behalf is not None and behalf not in self.suppressions.subusers
        ):
            return self._error(exchange, 403, "access forbidden")
        with self._lock:
            allowed, rate_headers = self._rate.acquire()
        if not allowed:
            too_many: ErrorItem = {"field": None, "message": "too many requests"}
            return self._send(exchange, 429, [too_many], rate_headers)
        query = urlsplit(handler.path).query
        accept = headers.get("accept", "").split(";")[0].strip()
        is_bounces = exchange.path.startswith("/v3/suppression/bounces")
        if is_bounces and exchange.method == "GET" and accept != "application/json":
            return self._error(exchange, 400, "the Accept header is required")
        body: Any = None
        if self.suppressions.needs_body(exchange.method, exchange.path):
            content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if content_type != "application/json":
                return self._error(exchange, 415, "Content-Type should be application/json.")
            try:
                body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
            except (UnicodeDecodeError, ValueError, RecursionError):
                return self._error(exchange, 400, "Bad Request")
        with self._lock:
            answer = self.suppressions.handle(exchange.method, exchange.path, query, body)
        if answer.status >= 400 and isinstance(answer.body, dict):
            exchange.errors = list(answer.body.get("errors", []))
        payload = b"" if answer.body is None else json.dumps(answer.body).encode("utf-8")
        return self._write(
            exchange, answer.status, payload, "application/json", {**rate_headers, **answer.headers}
        )

    def _apply_early_fault(self, exchange: _Exchange, fault: _Fault) -> int | None:
        """Answer faults decided before looking at the request; ``None`` lets processing go on.

        Raises :class:`_Drop` for faults that end without an answer.
        """
        kind = fault.kind
        if kind == "drop":
            raise _Drop
        if kind == "body":
            return self._write(exchange, 200, fault.body, "application/json", {})
        if kind == "hang":
            if exchange.wake.wait(fault.seconds):
                raise _Drop  # woken by reset()/stop(): the test that wanted this is over
            return self._error(exchange, 504, "gateway timeout")
        if kind == "slow":
            exchange.wake.wait(fault.seconds)
            return None
        status = fault.status
        if status is None or status < 200:
            return None  # accept_then_* and 1xx: handled once the request is accepted
        if status < 300:
            return self._send_page(exchange, status, b"" if status == 204 else PORTAL_PAGE, {})
        if status < 400:
            target = fault.location if fault.location is not None else self.url + PORTAL_PATH
            return self._send_page(exchange, status, PORTAL_PAGE, {"Location": target})
        if status == 401:
            return self._error(exchange, 401, _AUTH_INVALID_MESSAGE)
        if status == 429:
            with self._lock:
                headers = self._rate.peek()
            headers["X-RateLimit-Remaining"] = "0"
            headers["X-RateLimit-Reset"] = str(math.ceil(self._clock() + fault.reset_in))
            too_many: ErrorItem = {"field": None, "message": "too many requests"}
            return self._send(exchange, 429, [too_many], headers)
        return self._error(exchange, status, _STATUS_MESSAGES.get(status, "injected fault"))

    def _read_body(self, handler: _Handler, headers: dict[str, str]) -> tuple[bytes, int | None]:
        """Read the whole body (so the client always gets to read our answer).

        Returns the body and ``None``, or what is wrong with it: 413 (too large; the rest is
        read and discarded), 411 (no length given), 400 (unreadable framing).
        """
        limit = self.max_body_bytes
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return _read_chunked(handler, limit)
        length_text = headers.get("content-length")
        if length_text is None:
            return b"", (411 if handler.command in ("POST", "PUT", "PATCH") else None)
        try:
            length = int(length_text)
        except ValueError:
            return b"", 400
        if length < 0:
            return b"", 400
        if length > limit:
            _discard(handler, length)
            return b"", 413
        data = handler.rfile.read(length)
        if len(data) != length:
            raise _Drop  # the client went away mid-body
        return data, None

    def _error(self, exchange: _Exchange, status: int, message: str) -> int:
        return self._send(exchange, status, [{"message": message, "field": None, "help": None}], {})

    def _send(
        self,
        exchange: _Exchange,
        status: int,
        errors: list[ErrorItem] | None,
        extra_headers: dict[str, str],
    ) -> int:
        """Write a complete response (JSON errors, or an empty body when ``errors`` is None).

        A client that already hung up (time-out tests do that on purpose) is not an error here.
        """
        body = b""
        if errors is not None:
            exchange.errors = errors
            body = json.dumps({"errors": errors}, separators=(",", ":")).encode("utf-8")
        if not any(name.startswith("X-RateLimit") for name in extra_headers):
            with self._lock:
                extra_headers = {**self._rate.peek(), **extra_headers}
        return self._write(exchange, status, body, "application/json", extra_headers)

    def _send_page(
        self, exchange: _Exchange, status: int, page: bytes, extra_headers: dict[str, str]
    ) -> int:
        """An HTML answer, as a web server or a captive proxy sends instead of the API."""
        return self._write(exchange, status, page, "text/html; charset=utf-8", extra_headers)

    def _write(
        self,
        exchange: _Exchange,
        status: int,
        body: bytes,
        content_type: str,
        extra_headers: dict[str, str],
    ) -> int:
        handler = exchange.handler
        # Log first: once the answer is out, a test may already be reading the log.
        self._log_exchange(exchange, status)
        interim = exchange.fault.status if exchange.fault else None
        try:
            if interim is not None and interim < 200:
                handler.send_response_only(interim)
                handler.end_headers()
            handler.send_response(status)
            if body:
                handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(body)))
            for name, value in extra_headers.items():
                handler.send_header(name, value)
            handler.send_header("Connection", "close")
            handler.end_headers()
            if body and handler.command != "HEAD":
                handler.wfile.write(body)
        except OSError:
            handler.close_connection = True
        return status


_STATUS_MESSAGES: Final = {
    400: "Bad Request",
    403: "access forbidden",
    404: "not found",
    405: "method not allowed",
    413: "content too large",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}


def _bearer_key(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, key = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return key.strip()


def _reject_constant(name: str) -> Any:
    """NaN/Infinity are Python's JSON extensions, not JSON; SendGrid's parser refuses them."""
    raise ValueError(f"invalid JSON constant {name}")


def _new_message_id() -> str:
    """A 22-character URL-safe id, the shape of SendGrid's ``X-Message-Id``."""
    return base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode("ascii")


def _discard(handler: _Handler, length: int) -> None:
    remaining = length
    while remaining > 0:
        chunk = handler.rfile.read(min(_READ_CHUNK, remaining))
        if not chunk:
            raise _Drop
        remaining -= len(chunk)


def _read_chunked(handler: _Handler, limit: int) -> tuple[bytes, int | None]:
    """Decode ``Transfer-Encoding: chunked``, keeping at most ``limit`` bytes."""
    parts: list[bytes] = []
    total = 0
    while True:
        size_line = handler.rfile.readline(1024)
        if not size_line:
            raise _Drop
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            return b"", 400
        if size == 0:
            break
        total += size
        if total > limit:
            _discard(handler, size)
        else:
            chunk = handler.rfile.read(size)
            if len(chunk) != size:
                raise _Drop
            parts.append(chunk)
        handler.rfile.readline(1024)  # CRLF after the chunk
    while handler.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
        pass  # trailers
    if total > limit:
        return b"", 413
    return b"".join(parts), None


@contextlib.contextmanager
def running_server(**options: Any) -> Iterator[FakeSendGrid]:
    """Start a :class:`FakeSendGrid` (options as its constructor) and stop it afterwards."""
    server = FakeSendGrid(**options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _parse_rate_limit(text: str) -> tuple[int, float]:
    limit, _, window = text.partition("/")
    return int(limit), float(window or "1")


def main(argv: list[str] | None = None) -> int:
    """Run the fake in the foreground for manual tests and benchmarks; Ctrl-C/SIGTERM stop it."""
    parser = argparse.ArgumentParser(description="Strict fake SendGrid v3 Mail Send server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--key", action="append", dest="keys", help=f"valid API key (default {DEFAULT_API_KEY})"
    )
    parser.add_argument(
        "--key-without-scope", action="append", default=[], help="key answered with 403"
    )
    parser.add_argument("--rate-limit", type=_parse_rate_limit, help="LIMIT/SECONDS, e.g. 600/60")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    parser.add_argument(
        "--lenient-names",
        action="store_true",
        help="accept recipient names with unquoted ',' or ';' as SendGrid does",
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds each Mail Send answer waits"
    )
    args = parser.parse_args(argv)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    with running_server(
        api_keys=args.keys or [DEFAULT_API_KEY],
        keys_without_scope=args.key_without_scope,
        rate_limit=args.rate_limit,
        max_body_bytes=args.max_body_bytes,
        strict_names=not args.lenient_names,
        host=args.host,
        port=args.port,
        latency=args.latency,
    ) as server:
        print(server.url, flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The preview's Host and header guard.

Any web page the secretariat visits can make the browser send requests to 127.0.0.1, and with
DNS rebinding (a name of the attacker's that resolves to 127.0.0.1) read the answers. So the
preview answers only requests whose Host is a loopback name or the host it was started on
(anything else: 421), and every answer carries headers that keep a browser from sniffing,
framing or leaking it. The request handler (preview.py) applies what is decided here.
"""

from __future__ import annotations

import ipaddress
import re

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[0-9A-Za-z.\-]+)(?::[0-9]{0,5})?")

# Answers that are not the page share these; the page and the email widen them a little.
COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
LOCKED_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
EMAIL_CSP = (
    "default-src 'none'; img-src http: https: data:; style-src 'unsafe-inline'; "
    "font-src http: https: data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)


def page_csp(nonce: str) -> str:
    """The page's policy: only its own script (by a fresh nonce) runs, and it talks only to
    this server; everything else stays locked as in LOCKED_CSP."""
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
        "connect-src 'self'; frame-src 'self'; img-src 'self' data:; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    )


def host_name(value: str) -> str | None:
    """The name in a Host header (lower case, IPv6 bracketed and compressed, no port).

    None when the value is not a Host at all (empty, user info, two ports, an unbracketed
    IPv6 address...): a request carrying one is refused like a foreign name.
    """
    m = _HOST.fullmatch(value.strip(" "))
    if m is None:
        return None
    name = m.group(1).lower()
    if name.startswith("["):
        try:
            return f"[{ipaddress.IPv6Address(name[1:-1]).compressed}]"
        except ValueError:
            return None
    return name


def allowed_hosts(host: str) -> frozenset[str]:
    """The loopback names and the host the server listens on, as `host_name` spells them."""
    own = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return LOOPBACK_NAMES | {host_name(own) or "localhost"}

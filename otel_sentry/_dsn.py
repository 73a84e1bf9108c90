"""Sentry DSNs parsed the way sentry-sdk's ``Dsn``/``Auth`` parse them, without importing sentry_sdk.

Why by hand: the DSN is read at start-up (settings check, the transport's endpoint), and importing any
part of sentry_sdk runs its package ``__init__``, which imports its whole client, transports and
HTTP stacks: tens of ms added to every process's start-up (docs/performance.md). The rules are
sentry-sdk's own, and tests/test_dsn.py holds this module to them with sentry-sdk as the oracle.
"""

from __future__ import annotations

import urllib.parse
from typing import NamedTuple, Optional


class ParsedDsn(NamedTuple):
    scheme: str
    netloc: str  # host, plus the port when it is not the scheme's default
    path: str  # the prefix before the project id, always ending in "/"
    project_id: str
    public_key: str
    secret_key: Optional[str]

    def envelope_url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.path}api/{self.project_id}/envelope/"

    def auth_header(self, client: str) -> str:
        """The ``X-Sentry-Auth`` header sentry-sdk sends (protocol version 7)."""
        fields = [("sentry_key", self.public_key), ("sentry_version", "7"), ("sentry_client", client)]
        if self.secret_key is not None:
            fields.append(("sentry_secret", self.secret_key))
        return "Sentry " + ", ".join(f"{key}={value}" for key, value in fields)


def parse_dsn(value: str) -> ParsedDsn:
    """The DSN's parts; ValueError with sentry-sdk's reason when sentry-sdk would reject it."""
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"Unsupported scheme {parts.scheme!r}")
    if parts.hostname is None:
        raise ValueError("Missing hostname")
    port = parts.port  # ValueError for a port out of range or not a number
    if not parts.username:
        raise ValueError("Missing public key")
    prefix, _, last = parts.path.rpartition("/")
    try:
        project_id = str(int(last))
    except ValueError:
        raise ValueError(f"Invalid project in DSN ({(parts.path or '')[1:]!r})") from None
    netloc = parts.hostname
    if port is not None and (parts.scheme, port) not in (("http", 80), ("https", 443)):
        netloc = f"{netloc}:{port}"
    return ParsedDsn(parts.scheme, netloc, prefix + "/", project_id, parts.username, parts.password)

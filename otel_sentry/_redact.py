"""Scrubbing of what leaves the process: header values, URL credentials, sensitive variable names.

One module so that every exporter (Sentry, OTLP, console, inbox) and every log line shares the same
rules. The seeds' lists are the defaults.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"

# The seeds' AutoSentryMiddleware list, matched as substrings of the lower-cased header name.
SENSITIVE_HEADER_PARTS: tuple[str, ...] = (
    "authorization",
    "cookie",
    "x-api-key",
    "api-key",
    "apikey",
    "token",
    "x-auth-token",
    "secret",
    "password",
    "session",
)

# The seeds' auto_sentry `_contains_sensitive_data` keywords, for variable and argument names.
SENSITIVE_NAME_PARTS: tuple[str, ...] = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "private_key",
    "credit_card",
    "card_number",
    "ssn",
    "authorization",
    "cookie",
    "session",
    "dsn",
)

_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


def is_sensitive_header(name: str) -> bool:
    lowered = name.lower()
    return any(part in lowered for part in SENSITIVE_HEADER_PARTS)


def is_sensitive_name(name: str) -> bool:
    lowered = name.lower().replace("-", "_")
    return any(part in lowered for part in SENSITIVE_NAME_PARTS)


def sanitize_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Header name -> value with sensitive values replaced; repeated headers are joined."""
    result: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        clean = REDACTED if is_sensitive_header(key) else value
        result[key] = f"{result[key]}, {clean}" if key in result else clean
    return result


def sanitize_query(query: str) -> str:
    """Query string with the values of sensitive keys replaced."""
    if not query:
        return query
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    if not any(is_sensitive_name(key) for key, _ in pairs):
        return query
    return urllib.parse.urlencode([(k, REDACTED if is_sensitive_name(k) else v) for k, v in pairs])


def mask_url_secrets(text: str) -> str:
    """Replace the userinfo of any URL in text (DSN keys, basic-auth passwords)."""
    return _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)


def scrub_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of a flat mapping with the values of sensitive keys replaced."""
    return {key: (REDACTED if is_sensitive_name(str(key)) else value) for key, value in values.items()}


def hash_credential(credential: str) -> str:
    """The seeds' API key hash: sha256 of the credential, first 16 hex chars."""
    return hashlib.sha256(credential.encode("utf-8", "surrogatepass")).hexdigest()[:16]


_CREDENTIAL_IN_TEXT = re.compile(r"(?i)\b(bearer|basic|token)(\s+|=)[A-Za-z0-9._~+/=-]{8,}")


def scrub_text(text: str) -> str:
    """Replace credentials that appear inside free text (headers repr'd in locals, messages)."""
    if "@" in text or ":" in text:
        text = mask_url_secrets(text)
    return _CREDENTIAL_IN_TEXT.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)


def scrub_data(value: Any, depth: int = 0) -> Any:
    """Recursively scrub serialized data: values under sensitive keys, credentials inside strings."""
    if depth > 20:
        return value
    if isinstance(value, dict):
        return {
            k: (REDACTED if is_sensitive_name(str(k)) else scrub_data(v, depth + 1)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [scrub_data(v, depth + 1) for v in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value

"""Request enrichment: the seeds' middleware context as facts every backend sees.

Computed once per request, at its end, from the ASGI scope (the route the router matched, the user an
auth dependency left in ``request.state``), and written on the server span while it is still
writable; Sentry events derive their tags, contexts and user from the same facts. Requests that are
neither sampled nor failed skip all of it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import TYPE_CHECKING, Any, Optional

from ._redact import is_sensitive_header

if TYPE_CHECKING:
    from ._events import RequestFacts
    from ._rules import Rules

NS = "otel_sentry."
ENDPOINT_TYPE = NS + "endpoint_type"
REVENUE_CRITICAL = NS + "is_revenue_critical"
HAS_USER = NS + "has_user"
API_KEY_ID = NS + "user.api_key_id"
API_KEY_HASH = NS + "user.api_key_hash"
SLOW_REQUEST = NS + "slow_request"
DURATION_MS = NS + "duration_ms"
ERROR_CATEGORY = NS + "error_category"
IS_TIMEOUT = NS + "is_timeout"

# The names the seeds' auth layer leaves on request.state, then common alternatives.
_USER_ID_KEYS = ("user_id", "uid")
_EMAIL_KEYS = ("email", "user_email")
_API_KEY_ID_KEYS = ("api_key_id", "key_id")


def _first(state: Any, keys: tuple[str, ...]) -> Optional[str]:
    for key in keys:
        value = state.get(key) if isinstance(state, dict) else getattr(state, key, None)
        if value is not None and value != "":
            return str(value)
    return None


def _user_object_field(user: Any, name: str) -> Optional[str]:
    value = user.get(name) if isinstance(user, dict) else getattr(user, name, None)
    return None if value is None or callable(value) else str(value)


def hash_api_key(header_value: str, secret: Optional[bytes]) -> str:
    """The seeds' hash (sha256 of the Authorization header, first 16 hex chars), or an HMAC when a
    secret is configured, so that a leaked hash cannot be checked against guessed keys."""
    data = header_value.encode("utf-8", "surrogatepass")
    digest = hmac.new(secret, data, hashlib.sha256) if secret else hashlib.sha256(data)
    return digest.hexdigest()[:16]


def credential_header(scope: dict[str, Any]) -> Optional[str]:
    for name, value in scope.get("headers") or ():
        lowered = name.lower()
        if lowered in (b"authorization", b"x-api-key", b"api-key"):
            return str(value.decode("latin-1"))
    return None


def enrich(
    facts: RequestFacts,
    scope: dict[str, Any],
    rules: Rules,
    *,
    slow_threshold: float,
    hash_secret: Optional[bytes] = None,
    now: Optional[float] = None,
) -> RequestFacts:
    """Fill in endpoint type, revenue flag, user, API key hash, duration and slowness."""
    facts.endpoint_type = rules.endpoint_type(facts.route or facts.path)
    facts.is_revenue_critical = rules.is_revenue_critical(facts.endpoint_type)
    state = scope.get("state") or {}
    user = state.get("user") if isinstance(state, dict) else getattr(state, "user", None)
    facts.user_id = _first(state, _USER_ID_KEYS) or (_user_object_field(user, "id") if user else None)
    facts.user_email = _first(state, _EMAIL_KEYS) or (_user_object_field(user, "email") if user else None)
    facts.api_key_id = _first(state, _API_KEY_ID_KEYS)
    credential = credential_header(scope)
    facts.api_key_hash = hash_api_key(credential, hash_secret) if credential else None
    facts.duration = max(0.0, (now or time.time()) - facts.started)
    facts.slow = facts.duration > slow_threshold
    return facts


# Headers put on the server span when the standard OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_*
# variables are not set (then the instrumentation captures what they name), as the semantic
# conventions name them: http.request.header.<name with - as _> = (value,).
DEFAULT_REQUEST_HEADERS = (
    "content-type",
    "content-length",
    "user-agent",
    "accept",
    "x-request-id",
    "x-forwarded-proto",
)
DEFAULT_RESPONSE_HEADERS = (b"content-type", b"content-length")
STANDARD_HEADER_VARIABLES = (
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE",
)


def header_attributes(
    request_headers: dict[str, str], response_headers: Optional[list[tuple[bytes, bytes]]]
) -> dict[str, Any]:
    """The default selection of (already sanitized) request headers and of response headers."""
    attributes: dict[str, Any] = {}
    for name in DEFAULT_REQUEST_HEADERS:
        value = request_headers.get(name)
        if value is not None:
            attributes[f"http.request.header.{name.replace('-', '_')}"] = (value,)
    for raw_name, raw_value in response_headers or ():
        lowered = raw_name.lower()
        if lowered in DEFAULT_RESPONSE_HEADERS:
            key = f"http.response.header.{lowered.decode('latin-1').replace('-', '_')}"
            attributes[key] = (raw_value.decode("latin-1"),)
    return attributes


def span_attributes(facts: RequestFacts, *, send_default_pii: bool) -> dict[str, Any]:
    """Attributes for the server span: OTel semantic-convention names first, the project's namespace
    for the rest. The raw credential never appears; the e-mail only with send_default_pii."""
    attributes: dict[str, Any] = {
        ENDPOINT_TYPE: facts.endpoint_type,
        REVENUE_CRITICAL: facts.is_revenue_critical,
        HAS_USER: facts.user_id is not None,
    }
    if facts.route:
        attributes["http.route"] = facts.route
    if facts.user_id is not None:
        attributes["user.id"] = facts.user_id
    if facts.user_email is not None and send_default_pii:
        attributes["user.email"] = facts.user_email
    if facts.api_key_id is not None:
        attributes[API_KEY_ID] = facts.api_key_id
    if facts.api_key_hash is not None:
        attributes[API_KEY_HASH] = facts.api_key_hash
    if facts.duration is not None:
        attributes[DURATION_MS] = round(facts.duration * 1000, 3)
    if facts.slow:
        attributes[SLOW_REQUEST] = True
    return attributes


def request_context(facts: RequestFacts, *, send_default_pii: bool) -> dict[str, Any]:
    """The seeds' ``request`` context: method, path, query, endpoint type, client, sanitized headers."""
    context: dict[str, Any] = {
        "method": facts.method,
        "path": facts.path,
        "endpoint_type": facts.endpoint_type,
        "is_revenue_critical": facts.is_revenue_critical,
        "headers": {
            k: v for k, v in facts.headers.items() if not is_sensitive_header(k) or v == "[REDACTED]"
        },
    }
    if facts.route:
        context["route"] = facts.route
    if facts.query_string:
        context["query_string"] = facts.query_string
    if send_default_pii and facts.client_address:
        context["client_host"] = facts.client_address
    return context


def slow_request_breadcrumb(facts: RequestFacts) -> dict[str, Any]:
    """The seeds' slow-request breadcrumb (warning level, performance category)."""
    duration_ms = round((facts.duration or 0.0) * 1000, 1)
    return {
        "type": "default",
        "category": "performance",
        "level": "warning",
        "message": f"Slow request: {facts.method} {facts.route or facts.path} took {duration_ms} ms",
        "data": {"duration_ms": duration_ms, "endpoint": facts.route or facts.path},
        "timestamp": facts.started + (facts.duration or 0.0),
    }

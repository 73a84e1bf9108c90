"""Error classification: category, timeout, provider and model of a captured exception.

The seeds match keywords in exception names and messages. That guesses wrong as often as not, so the
evidence is used in order of strength:

1. a category set explicitly (the capture helpers);
2. the span the exception was recorded on, when the trace is sampled (a database client span means a
   database error, an outgoing HTTP or LLM call a provider error, a cache client a cache error);
3. the library the exception comes from, for every exception of the __cause__/__context__ chain
   (``httpx.ConnectError`` behind an ``HTTPException(500)`` is a provider error, sampled or not);
4. the seeds' keyword rules;
5. the HTTP status: 4xx ``client_error``, 5xx ``server_error``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

PROVIDER = "provider_error"
DATABASE = "database_error"
PAYMENT = "payment_error"
AUTH = "auth_error"
CACHE = "cache_error"
CLIENT = "client_error"
SERVER = "server_error"
CONFIGURATION = "configuration_error"
# A tag the @auto_capture_errors decorator leaves: the category its function's name suggests.
CATEGORY_HINT = "otel_sentry.category_hint"

# Exception types that mean the request's input was bad (decoding or validating it).
_CLIENT_TYPES = frozenset(
    {
        ("json.decoder", "JSONDecodeError"),
        ("pydantic_core._pydantic_core", "ValidationError"),
        ("pydantic.error_wrappers", "ValidationError"),
        ("fastapi.exceptions", "RequestValidationError"),
        ("fastapi.exceptions", "ValidationException"),
    }
)

# Top-level package of the exception's class (or of the frame that raised it) -> category.
LIBRARY_CATEGORIES: Mapping[str, str] = {
    **dict.fromkeys(("httpx", "httpcore", "aiohttp", "requests", "urllib3", "h11", "h2"), PROVIDER),
    **dict.fromkeys(("openai", "anthropic", "litellm", "cohere", "mistralai", "groq", "google"), PROVIDER),
    **dict.fromkeys(
        (
            "sqlite3",
            "_sqlite3",
            "sqlalchemy",
            "asyncpg",
            "psycopg",
            "psycopg2",
            "pymysql",
            "MySQLdb",
            "aiomysql",
            "aiosqlite",
            "pymongo",
            "motor",
            "supabase",
            "postgrest",
            "databases",
            "tortoise",
            "peewee",
        ),
        DATABASE,
    ),
    **dict.fromkeys(
        ("redis", "aioredis", "valkey", "pymemcache", "memcache", "aiocache", "aiomcache"), CACHE
    ),
    **dict.fromkeys(("stripe", "braintree", "paypalrestsdk", "adyen"), PAYMENT),
    **dict.fromkeys(("prisma", "pymssql", "pyodbc", "oracledb", "cx_Oracle", "redis_om"), DATABASE),
    **dict.fromkeys(("jwt", "jose", "authlib", "passlib", "itsdangerous"), AUTH),
}

# The seeds' keyword rules (auto_sentry's detection), checked in this order on type name and message.
KEYWORD_CATEGORIES: tuple[tuple[str, str], ...] = (
    (r"payment|stripe|billing|credit|charge|invoice", PAYMENT),
    (r"auth|login|token|permission|unauthori[sz]ed|forbidden|credential", AUTH),
    (r"cache|redis|memcache", CACHE),
    (r"database|\bdb\b|sql|postgres|mysql|mongo|supabase|integrity|constraint", DATABASE),
    (r"provider|openrouter|portkey|upstream|_client\b", PROVIDER),
)
_KEYWORDS = tuple((re.compile(pattern, re.IGNORECASE), category) for pattern, category in KEYWORD_CATEGORIES)
_PLACEHOLDER_TLDS = frozenset({"local", "localhost", "internal", "test", "example", "invalid", "lan", "svc"})
_CACHE_SYSTEMS = frozenset({"redis", "valkey", "memcached"})


@dataclass(frozen=True)
class FailedSpan:
    """What a child span that recorded an exception tells about it (recorded only when sampled)."""

    exception_type: str
    message: str
    category: Optional[str]
    provider: Optional[str]
    model: Optional[str]


@dataclass(frozen=True)
class ErrorFacts:
    exception_type: str
    error_category: Optional[str]
    is_timeout: bool
    provider: Optional[str] = None
    model: Optional[str] = None


def provider_from_host(host: Optional[str]) -> Optional[str]:
    """``api.openrouter.ai`` -> ``openrouter``; addresses and local names stay as they are."""
    if not host:
        return None
    host = host.strip("[]").lower()
    try:
        ipaddress.ip_address(host)
        return None  # an address names no provider
    except ValueError:
        pass
    labels = [label for label in host.split(".") if label]
    if len(labels) <= 1 or labels[-1] in _PLACEHOLDER_TLDS or labels[-2] in ("example",):
        return None  # localhost, a service name, example.com, *.local/.internal/.test: a placeholder
    labels = labels[:-1]  # drop the TLD
    while len(labels) > 1 and labels[0] in ("api", "www", "gateway", "eu", "us", "inference"):
        labels = labels[1:]
    return labels[-1]


def category_of_span(attributes: Mapping[str, Any], is_client: bool) -> Optional[str]:
    """The category a failed span implies, from semantic-convention attributes of both generations."""
    db_system = attributes.get("db.system.name") or attributes.get("db.system")
    if db_system:
        return CACHE if str(db_system).lower() in _CACHE_SYSTEMS else DATABASE
    if attributes.get("gen_ai.system") or attributes.get("gen_ai.provider.name"):
        return PROVIDER
    if is_client and (attributes.get("http.request.method") or attributes.get("http.method")):
        return PROVIDER
    return None


def failed_span_from(
    name: str, attributes: Mapping[str, Any], is_client: bool, exception_type: str, message: str
) -> FailedSpan:
    provider = attributes.get("gen_ai.provider.name") or attributes.get("gen_ai.system")
    if not provider and is_client:
        provider = provider_from_host(
            str(attributes.get("server.address") or attributes.get("net.peer.name") or "") or None
        )
    model = attributes.get("gen_ai.request.model") or attributes.get("gen_ai.response.model")
    return FailedSpan(
        exception_type=exception_type,
        message=message,
        category=category_of_span(attributes, is_client),
        provider=str(provider) if provider else None,
        model=str(model) if model else None,
    )


def otel_exception_type(exc: BaseException) -> str:
    """``exception.type`` as the OTel SDK's record_exception writes it (module-qualified)."""
    module, qualname = type(exc).__module__, type(exc).__qualname__
    return f"{module}.{qualname}" if module and module != "builtins" else qualname


def _text(exc: BaseException) -> str:
    """str(exc), guarded and computed once per exception (its __str__ may raise or be slow)."""
    from ._sanitize import safe_str
    from ._span_exceptions import exception_message

    return exception_message(exc, safe_str)


def _top_package(module: Optional[str]) -> str:
    return (module or "").split(".", 1)[0]


def _library_category(exc: BaseException) -> Optional[str]:
    for cls in type(exc).__mro__:
        category = LIBRARY_CATEGORIES.get(_top_package(cls.__module__))
        if category:
            return category
    tb = exc.__traceback__
    innermost: Optional[str] = None
    while tb is not None:  # the frame that raised it is the last one
        innermost = tb.tb_frame.f_globals.get("__name__")
        tb = tb.tb_next
    return LIBRARY_CATEGORIES.get(_top_package(innermost))


# Keywords are searched in the head of the message only: a 20 MB message (a provider echoing a body)
# scanned by every pattern took seconds on the request's thread.
_KEYWORD_SCAN_CHARS = 8192


def _keyword_category(exc: BaseException) -> Optional[str]:
    text = f"{type(exc).__name__} {_text(exc)[:_KEYWORD_SCAN_CHARS]}"
    for pattern, category in _KEYWORDS:
        if pattern.search(text):
            return category
    return None


def _is_timeout(chain: Sequence[BaseException]) -> bool:
    for exc in chain:
        if isinstance(exc, TimeoutError) or "timeout" in type(exc).__name__.lower():
            return True
    try:  # asyncio.TimeoutError is not TimeoutError before Python 3.11
        import asyncio

        return any(isinstance(exc, asyncio.TimeoutError) for exc in chain)
    except ImportError:  # pragma: no cover
        return False


def _provider_from_exception(chain: Sequence[BaseException]) -> Optional[str]:
    for exc in chain:
        try:  # httpx / requests errors carry the failed request (httpx raises when it has none)
            host = getattr(getattr(getattr(exc, "request", None), "url", None), "host", None)
        except Exception:
            continue
        if isinstance(host, str) and host:
            return provider_from_host(host)
    return None


def _type_category(exc: BaseException) -> Optional[str]:
    """What the exception's own type says when its library does not: bad input, bad setup."""
    for cls in type(exc).__mro__:
        if (cls.__module__, cls.__name__) in _CLIENT_TYPES:
            return CLIENT
    if isinstance(exc, ImportError):
        return CONFIGURATION
    return None


def classify(
    chain: Sequence[BaseException],
    *,
    status_code: Optional[int] = None,
    failed_spans: Iterable[FailedSpan] = (),
    explicit_category: Optional[str] = None,
    hint: Optional[str] = None,
) -> ErrorFacts:
    """Classify the outermost exception of chain (outermost first, then its causes), from evidence:
    an explicit category, the span it failed in, its library and type (root cause first), an
    authentication status, what the decorated function's name suggests, the seeds' keywords, the
    status. Never from the route alone."""
    outer = chain[0]
    names = {(otel_exception_type(exc), _text(exc)) for exc in chain}
    matching = [span for span in failed_spans if (span.exception_type, span.message) in names]
    category = explicit_category or next((s.category for s in matching if s.category), None)
    if category is None:
        for exc in reversed(chain):  # the root cause first
            category = _library_category(exc) or _type_category(exc)
            if category:
                break
    if category is None and status_code in (401, 403):
        category = AUTH
    category = category or hint
    if category is None:
        for exc in chain:
            category = _keyword_category(exc)
            if category:
                break
    if category is None and status_code is not None:
        category = CLIENT if 400 <= status_code < 500 else SERVER if status_code >= 500 else None
    provider = (
        next((s.provider for s in matching if s.provider), None)
        or _attribute_of(chain, ("llm_provider", "provider"))
        or (_provider_from_exception(chain) if category == PROVIDER else None)
    )
    model = next((s.model for s in matching if s.model), None) or _attribute_of(chain, ("model",))
    return ErrorFacts(
        exception_type=type(outer).__name__,
        error_category=category,
        is_timeout=_is_timeout(chain),
        provider=provider,
        model=model,
    )


def _attribute_of(chain: Sequence[BaseException], names: tuple[str, ...]) -> Optional[str]:
    """A plain-text attribute the exception carries itself (LLM client libraries set
    ``llm_provider``/``provider`` and ``model`` on their errors)."""
    for exc in chain:
        for name in names:
            try:
                value = vars(exc).get(name)
            except TypeError:
                continue
            if isinstance(value, str) and value and len(value) <= 200:
                return value
    return None

"""``@auto_capture_errors``: the seeds' decorator (``src/utils/auto_sentry.py``) on OpenTelemetry.

Everything that can be decided from the function alone (its kind, its context type from the seeds'
detection rules, its provider from the module name) is decided once, when it is decorated; the call
itself only adds a ``try`` (free in CPython 3.11+ until something raises) and one call frame. On a
failure the arguments are bound by name (lazily computed signature), the interesting ones extracted
(provider, model, table, operation, user_id, amount, key, ...), sensitive names and values dropped,
and the matching capture helper called.

With ``reraise=True`` (the default) the capture is *soft*: if the exception then reaches another
capture point in the same request (the route turns it into an ``HTTPException(500)``, or it escapes
unhandled), that event replaces this one and inherits its category tags, so there is still one event
per exception, with the fullest chain. With ``reraise=False`` the exception is handled here: the
event is final and the call returns None.

The wrapper's own frame stays in the traceback (and its local variables in frame data), so it drops
the raw ``args``/``kwargs`` before re-raising: only the filtered extraction ever leaves the process.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import AsyncGenerator, Generator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Optional, Union, overload

from . import _helpers, _sanitize
from ._classify import CATEGORY_HINT
from ._redact import REDACTED, is_sensitive_name, scrub_text
from ._runtime import get_runtime
from ._wrappers import fast_wrapper

if TYPE_CHECKING:
    from typing import ParamSpec, TypeVar

    P = ParamSpec("P")
    R = TypeVar("R")

CONTEXT_TYPES = ("provider", "database", "payment", "auth", "cache", "general")

# The seeds' detection rules, in order (first match wins), as data. ``module`` rules look at the
# dotted module path, ``name`` rules at the function name and the module's last component.
DETECTION_RULES: tuple[tuple[str, str, str], ...] = (
    ("module_suffix", "_client", "provider"),  # src/services/openrouter_client.py
    ("module_package", "db", "database"),  # src/db/users.py
    ("name", "payment", "payment"),
    ("name", "stripe", "payment"),
    ("name", "checkout", "payment"),  # the seeds' code adds these five
    ("name", "webhook", "payment"),
    ("name", "credit", "payment"),
    ("name", "deduct", "payment"),
    ("name", "charge", "payment"),
    ("name", "auth", "auth"),
    ("name", "login", "auth"),
    ("name", "cache", "cache"),
    ("name", "redis", "cache"),
    ("function", "provider", "provider"),  # make_provider_request
    ("function", "client", "provider"),
)

# Database operation from the function name (word-wise: "widget" is not "get").
DB_OPERATIONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("create", "insert", "add", "upsert", "save"), "insert"),
    (("update", "modify", "edit", "set"), "update"),
    (("delete", "remove", "drop", "purge"), "delete"),
    (("get", "fetch", "list", "find", "select", "read", "load", "query", "search", "count"), "select"),
)
PAYMENT_OPERATIONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("webhook",), "webhook_processing"),
    (("checkout",), "checkout"),
    (("refund",), "refund"),
    (("charge", "deduct", "credit", "bill"), "charge"),
)
AUTH_OPERATIONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("login", "signin"), "login"),
    (("logout", "signout"), "logout"),
    (("verify", "validate"), "verify"),
    (("token",), "token_validation"),
    (("authenticate", "auth"), "authentication"),
)
CACHE_OPERATIONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("get", "fetch", "read", "load"), "get"),
    (("set", "put", "store", "save", "write"), "set"),
    (("delete", "clear", "invalidate", "evict", "remove"), "delete"),
)

# Argument name -> context key, extracted whatever the context type.
ARGUMENT_NAMES: Mapping[str, str] = {
    "provider": "provider",
    "provider_name": "provider",
    "gateway": "gateway",
    "model": "model",
    "model_id": "model",
    "model_name": "model",
    "request_id": "request_id",
    "endpoint": "endpoint",
    "table": "table",
    "table_name": "table",
    "record_id": "record_id",
    "operation": "operation",
    "user_id": "user_id",
    "amount": "amount",
    "cost": "amount",
    "currency": "currency",
    "key": "key",
    "cache_key": "key",
    "cache_type": "cache_type",
}
_WORDS = re.compile(r"[a-z][a-z0-9]*|[A-Z][a-z0-9]*|[0-9]+")


def _words(name: str) -> list[str]:
    return [w.lower() for w in _WORDS.findall(name)]


def infer_operation(func_name: str, table: tuple[tuple[tuple[str, ...], str], ...]) -> str:
    """The first operation whose keyword is a word of the name (plural/past forms included)."""
    words = _words(func_name)
    for keywords, operation in table:
        for word in words:
            if word in keywords or word.rstrip("sd") in keywords or word[:-2] in keywords:
                return operation
    return "unknown"


def detect_context_type(func_name: str, module: str) -> str:
    """The seeds' detection rules: module path first, then keywords in the names."""
    parts = [p.lower() for p in (module or "").split(".") if p]
    leaf = parts[-1] if parts else ""
    name = func_name.lower()
    for kind, pattern, context_type in DETECTION_RULES:
        if kind == "module_suffix" and (leaf.endswith(pattern) or leaf == pattern.lstrip("_")):
            return context_type
        if kind == "module_package" and pattern in parts[:-1]:
            return context_type
        if kind == "name" and (pattern in name or pattern in leaf):
            return context_type
        if kind == "function" and pattern in name:
            return context_type
    return "general"


def provider_from_module(module: str) -> Optional[str]:
    """``src.services.openrouter_client`` -> ``openrouter``."""
    leaf = (module or "").rsplit(".", 1)[-1]
    if leaf.endswith("_client") and len(leaf) > len("_client"):
        return leaf[: -len("_client")]
    return None


class _Site:
    """What is known about one decorated function before it is ever called."""

    __slots__ = (
        "_signature",
        "capture_locals",
        "context_type",
        "func",
        "module",
        "name",
        "qualname",
        "reraise",
    )

    def __init__(
        self, func: Callable[..., Any], context_type: Optional[str], reraise: bool, capture_locals: bool
    ) -> None:
        self.func = func
        self.name = getattr(func, "__name__", type(func).__name__)
        self.qualname = getattr(func, "__qualname__", self.name)
        self.module = getattr(func, "__module__", None) or ""
        requested = (context_type or "").strip().lower()
        if requested == "authentication":
            requested = "auth"
        if requested and requested not in CONTEXT_TYPES:
            _helpers.warn_once(
                "context_type",
                "auto_capture_errors(context_type=%r) on %s: expected one of %s; detecting it instead",
                context_type,
                self.qualname,
                ", ".join(CONTEXT_TYPES),
            )
            requested = ""
        self.context_type = requested or detect_context_type(self.name, self.module)
        self.reraise = reraise
        self.capture_locals = capture_locals
        self._signature: Optional[inspect.Signature] = None

    def arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        try:
            if self._signature is None:
                self._signature = inspect.signature(self.func)
            bound = self._signature.bind_partial(*args, **kwargs)
            bound.apply_defaults()
            return dict(bound.arguments)
        except (TypeError, ValueError):
            return {}

    def report(
        self, exc: BaseException, tb: Optional[TracebackType], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Never raises (the helpers do not)."""
        try:
            params = self.arguments(args, kwargs)
            found = _extract(params)
        except Exception:
            params, found = {}, {}
        context: dict[str, Any] = {"function": self.qualname, "module": self.module, **found}
        if self.capture_locals:
            context["parameters"] = {
                name: _clean_value(name, value, limit=100)
                for name, value in params.items()
                if not name.startswith("_") and name not in ("self", "cls")
            }
        tags: dict[str, Any] = {"function": self.name}
        category: Optional[str]
        kind = self.context_type
        if kind == "provider":
            provider = found.get("provider") or provider_from_module(self.module)
            context["provider"] = provider or "unknown"
            tags.update(provider=provider, model=found.get("model"))  # missing stays missing
            category, name = _helpers.PROVIDER, "provider"
        elif kind == "database":
            operation = found.get("operation") or infer_operation(self.name, DB_OPERATIONS)
            context["operation"] = operation
            tags.update(operation=operation, table=found.get("table") or "unknown")
            category, name = _helpers.DATABASE, "database"
        elif kind == "payment":
            operation = found.get("operation") or infer_operation(self.name, PAYMENT_OPERATIONS)
            provider = found.get("provider") or "stripe"
            context.update(operation=operation, provider=provider)
            tags.update(
                operation=operation,
                provider=provider,
                is_revenue_critical=_helpers._revenue_critical(get_runtime(), "payment"),
            )
            category, name = _helpers.PAYMENT, "payment"
        elif kind == "auth":
            operation = found.get("operation") or infer_operation(self.name, AUTH_OPERATIONS)
            context["operation"] = operation
            tags["operation"] = operation
            category, name = _helpers.AUTH, "authentication"
        elif kind == "cache":
            operation = found.get("operation") or infer_operation(self.name, CACHE_OPERATIONS)
            cache_type = found.get("cache_type") or "redis"
            context.update(operation=operation, cache_type=cache_type)
            tags.update(operation=operation, cache_type=cache_type)
            category, name = _helpers.CACHE, "cache"
        else:
            tags["module"] = self.module
            for key in ("provider", "model"):
                if found.get(key):
                    tags[key] = found[key]
            category, name = None, "function"
        if category:
            # What the function's name suggests is weaker evidence than the exception itself (a
            # ModuleNotFoundError in an inference handler is no provider error): a hint, see _classify.
            tags[CATEGORY_HINT] = category
        _helpers.record(
            exc,
            helper="auto_capture_errors",
            category=None,
            context_name=name,
            context=context,
            tags={k: v for k, v in tags.items() if v is not None},
            handled=not self.reraise,
            mechanism="auto_capture_errors",
            tb=tb,
            soft=self.reraise,
        )


def _clean_value(name: str, value: Any, limit: int = 200) -> Any:
    """An argument value, or [REDACTED] when its name or its text looks like a credential."""
    if is_sensitive_name(name):
        return REDACTED
    if value is None or isinstance(value, bool) or type(value) in (int, float):
        return value
    text = value if type(value) is str else _sanitize.safe_repr(value, limit * 2)
    if scrub_text(text) != text:
        return REDACTED
    return _sanitize.cap(_sanitize.fix_text(text), limit)


def _extract(params: Mapping[str, Any]) -> dict[str, Any]:
    """The seeds' interesting arguments, by name; sensitive names and values come out redacted."""
    found: dict[str, Any] = {}
    for param, key in ARGUMENT_NAMES.items():
        if key in found or params.get(param) is None:
            continue
        cleaned = _clean_value(param, params[param])
        if cleaned not in (None, ""):
            found[key] = cleaned
    return found


# -- the decorator ------------------------------------------------------------------------------


@overload
def auto_capture_errors(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def auto_capture_errors(
    func: None = None,
    /,
    *,
    context_type: Optional[str] = None,
    reraise: bool = True,
    capture_locals: bool = False,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def auto_capture_errors(
    func: Optional[Callable[..., Any]] = None,
    /,
    *,
    context_type: Optional[str] = None,
    reraise: bool = True,
    capture_locals: bool = False,
) -> Union[Callable[..., Any], Callable[[Callable[..., Any]], Callable[..., Any]]]:
    """Capture exceptions escaping a function (sync, async, generator, async generator, method).

    ``@auto_capture_errors`` detects the context type from the module and function names;
    ``@auto_capture_errors(context_type="database")`` names it (provider, database, payment, auth,
    cache, general). ``reraise=False`` swallows the exception after capturing it: the call returns
    None (the type hints stay the wrapped function's). ``capture_locals=True`` adds the non-sensitive
    arguments (each shortened to 100 characters) to the event's context.
    """

    def decorate(target: Callable[..., Any]) -> Callable[..., Any]:
        if isinstance(target, (classmethod, staticmethod)):
            return type(target)(decorate(target.__func__))
        return _wrap(target, _Site(target, context_type, reraise, capture_locals))

    return decorate if func is None else decorate(func)


def _below_wrapper(exc: BaseException) -> Optional[TracebackType]:
    """The traceback from the decorated function down: the wrapper's frame (holding the raw
    arguments as locals) is not part of the event."""
    tb = exc.__traceback__
    return tb.tb_next if tb is not None and tb.tb_next is not None else tb


def _wrap(func: Callable[..., Any], site: _Site) -> Callable[..., Any]:
    reraise = site.reraise
    report = site.report
    wrapper: Callable[..., Any]
    is_async = inspect.iscoroutinefunction(func)
    if (is_async or not (inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func))) and (
        fast := fast_wrapper(func, site.qualname, site.report, _below_wrapper, site.reraise, is_async)
    ) is not None:
        wrapper = fast
    elif inspect.isasyncgenfunction(func):

        @functools.wraps(func)
        async def agen_wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
            agen = func(*args, **kwargs)
            try:
                item = await agen.__anext__()
                while True:
                    try:
                        sent = yield item
                    except GeneratorExit:
                        await agen.aclose()
                        raise
                    except BaseException as thrown:  # athrow() on the wrapper goes to the generator
                        item = await agen.athrow(thrown)
                    else:
                        item = await (agen.__anext__() if sent is None else agen.asend(sent))
            except StopAsyncIteration:
                return
            except Exception as exc:
                report(exc, _below_wrapper(exc), args, kwargs)
                del args, kwargs  # this frame stays in the traceback: its locals must not show them
                if reraise:
                    raise

        wrapper = agen_wrapper
    elif is_async:

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return await func(*args, **kwargs)
            except Exception as exc:
                report(exc, _below_wrapper(exc), args, kwargs)
                del args, kwargs  # this frame stays in the traceback: its locals must not show them
                if reraise:
                    raise
                return None

        wrapper = async_wrapper
    elif inspect.isgeneratorfunction(func):

        @functools.wraps(func)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            try:
                return (yield from func(*args, **kwargs))
            except Exception as exc:
                report(exc, _below_wrapper(exc), args, kwargs)
                del args, kwargs  # this frame stays in the traceback: its locals must not show them
                if reraise:
                    raise
                return None

        wrapper = gen_wrapper
    else:

        @functools.wraps(func)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                report(exc, _below_wrapper(exc), args, kwargs)
                del args, kwargs  # this frame stays in the traceback: its locals must not show them
                if reraise:
                    raise
                return None

        wrapper = sync_wrapper
    setattr(wrapper, "__otel_sentry_context_type__", site.context_type)  # noqa: B010
    return wrapper

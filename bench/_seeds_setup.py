"""The seeds' setup, reproduced for bench/overhead.py: what the audited gateway runs in production.

``sentry_sdk.init`` with the seeds' options (``send_default_pii``, ``enable_logs``, their adaptive
``traces_sampler``, ``profiles_sample_rate=0.05``; the FastAPI/Starlette integrations come on by
default) and their ``AutoSentryMiddleware``: a ``BaseHTTPMiddleware`` that, on every request, builds a
request context (method, path, query, endpoint type, client, sanitized headers), a user context
(user id, email, api key id, sha256 of the Authorization header), sets the seeds' tags, times the
request, leaves a breadcrumb when it is slow, and captures non-HTTP exceptions with an exception
context. Written from the two seed documents' descriptions (their code is not public).
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

import sentry_sdk
from starlette.exceptions import HTTPException
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response

SENSITIVE_HEADERS = ["authorization", "cookie", "x-api-key", "api-key", "apikey", "token", "x-auth-token"]
ENDPOINT_TYPES = [
    ("/v1/chat/completions", "inference_chat"),
    ("/v1/messages", "inference_messages"),
    ("/v1/images", "inference_images"),
    ("/v1/charge", "payment"),
    ("/payments", "payment"),
    ("/checkout", "checkout"),
    ("/auth", "authentication"),
    ("/api/admin", "admin"),
    ("/v1/models", "catalog"),
    ("/health", "health_check"),
    ("/metrics", "metrics"),
]
REVENUE_CRITICAL = {"inference_chat", "inference_messages", "inference_images", "payment"}


def sentry_traces_sampler(sampling_context: dict[str, Any]) -> float:
    if os.environ.get("SENTRY_ENVIRONMENT") == "development":
        return 1.0
    scope = sampling_context.get("asgi_scope") or {}
    endpoint = scope.get("path", "")
    if endpoint in ["/health", "/metrics"]:
        return 0.0
    if endpoint in ["/v1/chat/completions", "/v1/messages"]:
        return 0.2
    if endpoint.startswith("/api/admin"):
        return 0.5
    return 0.1


def init_seeds_sentry(dsn: str) -> None:
    sentry_sdk.init(
        dsn=dsn,
        send_default_pii=True,
        enable_logs=True,
        environment=os.environ.get("SENTRY_ENVIRONMENT", "production"),
        release="2.0.3",
        traces_sampler=sentry_traces_sampler,
        profiles_sample_rate=0.05,
        in_app_exclude=os.environ.get("OTEL_SENTRY_IN_APP_EXCLUDE", "").split(",") or None,
    )


def _endpoint_type(path: str) -> str:
    for prefix, kind in ENDPOINT_TYPES:
        if path.startswith(prefix):
            return kind
    return "general"


def _error_category(exc: BaseException) -> str:
    text = f"{type(exc).__name__} {exc}".lower()
    for keywords, category in (
        (("openrouter", "provider", "upstream"), "provider_error"),
        (("database", "sql", "supabase"), "database_error"),
        (("stripe", "payment", "charge"), "payment_error"),
        (("auth", "token", "unauthorized"), "auth_error"),
        (("redis", "cache"), "cache_error"),
    ):
        if any(k in text for k in keywords):
            return category
    return "server_error"


class AutoSentryMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        started = time.time()
        path = request.url.path
        endpoint_type = _endpoint_type(path)
        headers = {
            k: "[REDACTED]" if any(s in k.lower() for s in SENSITIVE_HEADERS) else v
            for k, v in request.headers.items()
        }
        request_context = {
            "method": request.method,
            "path": path,
            "query_params": dict(request.query_params),
            "endpoint_type": endpoint_type,
            "client_host": request.client.host if request.client else None,
            "headers": headers,
        }
        scope = sentry_sdk.get_current_scope()
        scope.set_context("request", request_context)
        scope.set_tag("endpoint", path)
        scope.set_tag("method", request.method)
        scope.set_tag("endpoint_type", endpoint_type)
        scope.set_tag("is_revenue_critical", str(endpoint_type in REVENUE_CRITICAL).lower())
        try:
            response = await call_next(request)
        except HTTPException:
            raise
        except Exception as exc:
            duration_ms = (time.time() - started) * 1000
            user = self._user(request)
            scope.set_tag("has_user", str(bool(user)).lower())
            if user:
                scope.set_user(user)
            scope.set_tag("exception_type", type(exc).__name__)
            scope.set_tag("error_category", _error_category(exc))
            scope.set_context(
                "exception_context",
                {
                    "duration_ms": duration_ms,
                    "exception_type": type(exc).__name__,
                    "exception_message": str(exc),
                },
            )
            sentry_sdk.capture_exception(exc)
            raise
        duration_ms = (time.time() - started) * 1000
        user = self._user(request)
        scope.set_tag("has_user", str(bool(user)).lower())
        if user:
            scope.set_user(user)
        scope.set_context("response", {"status_code": response.status_code, "duration_ms": duration_ms})
        if duration_ms > 5000:
            sentry_sdk.add_breadcrumb(
                category="performance", message=f"Slow request: {duration_ms:.0f}ms", level="warning"
            )
        return response

    @staticmethod
    def _user(request: Request) -> dict[str, Any]:
        user: dict[str, Any] = {}
        for name in ("user_id", "email", "api_key_id"):
            value = getattr(request.state, name, None)
            if value is not None:
                user["id" if name == "user_id" else name] = value
        auth = request.headers.get("authorization")
        if auth:
            user["api_key_hash"] = hashlib.sha256(auth.encode()).hexdigest()[:16]
        return user


def install_seeds_middleware(app: Any) -> None:
    app.add_middleware(AutoSentryMiddleware)

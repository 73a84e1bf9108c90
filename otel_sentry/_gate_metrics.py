"""The ``http.server`` metrics of a request the sampling gate lets skip the instrumentation's middleware.

A request the sampler drops is still a request: dashboards built on the instrumentation's metrics
(duration histogram, active requests, request and response sizes) must count it. The gate records
for it what :class:`OpenTelemetryMiddleware` would have recorded: the same instruments (the gated
middleware *is* one, so they are its own), the same attribute sets, built by the instrumentation's
own helpers, and the same units. ``tests/test_gate_metrics.py`` compares the points of gated and
ungated runs of the same traffic in every semantic-convention mode.

Written here because the middleware records its metrics inline in ``__call__``, around the span it
starts; there is no entry point for "measure this request without a span". What costs time in it is
building attribute dictionaries from the scope, so the attribute sets are remembered per request
shape (bounded, like the gate's route memory), and a repeated request costs two dictionary lookups
and the instruments' own recording. One difference is deliberate: the middleware keeps the last
response's ``content-length`` on itself, shared by concurrent requests, so a response without one is
recorded with another request's size; the gate records only the response's own.
"""

from __future__ import annotations

from timeit import default_timer
from typing import Any, Callable, Optional

from opentelemetry.instrumentation._semconv import _StabilityMode
from opentelemetry.instrumentation.asgi import (
    _collect_target_attribute,
    _parse_active_request_count_attrs,
    _parse_duration_attrs,
    asgi_getter,
    collect_request_attributes,
    set_status_code,
)
from opentelemetry.semconv.trace import SpanAttributes
from opentelemetry.trace import INVALID_SPAN

_KEPT = 2048

Attributes = dict[str, Any]
# the duration attributes of the old conventions and of the new ones
_Sets = tuple[Attributes, Attributes]


class BypassMeasurement:
    """Measures bypassed requests on one gated middleware's instruments."""

    def __init__(self, middleware: Any, details: Callable[[Any], tuple[str, Attributes]]) -> None:
        self._middleware = middleware
        self._details = details
        self._mode: _StabilityMode = middleware._sem_conv_opt_in_mode
        # per request shape: the request's attributes, and those of its active-requests count
        self._requests: dict[tuple[Any, ...], tuple[Attributes, Attributes]] = {}
        self._finished: dict[tuple[Any, ...], _Sets] = {}

    async def run(self, app: Any, scope: Any, receive: Any, send: Any) -> None:
        """Run the app for this request and record its metrics as the middleware would."""
        start = default_timer()
        key = _request_key(scope)
        known = self._requests.get(key)
        if known is None:
            attributes = collect_request_attributes(scope, self._mode)  # type: ignore[no-untyped-call]
            attributes.update(self._details(scope)[1])
            active = _parse_active_request_count_attrs(attributes, self._mode)  # type: ignore[no-untyped-call]
            known = (attributes, active)
            _remember(self._requests, key, known)
        attributes, active = known
        middleware = self._middleware
        middleware.active_requests_counter.add(1, active)
        response: list[Any] = [None, None]  # status, content-length

        async def measured_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                response[0] = message["status"]
                length = asgi_getter.get(message, "content-length")
                if length:
                    response[1] = length[0]
            await send(message)

        try:
            await app(scope, receive, measured_send)
        finally:
            duration = default_timer() - start
            middleware.active_requests_counter.add(-1, active)
            self._record(key, scope, attributes, response[0], response[1], duration)

    def _record(
        self,
        key: tuple[Any, ...],
        scope: Any,
        attributes: Attributes,
        status: Any,
        response_length: Optional[str],
        duration: float,
    ) -> None:
        target = _collect_target_attribute(scope)  # the route the app matched, known only now
        done_key = (key, status, target)
        sets = self._finished.get(done_key)
        if sets is None:
            sets = self._attribute_sets(attributes, status, target)
            _remember(self._finished, done_key, sets)
        old, new = sets
        middleware = self._middleware
        if middleware.duration_histogram_old:
            middleware.duration_histogram_old.record(max(round(duration * 1000), 0), old)
        if middleware.duration_histogram_new:
            middleware.duration_histogram_new.record(max(duration, 0), new)
        for size, histogram_old, histogram_new in (
            (response_length, "server_response_size_histogram", "server_response_body_size_histogram"),
            (_request_length(scope), "server_request_size_histogram", "server_request_body_size_histogram"),
        ):
            amount = _integer(size)
            if amount is None:
                continue
            for name, attrs in ((histogram_old, old), (histogram_new, new)):
                histogram = getattr(middleware, name, None)
                if histogram:
                    histogram.record(amount, attrs)

    def _attribute_sets(self, attributes: Attributes, status: Any, target: Optional[str]) -> _Sets:
        """The middleware's own steps: status onto the request's attributes, the matched route as
        the old conventions' target, then each generation's filter."""
        merged = dict(attributes)
        if status is not None:
            set_status_code(INVALID_SPAN, status, merged, self._mode)  # type: ignore[no-untyped-call]
        old: Attributes = _parse_duration_attrs(merged, _StabilityMode.DEFAULT)  # type: ignore[no-untyped-call]
        if target:
            old[SpanAttributes.HTTP_TARGET] = target
        new: Attributes = _parse_duration_attrs(merged, _StabilityMode.HTTP)  # type: ignore[no-untyped-call]
        return old, new


def _request_key(scope: Any) -> tuple[Any, ...]:
    """Everything of the scope that the recorded attributes depend on: not the query string, the
    client's address or the user agent, from which no metric attribute comes."""
    headers = scope.get("headers") or ()
    host = next((value for name, value in headers if name == b"host"), None)
    return (
        scope.get("method"),
        scope.get("scheme"),
        scope.get("server"),
        scope.get("http_version"),
        host,
        scope.get("root_path"),
        scope.get("path"),
        len(getattr(scope.get("app"), "routes", None) or ()),
    )


def _request_length(scope: Any) -> Optional[str]:
    length = asgi_getter.get(scope, "content-length")
    return length[0] if length else None


def _integer(value: Any) -> Optional[int]:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _KEPT:  # paths with ids in them: bounded, cheap to refill
        cache.clear()
    cache[key] = value

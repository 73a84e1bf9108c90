"""The process-wide Sentry bridge: settings, event defaults and delivery, built once by configure()."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional

from . import _dsc, _event_extras, _redact, _request_secrets, _sessions
from ._capture import exception_chain
from ._classify import CATEGORY_HINT, ErrorFacts, FailedSpan, classify
from ._client_reports import RATELIMIT_BACKOFF
from ._enrich import STANDARD_HEADER_VARIABLES
from ._event_common import EventDefaults
from ._events import CapturedError, RequestFacts, error_event
from ._fit_event import fit_event, strict_json
from ._frames import FrameOptions, ScrubbedValues
from ._rules import load_rules
from ._sanitize import MAX_EVENT_BYTES
from ._sdk_import import ensure_sentry_sdk
from ._settings import Settings
from ._spool import open_spool
from ._transport import (
    ERROR,
    PROFILE,
    TRANSACTION,
    HttpDestination,
    InboxDestination,
    Transport,
    TransportStats,
)

if TYPE_CHECKING:
    from ._capture import RequestCapture
    from ._profile_chunks import ContinuousProfiler
    from ._profiles import TransactionProfiler
    from ._promotion import PromotionProcessor

logger = logging.getLogger("otel_sentry")

_runtime: Optional[Runtime] = None
_lock = threading.Lock()
# The test suite sets this (in-process via conftest, in app subprocesses via the environment) so that
# a bug of ours fails the test instead of being logged once and counted, as it is in production.
raise_internal_errors = os.environ.get("OTEL_SENTRY_RAISE_INTERNAL_ERRORS", "").lower() in ("1", "true")


def get_runtime() -> Optional[Runtime]:
    return _runtime


def set_runtime(runtime: Optional[Runtime]) -> Optional[Runtime]:
    """Install runtime as the process-wide bridge; returns the one it replaced (already shut down)."""
    global _runtime
    with _lock:
        previous, _runtime = _runtime, runtime
    if previous is not None and previous is not runtime:
        previous.shutdown()
    return previous


def _json_safe(event: dict[str, Any]) -> dict[str, Any]:
    """The event in JSON types, by sentry-sdk's serializer; its exception values are left out of the
    pass: they come from sentry-sdk's frame extraction, already serialized (it was half the cost of
    an error event)."""
    ensure_sentry_sdk()
    from sentry_sdk.serializer import serialize

    exception = event.pop("exception", None)
    safe: dict[str, Any] = serialize(event)
    if exception is not None:
        event["exception"] = exception
        safe["exception"] = exception
    return safe


def _plain_json(event: dict[str, Any]) -> Optional[bytes]:
    """The event in sentry-sdk's JSON encoding when it is JSON as it is, else None. Transactions
    built from span attributes (strings, numbers, booleans and sequences of them) nearly always are,
    and encoding them in C costs a fraction of sentry-sdk's serializer walking them (a third of a
    sampled request's export); the bytes become the envelope item's payload as they are."""
    ensure_sentry_sdk()
    from sentry_sdk.utils import json_dumps

    try:
        return json_dumps(event)
    except (TypeError, ValueError):
        return None


class Runtime:
    """Turns captured errors and finished traces into envelopes and hands them to the transports."""

    def __init__(self, settings: Settings, transports: Optional[list[Transport]] = None) -> None:
        self.settings = settings
        self.frame_options = FrameOptions(
            include_local_variables=settings.include_local_variables,
            include_source_context=settings.include_source_context,
            in_app_include=settings.in_app_include,
            in_app_exclude=settings.in_app_exclude,
            local_variables_all_frames=settings.local_variables_all_frames,
        )
        self.defaults = EventDefaults(
            release=settings.release,
            environment=settings.environment,
            server_name=settings.resolved_server_name,
            service_name=settings.service_name,
        )
        self.transports = transports if transports is not None else build_transports(settings)
        self.public_key: Optional[str] = None
        if settings.dsn:
            from ._dsn import parse_dsn  # not sentry_sdk's Dsn: importing sentry_sdk slows start-up

            self.public_key = parse_dsn(settings.dsn).public_key
        self.rules = load_rules(settings.rules_file)
        self.scrubber = _redact.configure(settings.scrub_keys, settings.scrub_safe_keys)
        self.hash_secret = settings.api_key_hash_secret.encode() if settings.api_key_hash_secret else None
        self.counters: Counter[str] = Counter()
        #: Selected headers on server spans from our facts, unless the standard variables name them.
        self.default_header_capture = not any(os.environ.get(v) for v in STANDARD_HEADER_VARIABLES)
        #: Tail promotion (set by the pipeline when on): error events promote their trace.
        self.promoter: Optional[PromotionProcessor] = None
        #: The transaction profiler (_profiles.py), when profiles are on.
        self.profiler: Optional[TransactionProfiler | ContinuousProfiler] = None
        #: Release health (_sessions.py): request sessions, when a release is set.
        self.sessions = _sessions.for_runtime(self)
        self._reported: set[str] = set()
        self._closed = False
        self._logged_drops: Counter[tuple[str, str]] = Counter()
        atexit.register(self.shutdown)

    # -- events -------------------------------------------------------------------------------
    def classify(
        self, error: CapturedError, request: Optional[RequestFacts], failed_spans: Sequence[FailedSpan] = ()
    ) -> ErrorFacts:
        status = (
            error.status_code if error.status_code is not None else (request.status_code if request else None)
        )
        return classify(
            exception_chain(error.exception),
            status_code=status,
            failed_spans=failed_spans,
            explicit_category=error.tags.get("error_category"),
            hint=error.tags.get(CATEGORY_HINT),
        )

    def emit(
        self,
        error: CapturedError,
        request: Optional[RequestFacts],
        failed_spans: Sequence[FailedSpan] = (),
    ) -> Optional[ErrorFacts]:
        try:
            classification = self.classify(error, request, failed_spans)
            event = error_event(
                error,
                request,
                self.defaults,
                send_default_pii=self.settings.send_default_pii,
                classification=classification,
            )
            self.submit(event, ERROR)
            return classification
        except Exception:
            self.internal_error("building an error event")
            return None

    def emit_request(
        self, request: RequestCapture, facts: Optional[RequestFacts] = None
    ) -> Optional[ErrorFacts]:
        """Emit the request's error events; returns the classification of the first one."""
        try:
            facts = facts or request.facts(self)
        except Exception:
            self.internal_error("building the request's facts")
            facts = None  # the events still go out, without request facts
        results = [self.emit(error, facts, request.failed_spans) for error in request.errors]
        return results[0] if results else None

    def submit(
        self,
        event: dict[str, Any],
        category: str,
        *,
        dsc: Optional[dict[str, str]] = None,
        items: Sequence[Any] = (),
    ) -> None:
        """Serialize one event into an envelope and queue it on every destination.

        items: more envelope items that go with the event (a transaction's profile).

        dsc: the trace's dynamic sampling context for the envelope header (transactions pass it).
        Without one, an error event of the current trace gets that trace's (what its outgoing
        requests carried), anything else one built from the event.
        """
        ensure_sentry_sdk()
        from sentry_sdk.envelope import Envelope, Item, PayloadRef

        # sentry-sdk's convention: a transaction carries its sampling context in the trace context,
        # and the client moves it to the envelope header, where Sentry's dynamic sampling reads it.
        carried = event.get("contexts", {}).get("trace", {}).pop("dynamic_sampling_context", None) or {}
        payload: Optional[bytes] = None  # the transaction's JSON, when it needed no serializer pass
        if category == ERROR:
            # Transactions come from spans the scrubbing exporter already cleaned.
            found: set[str] = set()
            exception = event.get("exception")
            if isinstance(exception, dict) and isinstance(exception.get("values"), ScrubbedValues):
                # frames built by otel_sentry are scrubbed as they are built (most of an event's text)
                rest = self.scrubber.scrub({k: v for k, v in event.items() if k != "exception"}, found)
                event = {**rest, "exception": {**exception, "values": list(exception["values"])}}
            else:
                event = self.scrubber.scrub(event, found)
            if found:
                event.setdefault("contexts", {})["scrubbing"] = {"fields": sorted(found)[:100]}
            event = _request_secrets.redact_event(event)  # what the request itself said is secret
            _event_extras.apply(event, error=True)  # after scrubbing: package names are not secrets
            # Strict JSON, valid UTF-8, within 1 MiB per event. An event already in plain JSON types
            # (nearly all: what goes in is sanitized) skips sentry-sdk's serializer, a fifth of an
            # error event's cost; Relay trims its databags as it does every SDK's.
            payload = strict_json(event)
            if payload is None or len(payload) > MAX_EVENT_BYTES:
                event, payload = fit_event(_json_safe(event))
        else:
            _event_extras.apply(event, error=False)
            payload = _plain_json(event)
            if payload is None:
                event = _json_safe(event)
        trace_context = event.get("contexts", {}).get("trace", {})
        headers: dict[str, Any] = {
            "event_id": event["event_id"],
            "sent_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "sdk": {"name": event["sdk"]["name"], "version": event["sdk"]["version"]},
        }
        if self.settings.dsn:
            headers["dsn"] = self.settings.dsn
        trace_id = trace_context.get("trace_id")
        if trace_id and dsc is None and category == ERROR:
            dsc = _dsc.dsc_for_current_trace(
                trace_id, _dsc.Identity(self.public_key, self.defaults.release, self.defaults.environment)
            )
        if trace_id and category == ERROR and self.promoter is not None:
            self.promoter.promote(int(trace_id, 16))
        if trace_id and dsc is not None:
            headers["trace"] = dict(dsc)
        elif trace_id:
            source = (event.get("transaction_info") or {}).get("source")
            transaction = (
                event.get("transaction") if source in ("route", "custom", "component", "view") else None
            )
            dsc = self.dynamic_sampling_context(trace_context["trace_id"], transaction)
            dsc.update(
                {k: str(v) for k, v in carried.items() if k in ("sample_rate", "sampled", "sample_rand")}
            )
            headers["trace"] = dsc
        # the JSON encoded above, sent as it is (sentry-sdk would encode the event again)
        item_type = "transaction" if category == TRANSACTION else "event"
        main = Item(payload=PayloadRef(bytes=payload, json=event), type=item_type)
        body = Envelope(headers=headers, items=[main, *items]).serialize()
        self.counters[f"{category}.produced"] += 1
        spans = len(event.get("spans") or ()) + 1 if category == TRANSACTION else 0
        profiles = sum(1 for item in items if item.type == PROFILE)
        alone: Optional[bytes] = None  # the envelope without its profiles, for a profile rate limit
        for transport in self.transports:
            if profiles and transport.is_rate_limited(PROFILE):
                # as sentry-sdk: the transaction goes, its profile is left out and counted
                alone = alone or Envelope(headers=headers, items=[main]).serialize()
                transport.discard(RATELIMIT_BACKOFF, PROFILE, profiles)
                transport.submit(alone, category, spans=spans)
            else:
                transport.submit(body, category, spans=spans, profiles=profiles)
        if self.settings.debug:
            logger.debug("otel_sentry: queued %s %s (%d bytes)", category, event["event_id"], len(body))

    def dynamic_sampling_context(self, trace_id: str, transaction: Optional[str]) -> dict[str, str]:
        dsc = {"trace_id": trace_id}
        if self.public_key:
            dsc["public_key"] = self.public_key
        if self.defaults.release:
            dsc["release"] = self.defaults.release
        if self.defaults.environment:
            dsc["environment"] = self.defaults.environment
        if transaction:
            dsc["transaction"] = transaction
        return dsc

    def new_event_id(self) -> str:
        return uuid.uuid4().hex

    # -- faults and lifecycle ------------------------------------------------------------------
    def internal_error(self, what: str) -> None:
        """A bug of ours: log it once per kind with its traceback, count it, never raise into the app."""
        self.counters["internal_error"] += 1
        if raise_internal_errors:
            raise
        if what not in self._reported:
            self._reported.add(what)
            logger.exception(
                "otel_sentry: internal error while %s (further ones are counted, not logged)", what
            )

    def dropped(self) -> Counter[tuple[str, str]]:
        total: Counter[tuple[str, str]] = Counter()
        for transport in self.transports:
            total.update(transport.dropped)
        return total

    def flush(self, timeout: float) -> bool:
        if self.sessions is not None:
            self.sessions.flush()
        deadline = time.monotonic() + timeout
        return all(t.flush(max(0.0, deadline - time.monotonic())) for t in self.transports)

    def stats(self) -> list[TransportStats]:
        """Per destination: submitted, delivered, dropped by reason, queued, spooled."""
        return [transport.stats() for transport in self.transports]

    def shutdown(self, timeout: Optional[float] = None) -> None:
        """Deliver what is queued within the timeout (default: what is left of the process's
        shutdown budget, see _shutdown.py); the rest is spooled or counted, in one line."""
        if self._closed:
            return
        self._closed = True
        if self.profiler is not None:
            self.profiler.shutdown()
        if self.sessions is not None:
            self.sessions.close()
        self._stop_transports("shutdown", timeout)

    def drain(self, timeout: Optional[float] = None) -> bool:
        """As shutdown, but the transports stay open; True when everything was delivered."""
        if self.sessions is not None:
            self.sessions.flush()
        return self._stop_transports("drain", timeout)

    def _stop_transports(self, method: str, timeout: Optional[float]) -> bool:
        from ._shutdown import remaining

        budget = remaining(self.settings.shutdown_timeout) if timeout is None else timeout
        deadline = time.monotonic() + budget
        results: list[bool] = []
        # All destinations at once: a hung one must not eat the others' share of the budget.
        threads = [
            threading.Thread(
                target=lambda t=transport: results.append(getattr(t, method)(budget) is not False),
                name=f"otel_sentry.{method}",
                daemon=True,
            )
            for transport in self.transports
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()) + 0.1)
        dropped = self.dropped()
        new = dropped - self._logged_drops
        if new:
            self._logged_drops = dropped
            summary = ", ".join(f"{n} {cat} ({reason})" for (reason, cat), n in sorted(new.items()))
            logger.warning("otel_sentry: dropped %s", summary)
        return len(results) == len(threads) and all(results)


def build_transports(settings: Settings) -> list[Transport]:
    """One transport per destination: the DSN, else the local inbox; plus Spotlight when set."""
    limits: dict[str, Any] = {"max_events": settings.queue_max_events, "max_bytes": settings.queue_max_bytes}
    transports: list[Transport] = []
    if settings.dsn:
        destination = HttpDestination.for_dsn(settings.dsn, timeout=settings.request_timeout)
        spool = open_spool(settings, destination.url)
        transports.append(Transport(destination, spool=spool, **limits))
    else:
        from ._inbox import Inbox  # only here: it imports sentry_sdk, tens of ms of start-up

        inbox = Inbox(settings.resolved_inbox_dir, max_envelopes=settings.inbox_max_envelopes)
        transports.append(Transport(InboxDestination(inbox), **limits))
    if settings.spotlight:
        spotlight = HttpDestination(
            settings.spotlight, name="spotlight", auth_header=None, timeout=settings.request_timeout
        )
        transports.append(Transport(spotlight, **limits))
    return transports

"""Continuous profiling (``profile_chunk`` items), as sentry-sdk's ``profile_lifecycle="trace"``.

Behind its own setting (``OTEL_SENTRY_PROFILE_SESSION_SAMPLE_RATE``, sentry-sdk's
``profile_session_sample_rate``): the process decides once whether its profile session is sampled;
if so, the profiler runs while at least one sampled transaction does, and sends what it sampled in
chunks of 60 s (``profile_chunk`` items with a ``profiler_id``). Transactions that ran under it carry
``contexts.profile.profiler_id`` and their thread, which is how Sentry finds their part of the chunks.

sentry-sdk's ``ThreadContinuousScheduler`` is reused as it is (sampler thread, chunk buffer, item
shape); it takes its options and the function that sends a chunk as arguments, so it needs no
client. sentry-sdk's module-level ``setup_continuous_profiler`` is not used: it keeps one scheduler
per process and an app's own ``sentry_sdk.init`` would tear ours down.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, Optional

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from ._fork import reset_in_child
from ._transport import PROFILE_CHUNK

if TYPE_CHECKING:
    from sentry_sdk.envelope import Envelope

    from ._runtime import Runtime

#: Transactions waiting for their export that ran under the profiler; the oldest is forgotten first.
MAX_PENDING = 1024


def _is_local_root(span: ReadableSpan) -> bool:
    return span.parent is None or span.parent.is_remote


class ContinuousProfiler(SpanProcessor):
    """Runs sentry-sdk's continuous scheduler in the ``trace`` lifecycle around sampled local roots."""

    def __init__(self, runtime: Runtime, session_sample_rate: float) -> None:
        from sentry_sdk.profiler.continuous_profiler import ThreadContinuousScheduler
        from sentry_sdk.profiler.utils import DEFAULT_SAMPLING_FREQUENCY

        self.runtime = runtime
        settings = runtime.settings
        options: dict[str, Any] = {
            "profile_lifecycle": "trace",
            "profile_session_sample_rate": session_sample_rate,
            "in_app_include": list(settings.in_app_include),
            "in_app_exclude": list(settings.in_app_exclude),
            "project_root": os.getcwd(),
            "release": runtime.defaults.release,
            "environment": runtime.defaults.environment,
            "dist": None,
        }
        self._scheduler = ThreadContinuousScheduler(
            DEFAULT_SAMPLING_FREQUENCY,
            options,
            runtime.defaults.sdk,  # type: ignore[arg-type]  # the same name/version/packages dict
            self._send,
        )
        self._closed = False
        self._init_state()
        reset_in_child(self, "_after_fork")

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[int, Any] = {}  # span id -> sentry-sdk's ContinuousProfile handle
        self._profiler_ids: dict[tuple[int, int], tuple[str, int, str]] = {}  # id, thread id, name

    def _after_fork(self) -> None:
        """The child samples its own transactions, with a thread (and profiler id) of its own once
        it starts one: the scheduler checks the pid."""
        self._init_state()
        scheduler = self._scheduler
        scheduler.lock = threading.Lock()
        scheduler.new_profiles.clear()
        scheduler.active_profiles = set()

    @property
    def sampled(self) -> bool:
        """The process's profile session decision (taken once, as sentry-sdk takes it)."""
        return bool(self._scheduler.sampled)

    def _send(self, envelope: Envelope) -> None:
        body = envelope.serialize()
        for transport in self.runtime.transports:
            transport.submit(body, PROFILE_CHUNK)
        self.runtime.counters["profile_chunk.produced"] += 1

    def on_start(self, span: Span, parent_context: Optional[Context] = None) -> None:
        context = span.get_span_context()
        if self._closed or not context.trace_flags.sampled or not _is_local_root(span):
            return
        handle = self._scheduler.auto_start()  # None when the session is not sampled
        profiler_id = self._scheduler.profiler_id
        if handle is None or profiler_id is None:
            return
        thread = threading.current_thread()
        with self._lock:
            self._running[context.span_id] = handle
            key = (context.trace_id, context.span_id)
            self._profiler_ids[key] = (profiler_id, threading.get_ident(), thread.name)
            while len(self._profiler_ids) > MAX_PENDING:
                self._profiler_ids.pop(next(iter(self._profiler_ids)))

    def on_end(self, span: ReadableSpan) -> None:
        context = span.get_span_context()
        if context is None or not self._running:
            return
        with self._lock:
            handle = self._running.pop(context.span_id, None)
        if handle is not None:
            handle.stop()  # the sampler stops by itself once no transaction runs

    def link(self, root: ReadableSpan, event: dict[str, Any]) -> None:
        """Tell the transaction which profiler sampled it (and on which thread), as sentry-sdk does."""
        context = root.get_span_context()
        if context is None:
            return
        with self._lock:
            found = self._profiler_ids.pop((context.trace_id, context.span_id), None)
        if found is None:
            return
        profiler_id, thread_id, thread_name = found
        contexts = event.setdefault("contexts", {})
        contexts["profile"] = {"profiler_id": profiler_id}
        data = contexts.setdefault("trace", {}).setdefault("data", {})
        data.setdefault("profiler_id", profiler_id)
        data.setdefault("thread.id", str(thread_id))
        data.setdefault("thread.name", thread_name)

    def shutdown(self) -> None:
        """Stop the sampler thread; what it sampled goes out as a last chunk."""
        self._closed = True
        self._scheduler.teardown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

"""Profiles of sampled transactions, sent as sentry-sdk's transaction profiler sends them.

sentry-sdk's profiler pieces are reused as they are, because they work without a sentry-sdk client:

* its ``ThreadScheduler``: one daemon thread that samples the stack of every thread
  (``sys._current_frames``) about 101 times a second, started with the first profile and, after a
  fork, started again only in a process that starts a profile (it checks the pid);
* its ``Profile``: frames and stacks deduplicated as they are sampled, the 30 s cap, ``to_json``
  (the ``profile`` item's shape, linked to its transaction by event id, trace id and active thread).

Not reused, because they ask the current sentry-sdk client for its options: the sampling decision
(``Profile._set_initial_sampling_decision``) and the validity check (``Profile.valid``). Both are here,
and a span processor starts and stops the profile around the local root span (sentry-sdk does it
around its own ``Transaction``). What is held is bounded: concurrent profiles, samples per profile,
and finished profiles waiting for their transaction; whatever does not fit is counted, never sent.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from collections import OrderedDict
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Optional

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from ._fork import reset_in_child

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sentry_sdk.envelope import Item

    from ._runtime import Runtime

logger = logging.getLogger("otel_sentry")

#: Sampling frequency of sentry-sdk's profiler (Hz); a prime, so it does not beat with periodic work.
FREQUENCY = 101
#: A profile needs at least this many samples to be sent (sentry-sdk's ``PROFILE_MINIMUM_SAMPLES``).
MIN_SAMPLES = 2
#: Profiles running at once; a sampled transaction beyond this is not profiled (and counted).
MAX_ACTIVE = 32
#: Sample rows (one per thread per tick) one profile keeps; then it stops early, as at 30 s.
MAX_SAMPLE_ROWS = 30_000
#: Finished profiles waiting for their transaction to be exported; the oldest is evicted first.
MAX_FINISHED = 256


def _profile_class() -> Any:
    """sentry-sdk's Profile with a bound on the sample rows it keeps (a process with many threads
    adds one row per thread per tick; 30 s of them is unbounded in the thread count)."""
    from sentry_sdk.profiler.transaction_profiler import Profile

    class BoundedProfile(Profile):  # type: ignore[misc]
        def write(self, ts: int, sample: Any) -> None:
            if len(self.samples) + len(sample) > MAX_SAMPLE_ROWS:
                self.stop()
                return
            super().write(ts, sample)

    return BoundedProfile


def _is_local_root(span: ReadableSpan) -> bool:
    return span.parent is None or span.parent.is_remote


class TransactionProfiler(SpanProcessor):
    """Profiles ``rate`` of the sampled local root spans, from their start to their end.

    The exporter takes the finished profile when it builds the root's transaction
    (:func:`profile_items`); the two go out in one envelope, as sentry-sdk sends them.
    """

    def __init__(
        self,
        rate: float,
        *,
        in_app_include: Sequence[str] = (),
        in_app_exclude: Sequence[str] = (),
        runtime: Optional[Runtime] = None,
        frequency: int = FREQUENCY,
    ) -> None:
        from sentry_sdk.profiler.transaction_profiler import ThreadScheduler

        self.rate = rate
        self.runtime = runtime
        self.options: dict[str, Any] = {
            "in_app_include": list(in_app_include),
            "in_app_exclude": list(in_app_exclude),
            "project_root": os.getcwd(),  # sentry-sdk's default project_root
        }
        self._profile_cls = _profile_class()
        self._scheduler = ThreadScheduler(frequency=frequency)
        self._closed = False
        self._init_state()
        reset_in_child(self, "_after_fork")

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[int, Any] = {}  # span id -> running profile
        self._finished: OrderedDict[tuple[int, int], Any] = OrderedDict()  # (trace, span) -> profile

    def _after_fork(self) -> None:
        """The child profiles its own transactions: none of the parent's, fresh locks, and no
        sampler thread until it starts a profile (the scheduler starts one for a new pid)."""
        self._init_state()
        scheduler = self._scheduler
        scheduler.lock = threading.Lock()
        scheduler.new_profiles.clear()
        scheduler.active_profiles = set()

    def _count(self, what: str) -> None:
        if self.runtime is not None:
            self.runtime.counters[what] += 1

    # -- span processor ----------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Optional[Context] = None) -> None:
        context = span.get_span_context()
        if self._closed or not context.trace_flags.sampled or not _is_local_root(span):
            return
        if random.random() >= self.rate:  # as sentry-sdk: an independent draw per transaction
            return
        from sentry_sdk.utils import nanosecond_time

        with self._lock:
            if len(self._active) >= MAX_ACTIVE:
                self._count("profile.dropped.too_many_active")
                return
            profile = self._profile_cls(True, nanosecond_time(), scheduler=self._scheduler)
            self._active[context.span_id] = profile
        profile.start()
        self._count("profile.started")

    def on_end(self, span: ReadableSpan) -> None:
        context = span.get_span_context()
        if context is None or not self._active:
            return
        with self._lock:
            profile = self._active.pop(context.span_id, None)
            if profile is None:
                return
            profile.stop()
            self._finished[(context.trace_id, context.span_id)] = profile
            while len(self._finished) > MAX_FINISHED:
                self._finished.popitem(last=False)
                self._count("profile.dropped.evicted")

    def take(self, root: ReadableSpan) -> Optional[Any]:
        """The finished profile of this local root span, if it was profiled (once)."""
        context = root.get_span_context()
        if context is None or not self._finished:
            return None
        with self._lock:
            return self._finished.pop((context.trace_id, context.span_id), None)

    def shutdown(self) -> None:
        """Stop the sampler thread (it is joined: it sleeps 10 ms at a time)."""
        self._closed = True
        with self._lock:
            for profile in self._active.values():
                profile.stop()
            self._active.clear()
        self._scheduler.teardown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    @property
    def sampler_running(self) -> bool:
        thread = self._scheduler.thread
        return bool(self._scheduler.running and thread is not None and thread.is_alive())


def profile_items(runtime: Runtime, root: ReadableSpan, event: dict[str, Any]) -> list[Item]:
    """The ``profile`` item for this transaction event, when its root was profiled."""
    profiler = getattr(runtime, "profiler", None)
    if not isinstance(profiler, TransactionProfiler):
        if profiler is not None:
            profiler.link(root, event)  # continuous profiling: chunks go out on their own
        return []
    profile = profiler.take(root)
    if profile is None:
        return []
    if profile.unique_samples < MIN_SAMPLES:
        runtime.counters["profile.dropped.insufficient_data"] += 1
        return []
    from sentry_sdk.envelope import Item, PayloadRef
    from sentry_sdk.utils import format_timestamp

    payload = profile.to_json(event, profiler.options)
    # sentry-sdk serializes the event before building the profile: its start_timestamp is a string
    start = datetime.fromtimestamp(float(event["start_timestamp"]), timezone.utc)
    payload["timestamp"] = format_timestamp(start)
    # Linked as sentry-sdk links them: the profile names the transaction (event id, trace id); Relay
    # adds contexts.profile to the transaction once it accepted the profile. The active thread goes
    # on the trace context, where sentry-sdk's spans carry it.
    contexts = event.setdefault("contexts", {})
    thread_id = payload["transactions"][0]["active_thread_id"]
    data = contexts.get("trace", {}).setdefault("data", {})
    data.setdefault("thread.id", thread_id)
    thread_name = payload["profile"]["thread_metadata"].get(thread_id, {}).get("name")
    if thread_name:
        data.setdefault("thread.name", thread_name)
    runtime.counters["profile.produced"] += 1
    return [Item(payload=PayloadRef(json=payload), type="profile")]


def install_profiler(runtime: Optional[Runtime]) -> list[SpanProcessor]:
    """A profiler for the pipeline's span processors (and the runtime's exporter), or none: no
    profiles asked for, or no transactions to link them to. Continuous profiling, when its own
    setting asks for it, replaces transaction profiles (as in sentry-sdk: one profiler at a time)."""
    if runtime is None or not runtime.settings.transactions:
        return []
    settings = runtime.settings
    if settings.profile_session_sample_rate > 0:
        from ._profile_chunks import ContinuousProfiler

        if settings.profiles_sample_rate > 0:
            logger.warning(
                "otel_sentry: OTEL_SENTRY_PROFILE_SESSION_SAMPLE_RATE is set: continuous profiling "
                "replaces the transaction profiles of SENTRY_PROFILES_SAMPLE_RATE"
            )
        continuous = ContinuousProfiler(runtime, settings.profile_session_sample_rate)
        runtime.profiler = continuous
        return [continuous]
    if settings.profiles_sample_rate <= 0:
        return []
    profiler = TransactionProfiler(
        settings.profiles_sample_rate,
        in_app_include=settings.in_app_include,
        in_app_exclude=settings.in_app_exclude,
        runtime=runtime,
    )
    runtime.profiler = profiler
    return [profiler]

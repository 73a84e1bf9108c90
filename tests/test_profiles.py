"""The transaction profiler: the share it profiles, its bounds, its thread at shutdown and after fork."""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, TraceIdRatioBased

from otel_sentry import _profiles, _shutdown
from otel_sentry._exporter import SentrySpanExporter
from otel_sentry._profiles import TransactionProfiler
from otel_sentry._runtime import Runtime
from otel_sentry.testing import SentryIngest
from tests.support.runtime import sentry_runtime


def _pipeline(
    runtime: Runtime, rate: float, sampler: object = ALWAYS_ON
) -> tuple[TracerProvider, TransactionProfiler]:
    profiler = TransactionProfiler(rate, runtime=runtime)
    runtime.profiler = profiler
    provider = TracerProvider(sampler=sampler)  # type: ignore[arg-type]
    provider.add_span_processor(profiler)
    provider.add_span_processor(SimpleSpanProcessor(SentrySpanExporter(runtime)))
    return provider, profiler


@pytest.fixture
def runtime(sentry_ingest: SentryIngest) -> Iterator[Runtime]:
    with sentry_runtime(sentry_ingest, transactions=True) as rt:
        yield rt


def _busy(seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        sum(range(200))


def test_profiles_the_configured_share_of_sampled_transactions(runtime: Runtime) -> None:
    """Over 2,000 traces at 50% head sampling and a 0.05 profile rate: the share of sampled
    transactions profiled is within 4 standard deviations of 0.05; unsampled ones never are."""
    random.seed(20251202)
    provider, profiler = _pipeline(runtime, 0.05, TraceIdRatioBased(0.5))
    tracer = provider.get_tracer("test")
    sampled = 0
    for _ in range(2000):
        with tracer.start_as_current_span("request") as span:
            sampled += span.get_span_context().trace_flags.sampled
            with tracer.start_as_current_span("child"):
                pass  # children are never profiled on their own
    started = runtime.counters["profile.started"]
    share, sd = started / sampled, (0.05 * 0.95 / sampled) ** 0.5
    assert sampled > 800 and abs(share - 0.05) < 4 * sd, (started, sampled)
    # too short for two samples: none is sent, and none is kept waiting
    dropped, sent = (
        runtime.counters["profile.dropped.insufficient_data"],
        runtime.counters["profile.produced"],
    )
    assert dropped + sent == started and dropped >= 0.9 * started
    assert not profiler._finished and not profiler._active
    provider.shutdown()


def test_a_profiled_transaction_goes_out_with_its_profile(
    runtime: Runtime, sentry_ingest: SentryIngest
) -> None:
    provider, profiler = _pipeline(runtime, 1.0)
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("GET /work"):
        _busy(0.1)
    assert runtime.flush(5)
    assert sentry_ingest.wait_for(lambda i: bool(i.items("profile")), 5)
    (envelope,) = [e for e in sentry_ingest.envelopes() if e.payloads("profile")]
    (transaction,) = envelope.payloads("transaction")
    (profile,) = envelope.payloads("profile")
    assert profile["transactions"][0]["id"] == transaction["event_id"]
    assert profile["transactions"][0]["active_thread_id"] == str(threading.get_ident())
    assert len(profile["profile"]["samples"]) >= 2
    assert profiler.sampler_running
    provider.shutdown()
    assert not profiler.sampler_running  # the sampler thread stops at shutdown
    assert not any(
        t.name == "sentry.profiler.ThreadScheduler" and t.is_alive() for t in threading.enumerate()
    )


def _discarded(ingest: SentryIngest) -> Counter[tuple[str, str]]:
    total: Counter[tuple[str, str]] = Counter()
    for report in ingest.items("client_report"):
        for row in report["discarded_events"]:
            total[(row["reason"], row["category"])] += row["quantity"]
    return total


def test_a_profile_rate_limit_leaves_profiles_out_and_counts_them(
    runtime: Runtime, sentry_ingest: SentryIngest
) -> None:
    """Sentry limits the profile category alone: transactions still go, their profiles are left out
    and reported as ratelimit_backoff, as sentry-sdk does."""
    sentry_ingest.respond_with(200, {"X-Sentry-Rate-Limits": "60:profile:key"})
    provider, _ = _pipeline(runtime, 1.0)
    tracer = provider.get_tracer("test")
    for _ in range(3):
        with tracer.start_as_current_span("GET /work"):
            _busy(0.3)  # long enough for a profile on a loaded machine
        assert runtime.flush(5)
    runtime.flush(5)
    provider.shutdown()
    assert sentry_ingest.wait_for(lambda i: len(i.transactions()) == 3, 5)
    # the first was accepted (the answer announced the limit); the next two went without theirs
    assert len(sentry_ingest.items("profile")) <= 1
    runtime.flush(5)
    assert sentry_ingest.wait_for(lambda i: _discarded(i)[("ratelimit_backoff", "profile")] == 2, 5), (
        _discarded(sentry_ingest)
    )


def test_a_dropped_transaction_counts_its_profile(sentry_ingest: SentryIngest) -> None:
    """A transaction envelope dropped whole (here: its category rate-limited) takes its profile with
    it, and both are reported."""
    with sentry_runtime(sentry_ingest, transactions=True) as runtime:
        sentry_ingest.respond_with(200, {"X-Sentry-Rate-Limits": "60:transaction:key"})
        provider, _ = _pipeline(runtime, 1.0)
        tracer = provider.get_tracer("test")
        for _ in range(3):
            with tracer.start_as_current_span("GET /work"):
                _busy(0.3)
            assert runtime.flush(5)
        provider.shutdown()
        runtime.flush(5)
        assert sentry_ingest.wait_for(
            lambda i: (
                _discarded(i)[("ratelimit_backoff", "transaction")] == 2
                and _discarded(i)[("ratelimit_backoff", "profile")] == 2
            ),
            5,
        ), _discarded(sentry_ingest)


def test_what_is_held_is_bounded(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_profiles, "MAX_ACTIVE", 3)
    monkeypatch.setattr(_profiles, "MAX_FINISHED", 2)
    monkeypatch.setattr(_profiles, "MAX_SAMPLE_ROWS", 50)
    profiler = TransactionProfiler(1.0, runtime=runtime)
    provider = TracerProvider()
    provider.add_span_processor(profiler)  # no exporter: finished profiles wait, bounded
    tracer = provider.get_tracer("test")
    spans = [tracer.start_span(f"root {i}") for i in range(5)]
    assert runtime.counters["profile.dropped.too_many_active"] == 2 and len(profiler._active) == 3
    deadline = time.monotonic() + 5
    while any(p.active for p in profiler._active.values()) and time.monotonic() < deadline:
        _busy(0.05)  # a row per thread per tick: the row bound stops the profiles early
    for profile in profiler._active.values():
        assert len(profile.samples) <= 50 and not profile.active
    for span in spans:
        span.end()
    assert len(profiler._finished) == 2 and runtime.counters["profile.dropped.evicted"] == 1
    provider.shutdown()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_after_fork_the_sampler_starts_only_in_a_child_that_profiles(runtime: Runtime) -> None:
    provider, profiler = _pipeline(runtime, 1.0)
    tracer = provider.get_tracer("test")
    span = tracer.start_span("parent request")  # running in the parent at fork time
    assert profiler.sampler_running
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        report = [str(int(profiler.sampler_running)), str(len(profiler._active))]
        with tracer.start_as_current_span("child request"):
            _busy(0.05)
            report.append(str(int(profiler.sampler_running)))
        os.write(write, ",".join(report).encode())
        os._exit(0)
    os.close(write)
    # in the child: no sampler thread and none of the parent's profiles, until it starts one
    assert os.read(read, 64) == b"0,0,1"
    os.close(read)
    os.waitpid(pid, 0)
    span.end()
    assert profiler.sampler_running  # the parent's thread was never touched
    provider.shutdown()


def test_continuous_profiling_sends_chunks_and_its_thread_stops(sentry_ingest: SentryIngest) -> None:
    from otel_sentry._profile_chunks import ContinuousProfiler
    from otel_sentry._profiles import install_profiler

    _shutdown._reset_budget()  # the runtime's shutdown below delivers within a fresh budget
    with sentry_runtime(sentry_ingest, profile_session_sample_rate=1.0, profiles_sample_rate=0.5) as runtime:
        (profiler,) = install_profiler(runtime)  # continuous replaces transaction profiles
        assert isinstance(profiler, ContinuousProfiler) and runtime.profiler is profiler and profiler.sampled
        provider = TracerProvider()
        provider.add_span_processor(profiler)
        provider.add_span_processor(SimpleSpanProcessor(SentrySpanExporter(runtime)))
        with provider.get_tracer("test").start_as_current_span("GET /work"):
            _busy(0.1)
        profiler.shutdown()  # stops the sampler: its last chunk is sent
        assert not any(t.name.startswith("sentry.profiler.") and t.is_alive() for t in threading.enumerate())
        assert runtime.flush(5)
        provider.shutdown()
    assert sentry_ingest.wait_for(lambda i: bool(i.items("profile_chunk")), 5)
    (transaction,) = sentry_ingest.transactions()
    profiler_ids = {c["profiler_id"] for c in sentry_ingest.items("profile_chunk")}
    assert transaction["contexts"]["profile"]["profiler_id"] in profiler_ids
    assert transaction["contexts"]["trace"]["data"]["thread.id"] == str(threading.get_ident())

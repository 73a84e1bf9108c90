"""One trace across W3C-only -> otel_sentry -> sentry-sdk -> otel_sentry (issue 13 item 6).

Three real services on 127.0.0.1 (two under ``opentelemetry-instrument`` with otel_sentry, one on plain
sentry-sdk in between); each hop reports the trace id, its decision and the dynamic sampling context
it propagates. For every kind of caller (W3C ``traceparent`` only, ``sentry-trace`` without baggage,
deferred with and without baggage, no headers at all) every hop must agree on ``trace_id``,
``sampled``, ``sample_rate`` and ``sample_rand``; where otel_sentry makes a deferred decision it writes
its ``sample_rate`` into the DSC as sentry-sdk does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest

from otel_sentry._dsc import derived_sample_rand, parse_baggage
from otel_sentry.testing import SentryIngest
from tests.support.apps import BIN_DIR, AppProcess

APPS = Path(__file__).parent / "apps"
SPAN = "00f067aa0ba902b7"


def trace_of(caller: str) -> str:
    return hashlib.sha256(caller.encode()).hexdigest()[:32]  # one trace per caller, stable across runs


def headers(
    caller: str, sentry_trace_flag: Optional[str] = None, traceparent_flag: Optional[str] = None
) -> dict[str, str]:
    trace = trace_of(caller)
    result = {}
    if traceparent_flag is not None:
        result["traceparent"] = f"00-{trace}-{SPAN}-{traceparent_flag}"
    if sentry_trace_flag is not None:
        result["sentry-trace"] = f"{trace}-{SPAN}{sentry_trace_flag}"
    if "frozen" in caller:
        result["baggage"] = f"sentry-trace_id={trace},sentry-public_key=upstream,sentry-sample_rand=0.250000"
    return result


#: (caller, request path, headers the caller sends)
CALLERS: dict[str, tuple[str, dict[str, str]]] = {
    "w3c sampled": ("/half/hop", headers("w3c sampled", traceparent_flag="01")),
    "w3c unsampled": ("/half/hop", headers("w3c unsampled", traceparent_flag="00")),
    "sentry-trace sampled, no baggage": ("/half/hop", headers("sentry-trace sampled, no baggage", "-1")),
    "sentry-trace unsampled, no baggage": ("/half/hop", headers("sentry-trace unsampled, no baggage", "-0")),
    "deferred, no baggage": ("/half/hop", headers("deferred, no baggage", "")),
    # its trace id draws a sample_rand above the rate: the deferred decision is "not sampled"
    "deferred, no baggage, unsampled": ("/half/hop", headers("deferred, no baggage, unsampled", "")),
    "deferred, frozen baggage": ("/half/hop", headers("deferred, frozen baggage", "")),
    "no headers, head samples": ("/sampled/hop", {}),
    "no headers, head drops": ("/unsampled/hop", {}),
}
MATRIX: list[str] = []


def dsc_of(view: dict[str, Any]) -> dict[str, str]:
    if view["service"] == "sentry-sdk":
        return dict(view["dsc"])
    return parse_baggage(view["outgoing"].get("baggage", ""))[0]


@pytest.fixture(scope="module")
def chain() -> Iterator[tuple[dict[str, list[dict[str, Any]]], SentryIngest]]:
    env = {
        "SENTRY_ENVIRONMENT": "interop-otel",
        "OTEL_TRACES_SAMPLER_ARG": "/sampled/*=1,/unsampled/*=0,/half/*=0.5",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    with SentryIngest() as ingest:
        first = AppProcess(
            "interop_distro_service", cwd=APPS, env={**env, "SENTRY_DSN": ingest.dsn()}, ready_path="/health"
        )
        sdk = AppProcess(
            "interop_sdk_service",
            cwd=APPS,
            env={
                "INTEROP_SENTRY_DSN": ingest.dsn(public_key="sdkkey", project_id=3),
                "INTEROP_SDK_SAMPLE_RATE": "0.5",
            },
            ready_path="/health",
        )
        sdk.command = [str(BIN_DIR / "uvicorn"), *sdk.command[2:]]  # plain sentry-sdk, no OpenTelemetry
        last = AppProcess(
            "interop_distro_service", cwd=APPS, env={**env, "SENTRY_DSN": ingest.dsn()}, ready_path="/health"
        )
        results: dict[str, list[dict[str, Any]]] = {}
        with first, sdk, last:
            for name, (path, sent) in CALLERS.items():
                response = first.get(
                    path, params={"via": f"{sdk.url},{last.url}"}, headers={**sent, "Connection": "close"}
                )
                assert response.status_code == 200, response.text
                results[name] = response.json()
            for app in (first, sdk, last):
                assert app.stop() == 0, app.output()  # delivers what is queued
        yield results, ingest
    print("\nINTEROP CHAIN MATRIX (W3C-only caller -> otel_sentry -> sentry-sdk -> otel_sentry)")
    print("\n".join(MATRIX))


@pytest.mark.parametrize("caller", list(CALLERS))
def test_every_hop_reports_the_same_trace_decision_rate_and_rand(
    chain: tuple[dict[str, list[dict[str, Any]]], SentryIngest], caller: str
) -> None:
    results, ingest = chain
    hops = results[caller]
    assert [h["service"] for h in hops] == ["otel_sentry", "sentry-sdk", "otel_sentry"]
    dscs = [dsc_of(h) for h in hops]
    trace_ids = {h["trace_id"] for h in hops}
    decisions = {bool(h["sampled"]) for h in hops}
    assert len(trace_ids) == 1 and len(decisions) == 1, hops
    (sampled,) = decisions
    for key in ("trace_id", "sample_rate", "sample_rand", "sampled"):
        assert len({d.get(key) for d in dscs}) == 1, (key, dscs)
    dsc = dscs[0]
    assert dsc["trace_id"] == next(iter(trace_ids))
    # a frozen DSC without "sampled" stays so (sentry-sdk adds only the rate it decided at)
    assert dsc.get("sampled") == (None if "frozen" in caller else "true" if sampled else "false")
    rand = float(dsc["sample_rand"])
    if caller.startswith("w3c") or ("no baggage" in caller and not caller.startswith("deferred")):
        assert sampled is ("unsampled" not in caller)  # the incoming decision is honoured
        # the first Sentry hop starts the DSC with the inherited decision as rate, as sentry-sdk does
        assert dsc["sample_rate"] == ("1.0" if sampled else "0.0")
    if caller.startswith("deferred"):
        # otel_sentry decided at its rule's rate with the trace's sample_rand, and wrote the rate
        # into the DSC where the DSC was still open (sentry-sdk does the same; a frozen one is kept)
        expected_rand = 0.25 if "frozen" in caller else derived_sample_rand(int(trace_of(caller), 16))
        assert rand == expected_rand and sampled is (rand < 0.5) and sampled is ("unsampled" not in caller)
        assert dsc["sample_rate"] == "0.5"
    if caller.startswith("no headers"):
        assert dsc["sample_rate"] == ("1.0" if "samples" in caller else "0.0")
    # what Sentry receives: a transaction from each hop when sampled, all with the one DSC
    (trace_id,) = trace_ids
    envelopes = [
        e
        for e in ingest.envelopes()
        if e.payloads("transaction") and e.headers["trace"]["trace_id"] == trace_id
    ]
    assert len(envelopes) == (3 if sampled else 0)
    assert all(e.headers["trace"] == dsc for e in envelopes), [e.headers["trace"] for e in envelopes]
    MATRIX.append(
        f"{caller:>34}: trace ids={len(trace_ids)}, sampled={sampled} at all 3 hops, "
        f"sample_rate={dsc.get('sample_rate')}, sample_rand={dsc.get('sample_rand')} at all 3 hops, "
        f"transactions={len(envelopes)} with that DSC"
    )

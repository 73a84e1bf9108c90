"""Interop with sentry-sdk itself: a service on plain sentry-sdk and one under otel_sentry's distro
call each other (both on 127.0.0.1); each pair ends up in one trace with one sampling decision, and
Sentry gets one dynamic sampling context for it from both sides.

The sentry-sdk service runs with plain ``uvicorn`` (no OpenTelemetry at all); ours runs under
``opentelemetry-instrument``. Each reports to its own loopback Sentry ingest.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from otel_sentry._dsc import parse_baggage
from otel_sentry.testing import OtlpReceiver, SentryIngest
from tests.support import relay
from tests.support.apps import BIN_DIR, AppProcess

APPS = Path(__file__).parent / "apps"
CLOSE = {"Connection": "close"}
MATRIX: list[str] = []


class Services:
    def __init__(self, sdk: AppProcess, ours: AppProcess, sdk_ingest: SentryIngest, our_ingest: SentryIngest):
        self.sdk, self.ours = sdk, ours
        self.sdk_ingest, self.our_ingest = sdk_ingest, our_ingest
        self.results: dict[tuple[str, str, bool], dict[str, Any]] = {}

    def call(self, head: str, decision: str, fail: bool = False) -> dict[str, Any]:
        caller, callee = (self.sdk, self.ours) if head == "sentry-sdk" else (self.ours, self.sdk)
        params: dict[str, Any] = {"target": callee.url}
        if fail:
            params["fail"] = 1
        response = caller.get(f"/{decision}/call", params=params, headers=CLOSE)
        assert response.status_code == 200, (response.status_code, response.text)
        return dict(response.json())


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    with SentryIngest() as sdk_ingest, SentryIngest() as our_ingest:
        sdk = AppProcess(
            "interop_sdk_service",
            cwd=APPS,
            env={"INTEROP_SENTRY_DSN": sdk_ingest.dsn(public_key="sdkkey", project_id=3)},
            ready_path="/health",
        )
        # plain sentry-sdk: no opentelemetry-instrument in front of uvicorn
        sdk.command = [str(BIN_DIR / "uvicorn"), *sdk.command[2:]]
        ours = AppProcess(
            "interop_distro_service",
            cwd=APPS,
            env={
                "SENTRY_DSN": our_ingest.dsn(public_key="ourkey", project_id=2),
                "SENTRY_ENVIRONMENT": "interop-otel",
                "SENTRY_RELEASE": "otel-service@1.0",
                "OTEL_TRACES_SAMPLER_ARG": "/sampled/*=1,/unsampled/*=0",
                "OTEL_BSP_SCHEDULE_DELAY": "100",
                "OTEL_SENTRY_PROMOTION": "true",  # the matrix shows the promoted callee part too
            },
            ready_path="/health",
        )
        with sdk, ours:
            s = Services(sdk, ours, sdk_ingest, our_ingest)
            for head in ("sentry-sdk", "otel_sentry"):
                for decision in ("sampled", "unsampled"):
                    s.results[head, decision, False] = s.call(head, decision)
                s.results[head, "unsampled", True] = s.call(head, "unsampled", fail=True)
            assert sdk.stop() == 0, sdk.output()
            assert ours.stop() == 0, ours.output()
        yield s
    if MATRIX:
        print("\nINTEROP MATRIX\n" + "\n".join(MATRIX))


def transactions_of(ingest: SentryIngest, trace_id: str) -> list[dict[str, Any]]:
    return [t for t in ingest.transactions() if t["contexts"]["trace"]["trace_id"] == trace_id]


def envelope_trace_headers(ingest: SentryIngest, trace_id: str, item_type: str) -> list[dict[str, str]]:
    return [
        e.headers["trace"]
        for e in ingest.envelopes()
        if e.payloads(item_type) and e.headers.get("trace", {}).get("trace_id") == trace_id
    ]


@pytest.mark.parametrize("decision", ["sampled", "unsampled"])
@pytest.mark.parametrize("head", ["sentry-sdk", "otel_sentry"])
def test_one_trace_one_decision_one_sampling_context(services: Services, head: str, decision: str) -> None:
    result = services.results[head, decision, False]
    caller, callee = result["caller"], result["callee"]
    trace_id = caller["trace_id"]
    sampled = decision == "sampled"
    assert callee["trace_id"] == trace_id
    assert caller["sampled"] is sampled and callee["sampled"] is sampled
    if head == "sentry-sdk":
        sdk_view, our_view = caller, callee
        assert our_view["incoming"]["traceparent"] is None  # sentry-sdk speaks sentry-trace only
        dsc = sdk_view["dsc"]
        assert dsc["public_key"] == "sdkkey"
        # we forward the head's context unchanged
        assert parse_baggage(our_view["outgoing"]["baggage"])[0] == dsc
        assert our_view["outgoing"]["sentry-trace"].endswith("-1" if sampled else "-0")
    else:
        our_view, sdk_view = caller, callee
        assert sdk_view["incoming"]["traceparent"] and sdk_view["incoming"]["sentry-trace"]
        dsc = parse_baggage(our_view["outgoing"]["baggage"])[0]
        assert dsc["public_key"] == "ourkey" and dsc["transaction"] == f"/{decision}/call"
        assert dsc["sample_rate"] == ("1.0" if sampled else "0.0")
        # sentry-sdk took our context as frozen, sample_rand included
        assert sdk_view["dsc"] == dsc
    assert dsc["trace_id"] == trace_id and dsc["sampled"] == ("true" if sampled else "false")

    sdk_transactions = transactions_of(services.sdk_ingest, trace_id)
    our_transactions = transactions_of(services.our_ingest, trace_id)
    assert len(sdk_transactions) == len(our_transactions) == (1 if sampled else 0)
    headers = envelope_trace_headers(services.sdk_ingest, trace_id, "transaction")
    headers += envelope_trace_headers(services.our_ingest, trace_id, "transaction")
    assert all(h == dsc for h in headers), headers  # Sentry sees one context for the trace
    if sampled:
        ours_tx, sdk_tx = our_transactions[0], sdk_transactions[0]
        child, parent = (ours_tx, sdk_tx) if head == "sentry-sdk" else (sdk_tx, ours_tx)
        # the callee's transaction hangs under a span of the caller's
        parent_span_ids = {parent["contexts"]["trace"]["span_id"]} | {s["span_id"] for s in parent["spans"]}
        assert child["contexts"]["trace"]["parent_span_id"] in parent_span_ids
        relay.assert_valid(ours_tx)
    MATRIX.append(
        f"{head:>11} head, {decision:>9}: callee same trace={callee['trace_id'] == trace_id}, "
        f"sampled caller/callee={caller['sampled']}/{callee['sampled']}, transactions "
        f"sdk/ours={len(sdk_transactions)}/{len(our_transactions)}, one DSC={all(h == dsc for h in headers)}"
    )


@pytest.mark.parametrize("head", ["sentry-sdk", "otel_sentry"])
def test_an_error_downstream_of_an_unsampled_head_is_linked_to_the_trace(
    services: Services, head: str
) -> None:
    result = services.results[head, "unsampled", True]
    trace_id = result["caller"]["trace_id"]
    assert result["callee"] == {"status": 500}
    leaf_ingest = services.our_ingest if head == "sentry-sdk" else services.sdk_ingest
    (event,) = [e for e in leaf_ingest.events() if e["contexts"]["trace"]["trace_id"] == trace_id]
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    (header,) = envelope_trace_headers(leaf_ingest, trace_id, "event")
    head_dsc = (
        result["caller"]["dsc"]
        if head == "sentry-sdk"
        else parse_baggage(result["caller"]["outgoing"]["baggage"])[0]
    )
    assert header == head_dsc and header["sampled"] == "false"
    promoted = transactions_of(leaf_ingest, trace_id)
    if head == "sentry-sdk":
        relay.assert_valid(event)
        # our part of the errored trace is promoted, and says so (counted once, not extrapolated)
        (transaction,) = promoted
        assert transaction["tags"]["sampling.promoted"] == "true"
        (tx_header,) = envelope_trace_headers(leaf_ingest, trace_id, "transaction")
        assert tx_header == {**head_dsc, "sample_rate": "1.0", "sampled": "true"}
        relay.assert_valid(transaction)
    else:
        assert promoted == []  # sentry-sdk has no promotion
    MATRIX.append(
        f"{head:>11} head, unsampled, callee error: error event in the same trace with the head's DSC, "
        f"callee transactions={len(promoted)}"
        + (" (promoted)" if promoted else " (sentry-sdk: no promotion)")
    )


# -- Sentry's OTLP endpoint, as docs/sampling.md says to configure it ----------------------------


class SentryOtlpEndpoint(OtlpReceiver):
    """A loopback OTLP receiver at the path Sentry's OTLP endpoint has for project 1."""

    _SIGNALS: ClassVar[dict[str, str]] = {"/api/1/integration/otlp/v1/traces": "traces"}


def documented_recipe() -> str:
    text = (Path(__file__).parent.parent / "docs" / "sampling.md").read_text()
    after = text.split("<!-- recipe:sentry-otlp -->", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_documented_sentry_otlp_recipe_sends_authenticated_spans(tmp_path: Path) -> None:
    script = tmp_path / "sentry_otlp.py"
    script.write_text(documented_recipe())
    with SentryIngest() as ingest, SentryOtlpEndpoint() as endpoint:
        dsn = f"http://otlpkey@127.0.0.1:{endpoint.port}/1"
        printed = subprocess.run(
            [sys.executable, str(script), dsn], capture_output=True, text=True, check=True
        ).stdout
        variables = dict(line.split("=", 1) for line in printed.splitlines())
        assert set(variables) == {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"}
        env = {
            **variables,
            "SENTRY_DSN": ingest.dsn(),
            "OTEL_TRACES_EXPORTER": "otlp,sentry",
            "OTEL_SENTRY_TRANSACTIONS": "false",
            "OTEL_TRACES_SAMPLER_ARG": "*=1",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        with AppProcess("errors_app", cwd=APPS, env=env, ready_path="/health") as app:
            assert app.get("/ok/1").status_code == 200
            assert app.get("/unhandled/1", headers=CLOSE).status_code == 500
            assert app.stop() == 0, app.output()
        assert endpoint.wait_for(lambda r: any(s["kind"] == 2 for s in r.spans()), 10)
        (request, *_) = endpoint.requests("traces")
        assert request.http_headers["x-sentry-auth"] == (
            "Sentry sentry_key=otlpkey, sentry_version=7, sentry_client=otel_sentry"
        )
        roots = [s for s in endpoint.spans() if s["kind"] == 2]
        assert {s["attributes"]["sentry.sample_rate"] for s in roots} == {1.0}
        assert ingest.transactions() == []  # not twice
        assert [e["transaction"] for e in ingest.events()] == ["/unhandled/{item_id}"]

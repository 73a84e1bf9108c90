"""Profiles, release-health sessions and event extras, against sentry-sdk on the same app and requests.

tests/apps/parity_oracle.py runs one FastAPI app under sentry-sdk (profiles_sample_rate=1, request
sessions) and under otel_sentry (SENTRY_PROFILES_SAMPLE_RATE=1), each in a fresh process, against a
loopback ingest; otel_sentry's run also goes to a real Spotlight sidecar.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otel_sentry.testing import SentryIngest
from tests.support import relay
from tests.support.apps import clean_env
from tests.support.spotlight import Spotlight

ORACLE = Path(__file__).resolve().parent / "apps" / "parity_oracle.py"


def _run(mode: str, spotlight_url: str | None = None, *extra: str) -> dict[str, list[Any]]:
    env = clean_env({"SENTRY_SPOTLIGHT": spotlight_url} if spotlight_url else None)
    with SentryIngest() as ingest:
        result = subprocess.run(
            [sys.executable, str(ORACLE), mode, ingest.dsn(), *extra],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert ingest.wait_for(lambda i: len(i.items("sessions")) >= 1, 5), ingest.envelopes()
        kinds = ("transaction", "profile", "sessions", "event", "profile_chunk")
        return {kind: ingest.items(kind) for kind in kinds}


@pytest.fixture(scope="module")
def sidecar() -> Iterator[Spotlight]:
    with Spotlight() as spotlight:
        yield spotlight


@pytest.fixture(scope="module")
def runs(sidecar: Spotlight) -> dict[str, dict[str, list[Any]]]:
    return {"sentry_sdk": _run("sentry_sdk"), "otel_sentry": _run("otel_sentry", sidecar.url)}


def _shape(value: Any) -> Any:
    """Keys and value types, recursively; lists by the union of their elements' shapes."""
    if isinstance(value, dict):
        return {key: _shape(v) for key, v in value.items()}
    if isinstance(value, list):
        merged: dict[str, Any] = {}
        kinds = set()
        for element in value:
            shape = _shape(element)
            if isinstance(shape, dict):
                merged.update(shape)
            else:
                kinds.add(str(shape))
        return ["list", merged or sorted(kinds)]
    return type(value).__name__


def _profile_of(run: dict[str, list[Any]], name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    (transaction,) = [t for t in run["transaction"] if t["transaction"] == name]
    (profile,) = [p for p in run["profile"] if p["transactions"][0]["id"] == transaction["event_id"]]
    return transaction, profile


def test_profile_item_has_sentry_sdks_shape_field_by_field(runs: dict[str, dict[str, list[Any]]]) -> None:
    _, theirs = _profile_of(runs["sentry_sdk"], "/work")
    _, ours = _profile_of(runs["otel_sentry"], "/work")
    # thread_metadata is keyed by thread ids, which differ from process to process
    theirs, ours = json.loads(json.dumps(theirs)), json.loads(json.dumps(ours))
    their_threads, our_threads = (
        theirs["profile"].pop("thread_metadata"),
        ours["profile"].pop("thread_metadata"),
    )
    assert _shape(ours) == _shape(theirs)
    assert {_shape(v) == {"name": "str"} for v in [*their_threads.values(), *our_threads.values()]} == {True}
    for key in ("platform", "version", "release", "environment", "device", "os", "runtime"):
        assert ours[key] == theirs[key], key
    assert (
        ours["transactions"][0]["relative_start_ns"] == theirs["transactions"][0]["relative_start_ns"] == "0"
    )
    # the same frames are found in both (the request's own code, sampled at the same rate)
    their_functions = {f["function"] for f in theirs["profile"]["frames"]}
    our_functions = {f["function"] for f in ours["profile"]["frames"]}
    assert {"fib", "build_app.<locals>.work"} <= their_functions & our_functions


def test_profile_is_linked_to_its_transaction(runs: dict[str, dict[str, list[Any]]]) -> None:
    run = runs["otel_sentry"]
    # every request was profiled; those shorter than two samples (10 ms each) are not sent, as in
    # sentry-sdk: /work (150 ms) always is
    names = [p["transactions"][0]["name"] for p in run["profile"]]
    assert "/work" in names and len(names) == len(set(names))
    for name in names:
        transaction, profile = _profile_of(run, name)
        link = profile["transactions"][0]
        assert link["name"] == transaction["transaction"] == name
        assert link["trace_id"] == transaction["contexts"]["trace"]["trace_id"]
        active = link["active_thread_id"]
        assert transaction["contexts"]["trace"]["data"]["thread.id"] == active
        assert active in profile["profile"]["thread_metadata"]
        samples = profile["profile"]["samples"]
        assert any(s["thread_id"] == active for s in samples)
        assert int(link["relative_end_ns"]) >= int(samples[-1]["elapsed_since_start_ns"])
        stacks, frames = profile["profile"]["stacks"], profile["profile"]["frames"]
        assert all(0 <= i < len(frames) for stack in stacks for i in stack)
        assert all(0 <= s["stack_id"] < len(stacks) for s in samples)
        relay.assert_valid(transaction)


def test_sessions_match_sentry_sdks_aggregates(runs: dict[str, dict[str, list[Any]]]) -> None:
    def aggregates(run: dict[str, list[Any]]) -> tuple[dict[str, Any], dict[str, int]]:
        totals: dict[str, int] = {}
        attrs = run["sessions"][0]["attrs"]
        for item in run["sessions"]:
            assert item["attrs"] == attrs
            for aggregate in item["aggregates"]:
                assert aggregate["started"].endswith(":00.000000Z")
                for key, value in aggregate.items():
                    if key != "started":
                        totals[key] = totals.get(key, 0) + value
        return attrs, totals

    ours, theirs = aggregates(runs["otel_sentry"]), aggregates(runs["sentry_sdk"])
    assert ours == theirs == ({"release": "parity@1.0", "environment": "parity"}, {"exited": 4, "crashed": 1})


def test_error_event_extras_match_sentry_sdk(runs: dict[str, dict[str, list[Any]]]) -> None:
    (theirs,) = runs["sentry_sdk"]["event"]
    (ours,) = runs["otel_sentry"]["event"]
    assert ours["modules"] == theirs["modules"]  # the same environment: the same installed packages
    assert "otel-sentry" in ours["modules"] and "sentry-sdk" in ours["modules"]
    integrations = ours["sdk"]["integrations"]
    assert integrations == sorted(set(integrations)) and all(isinstance(i, str) for i in integrations)
    assert {"starlette", "fastapi", "logging", "modules", "profiling", "release_health"} <= set(integrations)
    assert isinstance(theirs["contexts"]["trace"]["origin"], str)
    assert ours["contexts"]["trace"]["origin"] == "auto.otel"
    assert all("modules" not in t for t in runs["otel_sentry"]["transaction"])  # as sentry-sdk
    assert all(t["sdk"]["integrations"] == integrations for t in runs["otel_sentry"]["transaction"])
    relay.assert_valid(ours)


def test_spotlight_accepts_profiles_and_sessions(
    runs: dict[str, dict[str, list[Any]]], sidecar: Spotlight
) -> None:
    sent = len(runs["otel_sentry"]["profile"])
    assert sidecar.wait_for(lambda s: len(s.items("profile")) >= sent and bool(s.items("sessions")), 10)
    assert {p["event_id"] for p in sidecar.items("profile")} == {
        p["event_id"] for p in runs["otel_sentry"]["profile"]
    }
    assert sidecar.items("sessions")[0]["attrs"]["release"] == "parity@1.0"


def test_continuous_profile_chunks_have_sentry_sdks_shape_and_link_transactions() -> None:
    theirs, ours = _run("sentry_sdk", None, "continuous"), _run("otel_sentry", None, "continuous")
    assert ours["profile"] == [] and theirs["profile"] == []  # chunks instead of transaction profiles
    assert ours["profile_chunk"] and theirs["profile_chunk"]
    their_chunk, our_chunk = json.loads(json.dumps(theirs["profile_chunk"][0])), ours["profile_chunk"][0]
    our_chunk = json.loads(json.dumps(our_chunk))
    their_chunk["profile"].pop("thread_metadata"), our_chunk["profile"].pop("thread_metadata")
    # the SDK names differ by design (client_sdk.name): compare shapes, and the rest by value
    assert _shape(our_chunk) == _shape(their_chunk)
    for key in ("platform", "version", "release", "environment"):
        assert our_chunk[key] == their_chunk[key], key
    profiler_ids = {c["profiler_id"] for c in ours["profile_chunk"]}
    (work,) = [t for t in ours["transaction"] if t["transaction"] == "/work"]
    assert work["contexts"]["profile"]["profiler_id"] in profiler_ids
    (their_work,) = [t for t in theirs["transaction"] if t["transaction"] == "/work"]
    assert set(work["contexts"]["profile"]) == set(their_work["contexts"]["profile"])
    thread = work["contexts"]["trace"]["data"]["thread.id"]
    start, end = work["start_timestamp"], work["timestamp"]
    during = [
        s
        for c in ours["profile_chunk"]
        for s in c["profile"]["samples"]
        if s["thread_id"] == thread and start <= s["timestamp"] <= end
    ]
    assert len(during) >= 2  # the transaction's own samples, on its thread, in its time range
    relay.assert_valid(work)

"""Run one app under a real server twice, stock OpenTelemetry and otel_sentry, with the same requests.

Each app comes with a list of :class:`Probe` (request, expected status, and the one event a 5xx must
give). :func:`run` starts ``opentelemetry-instrument <server> ...`` in a subprocess (uvicorn with one
or two workers, hypercorn, gunicorn with uvicorn workers), sends the probes, stops the server the way
its operators do (SIGTERM; uvicorn also SIGINT) and returns what the client saw, the Sentry events a
loopback ingest received and the spans a loopback OTLP receiver received. :func:`check` compares a
stock run with an otel_sentry run and returns the closing-note row: 5xx sent, issues, false issues,
wrong routes/URLs, duplicates, categories and provider/model tags, Relay normalization errors.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import httpx

from otel_sentry.testing import OtlpReceiver, SentryIngest
from tests.support.apps import clean_env, free_port

APPS = Path(__file__).resolve().parent / "apps"


@dataclass(frozen=True)
class Expect:
    """The one event a probe must give: its transaction (route template), URL path, exception type
    (None: a message event, no exception was being handled when the app built its 5xx)."""

    route: str
    url_path: str
    exception: Optional[str]


@dataclass(frozen=True)
class Probe:
    method: str
    path: str
    status: Optional[int]  # None: a status no client can predict (a stream cut mid-way)
    event: Optional[Expect] = None
    websocket: Optional[str] = None  # text to send on a websocket route instead of an HTTP request
    # The route template stock OpenTelemetry puts on the server span (None: as event.route / unknown)
    span_route: Optional[str] = None


@dataclass
class RunResult:
    server: str
    mode: str
    answers: List[Tuple[int, bytes]] = field(default_factory=list)
    events: List[Dict[str, Any]] = field(default_factory=list)
    transactions: List[Dict[str, Any]] = field(default_factory=list)
    spans: List[Dict[str, Any]] = field(default_factory=list)
    output: str = ""
    started: bool = True


SERVERS = ("uvicorn", "uvicorn-2", "hypercorn", "gunicorn")


def _command(server: str, target: str, port: int, extra: Sequence[str], python: Path) -> List[str]:
    bin_dir = python.parent
    base = [str(bin_dir / "opentelemetry-instrument")]
    if server in ("uvicorn", "uvicorn-2"):
        workers = ["--workers", "2"] if server == "uvicorn-2" else []
        return [
            *base,
            str(bin_dir / "uvicorn"),
            target,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "3",
            *workers,
            *extra,
        ]
    if server == "hypercorn":
        return [
            *base,
            str(bin_dir / "hypercorn"),
            target,
            "--bind",
            f"127.0.0.1:{port}",
            "--graceful-timeout",
            "3",
            *extra,
        ]
    if server == "gunicorn":
        return [
            *base,
            str(bin_dir / "gunicorn"),
            target,
            "-k",
            "uvicorn_worker.UvicornWorker",
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            "--graceful-timeout",
            "3",
            *extra,
        ]
    raise ValueError(server)


def _env(mode: str, ingest: SentryIngest, receiver: OtlpReceiver, env: Dict[str, str]) -> Dict[str, str]:
    common = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "1000",  # the default is 5 s; the stop flushes what is left
        "OTEL_TRACES_SAMPLER": "always_on",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_SERVICE_NAME": "conformance",
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    if mode == "stock":
        return {
            **common,
            "OTEL_PYTHON_DISTRO": "distro",
            "OTEL_PYTHON_CONFIGURATOR": "configurator",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "otel_sentry_starlette,otel_sentry_background",
        }
    return {**common, "OTEL_TRACES_EXPORTER": "otlp,sentry", "SENTRY_DSN": ingest.dsn()}


def _send(client: httpx.Client, base: str, probe: Probe) -> Tuple[int, bytes]:
    if probe.websocket is not None:
        from websockets.sync.client import connect

        url = base.replace("http://", "ws://") + probe.path
        try:
            with connect(url, open_timeout=5, close_timeout=2) as ws:
                ws.send(probe.websocket)
                try:
                    reply = ws.recv(timeout=5)
                    return 101, reply.encode() if isinstance(reply, str) else reply
                except Exception:
                    return 101, b"<closed>"
        except Exception as exc:  # refused handshake
            return getattr(getattr(exc, "response", None), "status_code", 0), b""
    try:
        # a fresh connection each time: a server closes the connection of a request that failed
        response = client.request(probe.method, base + probe.path, headers={"Connection": "close"})
        # pages that link to themselves carry the server's address, a fresh port each run
        return response.status_code, response.content.replace(base[len("http://") :].encode(), b"HOST")
    except httpx.HTTPError as exc:  # a response that broke mid-stream
        return -1, type(exc).__name__.encode()


def _wait_ready(proc: subprocess.Popen[bytes], base: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(base + "/__ready__", timeout=2)
            return True
        time.sleep(0.1)
    return False


def run(
    module: str,
    probes: Sequence[Probe],
    *,
    server: str = "uvicorn",
    mode: str = "otel_sentry",
    python: Path = Path(sys.executable),
    env: Optional[Dict[str, str]] = None,
    extra_args: Sequence[str] = (),
    cwd: Path = APPS,
    target: Optional[str] = None,
    stop_signal: int = signal.SIGTERM,
    ready_timeout: float = 30.0,
) -> RunResult:
    result = RunResult(server=server, mode=mode)
    with SentryIngest() as ingest, OtlpReceiver() as receiver:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        full_env = clean_env(_env(mode, ingest, receiver, env or {}))
        full_env["PATH"] = os.pathsep.join([str(python.parent), full_env.get("PATH", "")])
        full_env["PYTHONPATH"] = str(cwd)
        full_env.pop("OTEL_SENTRY_RAISE_INTERNAL_ERRORS", None) if mode == "stock" else None
        command = _command(server, target or f"{module}:app", port, extra_args, python)
        log = Path(tempfile.mkdtemp(prefix="otel-sentry-conformance-")) / "server.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            result.started = _wait_ready(proc, base, ready_timeout)
            if result.started:
                with httpx.Client(timeout=10) as client:
                    for probe in probes:
                        result.answers.append(_send(client, base, probe))
                time.sleep(0.3)  # background work that outlives its response
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, stop_signal)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        ingest.wait_for(lambda i: False, 0.5) if hasattr(ingest, "wait_for") else time.sleep(0.5)
        result.events = ingest.events()
        result.transactions = ingest.transactions()
        result.spans = receiver.spans()
        result.output = log.read_text(errors="replace")
    return result


def server_spans(spans: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [s for s in spans if s["kind"] == 2]  # SpanKind.SERVER


def _span_for(spans: Sequence[Dict[str, Any]], path: str) -> Optional[Dict[str, Any]]:
    for span in server_spans(spans):
        attributes = span["attributes"]
        target = attributes.get("url.path") or str(attributes.get("http.target", "")).split("?")[0]
        if target == path:
            return span
    return None


def event_path(event: Dict[str, Any]) -> str:
    return str(httpx.URL(event.get("request", {}).get("url", "")).path)


def relay_errors(events: Sequence[Dict[str, Any]]) -> int:
    from tests.support.relay import normalize

    return sum(len(normalize(e).get("errors") or []) for e in events)


@dataclass
class Row:
    app: str
    server: str
    sent_5xx: int = 0
    issues: int = 0
    false_issues: int = 0
    wrong_route_url: int = 0
    duplicates: int = 0
    missing: int = 0
    answers_differ: int = 0
    span_routes_differ: int = 0
    span_hygiene: int = 0
    relay_errors: int = 0
    tags: List[str] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)


def check(app: str, probes: Sequence[Probe], stock: RunResult, ours: RunResult) -> Row:
    """Compare a stock run with an otel_sentry run of the same probes."""
    row = Row(app=app, server=ours.server)
    for probe, a, b in zip(probes, stock.answers, ours.answers):
        if a != b and probe.status is not None:
            row.answers_differ += 1
            row.problems.append(f"{probe.path}: stock {a[0]} {a[1][:80]!r} vs ours {b[0]} {b[1][:80]!r}")
        if probe.status is not None and b[0] != probe.status:
            row.problems.append(f"{probe.path}: status {b[0]}, expected {probe.status}")
    row.sent_5xx = sum(1 for p in probes if p.event is not None)
    row.issues = len(ours.events)
    unmatched = list(ours.events)
    for probe in probes:
        if probe.event is None:
            continue
        expect = probe.event
        matches = [e for e in unmatched if _matches(e, expect)]
        if not matches:
            row.missing += 1
            near = [
                e
                for e in unmatched
                if _exception_type(e) == expect.exception
                and (event_path(e) == expect.url_path or e.get("transaction") == expect.route)
            ]
            if near:
                row.wrong_route_url += 1
                row.problems.append(
                    f"{probe.path}: event with {near[0].get('transaction')} {event_path(near[0])}, expected "
                    f"{expect.route} {expect.url_path}"
                )
                unmatched.remove(near[0])
            else:
                row.problems.append(f"{probe.path}: no event ({expect})")
            continue
        if len(matches) > 1:
            row.duplicates += len(matches) - 1
            row.problems.append(f"{probe.path}: {len(matches)} events")
        for event in matches:
            unmatched.remove(event)
        event = matches[0]
        tags = event.get("tags", {})
        row.tags.append(
            f"{expect.route}: {tags.get('error_category')}"
            + "".join(f" {k}={tags[k]}" for k in ("provider", "model") if k in tags)
        )
    row.false_issues = len(unmatched)
    for event in unmatched:
        row.problems.append(
            f"false issue: {event.get('transaction')} {_exception_type(event)} "
            f"{(event.get('logentry') or {}).get('formatted', '')!r}"
        )
    row.relay_errors = relay_errors(ours.events)
    if row.relay_errors:
        from tests.support.relay import normalize

        for event in ours.events:
            errors = normalize(event).get("errors")
            if errors:
                row.problems.append(f"Relay: {json.dumps(errors)[:600]} in {json.dumps(event)[:3000]}")
    for probe in probes:
        if probe.websocket is not None:
            continue
        a, b = _span_for(stock.spans, probe.path), _span_for(ours.spans, probe.path)
        if a is None or b is None:
            continue
        stock_route, our_route = a["attributes"].get("http.route"), b["attributes"].get("http.route")
        if not _as_complete(our_route, stock_route):
            row.span_routes_differ += 1
            row.problems.append(
                f"{probe.path}: span route stock {a['attributes'].get('http.route')!r} "
                f"ours {b['attributes'].get('http.route')!r}"
            )
        _span_hygiene(row, probe, a, b)
    return row


def _span_hygiene(row: Row, probe: Probe, stock: Dict[str, Any], ours: Dict[str, Any]) -> None:
    """A request that did not fail (stock's span not ERROR, status below 500) is not marked failed
    by otel_sentry; no span holds one exception twice."""
    events = [e for e in ours["events"] if e["name"] == "exception"]
    keys = [(e["attributes"].get("exception.type"), e["attributes"].get("exception.message")) for e in events]
    if len(keys) != len(set(keys)):
        row.span_hygiene += 1
        row.problems.append(f"{probe.path}: exception recorded twice on the server span: {keys}")
    failed = stock["status"]["code"] == 2 or (probe.status is not None and probe.status >= 500)
    if failed:
        return
    marks = {
        "ERROR status": ours["status"]["code"] == 2,
        "exception events": bool(events),
        "error.type": "error.type" in ours["attributes"] and "error.type" not in stock["attributes"],
    }
    if any(marks.values()):
        row.span_hygiene += 1
        row.problems.append(f"{probe.path}: server span of a request that went well has {marks}")


def _as_complete(ours: Any, stock: Any) -> bool:
    """Ours is stock's route, or extends it (a mounted app's inner template after the mount's)."""
    if ours == stock or stock is None:
        return True
    return (
        isinstance(ours, str) and isinstance(stock, str) and ours.startswith(stock) and len(ours) > len(stock)
    )


def _exception_type(event: Dict[str, Any]) -> Optional[str]:
    values = (event.get("exception") or {}).get("values") or []
    return str(values[-1]["type"]) if values else None


def _matches(event: Dict[str, Any], expect: Expect) -> bool:
    if event.get("transaction") != expect.route or event_path(event) != expect.url_path:
        return False
    values = (event.get("exception") or {}).get("values") or []
    if expect.exception is None:
        return not values
    return any(v.get("type") == expect.exception for v in values)


ROWS: List[Row] = []  # every row checked in this session, for the closing-note table


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| app | server | 5xx sent | issues | false issues | wrong route/URL | duplicates | missing "
        "| answers differ | span routes less complete | span hygiene | Relay errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r.app} | {r.server} | {r.sent_5xx} | {r.issues} | {r.false_issues} | {r.wrong_route_url} "
            f"| {r.duplicates} | {r.missing} | {r.answers_differ} | {r.span_routes_differ} "
            f"| {r.span_hygiene} | {r.relay_errors} |"
        )
    return "\n".join(lines)


def dump(rows: Sequence[Row]) -> str:
    return json.dumps([r.__dict__ for r in rows], indent=1)

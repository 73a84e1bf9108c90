"""``otel-sentry doctor``, the checks that touch the outside: the Sentry ingest, the OTLP endpoint,
Spotlight, the inbox and spool directories, and the test event.

Each probe runs in its own daemon thread and is waited for until one shared deadline, so the whole
set takes at most ``timeout`` seconds whatever hangs (a DNS lookup is not bounded by a socket
timeout). Probes use the delivery code itself (``HttpDestination`` builds the Sentry request, auth
header and TLS context as the app would); the test event goes through a real ``Runtime`` and its
transports, so a delivered test event proves the app's own path works.
"""

from __future__ import annotations

import http.client
import os
import socket
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Optional

from ._doctor import ERROR, INFO, OK, WARN, Check, Report, collected_warnings

ERROR_CATEGORY = "error"  # _transport.ERROR, not imported here: sentry_sdk costs a tenth of a second

Probe = Callable[[], Check]


def run_probes(probes: list[tuple[str, Probe]], timeout: float) -> list[Check]:
    """Run every probe at once; one that has not answered by the deadline is reported as hung."""
    results: dict[str, Check] = {}

    def run(ident: str, probe: Probe) -> None:
        try:
            results[ident] = probe()
        except Exception as exc:  # a probe's own failure is a finding, never a crash of the doctor
            results[ident] = Check(ERROR, ident, f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, args=p, daemon=True, name=f"doctor-{p[0]}") for p in probes]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [
        results.get(ident)
        or Check(
            ERROR,
            ident,
            f"no answer within {timeout:g} s (DNS or connection hangs)",
            "check the host name, the network and any proxy from this environment",
        )
        for ident, _ in probes
    ]


def _ingest_probe(dsn: str, timeout: float) -> Check:
    """POST an envelope with no items, as the app would: the key and the route are checked, nothing
    is stored."""
    from sentry_sdk.utils import Dsn

    from ._destinations import DeliveryError, HttpDestination
    from ._redact import mask_url_secrets

    parsed = Dsn(dsn)
    destination = HttpDestination.for_dsn(dsn, timeout=timeout)
    where = mask_url_secrets(destination.url)
    try:
        accepted = destination.send(b"{}\n", "error")
    except DeliveryError as exc:
        if exc.status in (401, 403):
            return Check(
                ERROR,
                "sentry.ingest",
                f"{where} rejects the DSN's key (HTTP {exc.status})",
                "copy the DSN again from the Sentry project's Client Keys settings",
            )
        if exc.status == 429:
            return Check(
                WARN,
                "sentry.ingest",
                f"{where} answers 429: the project is rate limited now",
                "check the project's quota; events are dropped while it lasts",
            )
        if exc.status is not None:
            return Check(OK, "sentry.ingest", f"{where} reachable (HTTP {exc.status} to an empty envelope)")
        return Check(
            ERROR,
            "sentry.ingest",
            f"{where} unreachable: {exc}",
            f"check that {parsed.host} is reachable from here (firewall, proxy, DNS)",
        )
    return Check(OK, "sentry.ingest", f"{where} reachable and accepts the key (HTTP {accepted.status})")


def _otlp_probe(env: dict[str, str], timeout: float) -> Check:
    """An empty export request: every OTLP receiver answers it (200 when it accepts it)."""
    from ._redact import mask_url_secrets

    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not endpoint:
        base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or (
            "http://localhost:4317" if protocol == "grpc" else "http://localhost:4318"
        )
        endpoint = base if protocol == "grpc" else base.rstrip("/") + "/v1/traces"
    parts = urllib.parse.urlsplit(endpoint)
    host, https = parts.hostname or "localhost", parts.scheme == "https"
    port = parts.port or (443 if https else (4317 if protocol == "grpc" else 80))
    shown = mask_url_secrets(endpoint)
    try:
        if protocol == "grpc":
            socket.create_connection((host, port), timeout=timeout).close()
            return Check(OK, "otlp", f"{shown} (grpc) accepts connections")
        conn_type = http.client.HTTPSConnection if https else http.client.HTTPConnection
        conn = conn_type(host, port, timeout=timeout)
        headers = {"Content-Type": "application/x-protobuf", **_otlp_headers(env)}
        conn.request("POST", parts.path or "/v1/traces", body=b"", headers=headers)
        status = conn.getresponse().status
        conn.close()
    except (OSError, http.client.HTTPException) as exc:
        return Check(
            ERROR,
            "otlp",
            f"{shown} unreachable: {type(exc).__name__}: {exc}",
            "start the collector, or fix OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT; spans are dropped",
        )
    if 200 <= status < 300:
        return Check(OK, "otlp", f"{shown} accepts OTLP/HTTP exports (HTTP {status})")
    if status in (401, 403):
        return Check(
            ERROR,
            "otlp",
            f"{shown} refuses our credentials (HTTP {status})",
            "fix OTEL_EXPORTER_OTLP_HEADERS",
        )
    return Check(
        WARN,
        "otlp",
        f"{shown} answers HTTP {status} to an empty export",
        "check the path: OTLP/HTTP traces go to <endpoint>/v1/traces",
    )


def _otlp_headers(env: dict[str, str]) -> dict[str, str]:
    raw = env.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") or env.get("OTEL_EXPORTER_OTLP_HEADERS") or ""
    headers = {}
    for entry in raw.split(","):
        name, sep, value = entry.partition("=")
        if sep and name.strip():
            headers[name.strip()] = urllib.parse.unquote(value.strip())
    return headers


def _spotlight_probe(url: str, timeout: float) -> Check:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "localhost", port), timeout=timeout).close()
    except OSError as exc:
        return Check(
            WARN,
            "spotlight",
            f"Spotlight sidecar at {url} unreachable: {exc}",
            "start it: npx @spotlightjs/spotlight (or unset SENTRY_SPOTLIGHT)",
        )
    return Check(OK, "spotlight", f"Spotlight sidecar at {url} accepts connections")


def writable(directory: Path) -> Optional[str]:
    """None when files can be created in directory (or in the parent it would be created in)."""
    probe = directory
    while not probe.exists():
        if probe.parent == probe:
            return "no existing parent directory"
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a directory"
    try:
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".otel-sentry-doctor-"):
            pass
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return None


def check_directories(report: Report, settings: Any) -> None:
    if not settings.dsn:
        directory = settings.resolved_inbox_dir
        problem = writable(directory)
        if problem:
            report.add(
                ERROR,
                "inbox",
                f"no SENTRY_DSN, so events go to the inbox {directory}, which is not writable: {problem}",
                "set OTEL_SENTRY_INBOX_DIR to a writable directory, or set SENTRY_DSN",
            )
        else:
            report.add(
                INFO,
                "inbox",
                f"no SENTRY_DSN: events go to the local inbox {directory} (writable; "
                "read it with `otel-sentry inbox`)",
                "set SENTRY_DSN to send them to Sentry",
            )
    if settings.spool_dir:
        problem = writable(settings.spool_dir)
        if problem:
            report.add(
                WARN,
                "spool",
                f"OTEL_SENTRY_SPOOL_DIR={settings.spool_dir} is not writable: {problem}",
                "fix the directory's permissions; without it undeliverable envelopes are dropped",
            )
        else:
            report.add(OK, "spool", f"spool directory {settings.spool_dir} writable")


def network_probes(settings: Any, env: dict[str, str], timeout: float) -> list[tuple[str, Probe]]:
    probes: list[tuple[str, Probe]] = []
    exporters = {n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",")}
    if settings.dsn:
        probes.append(("sentry.ingest", lambda: _ingest_probe(settings.dsn, timeout)))
    if "otlp" in exporters:
        probes.append(("otlp", lambda: _otlp_probe(env, timeout)))
    if settings.spotlight:
        probes.append(("spotlight", lambda: _spotlight_probe(settings.spotlight, timeout)))
    return probes


def check_dsn(report: Report, settings: Any, env: dict[str, str]) -> None:
    from sentry_sdk.utils import Dsn

    if not settings.dsn:
        return
    dsn = Dsn(settings.dsn)
    report.add(OK, "sentry.dsn", f"DSN parsed: project {dsn.project_id} at {dsn.host} ({dsn.scheme})")
    if "sentry" not in {n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",")}:
        return  # the environment checks already reported it


def send_test_event(report: Report, settings: Any, timeout: float) -> Optional[str]:
    """A real event through a real Runtime's transports (DSN or inbox, plus Spotlight); its id."""
    from . import _helpers
    from ._runtime import Runtime, set_runtime

    lines: list[str] = []
    with collected_warnings(lines):
        runtime = Runtime(settings)
        previous = set_runtime(runtime)
        try:
            try:
                raise DoctorTestError(
                    "otel-sentry doctor test event: errors from this environment reach Sentry"
                )
            except DoctorTestError as exc:
                event_id = _helpers.record(
                    exc,
                    helper="doctor",
                    category=None,
                    context_name="doctor",
                    context={"host": socket.gethostname(), "pid": os.getpid()},
                    tags={"debug_event": "true", "otel_sentry.doctor": "true"},
                    handled=True,
                    mechanism="otel_sentry.doctor",
                    span="none",
                )
            stats = _settled(runtime, timeout)
        finally:
            runtime.shutdown(0.1)
            set_runtime(previous)
    for stat in stats:
        name = stat.destination
        if stat.delivered.get(ERROR_CATEGORY):
            report.add(OK, f"test_event.{name}", f"test event {event_id} delivered to {name}")
            continue
        reasons = sorted({reason for (reason, category) in stat.dropped if category == ERROR_CATEGORY})
        why = f"dropped ({', '.join(reasons)})" if reasons else f"not delivered within {timeout:g} s"
        said = [line.split(": ", 1)[1] for line in lines if line.startswith(f"{name}: ")]
        detail = f": {said[0]}" if said else ""
        fix = "see the reachability findings above"
        report.add(ERROR, f"test_event.{name}", f"test event {event_id} {why} by {name}{detail}", fix)
    return event_id


def _settled(runtime: Any, timeout: float) -> list[Any]:
    """Each destination's stats once the test event is delivered or dropped there (or at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = runtime.stats()
        done = all(
            stat.delivered.get(ERROR_CATEGORY, 0)
            + sum(n for (_reason, category), n in stat.dropped.items() if category == ERROR_CATEGORY)
            >= stat.submitted.get(ERROR_CATEGORY, 0)
            for stat in stats
        )
        if done or time.monotonic() >= deadline:
            return list(stats)
        time.sleep(0.02)


class DoctorTestError(Exception):
    """The exception of ``otel-sentry doctor --send-test-event``."""

"""``otel-sentry demo``: run the example gateway under ``opentelemetry-instrument`` and show the result.

The demo does what a user would do, in one command: it starts the unchanged example FastAPI app
(``examples/gateway/app.py``, shipped in the wheel as ``otel_sentry/_examples/gateway/app.py``) as

    OTEL_TRACES_EXPORTER=otlp,sentry opentelemetry-instrument uvicorn app:app

with the OTLP exporter pointed at a loopback receiver and Sentry events going to a fresh local inbox
(never to a real DSN, even if ``SENTRY_DSN`` is set). It then sends a fixed, scripted mix of
requests, mostly successes with each failure mode of the gateway at least once, stops the app with
SIGINT (so exit-time flushes run), and prints what reached each backend side by side.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, TextIO, Tuple

if TYPE_CHECKING:
    import httpx

    from otel_sentry.testing import OtlpReceiver

__all__ = ["run_demo"]

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
REQUEST_TIMEOUT_S = 5.0
SPAN_WAIT_S = 5.0
LOG_NAME = "gateway-app.log"
# Must match the demo app's defaults (examples/gateway/app.py).
DEMO_KEY = "gw_live_demo_key_123"
ADMIN_KEY = "gw_live_admin_key_456"
WEBHOOK_SECRET = "whsec_demo_secret"
# Variables that would send the demo's telemetry somewhere else than its own receiver and inbox.
_ENV_REMOVED = (
    "SENTRY_DSN",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "GATEWAY_DB_PATH",
)


class DemoError(Exception):
    """The demo cannot run (message is for the user)."""


@dataclass(frozen=True)
class Call:
    """One scripted request and what the gateway answers."""

    method: str
    path: str
    expect: int
    json: Any = None
    key: Optional[str] = DEMO_KEY
    webhook: Optional[Dict[str, Any]] = None  # a Stripe-style event, signed at send time
    bad_signature: bool = False
    note: str = ""  # for failure modes: what happens inside the app

    @property
    def label(self) -> str:
        inference = self.path in ("/v1/chat/completions", "/v1/messages")
        model = self.json.get("model") if inference and isinstance(self.json, dict) else None
        event = self.webhook.get("type") if self.webhook else None
        extra = f" model={model}" if model and self.expect >= 400 else ""
        extra += f" type={event}" if event else ""
        return f"{self.method} {self.path}{extra}"


def _chat(model: str, path: str = "/v1/chat/completions", expect: int = 200, **kw: Any) -> Call:
    body = {"model": model, "messages": [{"role": "user", "content": "Summarize OpenTelemetry in one line"}]}
    return Call("POST", path, expect, json=body, **kw)


def _webhook(
    kind: str, expect: int = 200, amount: int = 500, receipt_email: Optional[str] = None, **kw: Any
) -> Call:
    obj: Dict[str, Any] = {"amount": amount, "metadata": {"user_id": "42"}}
    if receipt_email:
        obj["receipt_email"] = receipt_email
    event = {"id": f"evt_demo_{kind.replace('.', '_')}", "type": kind, "data": {"object": obj}}
    return Call("POST", "/api/payments/webhook", expect, key=None, webhook=event, **kw)


def _login(email: str, password: str, expect: int, note: str = "") -> Call:
    return Call(
        "POST", "/auth/login", expect, key=None, json={"email": email, "password": password}, note=note
    )


# Successes, cycled to fill the run; inference routes come up most often, as in production.
SUCCESSES: Tuple[Call, ...] = (
    _chat("gpt-4"),
    Call("GET", "/v1/models", 200, key=None),
    _chat("claude-3-haiku", "/v1/messages"),
    Call("GET", "/api/users/me", 200),
    _chat("gpt-4o-mini"),
    Call("GET", "/health", 200, key=None),
    Call("POST", "/v1/images/generations", 200, json={"prompt": "a lighthouse at dusk", "size": "1024x1024"}),
    Call("GET", "/api/keys", 200),
    _chat("claude-3-opus"),
    Call("GET", "/v1/models/gpt-4", 200, key=None),
    _webhook("charge.succeeded"),
    Call("GET", "/api/providers", 200, key=None),
    _chat("gpt-4"),
    _login("dev@example.com", "demo-password", 200),
    Call("GET", "/api/admin/stats", 200, key=ADMIN_KEY),
    _chat("gpt-4", "/v1/messages"),
    Call("POST", "/v1/chat/validate", 200, key=None, json=_chat("gpt-4").json),
    Call("GET", "/metrics", 200, key=None),
)

_TIMEOUT_NOTE = "httpx.ReadTimeout -> logger.error + HTTPException(500) from e"
_MESSAGES_TIMEOUT_NOTE = "httpx.ReadTimeout -> capture_provider_error + HTTPException(500) from e"
_LOGIN_NOTE = "bad password: HTTPException(401)"
# Every failure mode of the gateway, once each (the provider timeout three times, on two routes and
# for two users: one issue, three events). Server errors and client errors alternate.
FAILURES: Tuple[Call, ...] = (
    _chat("openrouter/timeout", expect=500, note=_TIMEOUT_NOTE),
    _webhook("charge.succeeded", 400, bad_signature=True, note="bad signature: HTTPException(400)"),
    _chat("openrouter/down", expect=503, note="httpx.ConnectError -> ProviderError -> exception handler 503"),
    _login("dev@example.com", "guess", 401, _LOGIN_NOTE),
    _login("admin@example.com", "hunter2", 401, _LOGIN_NOTE),
    Call(
        "POST",
        "/v1/images/generations",
        500,
        json={"prompt": "a lighthouse", "size": "4096x4096"},
        note="unhandled ValueError from parse_image_size()",
    ),
    _webhook(
        "charge.failed",
        402,
        amount=10_000_000,
        note="sqlite3.IntegrityError (CHECK) -> capture_payment_error + HTTPException(402) from e",
    ),
    _login("admin@example.com", "letmein", 401, _LOGIN_NOTE),
    _webhook("invoice.paid", 500, note="unhandled sqlite3.OperationalError: no such table"),
    Call(
        "POST",
        "/v1/images/generations",
        402,
        json={"prompt": "a poster", "model": "dall-e-3-hd", "n": 4},
        note="credits do not cover it -> capture_payment_error + HTTPException(402)",
    ),
    _webhook(
        "charge.succeeded",
        200,
        receipt_email="bounce@example.com",
        note="200, then the receipt BackgroundTask raises ReceiptDeliveryError",
    ),
    _login("admin@example.com", "password1", 429, "third failure in a row: capture_auth_error + 429"),
    Call("GET", "/api/users/me", 401, key=None, note="no API key: HTTPException(401)"),
    _chat("openrouter/timeout", "/v1/messages", expect=500, note=_MESSAGES_TIMEOUT_NOTE),
    Call("GET", "/v1/models/gpt-5-turbo-max", 404, key=None, note="unknown model: HTTPException(404)"),
    _chat("openrouter/timeout", expect=500, key=ADMIN_KEY, note=_TIMEOUT_NOTE + " (another user)"),
    Call(
        "POST",
        "/v1/chat/validate",
        422,
        key=None,
        json={"model": "gpt-4", "messages": []},
        note="request validation error",
    ),
    Call("GET", "/api/admin/stats", 403, note="not an admin: HTTPException(403)"),
)


def build_script(requests: int) -> List[Call]:
    """``requests`` calls (at least one per failure mode): failures spread evenly among successes."""
    total = max(requests, len(FAILURES))
    slots = {(i * total + total // 2) // len(FAILURES): call for i, call in enumerate(FAILURES)}
    script: List[Call] = []
    successes = 0
    for index in range(total):
        if index in slots:
            script.append(slots[index])
        else:
            script.append(SUCCESSES[successes % len(SUCCESSES)])
            successes += 1
    return script


def sign_webhook(body: bytes, secret: str = WEBHOOK_SECRET, timestamp: Optional[int] = None) -> str:
    """A ``Stripe-Signature`` header value for ``body``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={digest}"


# --------------------------------------------------------------------------------------------------
# locating things
# --------------------------------------------------------------------------------------------------


def find_gateway_app() -> pathlib.Path:
    """The example app: in the installed package (wheel), else in the source tree (editable install)."""
    here = pathlib.Path(__file__).resolve().parent
    candidates = [here / "_examples" / "gateway" / "app.py", here.parent / "examples" / "gateway" / "app.py"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DemoError(
        "cannot find the example gateway app; looked at:\n"
        + "".join(f"  {c}\n" for c in candidates)
        + "Reinstall otel-sentry (the wheel ships it as otel_sentry/_examples/gateway/app.py)."
    )


def _find_script(name: str) -> str:
    """A console script installed next to this interpreter (the same virtualenv), else on PATH."""
    bin_dir = pathlib.Path(sys.executable).parent  # not resolved: a venv's python is a symlink
    for candidate in (bin_dir / name, bin_dir / f"{name}.exe"):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise DemoError(
        f"`{name}` is not installed next to {sys.executable} nor on PATH.\n"
        "The demo needs the demo extras: pip install 'otel-sentry[demo]'"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_TELEMETRY = re.compile(r"(?i)otel.sentry|opentelemetry")
_PROBLEM = re.compile(r"(?i)fail|error|warn|invalid")


def _tail(path: pathlib.Path, lines: int = 30) -> str:
    """The last lines of the app log, preceded by telemetry setup problems logged earlier (the cause
    of an empty inbox is usually at the top, far from the tail)."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    tail = text[-lines:]
    problems = [
        line
        for line in text[:-lines]
        if _TELEMETRY.search(line) and _PROBLEM.search(line) and not line[:1].isspace()
    ]
    head = ["  | " + line for line in problems[:10]] + (["  | ..."] if problems else [])
    return "\n".join(head + ["  | " + line for line in tail])


# --------------------------------------------------------------------------------------------------
# the app process
# --------------------------------------------------------------------------------------------------


def app_environment(otlp_endpoint: str, inbox_dir: pathlib.Path) -> Dict[str, str]:
    """The app's environment: the user's, pointed at the demo's OTLP receiver and local inbox."""
    env = dict(os.environ)
    for name in _ENV_REMOVED:
        env.pop(name, None)
    env.update(
        {
            "OTEL_SERVICE_NAME": "gateway-demo",
            "OTEL_TRACES_EXPORTER": "otlp,sentry",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "SENTRY_ENVIRONMENT": "demo",
            "SENTRY_RELEASE": "gateway@1.0.0",
            "OTEL_SENTRY_INBOX_DIR": str(inbox_dir),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


class _App:
    """``opentelemetry-instrument uvicorn app:app`` in a child process, output to a log file."""

    def __init__(self, app_path: pathlib.Path, env: Dict[str, str], log_path: pathlib.Path) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.argv = [
            _find_script("opentelemetry-instrument"),
            _find_script("uvicorn"),
            "app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
        ]
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        try:
            self.proc = subprocess.Popen(
                self.argv, cwd=str(app_path.parent), env=env, stdout=self._log, stderr=subprocess.STDOUT
            )
        except BaseException:
            self._log.close()
            raise

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, client: httpx.Client, timeout: float = READY_TIMEOUT_S) -> bool:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.running:
            try:
                if client.get(self.base_url + "/health", timeout=1.0).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        return False

    def stop(self) -> Optional[int]:
        """SIGINT (uvicorn shuts down gracefully, atexit flushes run), then kill after a grace period."""
        try:
            if self.running:
                if os.name == "nt":  # pragma: no cover - no SIGINT for a child on Windows
                    self.proc.terminate()
                else:
                    self.proc.send_signal(signal.SIGINT)
                try:
                    self.proc.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            return self.proc.returncode
        finally:
            self._log.close()


# --------------------------------------------------------------------------------------------------
# traffic
# --------------------------------------------------------------------------------------------------


@dataclass
class _Results:
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    unexpected: List[Tuple[Call, str]] = field(default_factory=list)
    seconds: float = 0.0

    def line(self, done: int, total: int) -> str:
        groups: collections.Counter[str] = collections.Counter()
        for status, n in self.statuses.items():
            groups[status[0] + "xx" if status.isdigit() else status] += n
        counts = "  ".join(f"{g} {groups[g]}" for g in sorted(groups))
        return f"  sent {done:>{len(str(total))}}/{total}   {counts}"


def _send(client: httpx.Client, base_url: str, call: Call) -> str:
    import httpx

    headers = {"Authorization": f"Bearer {call.key}"} if call.key else {}
    content: Optional[bytes] = None
    body: Any = call.json
    if call.webhook is not None:
        content = json.dumps(call.webhook).encode()
        secret = "whsec_not_the_secret" if call.bad_signature else WEBHOOK_SECRET
        headers["Stripe-Signature"] = sign_webhook(content, secret)
        headers["Content-Type"] = "application/json"
        body = None
    try:
        response = client.request(
            call.method,
            base_url + call.path,
            json=body,
            content=content,
            headers=headers,
        )
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return str(response.status_code)


def _send_all(app: _App, client: httpx.Client, script: List[Call], out: TextIO) -> _Results:
    """Send the script in order; progress on one line on a terminal, else a line every 20 requests."""
    tty = bool(getattr(out, "isatty", lambda: False)())
    results = _Results()
    start = time.monotonic()
    for done, call in enumerate(script, 1):
        status = _send(client, app.base_url, call)
        results.statuses[status] += 1
        if status != str(call.expect):
            results.unexpected.append((call, status))
        stopped = not app.running
        final = stopped or done == len(script)
        line = results.line(done, len(script)) + ("   (the app exited)" if stopped else "")
        if tty:
            out.write("\r" + line + ("\n" if final else ""))
            out.flush()
        elif final or done % 20 == 0:
            out.write(line + "\n")
            out.flush()
        if stopped:
            break
    results.seconds = time.monotonic() - start
    return results


# --------------------------------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------------------------------


def _status_key(status: str) -> Tuple[int, str]:
    return (int(status), "") if status.isdigit() else (1000, status)


def _print_requests(out: TextIO, results: _Results, script: List[Call]) -> None:
    total = sum(results.statuses.values())
    out.write(f"\nRequests: {total} in {results.seconds:.1f} s\n")
    cells = [
        f"{status} x{n}" for status, n in sorted(results.statuses.items(), key=lambda kv: _status_key(kv[0]))
    ]
    out.write("  " + "   ".join(cells) + "\n")
    sent = script[:total]
    failures = [c for c in FAILURES if c in sent]
    if failures:
        out.write(
            "  Failure modes sent (5xx become Sentry issues; a 4xx does not, unless the code captures it):\n"
        )
        width = max(len(c.label) for c in failures)
        for call in sorted(failures, key=lambda c: (c.expect < 500, c.path)):
            out.write(f"    {call.expect}  {call.label:<{width}}  {call.note}\n")
    for call, status in results.unexpected:
        out.write(f"  ! {call.label}: expected {call.expect}, got {status}\n")


@dataclass(frozen=True)
class CapturePath:
    """One of the seeds' "coming soon" capture paths, as the example gateway does it."""

    name: str
    route: str
    how: str
    category: Optional[str] = None  # error_category of its event
    operation: Optional[str] = None
    exception: Optional[str] = None  # or: the exception type of its event
    shows: Tuple[str, ...] = ()  # context keys printed from the event

    def matches(self, event: Mapping[str, Any]) -> bool:
        tags = event.get("tags") or {}
        if event.get("transaction") != self.route:
            return False
        if self.exception is not None:
            values = (event.get("exception") or {}).get("values") or [{}]
            return bool(values[-1].get("type") == self.exception)
        return tags.get("error_category") == self.category and (
            self.operation is None or tags.get("operation") == self.operation
        )


CAPTURE_PATHS: Tuple[CapturePath, ...] = (
    CapturePath(
        "messages",
        "/v1/messages",
        "capture_provider_error",
        "provider_error",
        shows=("provider", "model", "endpoint"),
    ),
    CapturePath(
        "payment webhook",
        "/api/payments/webhook",
        "capture_payment_error",
        "payment_error",
        "credit_clawback",
        shows=("operation", "amount", "webhook_event_type"),
    ),
    CapturePath(
        "images",
        "/v1/images/generations",
        "capture_payment_error",
        "payment_error",
        "image_credit_deduction",
        shows=("operation", "amount", "images"),
    ),
    CapturePath(
        "auth",
        "/auth/login",
        "capture_auth_error",
        "auth_error",
        "login",
        shows=("operation", "failed_attempts"),
    ),
    CapturePath(
        "background task",
        "/api/payments/webhook",
        "BackgroundTasks, no code",
        exception="ReceiptDeliveryError",
        shows=("trace",),
    ),
)


def _context_value(event: Mapping[str, Any], key: str) -> Any:
    if key == "user.id":
        return (event.get("user") or {}).get("id")
    if key == "trace":
        return ((event.get("contexts") or {}).get("trace") or {}).get("trace_id", "")[:8] or None
    for context in (event.get("contexts") or {}).values():
        if isinstance(context, Mapping) and context.get(key) is not None:
            return context[key]
    return (event.get("tags") or {}).get(key)


def _print_capture_paths(out: TextIO, events: List[Dict[str, Any]]) -> int:
    """The seeds' "coming soon" paths, each with the event it produced; returns how many had one."""
    out.write('\nThe seeds\' "coming soon" capture paths (examples/gateway, docs/capture-api.md):\n')
    done = 0
    width = max(len(p.name) for p in CAPTURE_PATHS)
    for path in CAPTURE_PATHS:
        found = [e for e in events if path.matches(e)]
        done += bool(found)
        facts = ""
        if found:
            shown = ((key, _context_value(found[0], key)) for key in path.shows)
            facts = "  " + " ".join(f"{k}={v}" for k, v in shown if v is not None)
        mark = f"{len(found)} event{'s' if len(found) != 1 else ''}" if found else "no event"
        out.write(f"  {path.name:<{width}}  {path.route:<23} {path.how:<24} {mark}{facts}\n")
    return done


def _exception_span(span: Mapping[str, Any]) -> bool:
    return any(isinstance(ev, Mapping) and ev.get("name") == "exception" for ev in span.get("events") or ())


def _print_backends(out: TextIO, inbox_dir: pathlib.Path, receiver: OtlpReceiver) -> Tuple[int, int]:
    """Issues from the inbox, then what each backend received; returns (error events, spans)."""
    from otel_sentry._inbox import Inbox, render_issues_text

    inbox = Inbox(inbox_dir)
    issues = inbox.issues()
    events = inbox.events()
    transactions = inbox.transactions()
    out.write("\nSentry issues (local inbox):\n")
    text = render_issues_text(issues, directory=inbox_dir, transactions=len(transactions))
    out.write("".join("  " + line + "\n" if line else "\n" for line in text.splitlines()))

    spans = receiver.spans()
    traces = {s.get("trace_id") for s in spans}
    with_exc = sum(1 for s in spans if _exception_span(s))
    out.write("\nWhat went to each backend:\n")
    sentry = f"{len(events)} error events in {len(issues)} issues, {len(transactions)} transactions"
    out.write(f"  Sentry inbox:   {sentry}\n")
    out.write(
        f"  OTLP receiver:  {len(spans)} spans in {len(traces)} traces "
        f"(of which {with_exc} spans carry exception events)\n"
    )
    shared = [i for i in issues if getattr(i, "last_trace_id", None) in traces]
    if shared:
        issue = shared[0]
        n = sum(1 for s in spans if s.get("trace_id") == issue.last_trace_id)
        out.write(
            f"  Same trace in both: {issue.last_trace_id}: Sentry issue {issue.title!r}, {n} OTLP spans\n"
        )
    out.write("  (OTLP gets the sampled traces; every error reaches Sentry whatever the sampling decision)\n")
    _print_capture_paths(out, events)
    return len(events), len(spans)


# --------------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------------


def run_demo(
    *,
    requests: int = 60,
    inbox_dir: pathlib.Path | None = None,
    keep_inbox: bool = False,
    out: TextIO | None = None,
) -> int:
    """Run the gateway demo; 0 on success, 1 if the app failed to start or nothing reached the inbox.

    ``inbox_dir``: where Sentry events go (default: a fresh temp dir). The directory is always kept
    and printed, so ``otel-sentry inbox --dir <it>`` can list it afterwards. If a given ``inbox_dir``
    already holds envelopes of an earlier demo run (it has the demo's app log), they are removed first
    so the summary shows this run only, unless ``keep_inbox``; envelopes in any other directory are
    never deleted. ``out``: where to print (default ``sys.stdout``).
    """
    out = sys.stdout if out is None else out

    def say(line: str = "") -> None:
        out.write(line + "\n")
        out.flush()

    try:
        import httpx

        from otel_sentry._inbox import Inbox
        from otel_sentry.testing import OtlpReceiver

        app_path = find_gateway_app()
        _find_script("opentelemetry-instrument")
        _find_script("uvicorn")
    except (DemoError, ImportError) as exc:
        if isinstance(exc, ImportError):
            exc = DemoError(f"{exc}\nThe demo needs the demo extras: pip install 'otel-sentry[demo]'")
        say(f"otel-sentry demo: {exc}")
        return 1

    if inbox_dir is None:
        inbox_dir = pathlib.Path(tempfile.mkdtemp(prefix="otel-sentry-demo-"))
    else:
        inbox_dir = pathlib.Path(inbox_dir).expanduser()
        inbox_dir.mkdir(parents=True, exist_ok=True)
        earlier = len(Inbox(inbox_dir).envelopes())
        if earlier and not keep_inbox and (inbox_dir / LOG_NAME).exists():
            # only a directory an earlier demo run wrote to: never delete a real app's events
            say(f"Cleared {Inbox(inbox_dir).clear()} envelopes of an earlier demo run from {inbox_dir}")
        elif earlier:
            say(f"Note: {inbox_dir} already holds {earlier} envelopes; the summary below includes them.")
    log_path = inbox_dir / LOG_NAME
    script = build_script(requests)
    if len(script) != requests:
        say(f"(sending {len(script)} requests: one per failure mode at least)")

    with OtlpReceiver() as receiver:
        env = app_environment(receiver.endpoint, inbox_dir)
        say("Starting the example gateway, unchanged, as a user would:")
        say(f"  cd {app_path.parent}")
        say(
            "  OTEL_SERVICE_NAME=gateway-demo OTEL_TRACES_EXPORTER=otlp,sentry "
            f"OTEL_EXPORTER_OTLP_ENDPOINT={receiver.endpoint} \\"
        )
        say(f"  OTEL_SENTRY_INBOX_DIR={inbox_dir} opentelemetry-instrument uvicorn app:app")
        try:
            app = _App(app_path, env, log_path)
        except (OSError, DemoError) as exc:
            say(f"otel-sentry demo: cannot start the app: {exc}")
            return 1
        # No keep-alive: uvicorn closes the connection after an unhandled exception, and a pooled
        # connection would turn the next request into a spurious ReadError.
        with httpx.Client(
            limits=httpx.Limits(max_keepalive_connections=0), timeout=REQUEST_TIMEOUT_S
        ) as client:
            try:
                if not app.wait_ready(client):
                    why = "exited" if not app.running else f"was not ready after {READY_TIMEOUT_S:.0f} s"
                    app.stop()
                    say(f"\nThe app {why}. Its log, {log_path}:\n{_tail(log_path)}")
                    return 1
                say(f"App ready on {app.base_url}; sending {len(script)} requests")
                results = _send_all(app, client, script, out)
            finally:
                returncode = app.stop()
        crashed = returncode not in (0, None, -signal.SIGINT)
        if not receiver.spans():
            receiver.wait_for(lambda r: bool(r.spans()), timeout=SPAN_WAIT_S)
        _print_requests(out, results, script)
        events, _spans = _print_backends(out, inbox_dir, receiver)

    say("")
    say(f"Inbox: {inbox_dir}   (app log: {log_path})")
    say(f"  otel-sentry inbox --dir {inbox_dir}")
    say("Send the same to a real Sentry project instead of the local inbox:")
    say(f"  cd {app_path.parent}")
    say("  SENTRY_DSN=https://<key>@<org>.ingest.sentry.io/<project> OTEL_TRACES_EXPORTER=otlp,sentry \\")
    say("    opentelemetry-instrument uvicorn app:app")
    if crashed or events == 0:
        reason = f"the app exited with status {returncode}" if crashed else "no error event reached the inbox"
        say(f"\nDemo FAILED: {reason}. Tail of {log_path}:\n{_tail(log_path)}")
        return 1
    return 0

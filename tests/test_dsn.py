"""otel_sentry parses DSNs without importing sentry_sdk (start-up time); sentry-sdk is the oracle:
every generated DSN is accepted or rejected as sentry-sdk's ``Dsn`` does, and an accepted one gives
the same envelope URL and auth header."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st
from sentry_sdk.utils import Dsn

from otel_sentry._dsn import parse_dsn

_part = st.sampled_from(["", "pub", "a1b2c3", "k:ey", "sec", "p%40t", "o12.ingest", "x-y"])
_host = st.sampled_from(["", "sentry.io", "o12.ingest.sentry.io", "127.0.0.1", "[::1]", "h_st"])
_port = st.sampled_from(["", ":80", ":443", ":9000", ":0", ":x", ":99999", ":"])
_path = st.sampled_from(["", "/", "/1", "/42", "/pre/42", "/pre/fix/7", "/abc", "/4 2", "/-3", "/1/"])
_scheme = st.sampled_from(["https", "http", "ftp", ""])


@st.composite
def dsns(draw: st.DrawFn) -> str:
    user = draw(_part)
    secret = draw(st.sampled_from([None, "", "sec"]))
    auth = user + (f":{secret}" if secret is not None else "")
    at = f"{auth}@" if draw(st.booleans()) else ""
    return f"{draw(_scheme)}://{at}{draw(_host)}{draw(_port)}{draw(_path)}"


@settings(max_examples=400, deadline=None)
@given(dsns())
def test_a_dsn_parses_as_sentry_sdk_parses_it(value: str) -> None:
    try:
        expected = Dsn(value).to_auth("otel_sentry/test")
    except Exception:
        expected = None
    try:
        ours = parse_dsn(value)
    except ValueError:
        assert expected is None, value
        return
    assert expected is not None, value
    assert ours.envelope_url() == expected.get_api_url()
    assert ours.auth_header("otel_sentry/test") == expected.to_header()


def test_starting_with_a_dsn_does_not_import_sentry_sdk_until_the_app_does() -> None:
    code = (
        "import os, sys\n"
        "os.environ['SENTRY_DSN'] = 'https://pub@127.0.0.1:9/42'\n"
        "os.environ['OTEL_TRACES_EXPORTER'] = 'sentry'\n"
        "from otel_sentry._configure import ensure_runtime\n"
        "runtime = ensure_runtime()\n"
        "assert runtime.transports, 'no transport'\n"
        "print('sentry_sdk' in sys.modules)\n"
        # the app imports sentry_sdk later: otel_sentry's event processors are registered then
        "import sentry_sdk.scope\n"
        "print(sorted(p.__name__ for p in sentry_sdk.scope.global_event_processors))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    imported_at_start, processors = out.stdout.strip().splitlines()
    assert imported_at_start == "False", out.stderr[-2000:]
    assert processors == str(sorted(["_drop_sentry_sdk_log_messages", "_route_through_otel_sentry"]))


def test_sentry_sdk_used_first_while_another_thread_still_imports_it() -> None:
    """The race a lazy import opens: thread A is inside sentry_sdk's package __init__ (held there
    after sentry_sdk.utils is complete) while the request thread builds its first event with
    sentry_sdk.utils. ensure_sentry_sdk makes the request thread wait for the package."""
    code = """
import sys, threading, time
release = threading.Event()
held = threading.Event()

class Hold:
    def find_spec(self, name, path=None, target=None):
        if name.startswith("sentry_sdk.") and "sentry_sdk.utils" in sys.modules and not held.is_set():
            held.set()
            release.wait(10)
        return None

sys.meta_path.insert(0, Hold())
importer = threading.Thread(target=lambda: __import__("sentry_sdk"))
importer.start()
assert held.wait(10), "sentry_sdk's import was not held"
threading.Timer(0.3, release.set).start()
from otel_sentry._sdk_import import ensure_sentry_sdk
ensure_sentry_sdk()
from sentry_sdk.utils import event_from_exception
try:
    {}["missing"]
except KeyError:
    event, _ = event_from_exception(sys.exc_info())
print(event["exception"]["values"][0]["type"])
importer.join()
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "KeyError"

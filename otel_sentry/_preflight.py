"""Runs at interpreter start (``otel_sentry_preflight.pth``), only when ``OTEL_PROPAGATORS`` is set.

``opentelemetry.propagate`` raises on an unknown propagator name when it is first imported, and the
``opentelemetry-instrument`` command imports it before any distro or configurator can run: with a
typo in ``OTEL_PROPAGATORS`` the app never starts. No entry point runs early enough, so this check
does, from a ``.pth`` file: unknown names are dropped with one line (the command then execs the app
with the corrected variable, so the line is written once). With ``OTEL_SENTRY_STRICT`` on, the line is
written and the variable left alone, so the start fails as strict mode asks. Never raises.
"""

from __future__ import annotations

import os


def run() -> None:
    try:
        from ._env_checks import check_propagators, warn
        from ._settings import _parse_bool

        try:
            strict = _parse_bool(os.environ.get("OTEL_SENTRY_STRICT", ""))
        except ValueError:
            strict = False
        if strict:
            check_propagators(dict(os.environ), warn)
        else:
            check_propagators(os.environ, warn)
    except Exception:  # never break an interpreter's start
        pass


run()

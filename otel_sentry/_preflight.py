"""Runs at interpreter start (``otel_sentry_preflight.pth``), only in a process that
``opentelemetry-instrument`` starts, or when ``OTEL_PROPAGATORS`` or ``OTEL_PYTHON_CONTEXT`` is set or
an ``OTEL_*`` variable is blank or huge (the test is one pass over the environment, so other processes
pay nothing). Things no entry point
can do, because they must happen before OpenTelemetry's own start-up code runs:

**Which distro.** ``opentelemetry-instrument`` loads the *first* ``opentelemetry_distro`` and
``opentelemetry_configurator`` entry point it finds, in the order the environment's packages happen
to be listed on disk. With ``opentelemetry-distro`` installed too (the OpenTelemetry docs tell
everyone to install it) that is often the stock one, and otel_sentry silently does nothing. A process
started by ``opentelemetry-instrument`` (its ``sitecustomize`` directory is on ``PYTHONPATH``) that
names neither ``OTEL_PYTHON_DISTRO`` nor ``OTEL_PYTHON_CONFIGURATOR`` gets both set to ``otel_sentry``:
installing this package is the choice. Naming either variable keeps the user's choice.

**Unknown propagators.** ``opentelemetry.propagate`` raises on an unknown propagator name when it
is first imported, and the ``opentelemetry-instrument`` command imports it before any distro or
configurator can run: with a typo in ``OTEL_PROPAGATORS`` the app never starts. Unknown names are
dropped here with one line (the command then execs the app with the corrected variable, so the line
is written once). With ``OTEL_SENTRY_STRICT`` on, the line is
written and the variable left alone, so the start fails as strict mode asks. Never raises.
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping

DISTRO_VARIABLES = ("OTEL_PYTHON_DISTRO", "OTEL_PYTHON_CONFIGURATOR")
_LOADER_LOGGER = "opentelemetry.instrumentation.auto_instrumentation._load"
CHOSEN_LINE = (
    "otel_sentry runs as the OpenTelemetry distro: opentelemetry-distro is installed too, and installing "
    "otel-sentry chose it; set OTEL_PYTHON_DISTRO=distro and OTEL_PYTHON_CONFIGURATOR=configurator to "
    "run stock OpenTelemetry instead"
)


class _SayWhichDistroRuns(logging.Filter):
    """``opentelemetry-instrument`` says "Configuration of configurator not loaded because otel_sentry
    is set by OTEL_PYTHON_CONFIGURATOR" when we chose otel_sentry over the stock distro: that line,
    on OpenTelemetry's loader logger only, becomes one that says which distro runs and why."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if str(record.msg).startswith("Configuration of %s not loaded because") and "otel_sentry" in args:
            record.msg, record.args = CHOSEN_LINE, ()
        return True


def choose_distro(environ: MutableMapping[str, str]) -> None:
    """Name otel_sentry as distro and configurator in a process ``opentelemetry-instrument`` started,
    unless the user named one."""
    if "auto_instrumentation" not in environ.get("PYTHONPATH", ""):
        return
    if any(environ.get(name) for name in DISTRO_VARIABLES):
        return
    for name in DISTRO_VARIABLES:
        environ[name] = "otel_sentry"
    logging.getLogger(_LOADER_LOGGER).addFilter(_SayWhichDistroRuns())


def run() -> None:
    try:
        choose_distro(os.environ)
        from ._env_checks import warn
        from ._env_standard import check_standard_variables

        # The SDK reads some variables when first imported (the context, span limits, propagators),
        # before any distro code runs: blank, huge and garbage values are dropped here, once.
        check_standard_variables(os.environ, warn)
        if not os.environ.get("OTEL_PROPAGATORS"):
            return
        from ._env_checks import check_propagators
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

"""The variables x bad values table of docs/reliability.md: for every standard OTEL_* variable (the
installed SDK's own list) and every otel_sentry/SENTRY_* setting, each bad kind of value, what one
start-up prints and what the SDK then reads. Run: .venv/bin/python bench/bad_config_table.py

Whether the app starts and every request keeps its status is tested end to end, every variable bad
at once per kind, in tests/test_bad_config.py (test_the_app_serves_every_request_unchanged_...).
"""

from __future__ import annotations

import logging

from otel_sentry._configure import apply_environment_defaults, validate_exporter_names
from otel_sentry._env_checks import check_environment
from otel_sentry._env_standard import check_standard_variables, standard_variables
from otel_sentry._settings import SETTINGS, load_settings

OWN = tuple(var for setting in SETTINGS for var in setting.env)
KINDS = {"empty": "", "blank": " \t ", "garbage": "@@ not-a-value \x7f@@", "huge": "x" * 100_000}


def outcome(variable: str, value: str) -> str:
    lines: list[str] = []
    env = {variable: value}
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    log = logging.getLogger("otel_sentry")
    log.addHandler(handler)
    log.propagate = False
    try:
        check_standard_variables(env, lines.append, OWN)
        apply_environment_defaults(env)
        check_environment(env, lines.append)
        validate_exporter_names(env, lines.append)
        load_settings(env)
    finally:
        log.removeHandler(handler)
    naming = [line for line in lines if variable in line]
    kept = env.get(variable)
    if variable in OWN and kept is not None:  # the settings table reads it: default unless accepted
        used = "default" if naming or not value.strip() else "as given"
    else:
        used = "unset" if kept is None else ("as given" if kept == value else "fixed")
    return f"{len(naming)} line, {used}" if naming else f"silent, {used}"


def main() -> None:
    variables = sorted({*standard_variables(), *OWN})
    print("| variable | " + " | ".join(KINDS) + " |")
    print("| --- |" + " --- |" * len(KINDS))
    for variable in variables:
        print(f"| `{variable}` | " + " | ".join(outcome(variable, v) for v in KINDS.values()) + " |")


if __name__ == "__main__":
    main()

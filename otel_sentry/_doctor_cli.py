"""The ``otel-sentry doctor`` subcommand: run the checks, print them, exit 0 (ok), 1 (warnings) or 2
(errors). Findings named by ``--ignore`` (an id, or an id prefix such as ``instrumentation``) are
shown but do not count."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, TextIO

from . import _doctor, _doctor_net
from ._doctor import ERROR, INFO, OK, WARN, Report

_MARK = {OK: "ok", INFO: "info", WARN: "WARN", ERROR: "ERROR"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="PATH",
        help="preview a request path (a route template or a URL path): endpoint type, revenue-critical, "
        "sample rate and the rule that gives it; repeatable",
    )
    parser.add_argument(
        "--send-test-event",
        action="store_true",
        help="send a real test event through the delivery path (DSN or inbox, Spotlight); print its id",
    )
    parser.add_argument(
        "--timeout", type=float, default=0.8, help="seconds for all network probes together (default 0.8)"
    )
    parser.add_argument(
        "--ignore", action="append", default=[], metavar="ID", help="finding ids (or prefixes) not to count"
    )
    parser.add_argument("--verbose", action="store_true", help="also list settings left at their defaults")


def diagnose(paths: list[str], timeout: float, send_test_event: bool) -> Report:
    report = Report()
    environ = _doctor.default_environ()
    settings, env = _doctor.run_local_checks(report, environ, paths)
    _doctor_net.check_dsn(report, settings, env)
    _doctor_net.check_directories(report, settings)
    report.checks.extend(_doctor_net.run_probes(_doctor_net.network_probes(settings, env, timeout), timeout))
    if send_test_event:
        _doctor_net.send_test_event(report, settings, max(timeout, 5.0))
    return report


def _counted(report: Report, ignore: list[str]) -> list[_doctor.Check]:
    return [
        c for c in report.checks if not any(c.id == i or c.id.startswith(i.rstrip(".") + ".") for i in ignore)
    ]


def exit_status(report: Report, ignore: list[str]) -> int:
    statuses = {c.status for c in _counted(report, ignore)}
    return 2 if ERROR in statuses else 1 if WARN in statuses else 0


def render_text(report: Report, out: TextIO, verbose: bool, ignore: list[str], seconds: float) -> None:
    out.write("Settings (effective; secrets masked)\n")
    rows = [r for r in report.settings if verbose or r.source != "default" or r.variable in _ALWAYS]
    width = max((len(r.variable) for r in rows + report.otel), default=10)
    for row in rows:
        out.write(f"  {row.variable:<{width}}  {row.value}  [{row.source}]\n")
    hidden = len(report.settings) - len(rows)
    if hidden:
        out.write(f"  ({hidden} more at their defaults: --verbose)\n")
    out.write("\nOpenTelemetry (as otel_sentry's distro leaves it)\n")
    for row in report.otel:
        out.write(f"  {row.variable:<{width}}  {row.value}  [{row.source}]\n")
    rules = report.rules
    if rules:
        full = " (full sampling in this environment)" if rules["full_sampling"] else ""
        out.write(f"\nSampling rules ({rules['source']}; environment {rules['environment']}{full})\n")
        out.write(f"  {'match':<32} rate\n")
        for entry in rules["sampling"]:
            out.write(f"  {entry['match']:<32} {entry['rate']:g}\n")
        out.write(f"  {'(anything else)':<32} {rules['default_rate']:g}\n")
        out.write(f"  revenue-critical endpoint types: {', '.join(rules['revenue_critical'])}\n")
    if report.previews:
        out.write(f"\n  {'path':<32} {'endpoint type':<20} {'revenue-critical':<17} rate  rule\n")
        for p in report.previews:
            critical = "yes" if p["revenue_critical"] else "no"
            out.write(
                f"  {p['path']:<32} {p['endpoint_type']:<20} {critical:<17} {p['rate']:<5g} {p['rule']}\n"
            )
    out.write("\nFindings\n")
    counted = {id(c) for c in _counted(report, ignore)}
    for check in report.checks:
        mark = _MARK[check.status] if id(check) in counted else f"({check.status}, ignored)"
        out.write(f"  {mark:<6} {check.id:<28} {check.message}\n")
        if check.fix and check.status in (WARN, ERROR, INFO):
            out.write(f"  {'':<6} {'':<28} fix: {check.fix}\n")
    code = exit_status(report, ignore)
    statuses = [c.status for c in report.checks if id(c) in counted]
    summary = f"{statuses.count(ERROR)} error(s), {statuses.count(WARN)} warning(s)"
    out.write(f"\nResult: {summary} -> exit {code} ({seconds:.2f} s)\n")


_ALWAYS = frozenset(
    {"SENTRY_DSN", "SENTRY_ENVIRONMENT", "SENTRY_RELEASE", "SENTRY_SPOTLIGHT", "OTEL_SENTRY_INBOX_DIR"}
)


def render_json(report: Report, out: TextIO, ignore: list[str], seconds: float) -> None:
    code = exit_status(report, ignore)
    data: dict[str, Any] = {
        "status": {0: "ok", 1: "warnings", 2: "errors"}[code],
        "exit": code,
        "seconds": round(seconds, 3),
        "findings": [c.as_dict() for c in report.checks],
        "settings": [vars(r) for r in report.settings],
        "opentelemetry": [vars(r) for r in report.otel],
        "rules": report.rules,
        "previews": report.previews,
    }
    json.dump(data, out, indent=2)
    out.write("\n")


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        report = diagnose(list(args.path), max(0.1, args.timeout), args.send_test_event)
    except Exception as exc:  # the doctor itself must say what broke, not print a traceback
        print(f"otel-sentry doctor: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    seconds = time.monotonic() - started
    if args.json:
        render_json(report, sys.stdout, args.ignore, seconds)
    else:
        render_text(report, sys.stdout, args.verbose, args.ignore, seconds)
    return exit_status(report, args.ignore)

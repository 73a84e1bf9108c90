"""The ``otel-sentry audit`` subcommand's arguments and exit status (0 pass, 1 a gate failed, 2 bad usage)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

FORMATS = ("text", "json", "markdown", "github")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="directories or .py files (never imported)")
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format (default text)")
    parser.add_argument(
        "--layer",
        action="append",
        default=[],
        metavar="NAME=GLOB[,GLOB]",
        help="a layer and its path patterns, first match wins; given once or more, replaces the defaults "
        "(routes, db, background, services)",
    )
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip matching files")
    parser.add_argument("--include-tests", action="store_true", help="also scan tests (skipped by default)")
    parser.add_argument(
        "--fail-on",
        action="append",
        default=[],
        metavar="KIND",
        help="exit 1 when a finding of this kind is not in the baseline: a kind, 'gaps' (every kind that "
        "does not reach Sentry) or 'any'; comma-separated or repeated",
    )
    parser.add_argument(
        "--min-coverage", type=float, default=None, metavar="N", help="exit 1 below N percent"
    )
    parser.add_argument("--baseline", type=Path, default=None, help="JSON file of accepted findings")
    parser.add_argument(
        "--write-baseline", type=Path, default=None, help="accept every current finding into FILE"
    )
    parser.add_argument("--all", action="store_true", help="text: also list @auto_capture_errors candidates")


def run(args: argparse.Namespace) -> int:
    from . import _audit_report as report  # here, not at import: `otel-sentry doctor` does not need it

    try:
        layers = report.parse_layers(args.layer)
        fail_on = report.parse_fail_on(args.fail_on)
        baseline = report.read_baseline(args.baseline) if args.baseline is not None else None
    except (ValueError, OSError, json.JSONDecodeError) as exc:
        print(f"otel-sentry audit: {exc}", file=sys.stderr)
        return 2
    try:
        result = report.run_audit(args.paths, layers, args.exclude, args.include_tests, baseline)
    except FileNotFoundError as exc:
        print(f"otel-sentry audit: {exc}", file=sys.stderr)
        return 2
    if args.write_baseline is not None:
        count = report.write_baseline(args.write_baseline, result)
        print(f"otel-sentry audit: {count} finding(s) written to {args.write_baseline}", file=sys.stderr)
        return 0
    report.render(result, args.format, sys.stdout, show_candidates=args.all)
    reasons = report.gate(result, fail_on, args.min_coverage)
    for reason in reasons:
        print(f"otel-sentry audit: FAILED: {reason}", file=sys.stderr)
    return 1 if reasons else 0

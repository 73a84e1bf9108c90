"""The ``otel-sentry`` command: the demo, the local inbox, and the settings reference."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otel-sentry",
        description="Sentry-grade error tracking on OpenTelemetry. Run your app with "
        "`opentelemetry-instrument`; this command runs the demo and reads the local inbox.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo", help="run the gateway demo under opentelemetry-instrument and show what was captured"
    )
    demo.add_argument(
        "--requests", type=int, default=60, help="how many scripted requests to send (default 60)"
    )
    demo.add_argument(
        "--inbox-dir", type=Path, default=None, help="inbox directory (default: a new temporary one)"
    )

    inbox = sub.add_parser(
        "inbox", help="list the issues in the local inbox (used when no SENTRY_DSN is set)"
    )
    inbox.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="inbox directory (default: OTEL_SENTRY_INBOX_DIR or ~/.local/share/otel-sentry/inbox)",
    )
    inbox.add_argument("--json", action="store_true", help="machine-readable output")
    inbox.add_argument("--clear", action="store_true", help="delete everything in the inbox after listing it")

    settings = sub.add_parser("settings", help="print every setting, or the reference page with --markdown")
    settings.add_argument("--markdown", action="store_true", help="print docs/configuration.md")

    from . import _audit_cli, _doctor_cli

    doctor = sub.add_parser(
        "doctor",
        help="check this environment: settings, distro, exporters, instrumentations, reachability of "
        "Sentry/OTLP/Spotlight, sampling rules; exit 0 ok, 1 warnings, 2 errors",
    )
    _doctor_cli.add_arguments(doctor)

    audit = sub.add_parser(
        "audit",
        help="static analysis: where an error would not become an issue (swallowed exceptions, "
        "background work, ...), by layer, with a coverage table; for CI and pre-commit",
    )
    _audit_cli.add_arguments(audit)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        return run_demo(requests=max(1, args.requests), inbox_dir=args.inbox_dir)
    if args.command == "inbox":
        from ._inbox import inbox_command
        from ._settings import load_settings

        directory = args.dir or load_settings().resolved_inbox_dir
        return int(inbox_command(directory, as_json=args.json, clear=args.clear))
    if args.command == "doctor":
        from . import _doctor_cli

        return _doctor_cli.run(args)
    if args.command == "audit":
        from . import _audit_cli

        return _audit_cli.run(args)
    if args.command == "settings":
        from ._settings import SETTINGS, load_settings, settings_reference_markdown

        if args.markdown:
            sys.stdout.write(settings_reference_markdown())
            return 0
        current = load_settings()
        for setting in SETTINGS:
            value = getattr(current, setting.name)
            shown = "[set]" if setting.secret and value else value
            print(f"{setting.env[0]:<38} {shown}")
        return 0
    return 2


if __name__ == "__main__":
    raise SystemExit(main())

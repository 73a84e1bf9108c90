"""The settings table: parsing, fallbacks, one clear line per bad value, and the generated reference."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from otel_sentry._settings import (
    SETTINGS,
    ConfigurationError,
    load_settings,
    parse_resource_attributes,
    settings_reference_markdown,
)

DOCS = Path(__file__).parent.parent / "docs" / "configuration.md"


def test_defaults_without_environment() -> None:
    settings = load_settings({})
    assert settings.dsn is None
    assert settings.environment == "production"
    assert settings.failed_status_codes == frozenset(range(500, 600))
    assert settings.resolved_inbox_dir.name == "inbox"
    assert settings.problems == ()


@pytest.mark.parametrize(
    ("environ", "field", "expected"),
    [
        ({"SENTRY_DSN": "https://abc@o1.ingest.sentry.io/42"}, "dsn", "https://abc@o1.ingest.sentry.io/42"),
        ({"SENTRY_ENVIRONMENT": "staging"}, "environment", "staging"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=canary"}, "environment", "canary"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=old-style"}, "environment", "old-style"),
        (
            {"SENTRY_ENVIRONMENT": "wins", "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=loses"},
            "environment",
            "wins",
        ),
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.version=2.0.3,service.name=gw"}, "release", "2.0.3"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=gate%20way"}, "service_name", "gate way"),
        ({"OTEL_SERVICE_NAME": "api"}, "service_name", "api"),
        ({"SENTRY_SPOTLIGHT": "true"}, "spotlight", "http://localhost:8969/stream"),
        ({"SENTRY_SPOTLIGHT": "0"}, "spotlight", None),
        ({"SENTRY_SPOTLIGHT": "http://127.0.0.1:9999/stream"}, "spotlight", "http://127.0.0.1:9999/stream"),
        (
            {"OTEL_SENTRY_FAILED_STATUS_CODES": "500,502-504"},
            "failed_status_codes",
            frozenset({500, 502, 503, 504}),
        ),
        ({"OTEL_SENTRY_IN_APP_INCLUDE": "gateway, billing"}, "in_app_include", ("gateway", "billing")),
        ({"OTEL_SENTRY_DEBUG": "yes"}, "debug", True),
        ({"OTEL_SENTRY_SHUTDOWN_TIMEOUT": "0.5"}, "shutdown_timeout", 0.5),
    ],
)
def test_values_and_fallbacks(environ: dict[str, str], field: str, expected: object) -> None:
    assert getattr(load_settings(environ), field) == expected


BAD = [
    ("SENTRY_DSN", "not a dsn", "dsn", None),
    ("SENTRY_DSN", "ftp://key@host/1", "dsn", None),
    ("SENTRY_SPOTLIGHT", "maybe", "spotlight", None),
    ("OTEL_SENTRY_FAILED_STATUS_CODES", "5xx", "failed_status_codes", frozenset(range(500, 600))),
    ("OTEL_SENTRY_FAILED_STATUS_CODES", "600-700", "failed_status_codes", frozenset(range(500, 600))),
    ("OTEL_SENTRY_FAILED_STATUS_CODES", "599-500", "failed_status_codes", frozenset(range(500, 600))),
    ("OTEL_SENTRY_DEBUG", "perhaps", "debug", False),
    ("OTEL_SENTRY_SHUTDOWN_TIMEOUT", "-1", "shutdown_timeout", 2.0),
    ("OTEL_SENTRY_SHUTDOWN_TIMEOUT", "NaN", "shutdown_timeout", 2.0),
    ("OTEL_SENTRY_SHUTDOWN_TIMEOUT", "abc", "shutdown_timeout", 2.0),
    ("OTEL_SENTRY_QUEUE_MAX_EVENTS", "0", "queue_max_events", 1000),
    ("OTEL_SENTRY_INBOX_MAX_ENVELOPES", "1.5", "inbox_max_envelopes", 10_000),
    ("OTEL_SENTRY_INBOX_DIR", "  ", "inbox_dir", None),
]


@pytest.mark.parametrize(("var", "value", "field", "fallback"), BAD)
def test_a_bad_value_warns_once_and_falls_back(
    var: str, value: str, field: str, fallback: object, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="otel_sentry"):
        settings = load_settings({var: value})
    assert getattr(settings, field) == fallback
    (record,) = caplog.records
    assert var in record.getMessage()
    assert "expected" in record.getMessage() and "using" in record.getMessage()


def test_a_secret_bearing_dsn_is_masked_in_the_warning(caplog: pytest.LogCaptureFixture) -> None:
    bad = "https://publickey:topsecret@sentry.example.com/not-a-number"
    with caplog.at_level(logging.WARNING, logger="otel_sentry"):
        load_settings({"SENTRY_DSN": bad})
    text = caplog.text
    assert "SENTRY_DSN" in text
    assert "topsecret" not in text and "publickey" not in text


def test_strict_mode_raises_with_every_problem() -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings({"OTEL_SENTRY_STRICT": "true", "SENTRY_SPOTLIGHT": "maybe", "OTEL_SENTRY_DEBUG": "x"})
    assert "SENTRY_SPOTLIGHT" in str(info.value) and "OTEL_SENTRY_DEBUG" in str(info.value)


def test_keyword_overrides_win_over_the_environment() -> None:
    assert load_settings({"SENTRY_ENVIRONMENT": "env"}, environment="code").environment == "code"
    with pytest.raises(TypeError):
        load_settings({}, no_such_setting=1)


def test_resource_attributes_parse_leniently() -> None:
    assert parse_resource_attributes("a=1,broken,b = two ,=x") == {"a": "1", "b": "two"}


def test_every_project_variable_uses_the_one_prefix() -> None:
    for setting in SETTINGS:
        for var in setting.env:
            assert var.startswith(("SENTRY_", "OTEL_SENTRY_", "OTEL_SERVICE_NAME")), var


def test_reference_page_is_generated_from_the_table() -> None:
    assert DOCS.read_text() == settings_reference_markdown(), (
        "run: otel-sentry settings --markdown > docs/configuration.md"
    )
    for setting in SETTINGS:
        assert f"`{setting.env[0]}`" in DOCS.read_text()

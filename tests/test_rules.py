"""Rules are data: the seeds' tables as defaults, replaceable from a JSON file, safe on bad input."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from otel_sentry._rules import Rules, load_rules

RULES = Rules()


@pytest.mark.parametrize(
    ("route", "endpoint_type", "revenue_critical"),
    [
        ("/v1/chat/completions", "inference_chat", True),
        ("/v1/messages", "inference_messages", True),
        ("/v1/images/generations", "inference_images", True),
        ("/api/payments/webhook", "payment", True),
        ("/api/stripe/events", "payment", True),
        ("/api/checkout/session", "checkout", True),
        ("/auth/login", "authentication", False),
        ("/api/token/refresh", "authentication", False),
        ("/api/keys", "api_key_management", False),
        ("/api/keys/{key_id}", "api_key_management", False),
        ("/api/users/me", "user_management", False),
        ("/api/admin/stats", "admin", False),
        ("/v1/models", "catalog", False),
        ("/v1/models/{model_id}", "catalog", False),
        ("/api/providers", "providers", False),
        ("/health", "health_check", False),
        ("/metrics", "metrics", False),
        ("/api/monitoring/errors", "monitoring", False),
        ("/sentry-debug", "monitoring", False),
        ("/api/things/{id}", "general", False),
        ("", "general", False),
    ],
)
def test_default_endpoint_types(route: str, endpoint_type: str, revenue_critical: bool) -> None:
    assert RULES.endpoint_type(route) == endpoint_type
    assert RULES.is_revenue_critical(endpoint_type) is revenue_critical


@pytest.mark.parametrize(
    ("route", "environment", "rate"),
    [
        ("/health", "production", 0.0),
        ("/metrics", "production", 0.0),
        ("/v1/chat/completions", "production", 0.2),
        ("/v1/messages", "production", 0.2),
        ("/v1/images/generations", "production", 0.2),
        ("/api/admin/stats", "production", 0.5),
        ("/api/users/me", "production", 0.1),
        ("/health", "development", 1.0),
        ("/api/users/me", "development", 1.0),
    ],
)
def test_default_sampling_rates_are_the_seeds(route: str, environment: str, rate: float) -> None:
    assert RULES.sample_rate(route, environment) == rate


def test_a_rules_file_replaces_only_the_sections_it_names(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(
        json.dumps(
            {
                "endpoint_types": [{"match": "/v2/complete*", "type": "inference_chat"}],
                "sampling": {"/v2/complete*": 0.05},
                "default_sample_rate": 0.01,
            }
        )
    )
    rules = load_rules(path)
    assert rules.endpoint_type("/v2/complete") == "inference_chat"
    assert rules.endpoint_type("/v1/chat/completions") == "general"  # the section was replaced
    assert rules.is_revenue_critical("inference_chat")  # untouched section keeps its default
    assert rules.sample_rate("/v2/complete", "production") == 0.05
    assert rules.sample_rate("/anything", "production") == 0.01


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[1, 2]",
        json.dumps({"default_sample_rate": 2}),
        json.dumps({"revenue_critical": "payment"}),
    ],
)
def test_a_bad_rules_file_warns_once_and_keeps_the_defaults(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "rules.json"
    path.write_text(content)
    with caplog.at_level(logging.WARNING, logger="otel_sentry"):
        rules = load_rules(path)
    assert rules == Rules()
    (record,) = caplog.records
    assert "OTEL_SENTRY_RULES_FILE" in record.getMessage() and "default rules" in record.getMessage()


def test_an_unreadable_rules_file_keeps_the_defaults(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="otel_sentry"):
        assert load_rules(tmp_path / "missing.json") == Rules()
    assert "missing.json" in caplog.text


def test_bad_entries_are_skipped_loudly_and_good_ones_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "rules.json"
    path.write_text(
        json.dumps({"sampling": [{"match": "/a*", "rate": 0.3}, {"match": "/b*", "rate": -1}, {"rate": 1}]})
    )
    with caplog.at_level(logging.WARNING, logger="otel_sentry"):
        rules = load_rules(path)
    assert rules.sampling == (("/a*", 0.3),)
    assert len(caplog.records) == 2

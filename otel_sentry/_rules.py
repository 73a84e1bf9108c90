"""Rules are data: endpoint classification, revenue-critical types and sampling rates.

The defaults are the seeds' tables. A JSON rules file (``OTEL_SENTRY_RULES_FILE``) replaces any
section it names; a bad file or a bad entry produces one clear warning line and the defaults (or the
entry is skipped), never an exception in the host app. Route templates are few, so every lookup is
cached: classifying a request costs a dict hit after the first time its route is seen.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

logger = logging.getLogger("otel_sentry")

GENERAL = "general"

# The seeds' endpoint types, matched on the route template (first match wins). Patterns are globs:
# ``*`` matches any run of characters, including ``/``.
DEFAULT_ENDPOINT_TYPES: tuple[tuple[str, str], ...] = (
    ("/v1/chat/completions*", "inference_chat"),
    ("/v1/messages*", "inference_messages"),
    ("/v1/images*", "inference_images"),
    ("*/checkout*", "checkout"),
    ("*/payments*", "payment"),
    ("*/billing*", "payment"),
    ("*/stripe*", "payment"),
    ("*/webhook*", "payment"),
    ("/auth*", "authentication"),
    ("*/login*", "authentication"),
    ("*/logout*", "authentication"),
    ("*/token*", "authentication"),
    ("*/api-keys*", "api_key_management"),
    ("*/api_keys*", "api_key_management"),
    ("/api/keys*", "api_key_management"),
    ("*/users*", "user_management"),
    ("*/admin*", "admin"),
    ("/v1/models*", "catalog"),
    ("*/catalog*", "catalog"),
    ("*/models*", "catalog"),
    ("*/providers*", "providers"),
    ("/health*", "health_check"),
    ("*/healthz", "health_check"),
    ("*/ready*", "health_check"),
    ("*/live*", "health_check"),
    ("/metrics*", "metrics"),
    ("*/monitoring*", "monitoring"),
    ("*/status*", "monitoring"),
    ("*/sentry-debug*", "monitoring"),
)

DEFAULT_REVENUE_CRITICAL: frozenset[str] = frozenset(
    {"inference_chat", "inference_messages", "inference_images", "payment", "checkout"}
)

# The seeds' traces_sampler: health/metrics 0, critical inference 0.2, admin 0.5, the rest 0.1,
# and everything in the development environment.
DEFAULT_SAMPLING: tuple[tuple[str, float], ...] = (
    ("/health*", 0.0),
    ("/metrics*", 0.0),
    ("/v1/chat/completions*", 0.2),
    ("/v1/messages*", 0.2),
    ("/v1/images*", 0.2),
    ("/api/admin*", 0.5),
)
DEFAULT_SAMPLE_RATE = 0.1
DEFAULT_FULL_SAMPLING_ENVIRONMENTS: frozenset[str] = frozenset({"development"})


class _Table:
    """An ordered glob table compiled once; lookups are cached per route."""

    def __init__(self, entries: Sequence[tuple[str, Any]], default: Any) -> None:
        self.entries = tuple(entries)
        self.default = default
        self._patterns: Optional[tuple[tuple[re.Pattern[str], Any], ...]] = None
        self.lookup = lru_cache(maxsize=4096)(self._lookup)
        self.lookup_entry = lru_cache(maxsize=4096)(self._lookup_entry)

    @property
    def _compiled(self) -> tuple[tuple[re.Pattern[str], Any], ...]:
        """Compiled at the first lookup, not at start-up (dozens of globs; a race compiles twice)."""
        compiled = self._patterns
        if compiled is None:
            compiled = self._patterns = tuple((re.compile(fnmatch.translate(p)), v) for p, v in self.entries)
        return compiled

    def _lookup(self, route: str) -> Any:
        for pattern, value in self._compiled:
            if pattern.match(route):
                return value
        return self.default

    def _lookup_entry(self, route: str) -> tuple[Optional[str], Any]:
        """(the pattern that matched, or None for the default; its value)."""
        for (source, _value), (pattern, value) in zip(self.entries, self._compiled):
            if pattern.match(route):
                return source, value
        return None, self.default


@dataclass(frozen=True)
class Rules:
    """All rule tables; build with :func:`load_rules`."""

    endpoint_types: tuple[tuple[str, str], ...] = DEFAULT_ENDPOINT_TYPES
    revenue_critical: frozenset[str] = DEFAULT_REVENUE_CRITICAL
    sampling: tuple[tuple[str, float], ...] = DEFAULT_SAMPLING
    default_sample_rate: float = DEFAULT_SAMPLE_RATE
    full_sampling_environments: frozenset[str] = DEFAULT_FULL_SAMPLING_ENVIRONMENTS
    source: str = "defaults"
    _endpoint_table: _Table = field(init=False, repr=False, compare=False)
    _sampling_table: _Table = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_endpoint_table", _Table(self.endpoint_types, GENERAL))
        object.__setattr__(self, "_sampling_table", _Table(self.sampling, self.default_sample_rate))

    def endpoint_type(self, route: Optional[str]) -> str:
        return GENERAL if not route else str(self._endpoint_table.lookup(route))

    def is_revenue_critical(self, endpoint_type: str) -> bool:
        return endpoint_type in self.revenue_critical

    def sample_rate(self, route: Optional[str], environment: Optional[str] = None) -> float:
        if environment in self.full_sampling_environments:
            return 1.0
        return float(self._sampling_table.lookup(route or ""))

    def sampling_rule(self, route: Optional[str], environment: Optional[str] = None) -> tuple[float, str]:
        """(sample rate, the rule that gave it): a pattern, ``default`` or ``environment``. Cached."""
        if environment in self.full_sampling_environments:
            return 1.0, "environment"
        pattern, value = self._sampling_table.lookup_entry(route or "")
        return float(value), pattern if pattern is not None else "default"

    def untraced_path_patterns(self, environment: Optional[str] = None) -> tuple[str, ...]:
        """Globs whose requests are never traced whatever their route template: the rate-0 rules
        ahead of every rule with a rate above 0 (a later rate-0 rule may be shadowed by an earlier
        one for some template), without template placeholders. Empty in a full-sampling
        environment."""
        if environment in self.full_sampling_environments:
            return ()
        patterns = []
        for pattern, rate in self.sampling:
            if rate > 0.0:
                break
            if "{" not in pattern and "," not in pattern:
                patterns.append(pattern)
        return tuple(patterns)

    def with_sampling(
        self, entries: Sequence[tuple[str, float]], default_sample_rate: Optional[float] = None
    ) -> Rules:
        """These rules with ``entries`` matched before the current sampling table and, when given, a new
        default rate (the sampler's ``OTEL_TRACES_SAMPLER_ARG`` overrides)."""
        return dataclasses.replace(
            self,
            sampling=(*entries, *self.sampling),
            default_sample_rate=(
                self.default_sample_rate if default_sample_rate is None else default_sample_rate
            ),
        )


def _pairs(section: Any, name: str, convert: Any) -> tuple[tuple[str, Any], ...]:
    """Read ``[{"match": glob, <name>: value}, ...]`` or ``{glob: value}``; skip bad entries loudly."""
    items = section.items() if isinstance(section, Mapping) else section
    if not isinstance(items, (list, tuple)) and not isinstance(section, Mapping):
        raise ValueError(f"expected a list of {{'match': ..., '{name}': ...}} objects or a mapping")
    pairs: list[tuple[str, Any]] = []
    for item in items:
        try:
            pattern, value = (item["match"], item[name]) if isinstance(item, Mapping) else item
            if not isinstance(pattern, str) or not pattern:
                raise ValueError("match must be a non-empty string")
            pairs.append((pattern, convert(value)))
        except (KeyError, TypeError, ValueError) as exc:
            logger.warning("otel_sentry: rules: skipping %s entry %r: %s", name, item, exc)
    return tuple(pairs)


def rate(value: Any) -> float:
    """A sample rate: a finite number in [0, 1]."""
    result = float(value)
    if not math.isfinite(result) or not 0.0 <= result <= 1.0:
        raise ValueError(f"sample rate must be between 0 and 1, got {value!r}")
    return result


def _endpoint_type(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("type must be a non-empty string")
    return value


def rules_from_mapping(data: Mapping[str, Any], source: str) -> Rules:
    """Rules with each section the mapping names replacing the default one."""
    kwargs: dict[str, Any] = {"source": source}
    known = {
        "endpoint_types",
        "revenue_critical",
        "sampling",
        "default_sample_rate",
        "full_sampling_environments",
    }
    for key in sorted(set(data) - known):
        logger.warning(
            "otel_sentry: rules file %s: unknown section %r ignored (known: %s)",
            source,
            key,
            ", ".join(sorted(known)),
        )
    if "endpoint_types" in data:
        kwargs["endpoint_types"] = _pairs(data["endpoint_types"], "type", _endpoint_type)
    if "sampling" in data:
        kwargs["sampling"] = _pairs(data["sampling"], "rate", rate)
    if "default_sample_rate" in data:
        kwargs["default_sample_rate"] = rate(data["default_sample_rate"])
    for key in ("revenue_critical", "full_sampling_environments"):
        if key in data:
            values = data[key]
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise ValueError(f"{key} must be a list of strings")
            kwargs[key] = frozenset(values)
    return Rules(**kwargs)


def load_rules(path: Optional[Path]) -> Rules:
    """The default rules, with the sections of the rules file at path (if any) replacing them."""
    if path is None:
        return Rules()
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, Mapping):
            raise ValueError("the top level must be a JSON object")
        return rules_from_mapping(data, str(path))
    except (OSError, ValueError) as exc:
        logger.warning(
            "otel_sentry: invalid OTEL_SENTRY_RULES_FILE=%r: %s; expected a readable JSON rules file "
            "(see docs/rules.md); using the default rules",
            str(path),
            exc,
        )
        return Rules()

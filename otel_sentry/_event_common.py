"""Facts shared by every event otel_sentry builds (errors and transactions)."""

from __future__ import annotations

import contextlib
import functools
import platform
import sys
from dataclasses import dataclass
from typing import Any, Optional


@functools.lru_cache(maxsize=1)
def sdk_info() -> dict[str, Any]:
    """The ``sdk`` block: who built the event, and the libraries it was built with."""
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    packages = [{"name": "pypi:otel-sentry", "version": __version__}]
    for dist in ("sentry-sdk", "opentelemetry-sdk"):
        with contextlib.suppress(PackageNotFoundError):
            packages.append({"name": f"pypi:{dist}", "version": version(dist)})
    return {"name": "otel_sentry.python", "version": __version__, "packages": packages}


def runtime_contexts() -> dict[str, dict[str, Any]]:
    return {
        "runtime": {
            "name": platform.python_implementation(),
            "version": platform.python_version(),
            "build": sys.version,
        },
        "os": {"name": platform.system(), "version": platform.release()},
    }


@dataclass(frozen=True)
class EventDefaults:
    """What every event carries; built once per process."""

    release: Optional[str]
    environment: Optional[str]
    server_name: Optional[str]
    # None: sdk_info(), read at the first event (package metadata lookups cost ms at start-up)
    sdk_block: Optional[dict[str, Any]] = None
    service_name: Optional[str] = None

    @property
    def sdk(self) -> dict[str, Any]:
        return self.sdk_block if self.sdk_block is not None else sdk_info()

    def apply(self, event: dict[str, Any]) -> dict[str, Any]:
        for key in ("release", "environment", "server_name"):
            value = getattr(self, key)
            if value is not None:
                event.setdefault(key, value)
        event.setdefault("sdk", self.sdk)
        event.setdefault("platform", "python")
        return event

"""sentry_sdk, imported on first use and safely from any thread.

otel_sentry imports sentry_sdk where it first needs it (frames, envelopes, serializing), not at
start-up: importing it costs tens of ms (docs/performance.md, "Start-up"). Python does not make
``from sentry_sdk.utils import x`` wait for another thread that is still running sentry_sdk's package
``__init__``: the submodule can be complete while the package is not, and sentry_sdk's functions
then fail on the half-made package (``sentry_sdk.get_client`` missing). Importing the package itself
waits for that thread; call this before importing from a submodule.
"""

from __future__ import annotations

_ready = False


def ensure_sentry_sdk() -> None:
    global _ready
    if not _ready:
        import sentry_sdk  # noqa: F401 - the import waits for a concurrent import of the package

        _ready = True

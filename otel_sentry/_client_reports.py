"""Client reports: what this process discarded, by reason and category, told to Sentry.

Sentry shows an SDK's discarded items on the project's stats page only if the SDK reports them, in a
``client_report`` envelope item (``discarded_events``: reason, category, quantity). sentry-sdk keeps
the same counts (``Transport.record_lost_event``) but forgets those riding on an envelope that failed
to send, so an outage loses the report of what the outage cost. Here the counts stay pending until an
envelope carrying them is accepted (2xx), and the spool keeps them across a restart.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Optional

from ._sdk_import import ensure_sentry_sdk

if TYPE_CHECKING:
    from sentry_sdk.envelope import Item

# Reasons this package counts locally -> the reason reported to Sentry (its client-report vocabulary:
# queue_overflow, ratelimit_backoff, network_error, send_error, internal_sdk_error, ...). None: not
# reported, because the server already recorded the outcome (a 429 is counted by Relay itself).
QUEUE_OVERFLOW = "queue_overflow"
RATELIMIT_BACKOFF = "ratelimit_backoff"
NETWORK_ERROR = "network_error"
SEND_ERROR = "send_error"
RATE_LIMITED = "rate_limited"  # answered 429: Relay counted it
SHUTDOWN = "shutdown"  # still queued when the process stopped, and no room in the spool
INTERNAL_ERROR = "internal_sdk_error"

REPORTED_AS: dict[str, Optional[str]] = {
    QUEUE_OVERFLOW: QUEUE_OVERFLOW,
    RATELIMIT_BACKOFF: RATELIMIT_BACKOFF,
    NETWORK_ERROR: NETWORK_ERROR,
    SEND_ERROR: SEND_ERROR,
    RATE_LIMITED: None,
    SHUTDOWN: QUEUE_OVERFLOW,  # the closest reason Sentry knows: nowhere left to keep it
    INTERNAL_ERROR: INTERNAL_ERROR,
}

Discards = Counter  # (reason, category) -> quantity, reason in Sentry's vocabulary


def reportable(reason: str) -> Optional[str]:
    return REPORTED_AS.get(reason, reason)


def report_item(discards: Counter[tuple[str, str]]) -> Item:
    """The ``client_report`` item for these discards (sentry-sdk's own item model)."""
    # imported on first use: importing sentry_sdk costs tens of ms at start-up (its package imports
    # the whole client), and a process that never discards anything never needs it
    ensure_sentry_sdk()
    from sentry_sdk.envelope import Item, PayloadRef

    return Item(
        PayloadRef(
            json={
                "timestamp": time.time(),
                "discarded_events": [
                    {"reason": reason, "category": category, "quantity": quantity}
                    for (reason, category), quantity in sorted(discards.items())
                    if quantity > 0
                ],
            }
        ),
        type="client_report",
    )


def append_report(body: bytes, discards: Counter[tuple[str, str]]) -> bytes:
    """A serialized envelope with one more item: its items are self-delimiting, so appending is enough."""
    return body + report_item(discards).serialize()


def report_envelope(discards: Counter[tuple[str, str]]) -> bytes:
    """A stand-alone envelope for when nothing else is going out to carry the report."""
    ensure_sentry_sdk()
    from sentry_sdk.envelope import Envelope

    sent_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return Envelope(headers={"sent_at": sent_at}, items=[report_item(discards)]).serialize()

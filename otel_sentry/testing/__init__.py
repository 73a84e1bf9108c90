"""Loopback receivers for testing what otel_sentry (or any SDK) really puts on the wire.

``SentryIngest`` plays a Sentry ingest endpoint (DSN ``/api/<project>/envelope/``) and a Spotlight
sidecar (``/stream``); ``OtlpReceiver`` plays an OTLP/HTTP collector. Both bind 127.0.0.1 on a free
port, run in a daemon thread, decode what they receive into plain Python values and let a test wait
for a condition without sleeping. Asserting on decoded wire data, rather than on mocks, is the only
way to catch a payload the real backend would reject or a secret that leaks into a request body.

Only the standard library is needed at import time; OTLP decoding imports ``opentelemetry-proto``
lazily so the Sentry half works without it.
"""

from ._otlp import OtlpReceiver, ReceivedOtlpRequest
from ._sentry import ReceivedEnvelope, SentryIngest, parse_envelope
from ._server import Headers as Headers
from ._server import UnsupportedEncoding as UnsupportedEncoding

__all__ = [
    "OtlpReceiver",
    "ReceivedEnvelope",
    "ReceivedOtlpRequest",
    "SentryIngest",
    "parse_envelope",
]

"""Whole Sentry events as strict JSON, valid UTF-8, within 1 MiB.

Applied to every error event in ``Runtime.submit``: a cheap serialization check first (nearly every
event passes it), then, for the rare event that fails, lone surrogates and non-finite floats are
fixed and the event is shrunk step by step (breadcrumbs, frame variables, source context, big
contexts, middle frames, chained exceptions) until it fits.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from typing import Any, Callable, Optional

from ._sanitize import MAX_DATA_BYTES, MAX_EVENT_BYTES, MAX_MESSAGE, cap, fix_text


def strict_json(event: Any) -> Optional[bytes]:
    """The event as strict JSON in UTF-8, or None when it is not (lone surrogates, NaN, non-JSON
    types). These bytes are what is sent: measuring the size and encoding the payload are one pass."""
    try:
        text = json.dumps(event, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8")
    except (ValueError, TypeError, RecursionError):  # lone surrogates (UnicodeEncodeError), NaN
        return None


def _size(event: Any) -> Optional[int]:
    encoded = strict_json(event)
    return None if encoded is None else len(encoded)


def _clean(value: Any, depth: int = 0) -> Any:
    if depth > 50:
        return "[truncated]"
    if isinstance(value, str):
        return fix_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {fix_text(str(k)): _clean(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v, depth + 1) for v in value]
    return value


def _stacktraces(event: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for value in (event.get("exception") or {}).get("values") or ():
        stacktrace = value.get("stacktrace") if isinstance(value, dict) else None
        if isinstance(stacktrace, dict):
            yield stacktrace


def _drop_frame_keys(event: dict[str, Any], keys: tuple[str, ...]) -> None:
    for stacktrace in _stacktraces(event):
        for frame in stacktrace.get("frames") or ():
            for key in keys:
                frame.pop(key, None)


def _trim_frames(event: dict[str, Any], keep: int) -> None:
    for stacktrace in _stacktraces(event):
        frames = stacktrace.get("frames") or []
        if len(frames) > keep:
            half = keep // 2
            stacktrace["frames"] = frames[:half] + frames[-half:]


def _trim_containers(event: dict[str, Any]) -> None:
    for key in ("contexts", "extra"):
        section = event.get(key)
        if isinstance(section, dict):
            for name in list(section):
                if name != "trace" and (_size(section[name]) or MAX_EVENT_BYTES) > MAX_DATA_BYTES:
                    section[name] = {"removed": "over the size limit"} if key == "contexts" else "[removed]"


def _cap_messages(event: dict[str, Any], limit: int) -> None:
    for value in (event.get("exception") or {}).get("values") or ():
        if isinstance(value.get("value"), str):
            value["value"] = cap(value["value"], limit)
    entry = event.get("logentry")
    if isinstance(entry, dict):
        for key in ("message", "formatted"):
            if isinstance(entry.get(key), str):
                entry[key] = cap(entry[key], limit)
        entry.pop("params", None)


def _keep_outer_exceptions(event: dict[str, Any]) -> None:
    exception = event.get("exception")
    if isinstance(exception, dict) and isinstance(exception.get("values"), list):
        exception["values"] = exception["values"][-3:]


def fit_event(event: dict[str, Any]) -> tuple[dict[str, Any], Optional[bytes]]:
    """The event made strict JSON within 1 MiB, and its encoding (None if, against every step, it is
    still not): cheap check first, then shrink step by step (breadcrumbs, frame variables, source
    context, big contexts, middle frames, chained exceptions)."""
    encoded = strict_json(event)
    if encoded is not None and len(encoded) <= MAX_EVENT_BYTES:
        return event, encoded
    event = _clean(event)
    steps: list[Callable[[dict[str, Any]], None]] = [
        lambda e: _cap_messages(e, MAX_MESSAGE),
        lambda e: e.get("breadcrumbs", {}).update(values=e.get("breadcrumbs", {}).get("values", [])[-20:]),
        lambda e: _drop_frame_keys(e, ("vars",)),
        lambda e: _drop_frame_keys(e, ("pre_context", "post_context")),
        _trim_containers,
        lambda e: e.pop("breadcrumbs", None),
        lambda e: _trim_frames(e, 50),
        lambda e: (e.get("exception") or {}).update(
            values=((e.get("exception") or {}).get("values") or [])[-3:]
        ),
        lambda e: _cap_messages(e, 1024),
        lambda e: _trim_frames(e, 10),
    ]
    for step in steps:
        encoded = strict_json(event)
        if encoded is not None and len(encoded) <= MAX_EVENT_BYTES:
            return event, encoded
        with contextlib.suppress(Exception):
            step(event)
    return event, strict_json(event)

"""Turning whatever a caller passes into bounded, JSON-safe event data, without ever raising.

Capture helpers receive arbitrary objects: non-exceptions, recursive or huge ``details``, objects
whose ``__repr__`` raises or never returns, bytes that are not UTF-8, strings with lone surrogates.
Everything here returns a value that serializes (strict JSON, valid UTF-8) within Sentry's limits
(1 MiB per event item, 8,192 characters per message, 200 per tag value; whole events are fitted
by ``_fit_event``).

A ``__repr__`` that never returns cannot be interrupted from the thread that called it, so the
``repr()`` of an object whose type is not known to be safe runs on a helper thread and the caller
waits a bounded time (``REPR_TIMEOUT``, and ``CAPTURE_BUDGET`` for one capture in total). A helper
thread stuck in such a call is abandoned (it is a daemon) and replaced, at most ``MAX_STUCK`` times
per process; after that, untrusted objects are shown by type only. The same guard is handed to
sentry-sdk's frame extraction (its ``custom_repr`` option), so frame local variables are covered too.
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import math
import os
import pathlib
import queue
import re
import threading
import time
import types
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, Callable, Optional

from ._redact import REDACTED, is_sensitive_name, scrub_text

MAX_EVENT_BYTES = 1024 * 1024
MAX_MESSAGE = 8192
MAX_TAG_KEY = 200
MAX_TAG_VALUE = 200
MAX_STRING = 1024
MAX_DEPTH = 5
MAX_BREADTH = 50
MAX_DATA_BYTES = 64 * 1024

REPR_TIMEOUT = 0.2
CAPTURE_BUDGET = 0.5
MAX_STUCK = 4

# Exact types whose repr() cannot run user code (subclasses may override __repr__, so exact only).
_SAFE_TYPES: frozenset[type] = frozenset(
    {
        type(None),
        bool,
        int,
        float,
        complex,
        str,
        bytes,
        bytearray,
        range,
        datetime.date,
        datetime.datetime,
        datetime.time,
        datetime.timedelta,
        datetime.timezone,
        decimal.Decimal,
        uuid.UUID,
        pathlib.PurePosixPath,
        pathlib.PureWindowsPath,
        pathlib.PosixPath,
        pathlib.WindowsPath,
        types.FunctionType,
        types.BuiltinFunctionType,
        types.MethodType,
        types.ModuleType,
        types.CodeType,
        types.FrameType,
        types.TracebackType,
    }
)
_CONTAINERS: tuple[type, ...] = (dict, list, tuple, set, frozenset)
_TAG_KEY_CHARS = re.compile(r"[^A-Za-z0-9_.:-]")


def _type_name(obj: object) -> str:
    cls = type(obj)
    return f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', cls.__name__)}"


def is_trusted(obj: object, _depth: int = 0) -> bool:
    """True when repr(obj) only runs interpreter code (no user __repr__ anywhere inside)."""
    cls = type(obj)
    if cls in _SAFE_TYPES:
        return True
    if cls in _CONTAINERS:
        if _depth >= 3 or len(obj) > 100:  # type: ignore[arg-type]
            return False
        items: Any = obj.items() if cls is dict else obj  # type: ignore[attr-defined]
        for item in items:
            parts = item if cls is dict else (item,)
            if not all(is_trusted(part, _depth + 1) for part in parts):
                return False
        return True
    try:
        default_repr: object = object.__repr__
        if getattr(cls, "__repr__", None) is default_repr:
            return True
        return isinstance(obj, type) and getattr(type(cls), "__repr__", None) is type.__repr__
    except Exception:
        return False


# -- the guard ----------------------------------------------------------------------------------


class _Unavailable(str):
    """A placeholder for a repr()/str() that did not (or was not allowed to) return."""


class _Job:
    __slots__ = ("done", "error", "fn", "result")

    def __init__(self, fn: Callable[[], str]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: Optional[str] = None
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:  # a broken __repr__ may raise anything
            self.error = exc
        finally:
            self.done.set()


class _Worker:
    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="otel_sentry.repr", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            self.jobs.get().run()


class _Guard:
    """One helper thread for untrusted repr() calls, replaced when a call never returns."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.worker: Optional[_Worker] = None
        self.stuck = 0
        self.slow_types: set[type] = set()
        self.local = threading.local()

    def reset_after_fork(self) -> None:
        self.lock = threading.Lock()
        self.worker = None
        self.local = threading.local()

    def remaining(self) -> float:
        deadline = getattr(self.local, "deadline", None)
        return REPR_TIMEOUT if deadline is None else min(REPR_TIMEOUT, deadline - time.monotonic())

    def call(self, obj: object, fn: Callable[[], str], what: str = "repr") -> str:
        if getattr(self.local, "inside", False):  # a repr that itself captures: no nesting
            return f"<{_type_name(obj)} object>"
        cls = type(obj)
        timeout = self.remaining()
        if cls in self.slow_types or self.stuck >= MAX_STUCK or timeout <= 0:
            return _Unavailable(f"<{_type_name(obj)} object: {what} skipped>")
        job = _Job(fn)
        with self.lock:
            if self.worker is None:
                self.worker = _Worker()
            worker = self.worker
        worker.jobs.put(job)
        if not job.done.wait(timeout):
            with self.lock:
                if self.worker is worker:  # abandon it; the next call starts a fresh one
                    self.worker = None
                    self.stuck += 1
                if len(self.slow_types) < 256:
                    self.slow_types.add(cls)
            return _Unavailable(f"<{_type_name(obj)} object: {what} did not return within {REPR_TIMEOUT}s>")
        if job.error is not None:
            return f"<{_type_name(obj)} object: {what} raised {type(job.error).__name__}>"
        result = job.result
        return result if isinstance(result, str) else f"<{_type_name(obj)} object>"

    @contextlib.contextmanager
    def budget(self, seconds: float = CAPTURE_BUDGET) -> Iterator[None]:
        """Bound the total time untrusted repr() calls may take during one capture."""
        previous = getattr(self.local, "deadline", None)
        self.local.deadline = time.monotonic() + seconds if previous is None else previous
        try:
            yield
        finally:
            self.local.deadline = previous


_guard = _Guard()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_guard.reset_after_fork)

budget = _guard.budget


def stuck_threads() -> int:
    """How many helper threads were abandoned in a repr() that never returned."""
    return _guard.stuck


def safe_repr(obj: object, limit: int = MAX_STRING) -> str:
    """repr(obj), bounded in time and length; never raises."""
    try:
        text = repr(obj) if is_trusted(obj) else _guard.call(obj, lambda: repr(obj))
    except Exception as exc:  # e.g. int too large to print
        text = f"<{_type_name(obj)} object: repr raised {type(exc).__name__}>"
    return cap(fix_text(text), limit)


def safe_str(obj: object, limit: int = MAX_MESSAGE) -> str:
    """str(obj), bounded like :func:`safe_repr`."""
    if type(obj) is str:
        return cap(fix_text(obj), limit)  # type: ignore[arg-type]
    try:
        text = str(obj) if str_is_safe(obj) else _guard.call(obj, lambda: str(obj), "str")
    except Exception as exc:
        text = f"<{_type_name(obj)} object: str raised {type(exc).__name__}>"
    return cap(fix_text(text), limit)


def str_is_safe(obj: object) -> bool:
    if isinstance(obj, BaseException):
        return exception_str_is_safe(obj)
    cls = type(obj)
    if cls in _SAFE_TYPES or cls in _CONTAINERS:
        return is_trusted(obj)
    default_str: object = object.__str__
    return getattr(cls, "__str__", None) is default_str and is_trusted(obj)


def str_returns(obj: object) -> bool:
    """False when str(obj) did not return within the time allowed (it would block the caller)."""
    if str_is_safe(obj):
        return True
    return not isinstance(_guard.call(obj, lambda: str(obj), "str"), _Unavailable)


def exception_str_is_safe(exc: BaseException) -> bool:
    """True when str(exc) cannot run user code: the built-in __str__ over trusted args."""
    try:
        if type(exc).__str__ is not BaseException.__str__ and type(exc).__module__ != "builtins":
            return False
        return all(is_trusted(arg) for arg in exc.args)
    except Exception:
        return False


def frame_repr(value: object) -> Optional[str]:
    """sentry-sdk's ``custom_repr`` hook: None lets it use its own repr for trusted values. A long
    text is cut first: the event keeps ``MAX_STRING`` characters of it, and every later step
    (scrubbing, serializing) would otherwise work on all of a 10 MB local."""
    cls = type(value)
    if cls in (str, bytes, bytearray) and len(value) > MAX_STRING * 2:  # type: ignore[arg-type]
        # cut between words (clip), so no credential is left cut in two, unrecognisable to scrubbing
        return repr(clip(value, MAX_STRING) if cls is str else bytes(value[:MAX_STRING]))  # type: ignore[arg-type,index]
    if cls in _SAFE_TYPES or is_trusted(value):
        return None
    return safe_repr(value)


# -- text -----------------------------------------------------------------------------------------


def fix_text(text: str) -> str:
    """Valid UTF-8: lone surrogates become U+FFFD (pairs that were split are joined again)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 3)] + "..."


def clip(text: str, limit: int) -> str:
    """Shorten before scrubbing (scrubbing megabytes is slow), without leaving half a token at the
    cut: a credential cut in two would no longer be recognised."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    cut = max(head.rfind(" "), head.rfind("\n"), head.rfind(","), head.rfind("&"))
    return head[: cut + 1] if cut > limit // 2 else head[: limit // 2]


def message(value: object, limit: int = MAX_MESSAGE) -> str:
    """A message for an event: text, scrubbed of credentials, at most ``limit`` characters."""
    return cap(scrub_text(clip(safe_str(value, limit * 4), limit * 2)), limit)


def tag_value(value: object) -> Optional[str]:
    """A Sentry tag value (one line, <= 200 chars, scrubbed), or None when nothing is left."""
    if isinstance(value, bool):
        text = str(value).lower()
    elif type(value) in (str, int, float):
        text = str(value) if not isinstance(value, float) or math.isfinite(value) else repr(value)
    else:
        text = safe_str(value, MAX_TAG_VALUE * 4)
    text = cap(" ".join(scrub_text(clip(fix_text(text), MAX_TAG_VALUE * 4)).split()), MAX_TAG_VALUE)
    return text or None


def tags(values: Optional[Mapping[Any, Any]]) -> dict[str, str]:
    """Sanitized tags: valid keys, one-line values within limits; sensitive keys are left out."""
    result: dict[str, str] = {}
    if not isinstance(values, Mapping):
        return result
    for key, value in list(values.items())[:MAX_BREADTH]:
        name = _TAG_KEY_CHARS.sub("_", fix_text(key if isinstance(key, str) else safe_str(key, 100)))
        name = name[:MAX_TAG_KEY]
        if not name or is_sensitive_name(name):
            continue
        text = tag_value(value)
        if text is not None:
            result[name] = text
    return result


# -- data ----------------------------------------------------------------------------------------


class _Budget:
    __slots__ = ("left", "truncated")

    def __init__(self, size: int) -> None:
        self.left = size
        self.truncated = False


def data(value: object, *, max_bytes: int = MAX_DATA_BYTES, max_string: int = MAX_STRING) -> Any:
    """A JSON-safe copy of value: bounded depth, breadth, string length and total size; cycles and
    sensitive keys replaced; untrusted objects rendered by a guarded repr."""
    return _data(value, 0, set(), _Budget(max_bytes), max_string)


def _data(value: object, depth: int, seen: set[int], room: _Budget, max_string: int) -> Any:
    if room.left <= 0:
        room.truncated = True
        return "[truncated]"
    cls = type(value)
    if value is None or cls is bool:
        room.left -= 5
        return value
    if cls is int:
        if abs(value) < 2**63:  # type: ignore[arg-type]
            room.left -= 20
            return value
        return f"<int of {value.bit_length()} bits>"  # type: ignore[attr-defined]
    if cls is float:
        room.left -= 24
        return value if math.isfinite(value) else repr(value)  # type: ignore[arg-type]
    if cls is str:
        text = cap(scrub_text(clip(fix_text(value), max_string * 2)), max_string)  # type: ignore[arg-type]
        room.left -= len(text) + 2
        return text
    if cls in (bytes, bytearray, memoryview):
        raw = bytes(value[: max_string * 4])  # type: ignore[index]
        text = cap(scrub_text(clip(raw.decode("utf-8", "backslashreplace"), max_string * 2)), max_string)
        room.left -= len(text) + 2
        return text
    if cls in _CONTAINERS:
        if id(value) in seen:
            return "<cycle>"
        if depth >= MAX_DEPTH:
            return f"<{cls.__name__} of {len(value)} items: too deep>"  # type: ignore[arg-type]
        seen.add(id(value))
        try:
            if cls is dict:
                out: dict[str, Any] = {}
                for index, (key, item) in enumerate(list(value.items())):  # type: ignore[attr-defined]
                    if index >= MAX_BREADTH:
                        out["..."] = f"{len(value) - MAX_BREADTH} more"  # type: ignore[arg-type]
                        break
                    name = key if type(key) is str else safe_repr(key, 200)
                    name = fix_text(name)
                    room.left -= len(name) + 4
                    out[name] = (
                        REDACTED
                        if is_sensitive_name(name)
                        else _data(item, depth + 1, seen, room, max_string)
                    )
                return out
            items: list[Any] = []
            for index, item in enumerate(list(value)):  # type: ignore[call-overload]
                if index >= MAX_BREADTH:
                    items.append(f"... {len(value) - MAX_BREADTH} more")  # type: ignore[arg-type]
                    break
                items.append(_data(item, depth + 1, seen, room, max_string))
            return items
        finally:
            seen.discard(id(value))
    text = safe_repr(value, max_string)
    room.left -= len(text) + 2
    return text

"""Stack frames for an exception chain: sentry-sdk's, without what makes them cost milliseconds.

sentry-sdk's ``event_from_exception`` gives the frames Sentry users expect (module, function,
filename, abs_path, lineno, in_app), so it still builds them. Two parts of it are left to this module,
because on a FastAPI stack (about 40 frames, most of them Starlette's and FastAPI's) they dominated
the cost of a captured error (bench/overhead.py, docs/performance.md):

* **Source context.** sentry-sdk asks each frame's module loader for the whole source file and splits
  it, for every frame of every event: no cache. Here the lines come from :mod:`linecache` (one
  ``stat`` per file to notice a deploy that changed it), cut the same way as sentry-sdk cuts them.
* **Local variables.** sentry-sdk serializes the locals of every frame, library frames included
  (each untrusted ``repr`` runs under otel_sentry's time guard, a thread hand-off). Here only in-app
  frames carry ``vars`` (the innermost frame too when no frame is in-app), the frames a user reads;
  ``OTEL_SENTRY_LOCAL_VARIABLES_ALL_FRAMES=true`` gives every frame its locals as sentry-sdk does.

Exception groups keep sentry-sdk's own extraction (their frames nest differently).
"""

from __future__ import annotations

import builtins
import linecache
import os
import time
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Any, Optional

from ._redact import scrub_data, scrub_text
from ._sanitize import MAX_MESSAGE, cap, clip, frame_repr
from ._sdk_import import ensure_sentry_sdk

CONTEXT_LINES = 5  # sentry-sdk's default
_GROUP: Any = getattr(builtins, "BaseExceptionGroup", ())  # Python 3.11+


class ScrubbedValues(list):  # type: ignore[type-arg]
    """Exception values every string of which is already scrubbed (frames built here): the event's
    scrubbing pass skips them. Their source lines were scrubbed once, when first cut and cached."""


# The strings a frame from sentry-sdk's extraction carries besides source lines and variables.
_FRAME_TEXTS = ("filename", "abs_path", "module", "function", "package")


@dataclass(frozen=True)
class FrameOptions:
    """The subset of sentry-sdk client options that shape frames."""

    include_local_variables: bool = True
    include_source_context: bool = True
    in_app_include: tuple[str, ...] = ()
    in_app_exclude: tuple[str, ...] = ()
    max_value_length: Optional[int] = None
    # As sentry-sdk: frames under the working directory (and not in site-packages) are in_app.
    project_root: Optional[str] = field(default_factory=os.getcwd)
    local_variables_all_frames: bool = False

    def client_options(self, *, ours: bool) -> dict[str, Any]:
        """Options for sentry-sdk's extraction; ``ours``: source and locals are added here."""
        return {
            "include_local_variables": self.include_local_variables and not ours,
            "include_source_context": self.include_source_context and not ours,
            "max_value_length": self.max_value_length,
            "add_full_stack": False,
            # A __repr__ that raises or never returns must not break or block the capture.
            "custom_repr": frame_repr,
        }


def exception_values(
    exc: BaseException,
    tb: Optional[TracebackType],
    *,
    handled: bool,
    mechanism_type: str,
    options: FrameOptions,
) -> list[dict[str, Any]]:
    """The ``exception.values`` list for exc and its __cause__/__context__ chain, innermost first."""
    ensure_sentry_sdk()
    from sentry_sdk.utils import event_from_exception, handle_in_app, walk_exception_chain

    chain = list(walk_exception_chain((type(exc), exc, tb)))
    ours = not any(isinstance(e, _GROUP) for _t, e, _tb in chain)
    lent = _lend_messages([e for _t, e, _tb in chain if e is not None])
    try:
        event, _hint = event_from_exception(
            (type(exc), exc, tb),
            client_options=options.client_options(ours=ours),
            mechanism={"type": mechanism_type, "handled": handled},
        )
    finally:
        for member in lent:
            vars(member).pop("message", None)
    # restored stacks carry sentry-sdk's own source lines: the event's scrubbing pass covers them
    restored = _restore_long_stacks(event["exception"]["values"], chain, options)
    # otel_sentry's own frames (the capture middleware) are never the app's, even in a checkout of it
    exclude = [*options.in_app_exclude, "otel_sentry"]
    handle_in_app(event, exclude, list(options.in_app_include), options.project_root)
    for value in event["exception"]["values"]:
        stacktrace = value.get("stacktrace")
        for frame in stacktrace.get("frames", ()) if isinstance(stacktrace, dict) else ():
            if frame.get("in_app") and _library_frame(frame, options.in_app_include):
                frame["in_app"] = False
    values: list[dict[str, Any]] = event["exception"]["values"]
    complete = ours and len(values) == len(chain) and not restored
    if complete:
        for value, (_type, _exc, exc_tb) in zip(values, reversed(chain)):
            _complete_frames(value.get("stacktrace", {}).get("frames", []), exc_tb, options)
    for value in values:
        for frame in value.get("stacktrace", {}).get("frames", ()):
            if "vars" in frame:
                frame["vars"] = scrub_data(frame["vars"])
            for key in _FRAME_TEXTS:
                text = frame.get(key)
                if isinstance(text, str):
                    frame[key] = scrub_text(text)
        for key in ("type", "module"):
            if isinstance(value.get(key), str):
                value[key] = scrub_text(value[key])
        if isinstance(value.get("value"), str):
            # shortened before scrubbing (scrubbing megabytes is slow), capped after
            value["value"] = cap(scrub_text(clip(value["value"], MAX_MESSAGE * 2)), MAX_MESSAGE)
    # sentry-sdk's own source lines (exception groups) were not scrubbed here: the event pass does it
    return ScrubbedValues(values) if complete else values


_COMPILED = (".pyx", ".pxd", ".pxi", ".so", ".pyd", ".c")


def _library_frame(frame: dict[str, Any], include: tuple[str, ...]) -> bool:
    """A frame of a compiled extension (uvloop's ``loop.pyx``: a relative path) or of an installed
    package is never the app's, whatever the working directory (a venv inside the project)."""
    module = str(frame.get("module") or "")
    if any(module == name or module.startswith(name + ".") for name in include):
        return False
    path = str(frame.get("abs_path") or frame.get("filename") or "")
    return (
        not os.path.isabs(path)
        or path.endswith(_COMPILED)
        or any(part in path for part in ("/site-packages/", "/dist-packages/", "\\site-packages\\"))
    )


def _lend_messages(members: list[BaseException]) -> list[BaseException]:
    """str() of a user exception runs user code (it may raise, or take seconds): computed once,
    guarded, and lent to sentry-sdk's extraction as the ``message`` attribute it reads first, so that
    it does not call str() again. Taken back right after."""
    from ._sanitize import exception_str_is_safe, safe_str
    from ._span_exceptions import exception_message

    lent: list[BaseException] = []
    for member in members:
        try:
            if exception_str_is_safe(member) or hasattr(member, "message") or hasattr(member, "detail"):
                continue
            vars(member)["message"] = exception_message(member, safe_str)
            lent.append(member)
        except Exception:  # no __dict__, a property named message...: sentry-sdk guards its own str()
            continue
    return lent


# Frames kept of a stack deeper than sentry-sdk's limit (it then sends none): the outermost calls
# and the innermost ones, as Relay trims an over-long stack (the middle goes).
_HEAD_FRAMES, _TAIL_FRAMES = 50, 200


def _restore_long_stacks(values: list[dict[str, Any]], chain: list[Any], options: FrameOptions) -> bool:
    """sentry-sdk replaces the stack of a traceback over ~2,000 frames (RecursionError with a raised
    limit) with an annotated value, where a list is expected: keep its two ends instead."""
    from sentry_sdk.utils import iter_stacks, serialize_frame

    restored = False
    if len(values) != len(chain):
        return restored
    for value, (_type, _exc, exc_tb) in zip(values, reversed(chain)):
        stacktrace = value.get("stacktrace")
        if stacktrace is None or isinstance(stacktrace, dict):
            continue
        entries = list(iter_stacks(exc_tb))
        kept = (
            entries
            if len(entries) <= _HEAD_FRAMES + _TAIL_FRAMES
            else (entries[:_HEAD_FRAMES] + entries[-_TAIL_FRAMES:])
        )
        value["stacktrace"] = {
            "frames": [
                serialize_frame(
                    entry.tb_frame,
                    tb_lineno=entry.tb_lineno,
                    include_local_variables=False,
                    include_source_context=options.include_source_context,
                    max_value_length=options.max_value_length,
                )
                for entry in kept
            ],
        }
        value.setdefault("mechanism", {})["data"] = {"frames_omitted": len(entries) - len(kept)}
        restored = True
    return restored


def _complete_frames(
    frames: list[dict[str, Any]], tb: Optional[TracebackType], options: FrameOptions
) -> None:
    ensure_sentry_sdk()
    from sentry_sdk.utils import iter_stacks

    stack = [(entry.tb_frame, entry.tb_lineno) for entry, _ in zip(iter_stacks(tb), range(len(frames) + 1))]
    if len(stack) != len(frames):
        return  # sentry-sdk dropped an over-long stack; nothing to complete
    if options.include_source_context:
        for frame, (live, lineno) in zip(frames, stack):
            pre, line, post = source_context(live, lineno, options.max_value_length)
            if line is not None:
                frame["pre_context"], frame["context_line"], frame["post_context"] = pre, line, post
            else:
                frame["pre_context"], frame["context_line"], frame["post_context"] = [], None, []
    if options.include_local_variables:
        ensure_sentry_sdk()
        from sentry_sdk.serializer import serialize

        wanted = [
            i for i, frame in enumerate(frames) if options.local_variables_all_frames or frame.get("in_app")
        ]
        if not wanted and frames:
            wanted = [len(frames) - 1]  # nothing in-app: the frame that raised
        for i in wanted:
            frames[i]["vars"] = serialize(dict(stack[i][0].f_locals), is_vars=True, custom_repr=frame_repr)


_contexts: dict[tuple[str, int, Optional[int]], tuple[list[str], tuple[list[str], Any, list[str]]]] = {}
_checked: dict[str, float] = {}
_CONTEXTS_KEPT = 4096
_RECHECK_SECONDS = 10.0  # how soon a file changed on disk (a deploy in place) shows in new events


def source_context(
    frame: FrameType, lineno: Optional[int], max_length: Optional[int]
) -> tuple[list[str], Any, list[str]]:
    """sentry-sdk's ``get_source_context``, from :mod:`linecache`, each (file, line) cut once."""
    if lineno is None:
        return [], None, []
    try:
        filename = frame.f_code.co_filename
        now = time.monotonic()
        if now - _checked.get(filename, -_RECHECK_SECONDS) >= _RECHECK_SECONDS:
            linecache.checkcache(filename)
            if len(_checked) >= _CONTEXTS_KEPT:
                _checked.clear()
            _checked[filename] = now
        source = linecache.getlines(filename, frame.f_globals)
    except Exception:
        return [], None, []
    key = (filename, lineno, max_length)
    cached = _contexts.get(key)
    if cached is not None and cached[0] is source:  # the same lines: the file was not reloaded
        pre, line, post = cached[1]
        return list(pre), line, list(post)
    index = lineno - 1
    if not source or not 0 <= index < len(source):
        return [], None, []
    ensure_sentry_sdk()
    from sentry_sdk.utils import strip_string

    def cut(text: str) -> Any:  # scrubbed once here: the line is cached, and sent with every event
        return strip_string(scrub_text(text.strip("\r\n")), max_length=max_length)

    lower, upper = max(0, index - CONTEXT_LINES), min(index + 1 + CONTEXT_LINES, len(source))
    result = (
        [cut(s) for s in source[lower:index]],
        cut(source[index]),
        [cut(s) for s in source[index + 1 : upper]],
    )
    if len(_contexts) >= _CONTEXTS_KEPT:
        _contexts.clear()
    _contexts[key] = (source, result)
    return list(result[0]), result[1], list(result[2])

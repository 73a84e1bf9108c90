"""What ``otel-sentry audit`` reports, as data: the kinds of finding (whether each reaches Sentry
under otel_sentry, why it matters, the fix) and the exceptions code raises on purpose."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """One kind of finding: what it is, whether it reaches Sentry under otel_sentry, and the fix."""

    name: str
    reaches_sentry: bool
    why: str
    fix: str
    error_path: bool = True  # False: advice only, left out of the coverage figure


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "swallowed-exception",
            False,
            "the exception is caught and neither re-raised, captured nor logged with its traceback "
            "(logger.exception / exc_info=True): it does not become an issue with its stack trace, and "
            "the code goes on as if nothing failed (a warning or a print is at most a breadcrumb)",
            "re-raise it (`raise`), or report it and go on: `capture_error(e)` (or the matching "
            "capture_*_error helper), `logger.exception(...)`, or `@auto_capture_errors(reraise=False)` "
            "on the function",
        ),
        Kind(
            "error-to-default",
            False,
            "the failure is converted to None or a default value: callers see an empty result, not an "
            "error, and nothing reaches Sentry (the seeds' audit: 'errors caught and converted to None')",
            "keep the fallback but report the failure first: `capture_error(e)` or "
            "`logger.exception(...)` in the except block, or `@auto_capture_errors(reraise=False)`",
        ),
        Kind(
            "error-to-4xx",
            False,
            "a broad except turns any failure (a database outage, a bug) into a 4xx response; 4xx "
            "responses are not issues, so the real error is never reported",
            "catch only the exceptions that mean a client error; for the rest let them propagate, or "
            "call `capture_error(e)` before answering",
        ),
        Kind(
            "http-exception-without-from",
            True,
            "a 5xx HTTPException raised in an except block without `from e`: the traceback reads "
            "'during handling ... another exception occurred' instead of naming the cause (the seeds' "
            "middleware never saw these at all)",
            "nothing for Sentry: otel_sentry captures HTTPException 5xx with the original exception in "
            "its chain; add `from e` so the chain says it was the direct cause (`from None` drops it)",
        ),
        Kind(
            "5xx-response-in-except",
            True,
            "a 5xx response built by hand in an except block: no exception escapes, so an "
            "exception-based middleware (the seeds') reports nothing",
            "nothing: otel_sentry turns every 5xx response into an issue, with the exception being "
            "handled when it was built",
        ),
        Kind(
            "background-task",
            True,
            "BackgroundTasks run after the response is sent: their exceptions reach no route handler "
            "or request middleware",
            "nothing: otel_sentry captures exceptions of background tasks, linked to the request that "
            "added them (OTEL_SENTRY_CAPTURE_BACKGROUND, on by default)",
        ),
        Kind(
            "task-not-retrieved",
            True,
            "an asyncio task nobody awaits: its exception is only logged ('Task exception was never "
            "retrieved') when the task is garbage-collected, and an unreferenced task may be collected "
            "before it finishes",
            "nothing for Sentry: otel_sentry captures exceptions of tasks nobody awaits "
            "(OTEL_SENTRY_CAPTURE_BACKGROUND); keep a reference to the task so it is not collected",
        ),
        Kind(
            "thread-not-retrieved",
            True,
            "an exception in a thread ends the thread and goes to threading.excepthook (stderr); the "
            "code that started it never learns",
            "nothing: otel_sentry's excepthook captures it, linked to the request that started the "
            "thread (OTEL_SENTRY_CAPTURE_BACKGROUND)",
        ),
        Kind(
            "executor-not-retrieved",
            True,
            "a job submitted to an executor whose future nobody reads: its exception stays inside the "
            "future and is never raised or logged",
            "nothing for ThreadPoolExecutor jobs: otel_sentry captures what they raise "
            "(OTEL_SENTRY_CAPTURE_BACKGROUND); read the future (`.result()`) if the caller should know",
        ),
        Kind(
            "executor-not-retrieved-process",
            False,
            "a job submitted to a process pool whose future nobody reads: its exception stays inside "
            "the future, in another process otel_sentry does not see",
            "read the future (`.result()`, or `add_done_callback` that calls `capture_error`)",
        ),
        Kind(
            "undecorated-capture-candidate",
            True,
            "matches the seeds' @auto_capture_errors detection rules but is not decorated: its errors "
            "still reach Sentry by propagation, without the category context the decorator adds "
            "(the seeds' audit: 'available but unused')",
            "optional: `@auto_capture_errors` adds the {context} context (category tags, and arguments "
            "such as provider, model, table, operation)",
            error_path=False,
        ),
    )
}

# Exceptions raised on purpose for control flow or input checking: catching them is not an error path.
EXPECTED = frozenset(
    {
        "KeyError",
        "IndexError",
        "LookupError",
        "AttributeError",
        "ValueError",
        "TypeError",
        "ImportError",
        "ModuleNotFoundError",
        "StopIteration",
        "StopAsyncIteration",
        "GeneratorExit",
        "KeyboardInterrupt",
        "SystemExit",
        "CancelledError",
        "NotImplementedError",
        "UnicodeError",
        "UnicodeDecodeError",
        "UnicodeEncodeError",
        "JSONDecodeError",
        "FileNotFoundError",
        "FileExistsError",
        "IsADirectoryError",
        "NotADirectoryError",
        "ValidationError",
        "RequestValidationError",
        "HTTPException",
        "StarletteHTTPException",
        "WebSocketDisconnect",
        "ClientDisconnect",
        "InvalidOperation",
        "OverflowError",
        "ZeroDivisionError",
        "NoResultFound",
        "MultipleResultsFound",
        "DoesNotExist",
        "ObjectDoesNotExist",
        "ExpiredSignatureError",
        "InvalidTokenError",
        "InvalidSignatureError",
        "DecodeError",
        "JWTError",
        "PyJWTError",
        "InvalidToken",
        "binascii.Error",
        "ParserError",
        "InvalidVersion",
        "UnknownTimezoneError",
        "UnsupportedOperation",
        "AssertionError",
        "RecursionError",
        "DuplicateKeyError",
        "re.error",
    }
)
BROAD = frozenset({"Exception", "BaseException"})
# Names of exceptions that announce an expected outcome (a missing row, a bad token, a duplicate).
EXPECTED_NAME = re.compile(
    r"AlreadyExist|DoesNotExist|NotExist|NotFound|Invalid|Expired|NotSupported|NotAllowed|Forbidden|"
    r"Unauthori[sz]ed|Denied|Duplicate|Conflict|Validation|Exists|Missing|Unknown|Mismatch|Unverified|"
    r"Inactive|Disabled|Locked|TooMany|Limit|NotValid"
)
# An app's own exception class is raised on purpose, unless its name says a dependency failed.
INFRASTRUCTURE_NAME = re.compile(
    r"Connection|Timeout|Unavailable|Database|DB|Network|Transport|Rpc|RPC|Http|HTTP|Server|Internal|"
    r"Provider|Upstream|Gateway|Socket|IO|Storage|Queue|Broker"
)
CAPTURE_CALLS = frozenset(
    {
        "capture_error",
        "capture_exception",
        "capture_provider_error",
        "capture_database_error",
        "capture_payment_error",
        "capture_auth_error",
        "capture_cache_error",
        "capture_model_health_error",
        "capture_event",
    }
)

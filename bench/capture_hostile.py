"""Cost of the capture API on hostile inputs (issue 14 item 7): wall time of one capture_error call on
the capturing thread, per input. Run: .venv/bin/python bench/capture_hostile.py

Events go to a local inbox in a temporary directory (no network); the numbers are the calling
thread's time, which is what a request handler waits for.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any, Callable

os.environ.setdefault("OTEL_SENTRY_INBOX_DIR", tempfile.mkdtemp(prefix="otel-sentry-bench-"))
os.environ.setdefault("OTEL_TRACES_EXPORTER", "sentry")

import otel_sentry
from otel_sentry import capture_error


class StrRaises:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    __repr__ = __str__


class AttributeRaises(Exception):
    def __getattribute__(self, name: str) -> Any:
        if name in ("__class__", "__traceback__", "__cause__", "__context__", "args"):
            return object.__getattribute__(self, name)
        raise RuntimeError(name)


class SlowRepr:
    def __repr__(self) -> str:
        time.sleep(2)
        return "slow"


def with_locals(exc: BaseException, **local_values: Any) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def cases() -> dict[str, Callable[[], Any]]:
    big = "x " * (25 * 1024 * 1024)  # 50 MB message
    not_utf8 = bytes(range(128, 256)) * (20 * 1024 * 1024 // 128)  # 20 MB non-UTF-8
    slow = SlowRepr()
    huge_local = "y" * (10 * 1024 * 1024)
    return {
        "50 MB message": lambda: capture_error(ValueError(big)),
        "20 MB non-UTF-8 bytes": lambda: capture_error(ValueError(not_utf8)),
        "context_type whose str raises": lambda: capture_error(ValueError("x"), context_type=StrRaises()),
        "exception whose attributes raise": lambda: capture_error(AttributeRaises("x")),
        "slow repr local": lambda: capture_error(with_locals(ValueError("x"), slow=slow)),
        "10 MB local": lambda: capture_error(with_locals(ValueError("x"), huge=huge_local)),
    }


def main() -> None:
    otel_sentry.configure()
    print(f"{'input':<36} {'seconds':>8}  result")
    for name, call in cases().items():
        start = time.perf_counter()
        try:
            result: Any = call()
        except Exception as exc:  # the point of the bench: this must never happen
            result = f"RAISED {type(exc).__name__}"
        print(f"{name:<36} {time.perf_counter() - start:8.3f}  {result}")


if __name__ == "__main__":
    main()

"""Background work: threads, and errors logged below ERROR."""

import logging
import threading

logger = logging.getLogger(__name__)


def record_usage(body: dict) -> None:
    threading.Thread(target=_send, args=(body,), daemon=True).start()  # PLANTED: thread-not-retrieved


def _send(body: dict) -> None:
    try:
        _post(body)
    except ConnectionError as exc:  # PLANTED: swallowed-exception
        logger.warning("usage not recorded: %s", exc)


def _post(body: dict) -> None:
    return None

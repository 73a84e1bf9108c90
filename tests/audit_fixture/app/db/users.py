# ruff: noqa: SIM105  (the planted gaps are the point of this file)
"""Database: the seeds' audit's 'errors caught and converted to None'."""

import logging

from sqlalchemy.exc import OperationalError

logger = logging.getLogger(__name__)


class UserNotFoundError(Exception):
    """Raised on purpose: an expected outcome, not an error path."""


def get_user(session, user_id: str):  # PLANTED: undecorated-capture-candidate
    try:
        return session.get("users", user_id)
    except OperationalError as exc:
        logger.error("get_user failed: %s", exc)
        return None  # PLANTED: error-to-default


def update_credits(session, user_id: str, amount: float) -> bool:  # PLANTED: undecorated-capture-candidate
    try:
        session.execute("update users set credits = credits - :a", {"a": amount})
    except Exception:
        ok = False  # PLANTED: error-to-default
    else:
        ok = True
    return ok


def delete_user(session, user_id: str) -> None:  # PLANTED: undecorated-capture-candidate
    try:
        session.delete(user_id)
    except UserNotFoundError:
        pass  # CLEAN (an app's own expected exception)
    except:  # noqa: E722  # PLANTED: swallowed-exception
        pass


def count_users(session) -> int:  # PLANTED: undecorated-capture-candidate
    for attempt in range(3):
        try:
            return session.scalar("select count(*) from users")
        except OperationalError:
            if attempt == 2:
                raise  # CLEAN (re-raised on the last attempt)
    return 0


def audit_log(session, entry: dict) -> None:  # PLANTED: undecorated-capture-candidate
    try:
        session.add(entry)
    except Exception:  # otel-sentry: ignore[swallowed-exception]
        pass

"""fastapi-problem (PyPI, pinned): the app's own catch-all error handling. Its handler is registered
for Exception (so Starlette puts it on ServerErrorMiddleware, outside everything else) and answers
RFC 9457 problems: 4xx for its problem exceptions, 500 for anything unknown, logging what it handles.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi_problem.error import NotFoundProblem
from fastapi_problem.handler import add_exception_handler, new_exception_handler

logging.basicConfig(level=logging.INFO)


class UserNotFound(NotFoundProblem):
    title = "User not found."


class LedgerError(Exception):
    pass


app = FastAPI()
add_exception_handler(app, new_exception_handler(logger=logging.getLogger("problems")))


@app.get("/users/{user_id}")
async def user(user_id: int) -> dict[str, int]:
    if user_id == 0:
        raise UserNotFound(f"no user {user_id}")
    if user_id == 13:
        raise LedgerError("ledger out of balance")
    return {"user_id": user_id}

# ruff: noqa: B904  (the planted gaps are the point of this file)
"""Routes: the seeds' patterns, the right ones and the gaps."""

import logging

from fastapi import APIRouter, BackgroundTasks, HTTPException
from fastapi.responses import JSONResponse
from starlette import status

from app.services import openrouter_client
from app.tasks.usage import record_usage

router = APIRouter()
logger = logging.getLogger(__name__)


@router.post("/v1/chat/completions")
async def chat(body: dict, background_tasks: BackgroundTasks):
    try:
        answer = await openrouter_client.make_provider_request("openrouter", body["model"])
    except KeyError as exc:
        raise HTTPException(status_code=400, detail="model is required") from exc  # CLEAN (expected)
    except Exception as e:
        logger.error(f"chat failed: {e}", exc_info=True)
        raise HTTPException(status_code=500, detail="upstream failed") from e  # CLEAN (the seeds' pattern)
    background_tasks.add_task(record_usage, body)  # PLANTED: background-task
    return answer


@router.get("/v1/models")
async def models():
    try:
        return await openrouter_client.list_models()
    except Exception:
        raise HTTPException(status_code=500, detail="no catalog")  # PLANTED: http-exception-without-from


@router.get("/v1/models/{model_id}")
async def model(model_id: str):
    try:
        return await openrouter_client.get_model(model_id)
    except Exception as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such model") from exc  # PLANTED: error-to-4xx


@router.get("/api/payments/balance")
async def balance(user_id: str):
    try:
        return {"balance": await openrouter_client.fetch_balance(user_id)}
    except Exception as exc:
        logger.warning("balance lookup failed: %s", exc)
        return JSONResponse({"error": "try again"}, 500)  # PLANTED: 5xx-response-in-except


@router.get("/api/payments/history")
async def history(user_id: str):
    try:
        return await openrouter_client.fetch_history(user_id)
    except Exception:  # PLANTED: swallowed-exception
        return {"items": [], "error": "unavailable"}


@router.get("/api/status")
async def provider_status():  # PLANTED: undecorated-capture-candidate
    try:
        return await openrouter_client.list_models()
    except Exception as exc:
        logger.exception("status check failed")  # CLEAN (logged with its traceback)
        return {"ok": False, "error": type(exc).__name__}

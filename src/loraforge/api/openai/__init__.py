"""The OpenAI-compatible API under /v1: models, chat completions, files, fine-tuning jobs.

Errors under /v1 use OpenAI's shape (`{"error": {"message", "type", "param", "code"}}`), so the official
`openai` client raises its usual exceptions; everything else keeps the project's error shape.
"""

from fastapi import APIRouter

from loraforge.api.openai import chat, files, fine_tuning, models

v1_router = APIRouter()
v1_router.include_router(models.router)
v1_router.include_router(chat.router)
v1_router.include_router(files.router)
v1_router.include_router(fine_tuning.router)

__all__ = ["v1_router"]

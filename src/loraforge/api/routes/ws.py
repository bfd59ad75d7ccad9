"""WebSocket endpoints (issue 5): /ws/jobs/{id} and /ws/notifications; mounted at the root, not /api."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

"""(notifications: issue 5; filled in by the notifications work.)"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["notifications"])

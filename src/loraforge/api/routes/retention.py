"""(retention: issue 5; filled in by the retention work.)"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["retention"])

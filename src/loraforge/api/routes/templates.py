"""(templates: issue 5; filled in by the templates work.)"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["templates"])

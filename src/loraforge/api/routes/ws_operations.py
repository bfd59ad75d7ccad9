"""STUB: WS /ws/operations (nodes & telemetry helper)."""

from fastapi import APIRouter

router = APIRouter()

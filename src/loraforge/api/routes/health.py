"""Liveness and readiness for load balancers and the UI's status badge."""

from __future__ import annotations

from fastapi import APIRouter

from loraforge import __version__
from loraforge.api.deps import DatabaseDep
from loraforge.api.schemas.health import HealthResponse

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthResponse, operation_id="health_get")
def health(database: DatabaseDep) -> HealthResponse:
    """Always 200 while the process serves HTTP; `status` is `degraded` when the database is not."""
    db_ok = database.ping()
    return HealthResponse(
        status="ok" if db_ok else "degraded", version=__version__, database="ok" if db_ok else "unavailable"
    )

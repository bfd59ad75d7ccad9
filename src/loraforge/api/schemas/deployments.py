"""Request and response bodies of `/api/deployments`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from loraforge.api.schemas.common import RequestModel, ResponseModel

DeploymentStatus = Literal["starting", "ready", "failed", "stopped"]


class DeploymentCreate(RequestModel):
    model: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)] = Field(
        description="A `/v1/models` id: `demo-tiny`, a registered model's name, or `<name>@v<number>`."
    )


class DeploymentPublic(ResponseModel):
    id: int
    model: str = Field(description="The registered model's name.")
    model_id: int | None
    version_id: int | None = Field(description="null for the built-in demo-tiny.")
    version_number: int | None
    owner_id: int | None = Field(description="Who started it (on demand: the first caller).")
    backend: str = Field(description="builtin | vllm")
    status: DeploymentStatus
    memory_bytes: int | None = Field(description="Bytes of the loaded base model (shared by its adapters).")
    requests_served: int
    last_used_at: datetime | None
    error: str | None
    created_at: datetime | None
    stopped_at: datetime | None


class DeploymentPage(BaseModel):
    items: list[DeploymentPublic]
    total: int
    page: int
    page_size: int

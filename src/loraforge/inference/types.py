"""Shapes shared by the registry, the manager and the gateway (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ServedModel:
    """A registry model version resolved for inference: which files to load.

    `name` is the name the caller used (`/v1/models` id). `base` is a local folder (or, for hub base
    models, the hub id); `adapter` is the LoRA folder applied on top of it, None for full weights.
    """

    name: str
    model_id: int | None  # None: the built-in demo-tiny
    version_id: int | None
    owner_id: int | None
    base: str
    adapter: Path | None = None


@dataclass(frozen=True)
class Endpoint:
    """Where the gateway sends one chat request: an OpenAI-compatible base URL (ending in /v1).

    `model` is the upstream model name; `extra_body` is merged into the request body (the builtin
    worker reads which base and adapter to use from it).
    """

    base_url: str
    model: str
    api_key: str | None = None
    extra_body: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    deployment_id: int | None = None
    provider_id: int | None = None

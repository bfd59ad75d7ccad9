"""Deployments of the inference worker and external OpenAI-compatible providers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from loraforge.db.base import Base, UTCDateTime, utcnow


class Deployment(Base):
    """A model version served by an inference backend (builtin worker or vLLM), started on demand."""

    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # None for the built-in demo-tiny, which has no registry row; model_name is what was served.
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), default=None, index=True
    )
    model_name: Mapped[str] = mapped_column(String(300), default="")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    backend: Mapped[str] = mapped_column(String(16), default="builtin")  # builtin | vllm
    status: Mapped[str] = mapped_column(String(16), default="starting")  # starting|ready|failed|stopped
    base_url: Mapped[str | None] = mapped_column(Text, default=None)
    pid: Mapped[int | None] = mapped_column(Integer, default=None)
    memory_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    requests_served: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class Provider(Base):
    """An external OpenAI-compatible endpoint. owner_id None = shared by an admin with everyone."""

    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), default=None)
    # Model names through the gateway are `<name>/<upstream model>`; unique across the platform.
    name: Mapped[str] = mapped_column(String(64), unique=True)
    base_url: Mapped[str] = mapped_column(Text)
    api_key_encrypted: Mapped[str | None] = mapped_column(Text, default=None)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    models: Mapped[list[str]] = mapped_column(JSON, default=list)  # from its /v1/models
    models_refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

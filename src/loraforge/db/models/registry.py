"""The model registry: registered models and their versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from loraforge.db.base import Base, UTCDateTime, utcnow


class RegisteredModel(Base):
    """A model in the registry: a base model (local folder or hub id) or a fine-tuned one.

    `name` is what `/v1/models` lists and what `model` means in `/v1/chat/completions`; unique across
    the platform (fine-tuned ones are named `ft:<base>:<suffix>:<job id>`, like OpenAI's). Versions hold
    the files; `current_version_id` is what the bare name serves. Private to the owner or shared.
    """

    __tablename__ = "registered_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # base | finetuned
    description: Mapped[str] = mapped_column(Text, default="")
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    # Where a base model comes from: demo (built-in demo-tiny), local (a server folder, staff only), hub.
    source: Mapped[str] = mapped_column(String(16), default="local")
    source_ref: Mapped[str | None] = mapped_column(Text, default=None)  # hub id or the registered folder
    current_version_id: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ModelVersion(Base):
    """One version of a registered model: full weights or a LoRA adapter on a base, with lineage.

    Files live in `<data_dir>/models/<model_id>/versions/<version_id>/` (copied from the job's output
    when registered) unless `path` names a folder registered by staff or the built-in demo model.
    """

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    weights: Mapped[str] = mapped_column(String(16))  # full | adapter
    status: Mapped[str] = mapped_column(
        String(16), default="ready"
    )  # ready | downloading | merging | exporting | failed
    path: Mapped[str | None] = mapped_column(Text, default=None)  # None: the id-derived folder
    # For adapters: what they sit on. base_version_id when the base is in the registry, else base_ref
    # (demo-tiny or a hub id) as the job's spec named it.
    base_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL"), default=None
    )
    base_ref: Mapped[str | None] = mapped_column(Text, default=None)
    source_job_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), default=None, index=True
    )
    dataset_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="SET NULL"), default=None
    )
    parent_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL"), default=None
    )  # a merged version's adapter version
    spec: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Detected from the folder: architecture, parameter count, context length, chat template present.
    info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    notes: Mapped[str] = mapped_column(Text, default="")
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # What the files are: safetensors (trained, merged, registered) or an export's format (gguf,
    # gguf_lora, ollama, onnx). Only safetensors versions load for chat, serving and training.
    format: Mapped[str] = mapped_column(String(16), default="safetensors", server_default="safetensors")
    quantization: Mapped[str | None] = mapped_column(String(16), default=None)  # exports: q8_0, int4…
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)  # of an export's main file
    # An export's read-back check (export.json's `verification`: ok, reader, agreement…).
    verification: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

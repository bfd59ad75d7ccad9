"""`/v1/files`: the file objects of uploads (purpose `fine-tune` and others)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from loraforge.api.openai.schemas.common import ListPage


class FileObject(BaseModel):
    id: str = Field(description='"file-<id>".')
    object: Literal["file"] = "file"
    bytes: int
    created_at: int = Field(description="Unix time (seconds).")
    filename: str
    purpose: str
    status: Literal["uploaded", "processed", "error"] = "processed"
    status_details: str | None = None
    expires_at: int | None = None


class FileList(ListPage[FileObject]):
    first_id: str | None = None
    last_id: str | None = None


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True

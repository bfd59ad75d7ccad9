"""OpenAI's paged list envelope (`{"object": "list", "data": [...], "has_more"}`), shared by the list
answers of `/v1/files` and `/v1/fine_tuning/jobs`."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel

ItemT = TypeVar("ItemT")


class ListPage(BaseModel, Generic[ItemT]):
    object: Literal["list"] = "list"
    data: list[ItemT]
    has_more: bool

"""Request and response models of `/api/providers` (external OpenAI-compatible endpoints)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from loraforge.api.schemas.common import RequestModel
from loraforge.services.serving.providers import MAX_URL_LENGTH, NAME_PATTERN

ProviderName = Annotated[
    str,
    StringConstraints(pattern=NAME_PATTERN, max_length=64),
    Field(description="Lowercase letters, digits, `-`, `_`; models are used as `<name>/<model>`. Unique."),
]
BaseUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_URL_LENGTH),
    Field(description="The OpenAI-compatible base URL, e.g. `https://api.example.com/v1` (http or https)."),
]
ApiKey = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class ProviderCreate(RequestModel):
    name: ProviderName
    base_url: BaseUrl
    api_key: ApiKey | None = Field(default=None, description="Stored encrypted; never returned.")
    enabled: bool = True
    shared: bool = Field(default=False, description="Usable by every user (admins only).")


class ProviderUpdate(RequestModel):
    name: ProviderName | None = None
    base_url: BaseUrl | None = None
    api_key: ApiKey | None = Field(default=None, description="A new key; `null` removes the stored one.")
    enabled: bool | None = None
    shared: bool | None = None


class ProviderPublic(BaseModel):
    id: int
    name: str
    base_url: str
    owner_id: int | None = Field(description="None for shared providers.")
    shared: bool
    enabled: bool
    has_api_key: bool
    api_key_last4: str | None = Field(description="The key's last four characters, to tell keys apart.")
    models: list[str] = Field(description="Upstream model ids from the last refresh.")
    models_refreshed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    editable: bool = Field(description="Whether the caller may change or delete it.")


class ProviderList(BaseModel):
    items: list[ProviderPublic]

"""The identity sample: LLaMA-Factory's `identity.json` (91 alpaca rows, Apache License 2.0, shipped
unchanged in `datastore/assets/`) with its `{{name}}` / `{{author}}` placeholders filled in with
LoRAForge's own name, as a dataset of the caller's.

It is what the first run trains on: a model that learned it answers "Who are you?" with "I am LoRAForge,
…", a change anyone can see in the chat. A user has at most one (it is reused, not imported twice).
"""

from __future__ import annotations

import io
import json
import re
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loraforge.db.models import Dataset, DatasetVersion, User
from loraforge.services.datasets.staging import stage_upload
from loraforge.services.datasets.versions import create_from_file
from loraforge.settings import Settings

IDENTITY_DATASET = "identity"
IDENTITY_NAME = "LoRAForge"
IDENTITY_AUTHOR = "the LoRAForge team"
# The Chinese rows read "由 {{author}} 开发" ("developed by …"): an English article would read oddly there.
IDENTITY_AUTHOR_ZH = "LoRAForge 团队"
_RECIPE = {"kind": "sample", "sample": "identity"}
_CJK = re.compile(r"[\u3400-\u9fff]")


def _fill(text: str, *, chinese: bool) -> str:
    author = IDENTITY_AUTHOR_ZH if chinese else IDENTITY_AUTHOR
    return text.replace("{{name}}", IDENTITY_NAME).replace("{{author}}", author)


def identity_rows() -> list[dict[str, Any]]:
    """The 91 rows with the placeholders filled in (the Chinese rows name the author in Chinese)."""
    raw = resources.files("loraforge.datastore").joinpath("assets", "identity.json").read_text("utf-8")
    rows: list[dict[str, Any]] = json.loads(raw)
    return [
        {key: _fill(value, chinese=bool(_CJK.search(row["instruction"]))) for key, value in row.items()}
        for row in rows
    ]


def find_identity(session: Session, *, owner: User) -> tuple[Dataset, DatasetVersion] | None:
    """The caller's own identity sample, if its current version is still the one imported here."""
    datasets = session.scalars(
        select(Dataset)
        .where(Dataset.owner_id == owner.id, Dataset.name == IDENTITY_DATASET)
        .order_by(Dataset.id)
    )
    for dataset in datasets:
        version = (
            session.get(DatasetVersion, dataset.current_version_id) if dataset.current_version_id else None
        )
        # An edited copy (a new version, another recipe) is the user's own data now: not the sample.
        if version is not None and version.recipe.get("sample") == _RECIPE["sample"] and version.number == 1:
            return dataset, version
    return None


def ensure_identity(
    session: Session, *, settings: Settings, actor: User, ip: str | None
) -> tuple[Dataset, DatasetVersion]:
    """The caller's identity sample: the existing one, else a new import (committed)."""
    found = find_identity(session, owner=actor)
    if found is not None:
        return found
    data = json.dumps(identity_rows(), ensure_ascii=False, indent=1).encode("utf-8")
    staged, sha, _size = stage_upload(settings, io.BytesIO(data))
    return create_from_file(
        session, settings=settings, actor=actor, source=staged, filename="identity.json", source_sha256=sha,
        name=IDENTITY_DATASET,
        description=f"LLaMA-Factory's identity sample, filled in as {IDENTITY_NAME} by {IDENTITY_AUTHOR}.",
        recipe=dict(_RECIPE), ip=ip,
    )  # fmt: skip

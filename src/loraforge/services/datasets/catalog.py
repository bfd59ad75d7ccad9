"""Datasets: access (who may read or change one), list, edit, delete. Files come from
`loraforge.datastore`; paths are built from IDs only.

Reads are open to the owner and to staff (operators, admins); changes only to the owner. The other
modules of this package make versions (`versions`, `imports`, `uploads`, `preprocessing`) and look
inside them (`reads`).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from loraforge.datastore import paths
from loraforge.db.models import PENDING_OR_ACTIVE, Dataset, DatasetVersion, Job, User
from loraforge.errors import Conflict, Forbidden, NotFound
from loraforge.services.platform import audit, ownership
from loraforge.services.platform.audit import AuditAction
from loraforge.settings import Settings

READERS = ownership.STAFF  # operators and admins may read every dataset
SORT_COLUMNS = {
    "name": Dataset.name,
    "created_at": Dataset.created_at,
    "updated_at": Dataset.updated_at,
    "rows": Dataset.rows,
    "size_bytes": Dataset.size_bytes,
    "format": Dataset.format,
}


def dataset_in_use(session: Session, *, dataset_id: int) -> bool:
    """Whether a queued, starting, running or stopping job pins the dataset (delete refuses then)."""
    statuses = [s.value for s in PENDING_OR_ACTIVE]
    query = select(Job.id).where(Job.dataset_id == dataset_id, Job.status.in_(statuses)).limit(1)
    return session.scalar(query) is not None


# ---- access ----------------------------------------------------------------------------------------------


def get_dataset(session: Session, *, actor: User, dataset_id: int, write: bool = False) -> Dataset:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound("dataset not found", code="dataset_not_found")
    ownership.ensure_access(actor, dataset.owner_id, staff_may=READERS, resource="dataset")
    if write and not ownership.can_access(actor, dataset.owner_id):
        raise Forbidden("only the owner may change this dataset", code="not_owner")
    return dataset


def get_version(session: Session, *, actor: User, version_id: int, write: bool = False) -> DatasetVersion:
    version = session.get(DatasetVersion, version_id)
    if version is None:
        raise NotFound("dataset version not found", code="version_not_found")
    try:
        get_dataset(session, actor=actor, dataset_id=version.dataset_id, write=write)
    except NotFound:  # someone else's version reads exactly like an absent one
        raise NotFound("dataset version not found", code="version_not_found") from None
    return version


def current_version(session: Session, dataset: Dataset) -> DatasetVersion:
    version = session.get(DatasetVersion, dataset.current_version_id) if dataset.current_version_id else None
    if version is None:
        raise NotFound("the dataset has no version", code="version_not_found")
    return version


def version_of(session: Session, dataset: Dataset, version_id: int | None) -> DatasetVersion:
    if version_id is None:
        return current_version(session, dataset)
    version = session.get(DatasetVersion, version_id)
    if version is None or version.dataset_id != dataset.id:
        raise NotFound("no such version of this dataset", code="version_not_found")
    return version


def folder_of(settings: Settings, version: DatasetVersion) -> Path:
    return paths.version_dir(version.dataset_id, version.id, settings.data_dir)


# ---- list / edit / delete ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetPage:
    items: list[Dataset]
    total: int


def list_datasets(
    session: Session,
    *,
    actor: User,
    q: str | None,
    format: str | None,
    sort: str,
    descending: bool,
    offset: int,
    limit: int,
) -> DatasetPage:
    query = select(Dataset)
    owner = ownership.owner_scope(actor, staff_may=READERS)
    if owner is not None:
        query = query.where(Dataset.owner_id == owner)
    if q:
        pattern = f"%{q.lower()}%"
        query = query.where(
            or_(func.lower(Dataset.name).like(pattern), func.lower(Dataset.description).like(pattern))
        )
    if format:
        query = query.where(Dataset.format == format)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    column = SORT_COLUMNS[sort]
    order = column.desc() if descending else column.asc()
    rows = session.scalars(query.order_by(order, Dataset.id.desc()).offset(offset).limit(limit)).all()
    return DatasetPage(items=list(rows), total=total)


def update_dataset(
    session: Session,
    *,
    actor: User,
    dataset_id: int,
    name: str | None,
    description: str | None,
    ip: str | None,
) -> Dataset:
    dataset = get_dataset(session, actor=actor, dataset_id=dataset_id, write=True)
    changes: dict[str, Any] = {}
    if name is not None and name != dataset.name:
        changes["name"] = [dataset.name, name]
        dataset.name = name
    if description is not None and description != dataset.description:
        changes["description"] = True
        dataset.description = description
    if changes:
        audit.record(
            session, action=AuditAction.dataset_updated, actor=actor, target_type="dataset",
            target_id=dataset.id, ip=ip, details=changes,
        )  # fmt: skip
        session.commit()
    return dataset


def delete_dataset(
    session: Session, *, settings: Settings, actor: User, dataset_id: int, ip: str | None
) -> None:
    dataset = get_dataset(session, actor=actor, dataset_id=dataset_id, write=True)
    if dataset_in_use(session, dataset_id=dataset.id):
        raise Conflict("a queued or running job uses this dataset", code="dataset_in_use")
    audit.record(
        session, action=AuditAction.dataset_deleted, actor=actor, target_type="dataset", target_id=dataset.id,
        ip=ip, details={"name": dataset.name, "owner_id": dataset.owner_id},
    )  # fmt: skip
    folder = paths.dataset_dir(dataset.id, settings.data_dir)
    session.delete(dataset)
    session.commit()
    shutil.rmtree(folder, ignore_errors=True)

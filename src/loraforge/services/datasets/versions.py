"""Dataset versions: making one (from a staged file, by preprocessing, by rollback), listing them.

Files are built in a staging folder and renamed into place just before the database commit, so a
failure at any point (bad file, disk full, database error) leaves neither rows nor files behind.
Every path that adds a version ends in `commit_version`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loraforge.datastore import paths
from loraforge.datastore.ingest import IngestResult, ingest_file, link_or_copy, new_staging_dir, remove_tree
from loraforge.datastore.sniffing import IngestError, clean_filename
from loraforge.db.models import Dataset, DatasetVersion, User
from loraforge.errors import Conflict, PayloadTooLarge
from loraforge.services.datasets.catalog import folder_of, get_dataset, get_version
from loraforge.services.datasets.staging import discard_staged, disk_error, from_ingest_error, is_staged
from loraforge.services.platform import audit
from loraforge.services.platform.audit import AuditAction
from loraforge.settings import Settings

COUNTS = ("rows", "valid_rows", "invalid_rows")
# What a version records about its files: copied from a NewVersion into the row, and from a row into
# the NewVersion of a rollback.
CONTENT = (
    "format",
    "sha256",
    "source_sha256",
    "size_bytes",
    "normalized_bytes",
    "mapping",
    "detection",
    "errors",
)


@dataclass
class NewVersion:
    """What a new version records besides its files."""

    recipe: dict[str, Any]
    message: str = ""
    filename: str | None = None
    counts: dict[str, int] = field(default_factory=dict)  # COUNTS
    format: str = ""
    sha256: str = ""
    source_sha256: str | None = None
    size_bytes: int = 0
    normalized_bytes: int = 0
    mapping: dict[str, Any] = field(default_factory=dict)
    detection: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_ingest(
        cls, result: IngestResult, *, recipe: dict[str, Any], message: str, filename: str | None
    ) -> NewVersion:
        return cls(
            recipe=recipe,
            message=message,
            filename=filename,
            counts={
                "rows": result.total_rows,
                "valid_rows": result.valid_rows,
                "invalid_rows": result.invalid_rows,
            },
            format=result.format,
            sha256=result.sha256,
            source_sha256=result.source_sha256,
            size_bytes=result.source_bytes,
            normalized_bytes=result.normalized_bytes,
            mapping=result.mapping,
            detection=result.detection,
            errors=result.errors,
        )

    @classmethod
    def restoring(cls, version: DatasetVersion, *, recipe: dict[str, Any], message: str) -> NewVersion:
        """The content of an existing version, recorded again (a rollback shares its files)."""
        return cls(
            recipe=recipe,
            message=message,
            filename=version.original_filename,
            counts={name: getattr(version, name) for name in COUNTS},
            **{name: getattr(version, name) for name in CONTENT},
        )


def commit_version(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    staging: Path,
    new: NewVersion,
    dataset: Dataset | None,
    name: str,
    description: str,
    action: AuditAction,
    ip: str | None,
) -> tuple[Dataset, DatasetVersion]:
    """Add the rows, move `staging` into place, audit, commit; undo everything on any failure."""
    created = dataset is None
    final: Path | None = None
    try:
        if dataset is None:
            dataset = Dataset(owner_id=actor.id, name=name, description=description, format=new.format)
            session.add(dataset)
            session.flush()
        number = (
            session.scalar(
                select(func.max(DatasetVersion.number)).where(DatasetVersion.dataset_id == dataset.id)
            )
            or 0
        ) + 1
        version = DatasetVersion(
            dataset_id=dataset.id,
            number=number,
            parent_id=dataset.current_version_id,
            message=new.message,
            author_id=actor.id,
            author_username=actor.username,
            original_filename=clean_filename(new.filename) if new.filename else None,
            recipe=new.recipe,
            **{name: new.counts.get(name, 0) for name in COUNTS},
            **{name: getattr(new, name) for name in CONTENT},
        )
        session.add(version)
        session.flush()
        _make_current(dataset, version)
        audit.record(
            session, action=action, actor=actor, target_type="dataset", target_id=dataset.id, ip=ip,
            details={
                "version": number,
                "version_id": version.id,
                "recipe": new.recipe.get("kind"),
                "name": dataset.name,
            },
        )  # fmt: skip
        final = paths.version_dir(dataset.id, version.id, settings.data_dir)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staging, final)
        session.commit()
    except BaseException as exc:
        session.rollback()
        remove_tree(staging)
        if final is not None:
            remove_tree(final)
            if created and dataset is not None:
                remove_tree(paths.dataset_dir(dataset.id, settings.data_dir))
        if isinstance(exc, IntegrityError):
            raise Conflict(
                "another version was added at the same time; try again", code="version_conflict"
            ) from None
        if isinstance(exc, OSError):
            raise disk_error(exc) or exc from None
        raise
    return dataset, version


def _make_current(dataset: Dataset, version: DatasetVersion) -> None:
    dataset.current_version_id = version.id
    dataset.format = version.format
    dataset.rows = version.rows
    dataset.valid_rows = version.valid_rows
    dataset.invalid_rows = version.invalid_rows
    dataset.size_bytes = version.size_bytes or version.normalized_bytes


@dataclass(frozen=True)
class IngestOptions:
    format: str | None = None
    mapping: dict[str, Any] | None = None
    txt_mode: str = "lines"


def create_from_file(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    source: Path,
    filename: str | None,
    source_sha256: str,
    name: str,
    description: str = "",
    options: IngestOptions | None = None,
    message: str = "",
    dataset_id: int | None = None,
    recipe: dict[str, Any] | None = None,
    ip: str | None,
) -> tuple[Dataset, DatasetVersion]:
    """Ingest a staged file (it is moved into the version) as a new dataset, or as a new version of
    `dataset_id`. The staged file's folder is removed whatever happens."""
    options = options or IngestOptions()
    try:
        dataset = get_dataset(session, actor=actor, dataset_id=dataset_id, write=True) if dataset_id else None
        if source.stat().st_size > settings.dataset_max_upload_bytes:
            raise PayloadTooLarge(
                f"the file is larger than the limit of {settings.dataset_max_upload_bytes:,} bytes"
            )
        staging = new_staging_dir(settings.data_dir)
        try:
            result = ingest_file(
                source,
                folder=staging,
                filename=filename,
                source_sha256=source_sha256,
                override=options.format,
                mapping=options.mapping,
                txt_mode=options.txt_mode,
                max_row_bytes=settings.dataset_max_row_bytes,
            )
        except IngestError as exc:
            remove_tree(staging)
            raise from_ingest_error(exc) from None
        except OSError as exc:
            remove_tree(staging)
            raise disk_error(exc) or exc from None
        except BaseException:
            remove_tree(staging)
            raise
        base_recipe: dict[str, Any] = {
            "kind": "upload",
            "filename": clean_filename(filename),
            "format_override": options.format,
        }
        if options.mapping:
            base_recipe["mapping"] = options.mapping
        new = NewVersion.from_ingest(
            result, recipe={**base_recipe, **(recipe or {})}, message=message, filename=filename
        )
        action = AuditAction.dataset_version_created if dataset else AuditAction.dataset_created
        return commit_version(
            session, settings=settings, actor=actor, staging=staging, new=new, dataset=dataset,
            name=name, description=description, action=action, ip=ip,
        )  # fmt: skip
    finally:
        if is_staged(settings, source):
            discard_staged(source)


def list_versions(session: Session, *, actor: User, dataset_id: int) -> list[DatasetVersion]:
    get_dataset(session, actor=actor, dataset_id=dataset_id)
    return list(
        session.scalars(
            select(DatasetVersion)
            .where(DatasetVersion.dataset_id == dataset_id)
            .order_by(DatasetVersion.number.desc())
        )
    )


def rollback(
    session: Session, *, settings: Settings, actor: User, version_id: int, message: str, ip: str | None
) -> tuple[Dataset, DatasetVersion]:
    """A new version with the content of `version_id` (files shared by hard link), made current."""
    target = get_version(session, actor=actor, version_id=version_id, write=True)
    dataset = get_dataset(session, actor=actor, dataset_id=target.dataset_id, write=True)
    staging = new_staging_dir(settings.data_dir)
    try:
        for item in folder_of(settings, target).iterdir():
            if item.is_file():
                link_or_copy(item, staging / item.name)
    except OSError as exc:
        remove_tree(staging)
        raise disk_error(exc) or exc from None
    new = NewVersion.restoring(
        target,
        recipe={"kind": "rollback", "of_version": target.number, "of_version_id": target.id},
        message=message or f"rollback to version {target.number}",
    )
    return commit_version(
        session, settings=settings, actor=actor, staging=staging, new=new, dataset=dataset, name=dataset.name,
        description=dataset.description, action=AuditAction.dataset_rolled_back, ip=ip,
    )  # fmt: skip

"""Datasets: create (upload, import, sample), list, read, edit, delete, versions, preview, stats,
preprocess, compare, download. Files come from `loraforge.datastore`; paths are built from IDs only.

Files are built in a staging folder and renamed into place just before the database commit, so a
failure at any point (bad file, disk full, database error) leaves neither rows nor files behind.
Reads are open to the owner and to staff (operators, admins); changes only to the owner.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loraforge.datastore import paths, preview
from loraforge.datastore import preprocess as prep
from loraforge.datastore.ingest import (
    IngestResult,
    ingest_file,
    link_or_copy,
    new_staging_dir,
    remove_tree,
    write_examples,
)
from loraforge.datastore.reading import IngestError, clean_filename, safe_suffix
from loraforge.datastore.stats import read_examples, tokenizer_stats
from loraforge.db.models import PENDING_OR_ACTIVE, Dataset, DatasetVersion, Job, User
from loraforge.errors import (
    Conflict,
    FieldIssue,
    Forbidden,
    InsufficientStorage,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    Unavailable,
)
from loraforge.services.platform import audit, ownership
from loraforge.services.platform.audit import AuditAction
from loraforge.settings import Settings

READERS = ownership.STAFF  # operators and admins may read every dataset
SEARCH_SCAN_LIMIT = 1_000_000
SORT_COLUMNS = {
    "name": Dataset.name,
    "created_at": Dataset.created_at,
    "updated_at": Dataset.updated_at,
    "rows": Dataset.rows,
    "size_bytes": Dataset.size_bytes,
    "format": Dataset.format,
}
_TOKENIZER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_COPY_BLOCK = 1024 * 1024


def dataset_in_use(session: Session, *, dataset_id: int) -> bool:
    """Whether a queued, starting, running or stopping job pins the dataset (delete refuses then)."""
    statuses = [s.value for s in PENDING_OR_ACTIVE]
    query = select(Job.id).where(Job.dataset_id == dataset_id, Job.status.in_(statuses)).limit(1)
    return session.scalar(query) is not None


# ---- errors and files ------------------------------------------------------------------------------------


def _from_ingest(exc: IngestError) -> ServiceError:
    fields = [FieldIssue(field="file", message=f"{d.get('field')}: {d.get('message')}") for d in exc.details]
    if exc.status == 413:
        return PayloadTooLarge(exc.message, code=exc.code)
    if exc.status == 507:
        return InsufficientStorage(exc.message, code=exc.code)
    return InvalidInput(exc.message, code=exc.code, fields=fields)


def _disk_error(exc: OSError) -> ServiceError | None:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientStorage(
            "the server ran out of disk space while storing the dataset; nothing was kept. "
            "Free some space or ask an administrator.",
        )
    return None


def stage_upload(
    settings: Settings, source: BinaryIO, *, max_bytes: int | None = None
) -> tuple[Path, str, int]:
    """Copy a stream into `<data_dir>/uploads/<random>/data` in 1 MiB blocks: (path, sha256, size)."""
    limit = settings.dataset_max_upload_bytes if max_bytes is None else max_bytes
    folder = paths.uploads_root(settings.data_dir) / uuid.uuid4().hex
    folder.mkdir(parents=True)
    target = folder / "data"
    sha = hashlib.sha256()
    size = 0
    try:
        with target.open("wb") as out:
            while True:
                block = source.read(_COPY_BLOCK)
                if not block:
                    break
                size += len(block)
                if size > limit:
                    raise PayloadTooLarge(f"the file is larger than the limit of {limit:,} bytes")
                sha.update(block)
                out.write(block)
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise _disk_error(exc) or exc from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return target, sha.hexdigest(), size


def discard_staged(path: Path) -> None:
    """Remove a staged upload folder (`.../uploads/<id>/data` → its folder)."""
    shutil.rmtree(path.parent, ignore_errors=True)


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
    get_dataset(session, actor=actor, dataset_id=version.dataset_id, write=write)
    return version


def current_version(session: Session, dataset: Dataset) -> DatasetVersion:
    version = session.get(DatasetVersion, dataset.current_version_id) if dataset.current_version_id else None
    if version is None:
        raise NotFound("the dataset has no version", code="version_not_found")
    return version


def _version_of(session: Session, dataset: Dataset, version_id: int | None) -> DatasetVersion:
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


def list_versions(session: Session, *, actor: User, dataset_id: int) -> list[DatasetVersion]:
    get_dataset(session, actor=actor, dataset_id=dataset_id)
    return list(
        session.scalars(
            select(DatasetVersion)
            .where(DatasetVersion.dataset_id == dataset_id)
            .order_by(DatasetVersion.number.desc())
        )
    )


# ---- creating versions -----------------------------------------------------------------------------------


@dataclass
class NewVersion:
    """What a new version records besides its files."""

    recipe: dict[str, Any]
    message: str = ""
    filename: str | None = None
    counts: dict[str, int] = field(default_factory=dict)  # rows, valid_rows, invalid_rows
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


def _commit_version(
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
            format=new.format,
            rows=new.counts.get("rows", 0),
            valid_rows=new.counts.get("valid_rows", 0),
            invalid_rows=new.counts.get("invalid_rows", 0),
            size_bytes=new.size_bytes,
            normalized_bytes=new.normalized_bytes,
            sha256=new.sha256,
            source_sha256=new.source_sha256,
            original_filename=clean_filename(new.filename) if new.filename else None,
            recipe=new.recipe,
            mapping=new.mapping,
            detection=new.detection,
            errors=new.errors,
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
            raise _disk_error(exc) or exc from None
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
            raise _from_ingest(exc) from None
        except OSError as exc:
            remove_tree(staging)
            raise _disk_error(exc) or exc from None
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
        return _commit_version(
            session, settings=settings, actor=actor, staging=staging, new=new, dataset=dataset,
            name=name, description=description, action=action, ip=ip,
        )  # fmt: skip
    finally:
        if source.parent.parent == paths.uploads_root(settings.data_dir):
            discard_staged(source)


def import_sample(
    session: Session, *, settings: Settings, actor: User, ip: str | None
) -> tuple[Dataset, DatasetVersion]:
    """The project's small demo SFT dataset (shipped inside the package), as a dataset of the caller."""
    asset = resources.files("loraforge.datastore").joinpath("assets", "forge_demo.json")
    with asset.open("rb") as handle:
        staged, sha, _size = stage_upload(settings, handle)  # type: ignore[arg-type]
    return create_from_file(
        session, settings=settings, actor=actor, source=staged, filename="forge_demo.json", source_sha256=sha,
        name="forge_demo", description="LoRAForge demo SFT dataset (alpaca format).",
        recipe={"kind": "sample", "sample": "forge-demo"}, ip=ip,
    )  # fmt: skip


# ---- imports ---------------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    created: list[Dataset] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)


def parse_dataset_info(raw: bytes) -> dict[str, Any]:
    try:
        info = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(
            f"dataset_info.json is not valid JSON: {exc}", code="invalid_dataset_info"
        ) from None
    if not isinstance(info, dict) or not all(isinstance(v, dict) for v in info.values()):
        raise InvalidInput("dataset_info.json must map dataset names to objects", code="invalid_dataset_info")
    return info


def _mapping_of(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: entry[k] for k in ("formatting", "ranking", "columns", "tags") if k in entry} or {
        "formatting": "alpaca"
    }


def import_entries(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    info: dict[str, Any],
    open_file: Any,
    names: list[str] | None,
    source: str,
    ip: str | None,
) -> ImportReport:
    """Import dataset_info.json entries; `open_file(file_name)` returns a binary stream or None."""
    report = ImportReport()
    wanted = names or [n for n, e in info.items() if "file_name" in e]
    for name in wanted:
        entry = info.get(name)
        if entry is None:
            report.skipped.append({"name": name, "reason": "not in dataset_info.json"})
            continue
        if "file_name" not in entry:
            report.skipped.append({"name": name, "reason": "a hub dataset: import it with the hub import"})
            continue
        file_name = str(entry["file_name"])
        stream = open_file(file_name)
        if stream is None:
            report.skipped.append({"name": name, "reason": f"file {file_name!r} was not provided"})
            continue
        try:
            with stream:
                staged, sha, _size = stage_upload(settings, stream)
            dataset, _version = create_from_file(
                session, settings=settings, actor=actor, source=staged, filename=file_name, source_sha256=sha,
                name=name, options=IngestOptions(mapping=_mapping_of(entry)),
                recipe={"kind": "import", "source": source, "entry": name}, ip=ip,
            )  # fmt: skip
        except (InvalidInput, PayloadTooLarge) as exc:
            report.failed.append({"name": name, "code": exc.code, "message": exc.message})
            continue
        report.created.append(dataset)
    return report


def check_import_path(settings: Settings, raw: str) -> Path:
    """Resolve `raw` (symlinks followed) and require it inside an admin-configured import root."""
    roots = settings.import_roots
    if not roots:
        raise Forbidden(
            "importing from server paths is disabled; an administrator can allow folders with "
            "LORAFORGE_DATASET_IMPORT_ROOTS",
            code="import_disabled",
        )
    if "\x00" in raw:
        raise InvalidInput("the path contains a NUL byte", code="invalid_path")
    try:
        resolved = Path(raw).expanduser().resolve(strict=True)
    except (OSError, RuntimeError):
        raise NotFound(
            "no such file or folder inside the allowed import folders", code="path_not_found"
        ) from None
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        # Same answer as a missing path: the reply must not reveal what exists outside the roots.
        raise NotFound("no such file or folder inside the allowed import folders", code="path_not_found")
    return resolved


def import_server_path(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    path: str,
    name: str | None,
    description: str,
    options: IngestOptions,
    names: list[str] | None,
    ip: str | None,
) -> ImportReport:
    resolved = check_import_path(settings, path)
    if resolved.is_dir():
        info_file = resolved / "dataset_info.json"
        if not info_file.is_file():
            raise InvalidInput(
                "the folder has no dataset_info.json; give a file path instead", code="invalid_path"
            )
        info = parse_dataset_info(info_file.read_bytes())

        def open_file(file_name: str) -> BinaryIO | None:
            try:
                candidate = check_import_path(settings, str(resolved / file_name))
            except ServiceError:
                return None
            return candidate.open("rb") if candidate.is_file() else None

        return import_entries(
            session, settings=settings, actor=actor, info=info, open_file=open_file, names=names,
            source="server_path", ip=ip,
        )  # fmt: skip
    with resolved.open("rb") as handle:
        staged, sha, _size = stage_upload(settings, handle)
    dataset, _version = create_from_file(
        session, settings=settings, actor=actor, source=staged, filename=resolved.name, source_sha256=sha,
        name=name or resolved.stem, description=description, options=options,
        recipe={"kind": "import", "source": "server_path", "path": str(resolved)}, ip=ip,
    )  # fmt: skip
    return ImportReport(created=[dataset])


def import_hub(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    repo_id: str,
    revision: str | None,
    split: str,
    name: str | None,
    description: str,
    options: IngestOptions,
    ip: str | None,
) -> tuple[Dataset, DatasetVersion]:
    """Download a Hugging Face Hub dataset's data files for `split` and import them as one dataset.

    Uses huggingface_hub (no torch); the files are converted to one JSONL and ingested as usual.
    """
    try:
        from huggingface_hub import HfApi, hf_hub_download
        from huggingface_hub.errors import RepositoryNotFoundError
    except ImportError:
        raise Unavailable("huggingface_hub is not installed on the server", code="hub_unavailable") from None
    folder = paths.uploads_root(settings.data_dir) / uuid.uuid4().hex
    folder.mkdir(parents=True)
    try:
        try:
            files = HfApi().list_repo_files(repo_id, repo_type="dataset", revision=revision)
        except RepositoryNotFoundError:
            raise NotFound(
                f"no dataset {repo_id!r} on the Hugging Face Hub", code="hub_dataset_not_found"
            ) from None
        except Exception as exc:  # offline, DNS, proxies: all mean "cannot reach the hub"
            raise Unavailable(f"cannot reach the Hugging Face Hub: {exc}", code="hub_unavailable") from None
        data_files = sorted(f for f in files if safe_suffix(f) and not f.endswith("dataset_info.json"))
        chosen = [f for f in data_files if split in Path(f).name or f"/{split}/" in f"/{f}"] or data_files
        if not chosen:
            raise InvalidInput(f"{repo_id} has no json/jsonl/csv/parquet/txt data files", code="hub_no_files")
        combined = folder / "data"
        sha = hashlib.sha256()
        from loraforge.datastore.reading import iter_rows, sniff

        with combined.open("wb") as out:
            for file_name in chosen:
                local = Path(
                    hf_hub_download(
                        repo_id,
                        file_name,
                        repo_type="dataset",
                        revision=revision,
                        cache_dir=str(folder / "cache"),
                    )
                )
                info = sniff(local, file_name)
                for _n, row in iter_rows(local, info, max_row_bytes=settings.dataset_max_row_bytes):
                    if isinstance(row, dict):
                        line = json.dumps(row, ensure_ascii=False, default=str).encode() + b"\n"
                        sha.update(line)
                        out.write(line)
        shutil.rmtree(folder / "cache", ignore_errors=True)
    except IngestError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise _from_ingest(exc) from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return create_from_file(
        session, settings=settings, actor=actor, source=combined,
        filename=f"{repo_id.replace('/', '_')}.jsonl",
        source_sha256=sha.hexdigest(), name=name or repo_id, description=description, options=options,
        recipe={"kind": "import", "source": "hub", "repo_id": repo_id, "revision": revision, "split": split},
        ip=ip,
    )  # fmt: skip


# ---- rollback --------------------------------------------------------------------------------------------


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
        raise _disk_error(exc) or exc from None
    new = NewVersion(
        recipe={"kind": "rollback", "of_version": target.number, "of_version_id": target.id},
        message=message or f"rollback to version {target.number}",
        filename=target.original_filename,
        counts={"rows": target.rows, "valid_rows": target.valid_rows, "invalid_rows": target.invalid_rows},
        format=target.format,
        sha256=target.sha256,
        source_sha256=target.source_sha256,
        size_bytes=target.size_bytes,
        normalized_bytes=target.normalized_bytes,
        mapping=target.mapping,
        detection=target.detection,
        errors=target.errors,
    )
    return _commit_version(
        session, settings=settings, actor=actor, staging=staging, new=new, dataset=dataset, name=dataset.name,
        description=dataset.description, action=AuditAction.dataset_rolled_back, ip=ip,
    )  # fmt: skip


# ---- look inside -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewPage:
    items: list[dict[str, Any]]
    total: int
    version: DatasetVersion
    scanned: int | None
    complete: bool


def preview_rows(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    dataset_id: int,
    version_id: int | None,
    page: int,
    page_size: int,
    q: str | None,
) -> PreviewPage:
    dataset = get_dataset(session, actor=actor, dataset_id=dataset_id)
    version = _version_of(session, dataset, version_id)
    folder = folder_of(settings, version)
    start = (page - 1) * page_size
    if q:
        found = preview.search(folder, q=q, skip=start, limit=page_size, scan_limit=SEARCH_SCAN_LIMIT)
        return PreviewPage(found.items, found.matched, version, found.scanned, found.complete)
    return PreviewPage(
        preview.page(folder, start=start, count=page_size), preview.row_count(folder), version, None, True
    )


def tokenizer_file(settings: Settings, name: str) -> Path:
    """`<data_dir>/models/<name>/tokenizer.json` of a locally registered model (never outside)."""
    models = (settings.data_dir / "models").resolve()
    if not _TOKENIZER_NAME.fullmatch(name) or ".." in name:
        raise InvalidInput(
            "tokenizer must be the name of a model folder under the data dir's models/",
            code="invalid_tokenizer",
        )
    candidate = (models / name / "tokenizer.json").resolve()
    if not candidate.is_relative_to(models) or not candidate.is_file():
        raise NotFound(f"no tokenizer.json for a local model named {name!r}", code="tokenizer_not_found")
    return candidate


def dataset_stats(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    dataset_id: int,
    version_id: int | None,
    tokenizer: str | None,
) -> tuple[DatasetVersion, dict[str, Any]]:
    """Statistics computed at ingest; with `tokenizer`, exact token lengths (computed once, cached)."""
    dataset = get_dataset(session, actor=actor, dataset_id=dataset_id)
    version = _version_of(session, dataset, version_id)
    folder = folder_of(settings, version)
    stats: dict[str, Any] = json.loads((folder / paths.STATS).read_text("utf-8"))
    if tokenizer:
        source = tokenizer_file(settings, tokenizer)
        cache = folder / f"stats-tokens-{hashlib.sha256(tokenizer.encode()).hexdigest()[:16]}.json"
        if cache.is_file():
            stats["tokens"] = json.loads(cache.read_text("utf-8"))
        else:
            stats["tokens"] = tokenizer_stats(read_examples(folder / paths.NORMALIZED), source, tokenizer)
            temporary = cache.with_suffix(".tmp")
            temporary.write_text(json.dumps(stats["tokens"]), encoding="utf-8")
            os.replace(temporary, cache)
    return version, stats


@dataclass(frozen=True)
class Comparison:
    a: DatasetVersion
    b: DatasetVersion
    result: preview.Comparison


def compare_versions(
    session: Session, *, settings: Settings, actor: User, dataset_id: int, a: int, b: int, samples: int
) -> Comparison:
    dataset = get_dataset(session, actor=actor, dataset_id=dataset_id)
    version_a = _version_of(session, dataset, a)
    version_b = _version_of(session, dataset, b)
    result = preview.compare(folder_of(settings, version_a), folder_of(settings, version_b), samples=samples)
    return Comparison(version_a, version_b, result)


def download(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    dataset_id: int,
    version_id: int | None,
    normalized: bool,
) -> tuple[Path, str]:
    """(file to stream, download name)."""
    dataset = get_dataset(session, actor=actor, dataset_id=dataset_id)
    version = _version_of(session, dataset, version_id)
    folder = folder_of(settings, version)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", dataset.name).strip("._") or "dataset"
    if normalized:
        return folder / paths.NORMALIZED, f"{stem}-v{version.number}.normalized.jsonl"
    original = paths.original_path(folder)
    if original is None:
        raise NotFound(
            "this version was made by preprocessing and has no original file; "
            "download it with normalized=true",
            code="no_original",
        )
    return original, clean_filename(version.original_filename or f"{stem}-v{version.number}{original.suffix}")


# ---- preprocess ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreprocessOutcome:
    report: dict[str, Any]
    samples: list[dict[str, Any]]
    dataset: Dataset | None = None
    version: DatasetVersion | None = None


def _load_tokenizer(settings: Settings, name: str) -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(tokenizer_file(settings, name)))


def preprocess(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    dataset_id: int,
    version_id: int | None,
    options: prep.Options,
    dry_run: bool,
    dry_run_rows: int,
    message: str,
    recipe_options: dict[str, Any],
    ip: str | None,
) -> PreprocessOutcome:
    dataset = get_dataset(session, actor=actor, dataset_id=dataset_id, write=not dry_run)
    version = _version_of(session, dataset, version_id)
    tokenizer = _load_tokenizer(settings, options.tokenizer) if options.tokenizer else None
    processor = prep.Processor(options, kind=version.format, tokenizer=tokenizer)
    source = folder_of(settings, version) / paths.NORMALIZED

    if dry_run:
        samples: list[dict[str, Any]] = []
        for i, example in enumerate(prep.read(source)):
            if i >= dry_run_rows:
                break
            after, reason = processor.apply(example)
            if reason:
                processor.removed[reason] += 1
            samples.append({"row": example.get("row"), "before": example, "after": after, "removed": reason})
        kept = sum(1 for s in samples if s["after"] is not None)
        summary = {"original_rows": len(samples), "processed_rows": kept, "removed": dict(processor.removed)}
        return PreprocessOutcome(report=summary, samples=samples)

    staging = new_staging_dir(settings.data_dir)
    try:
        counted = {"n": 0}

        def originals() -> Iterator[dict[str, Any]]:
            for example in prep.read(source):
                counted["n"] += 1
                yield example

        processed: Any = processor.run(originals())
        if options.val_ratio:
            temporary = staging / "processed.tmp"
            kept = 0
            with temporary.open("w", encoding="utf-8") as out:
                for example in processed:
                    out.write(json.dumps(example, ensure_ascii=False) + "\n")
                    kept += 1
            processed = prep.assign_splits(
                prep.read(temporary), total=kept, val_ratio=options.val_ratio, seed=options.seed
            )
            written = write_examples(processed, staging, kind=version.format)
            temporary.unlink()
        else:
            written = write_examples(processed, staging, kind=version.format)
    except OSError as exc:
        remove_tree(staging)
        raise _disk_error(exc) or exc from None
    except BaseException:
        remove_tree(staging)
        raise
    report: dict[str, Any] = {
        "original_rows": counted["n"],
        "processed_rows": written.rows,
        "removed": dict(processor.removed),
    }
    if "splits" in written.stats:
        report["splits"] = written.stats["splits"]
    if tokenizer is not None and options.tokenize:
        report["tokens"] = processor.tokens
    if written.rows == 0:
        remove_tree(staging)
        raise InvalidInput(
            f"preprocessing would remove every row ({report['removed']}); nothing was created",
            code="no_rows_left",
        )
    new = NewVersion(
        recipe={
            "kind": "preprocess",
            "options": recipe_options,
            "from_version": version.number,
            "report": report,
        },
        message=message or "preprocess",
        counts={"rows": written.rows, "valid_rows": written.rows, "invalid_rows": 0},
        format=version.format,
        sha256=written.sha256,
        size_bytes=written.normalized_bytes,
        normalized_bytes=written.normalized_bytes,
        mapping=version.mapping,
        detection=version.detection,
    )
    dataset, created = _commit_version(
        session, settings=settings, actor=actor, staging=staging, new=new, dataset=dataset, name=dataset.name,
        description=dataset.description, action=AuditAction.dataset_preprocessed, ip=ip,
    )  # fmt: skip
    return PreprocessOutcome(report=report, samples=[], dataset=dataset, version=created)

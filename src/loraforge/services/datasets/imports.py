"""Imports: datasets made from somewhere other than an upload: the demo sample shipped in the package,
the entries of a LLaMA-Factory dataset_info.json (files attached or in a server folder), a file in
an admin-allowed server folder, and a Hugging Face Hub dataset. Each ends in
`versions.create_from_file`, like an upload.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy.orm import Session

from loraforge.datastore.reading import iter_rows
from loraforge.datastore.sniffing import IngestError, safe_suffix, sniff
from loraforge.db.models import Dataset, DatasetVersion, User
from loraforge.errors import Forbidden, InvalidInput, NotFound, PayloadTooLarge, ServiceError, Unavailable
from loraforge.services.datasets.staging import from_ingest_error, new_upload_folder, stage_upload
from loraforge.services.datasets.versions import IngestOptions, create_from_file
from loraforge.services.platform import ownership
from loraforge.services.platform.owner_names import clip_name
from loraforge.settings import Settings


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
    # Reading the server's disk is an operator's power (docs/security.md), even inside the roots.
    ownership.ensure_role(actor, ownership.STAFF)
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
        name=clip_name(name or resolved.stem), description=description, options=options,
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
    folder = new_upload_folder(settings)
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
        raise from_ingest_error(exc) from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return create_from_file(
        session, settings=settings, actor=actor, source=combined,
        filename=f"{repo_id.replace('/', '_')}.jsonl",
        source_sha256=sha.hexdigest(), name=clip_name(name or repo_id), description=description,
        options=options,
        recipe={"kind": "import", "source": "hub", "repo_id": repo_id, "revision": revision, "split": split},
        ip=ip,
    )  # fmt: skip

"""Fine-tune files of the OpenAI-compatible API: the strict check and the dataset they become.

Fine-tune files are checked strictly, like OpenAI does: every line must be a valid example of one
format (LoRAForge's own row converter decides, as for training), or the upload is refused with the
line named. OpenAI's preference format (`input.messages`, `preferred_output`, `non_preferred_output`)
is rewritten to LoRAForge's `messages` + `chosen`/`rejected` rows for the dataset. `files` stores the
bytes and owns the file rows; this module only reads the staged upload and makes the dataset.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.orm import Session

from loraforge.datastore import paths
from loraforge.datastore.detect import attr_for, row_kind
from loraforge.datastore.ingest import link_or_copy
from loraforge.datastore.reading import RowIssue, iter_rows
from loraforge.datastore.sniffing import IngestError, sniff
from loraforge.db.models import Dataset, DatasetVersion, User
from loraforge.engine.data.formats import RowError, convert_row
from loraforge.errors import FieldIssue, InvalidInput
from loraforge.services.datasets.staging import file_sha256, new_upload_folder
from loraforge.services.datasets.versions import IngestOptions, create_from_file
from loraforge.services.platform.owner_names import clip_name
from loraforge.settings import Settings

_DPO_KEYS = ("input", "preferred_output", "non_preferred_output")


def _bad_line(line: int, where: str, message: str) -> InvalidInput:
    text = f"line {line}: {where}: {message}" if where and where != "<row>" else f"line {line}: {message}"
    return InvalidInput(
        f"invalid fine-tune file: {text}",
        code="invalid_file",
        fields=[FieldIssue(field="file", message=text)],
    )


def _from_openai_dpo(row: dict[str, Any], line: int) -> dict[str, Any]:
    """OpenAI's preference row → LoRAForge's messages + chosen/rejected (the engine reads those)."""
    source = row.get("input")
    messages = source.get("messages") if isinstance(source, dict) else None
    if not isinstance(messages, list) or not messages:
        raise _bad_line(line, "input.messages", "missing or not a non-empty list of messages")
    out: dict[str, Any] = {
        "messages": messages,
        "chosen": row.get("preferred_output"),
        "rejected": row.get("non_preferred_output"),
    }
    if isinstance(source, dict) and source.get("tools"):
        out["tools"] = json.dumps(source["tools"], ensure_ascii=False)
    return out


@dataclass(frozen=True)
class CheckedFile:
    format: str
    rows: int
    converted: Path | None  # OpenAI preference rows rewritten for ingest; None = ingest the upload itself


def check_fine_tune_file(
    settings: Settings, path: Path, filename: str | None, *, work_dir: Path
) -> CheckedFile:
    """Every row must be one valid example of the first row's format (LoRAForge's own row converter
    decides, as for training). Raises InvalidInput naming the first bad line. Preference rows in
    OpenAI's format are rewritten into a new file in `work_dir`."""
    try:
        info = sniff(path, filename)
    except IngestError as exc:
        raise InvalidInput(
            f"invalid fine-tune file: {exc.message}", code="invalid_file",
            fields=[FieldIssue(field="file", message=exc.message)],
        ) from None  # fmt: skip
    if info.kind != "jsonl":
        raise InvalidInput(
            "fine-tune files must be JSONL: one JSON object per line (name the file .jsonl)",
            code="invalid_file",
            fields=[FieldIssue(field="file", message=f"not JSONL (read as {info.kind})")],
        )
    if info.converted_from is not None:
        raise InvalidInput(
            f"fine-tune files must be UTF-8 ({info.notes[0] if info.notes else info.converted_from})",
            code="invalid_file",
            fields=[FieldIssue(field="file", message="not UTF-8")],
        )
    kind: str | None = None
    attr = None
    dpo = False
    count = 0
    converted: Path | None = None
    writer: TextIO | None = None
    try:
        for line, row in iter_rows(path, info, max_row_bytes=settings.dataset_max_row_bytes):
            if isinstance(row, RowIssue):
                raise _bad_line(line, row.field, row.message)
            if kind is None:
                dpo = all(key in row for key in _DPO_KEYS)
            if dpo:
                if not all(key in row for key in _DPO_KEYS):
                    raise _bad_line(line, "<row>", f"line 1 is a preference row; this one lacks {_DPO_KEYS}")
                row = _from_openai_dpo(row, line)
            found = row_kind(row)
            if found is None:
                raise _bad_line(line, "<row>", f"cannot tell the format from the keys {sorted(row)}")
            if kind is None:
                kind, attr = found, attr_for(found, row)
                if dpo:
                    converted = work_dir / f"{uuid.uuid4().hex}.jsonl"
                    writer = converted.open("w", encoding="utf-8")
            elif found != kind:
                raise _bad_line(line, "<row>", f"a {found} row, but line 1 set the format to {kind}")
            assert attr is not None
            try:
                example = convert_row(row, attr)
            except RowError as exc:
                raise _bad_line(line, exc.field, exc.message) from None
            if kind == "preference" and len(example["response"]) != 2:
                raise _bad_line(line, "chosen", "a preference row needs a chosen and a rejected answer")
            if writer is not None:
                writer.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    except BaseException:
        if writer is not None:
            writer.close()
        if converted is not None:
            converted.unlink(missing_ok=True)
        raise
    if writer is not None:
        writer.close()
    if kind is None or count == 0:
        raise InvalidInput(
            "invalid fine-tune file: it holds no rows", code="invalid_file",
            fields=[FieldIssue(field="file", message="no rows")],
        )  # fmt: skip
    return CheckedFile(format=kind, rows=count, converted=converted)


def make_dataset(
    session: Session,
    *,
    settings: Settings,
    actor: User,
    staged: Path,
    checked: CheckedFile,
    filename: str,
    sha256: str,
    ip: str | None,
) -> tuple[Dataset, DatasetVersion]:
    """Make the dataset the way the dataset upload does (`services.datasets.versions.create_from_file`).

    It consumes its source (moved into the version folder), so it gets a hard link of the upload, or
    the rewritten preference file, in a staged-upload folder of its own."""
    folder: Path | None = None
    try:
        folder = new_upload_folder(settings)
        source = folder / "data"
        if checked.converted is not None:
            os.replace(checked.converted, source)
            ingest_name = filename if filename.lower().endswith(".jsonl") else f"{filename}.jsonl"
            digest = file_sha256(source)
        else:
            link_or_copy(staged, source)
            ingest_name, digest = filename, sha256
    except BaseException:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        if checked.converted is not None:
            checked.converted.unlink(missing_ok=True)
        raise
    dataset, version = create_from_file(
        session, settings=settings, actor=actor, source=source, filename=ingest_name, source_sha256=digest,
        name=clip_name(filename), description="Uploaded through the OpenAI files API (/v1/files).",
        options=IngestOptions(format=checked.format), recipe={"kind": "openai_file"}, ip=ip,
    )  # fmt: skip
    if version.invalid_rows:
        # The strict check and the ingest disagree (should not happen): refuse rather than train on less.
        first: dict[str, Any] = version.errors[0] if version.errors else {"row": 0, "message": "invalid row"}
        drop_dataset(session, settings=settings, dataset_id=dataset.id)
        raise _bad_line(int(first.get("row") or 0), str(first.get("field", "")), str(first.get("message")))
    return dataset, version


def drop_dataset(session: Session, *, settings: Settings, dataset_id: int) -> None:
    """Undo a dataset this module created a moment ago (rows and folder), without an audit entry of
    its own: the upload it belonged to never happened."""
    session.rollback()
    dataset = session.get(Dataset, dataset_id)
    if dataset is not None:
        session.delete(dataset)
        session.commit()
    shutil.rmtree(paths.dataset_dir(dataset_id, settings.data_dir), ignore_errors=True)

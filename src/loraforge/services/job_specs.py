"""From the spec a user writes to the spec the engine reads.

Users write the engine's vocabulary (LLaMA-Factory keys) with two differences: `dataset` is a
LoRAForge dataset id (plus an optional `dataset_version` id), and paths are the server's business:
`output_dir` is forced into the run directory, data and validation files are written there from the
pinned version's normalized.jsonl, and a researcher may name only `demo-tiny` or a hub id as model.

Torch-free and DB-free except for `resolve_dataset` (ownership policy).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from loraforge.datastore import paths
from loraforge.db.models import Dataset, DatasetVersion, User
from loraforge.engine.spec import SpecError, load_spec
from loraforge.services import datasets as dataset_service
from loraforge.services import ownership
from loraforge.services.errors import FieldIssue, InvalidInput, NotFound
from loraforge.settings import Settings

DEMO_MODEL = "demo-tiny"
# Keys that name server paths: the server sets them (or nobody may), never the user.
SERVER_PATH_KEYS = ("dataset_dir", "eval_dataset", "validation_file", "cache_dir", "data_cache_dir")
# Keys the server derives from the pinned dataset version; what the user wrote is replaced.
DERIVED_KEYS = ("output_dir", "formatting", "columns", "tags", "ranking")
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_TRUSTED = ownership.STAFF  # may name server paths and run remote code
_PLACEHOLDER_DATA = "/dev/null/placeholder.jsonl"
TRAIN_FILE = "data/train.jsonl"
VALIDATION_FILE = "data/validation.jsonl"


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"invalid job spec: {field}: {message}",
        code="invalid_spec",
        fields=[FieldIssue(field=f"spec.{field}", message=message)],
    )


def _is_hub_id(value: str) -> bool:
    return bool(_HUB_ID.match(value)) and ".." not in value


def _check_model_ref(actor: User, key: str, value: Any) -> None:
    if value is None or not isinstance(value, str):
        return  # load_spec reports type errors
    if value == DEMO_MODEL or _is_hub_id(value):
        return
    if actor.role_enum in _TRUSTED:
        return
    raise _invalid(
        key,
        f"must be {DEMO_MODEL!r} or a Hugging Face hub id like 'Qwen/Qwen2.5-0.5B' "
        "(server paths are not allowed)",
    )


def _as_id(value: Any, field: str) -> int:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool):
        raise _invalid(field, "must be a dataset id (an integer)")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise _invalid(field, "must be a LoRAForge dataset id (an integer)")


@dataclass(frozen=True)
class CheckedSpec:
    spec: dict[str, Any]  # as stored: dataset id and the pinned version id
    dataset: Dataset
    version: DatasetVersion


def resolve_dataset(session: Session, *, actor: User, spec: dict[str, Any]) -> tuple[Dataset, DatasetVersion]:
    if spec.get("dataset") in (None, "", []):
        raise _invalid("dataset", "required: the id of one of your datasets")
    dataset_id = _as_id(spec["dataset"], "dataset")
    version_id = spec.get("dataset_version")
    try:
        dataset = dataset_service.get_dataset(session, actor=actor, dataset_id=dataset_id)
    except NotFound:
        raise _invalid("dataset", f"no dataset {dataset_id} that you may use") from None
    version_id = dataset.current_version_id if version_id is None else _as_id(version_id, "dataset_version")
    version = session.get(DatasetVersion, version_id) if version_id is not None else None
    if version is None or version.dataset_id != dataset.id:
        raise _invalid("dataset_version", f"dataset {dataset_id} has no version {version_id}")
    return dataset, version


def check_spec(session: Session, *, actor: User, spec: dict[str, Any]) -> CheckedSpec:
    """Validate a user's spec with the engine's own schema; pin the dataset version. 422 names the field."""
    for key in SERVER_PATH_KEYS:
        if spec.get(key) not in (None, "", [], "data"):
            raise _invalid(key, "set by the server (jobs read the pinned dataset version)")
    resume = spec.get("resume_from_checkpoint")
    if isinstance(resume, str):
        raise _invalid("resume_from_checkpoint", "set by the server")
    _check_model_ref(actor, "model_name_or_path", spec.get("model_name_or_path"))
    _check_model_ref(actor, "adapter_name_or_path", spec.get("adapter_name_or_path"))
    if spec.get("trust_remote_code") and actor.role_enum not in _TRUSTED:
        raise _invalid("trust_remote_code", "only operators and admins may run a model's remote code")
    dataset, version = resolve_dataset(session, actor=actor, spec=spec)
    candidate = {k: v for k, v in spec.items() if k not in ("dataset", "dataset_version", *DERIVED_KEYS)}
    candidate["dataset"] = [_PLACEHOLDER_DATA]
    try:
        load_spec(candidate)
    except SpecError as exc:
        fields = [FieldIssue(field=f"spec.{p.key}", message=p.message) for p in exc.problems]
        names = ", ".join(f"spec.{p.key}" for p in exc.problems)
        raise InvalidInput(f"invalid job spec: {names}", code="invalid_spec", fields=fields) from None
    stored = {**spec, "dataset": dataset.id, "dataset_version": version.id}
    return CheckedSpec(spec=stored, dataset=dataset, version=version)


# ---- what the engine gets ---------------------------------------------------------------------------


def _role(message: dict[str, Any]) -> dict[str, str]:
    role = str(message.get("role", "user"))
    role = {"observation": "tool"}.get(role, role)
    return {"role": role, "content": str(message.get("content", ""))}


def _engine_row(example: dict[str, Any], fmt: str) -> dict[str, Any]:
    prompt = [_role(m) for m in example.get("prompt") or []]
    response = [_role(m) for m in example.get("response") or []]
    if fmt == "text":
        return {"text": prompt[0]["content"] if prompt else ""}
    system = [{"role": "system", "content": example["system"]}] if example.get("system") else []
    row: dict[str, Any] = {"tools": example.get("tools") or ""}
    if fmt == "preference":
        row.update(messages=system + prompt, chosen=response[0], rejected=response[1])
    else:
        row["messages"] = system + prompt + response[:1]
        if fmt == "kto":
            row["label"] = bool(example.get("label"))
    return row


def write_engine_data(normalized: Path, run_dir: Path, fmt: str) -> dict[str, Any]:
    """Convert the pinned normalized.jsonl into files the engine reads (OpenAI messages, or text);
    return the spec keys that point the engine at them."""
    train = run_dir / TRAIN_FILE
    validation = run_dir / VALIDATION_FILE
    train.parent.mkdir(parents=True, exist_ok=True)
    n_validation = 0
    with normalized.open(encoding="utf-8") as src, train.open("w", encoding="utf-8") as out_train:
        out_val = None
        try:
            for line in src:
                if not line.strip():
                    continue
                example = json.loads(line)
                text = json.dumps(_engine_row(example, fmt), ensure_ascii=False) + "\n"
                if example.get("split") == "validation":
                    if out_val is None:
                        out_val = validation.open("w", encoding="utf-8")
                    out_val.write(text)
                    n_validation += 1
                else:
                    out_train.write(text)
        finally:
            if out_val is not None:
                out_val.close()
    keys: dict[str, Any] = {"dataset": [str(train)]}
    if fmt == "text":
        keys.update(formatting="text", columns={"prompt": "text"})
    else:
        columns = {"messages": "messages", "tools": "tools"}
        if fmt == "kto":
            columns["kto_tag"] = "label"
        keys.update(formatting="openai", columns=columns, ranking=fmt == "preference")
    if n_validation:
        keys["validation_file"] = str(validation)
    return keys


_demo_lock = threading.Lock()


def ensure_demo_model(settings: Settings) -> Path:
    """`<data_dir>/models/demo-tiny`, built on first use in a subprocess (the server never imports torch)."""
    target = settings.models_dir / DEMO_MODEL
    with _demo_lock:
        if (target / "config.json").exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".demo-", dir=target.parent))
        try:
            subprocess.run(  # an argument list, never a shell
                [sys.executable, "-m", "loraforge", "demo-model", str(staging / "model")],
                check=True,
                capture_output=True,
                timeout=600,
            )
            (staging / "model").rename(target)
        except subprocess.CalledProcessError as exc:
            tail = exc.stderr.decode("utf-8", "replace")[-2000:] if exc.stderr else ""
            raise RuntimeError(f"building the demo model failed: {tail}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target


def engine_spec(
    settings: Settings, *, spec: dict[str, Any], version: DatasetVersion, run_dir: Path
) -> dict[str, Any]:
    """The spec written to RUN_DIR/spec.json (data files are written into run_dir on the way)."""
    out = {k: v for k, v in spec.items() if k not in ("dataset", "dataset_version", *DERIVED_KEYS)}
    normalized = paths.normalized_path(version.dataset_id, version.id, data_dir=settings.data_dir)
    out.update(write_engine_data(normalized, run_dir, version.format))
    out["output_dir"] = str(run_dir / "output")
    if out.get("model_name_or_path") == DEMO_MODEL:
        out["model_name_or_path"] = str(ensure_demo_model(settings))
    load_spec(dict(out))  # the engine will accept it
    return out

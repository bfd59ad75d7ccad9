"""From the spec a user writes to the spec the engine reads.

Users write the engine's vocabulary (LLaMA-Factory keys) with two differences: `dataset` is a
LoRAForge dataset id (plus an optional `dataset_version` id), and paths are the server's business:
`output_dir` is forced into the run directory, data and validation files are written there from the
pinned version's normalized.jsonl, and a researcher may name only `demo-tiny` or a hub id as model.

Torch-free and DB-free except for `resolve_dataset` (ownership policy).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from loraforge.datastore import paths
from loraforge.db.models import Dataset, DatasetVersion, User
from loraforge.engine.spec_loading import SpecError, load_spec, shape_problem
from loraforge.errors import FieldIssue, InvalidInput, NotFound, ServiceError
from loraforge.services.datasets import catalog as dataset_service
from loraforge.services.jobs import eval_request
from loraforge.services.models import resolution
from loraforge.services.models.refs import DEMO_MODEL, ensure_demo_model, is_hub_id
from loraforge.services.platform import ownership
from loraforge.settings import Settings

# Keys that name server paths: the server sets them (or nobody may), never the user.
SERVER_PATH_KEYS = ("dataset_dir", "eval_dataset", "validation_file", "cache_dir", "data_cache_dir")
# Keys the server derives from the pinned dataset version; what the user wrote is replaced.
DERIVED_KEYS = ("output_dir", "formatting", "columns", "tags", "ranking")
# Keys for the server alone, never passed to the engine: the before/after evaluation request.
SERVER_ONLY_KEYS = (eval_request.SPEC_KEY,)
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


def _check_model_ref(actor: User, key: str, value: Any) -> None:
    if value is None or not isinstance(value, str):
        return  # load_spec reports type errors
    if value == DEMO_MODEL or is_hub_id(value):
        return
    if actor.role_enum in _TRUSTED:
        return
    raise _invalid(
        key,
        f"must be {DEMO_MODEL!r} or a Hugging Face hub id like 'Qwen/Qwen2.5-0.5B' "
        "(server paths are not allowed)",
    )


# Row ids are SQL BIGINTs: a larger number cannot name a row (and would overflow the driver).
MAX_ROW_ID = 2**63 - 1


def parse_id(value: Any) -> int | None:
    """An id written as an integer, a string of ASCII digits or a one-item list of either; else None.

    ASCII only: `str.isdigit` is also true for `³` or `٣`, which `int` then refuses or reads.
    """
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if (
        isinstance(value, str)
        and len(value.strip()) <= 19
        and value.strip().isascii()
        and value.strip().isdigit()
    ):
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ROW_ID:
        return value
    return None


def _as_id(value: Any, field: str) -> int:
    found = parse_id(value)
    if found is None:
        raise _invalid(field, "must be a LoRAForge dataset id (a positive integer)")
    return found


def spec_error(exc: SpecError) -> InvalidInput:
    """The engine's problems with a spec as a 422 naming each key (at most MAX_PROBLEMS; the rest counted)."""
    fields = [FieldIssue(field=f"spec.{p.key}", message=p.message) for p in exc.problems]
    names = ", ".join(f"spec.{p.key}" for p in exc.problems)
    more = f" (and {exc.omitted} more)" if exc.omitted else ""
    return InvalidInput(f"invalid job spec: {names}{more}", code="invalid_spec", fields=fields)


def check_shape(spec: Any) -> None:
    """Refuse an oversized spec (keys, nesting, values) before anything costly reads it."""
    problem = shape_problem(spec)
    if problem is not None:
        raise InvalidInput(
            f"invalid job spec: {problem.message}",
            code="invalid_spec",
            fields=[
                FieldIssue(
                    field="spec" if problem.key == "<spec>" else f"spec.{problem.key}",
                    message=problem.message,
                )
            ],
        )


# Spec keys the server resolves itself and never passes to the engine as written.
VALIDATION_KEYS = ("validation_dataset", "validation_dataset_version")
_PLACEHOLDER_VALIDATION = "/dev/null/placeholder-validation.jsonl"
_MODEL_KEYS = ("model_name_or_path", "adapter_name_or_path")


def _family(fmt: str) -> str:
    """Formats whose engine rows have the same shape (validation rows must match training rows)."""
    return fmt if fmt in ("text", "preference", "kto", "multiple_choice") else "chat"


def _pin_registered_models(session: Session, *, actor: User, spec: dict[str, Any]) -> set[str]:
    """Replace registered model names in the model keys by `<name>@v<number>` (the version pinned now);
    returns the keys that named one. A name the actor may not read is left alone (a hub id, maybe)."""
    pinned: set[str] = set()
    weights: dict[str, str] = {}
    for key in _MODEL_KEYS:
        value = spec.get(key)
        if not isinstance(value, str) or not value:
            continue
        try:
            found = resolution.pin_for_training(session, actor=actor, value=value)
        except ServiceError as exc:  # e.g. model_not_ready
            raise _invalid(key, exc.message) from None
        if found is not None:
            spec[key], version = found
            weights[key] = version.weights
            pinned.add(key)
    if weights.get("adapter_name_or_path") == "full":
        raise _invalid("adapter_name_or_path", "names a model with full weights, not a LoRA adapter")
    if weights.get("model_name_or_path") == "adapter" and spec.get("adapter_name_or_path"):
        raise _invalid(
            "adapter_name_or_path",
            "model_name_or_path already names an adapter (training continues from it); leave this unset",
        )
    return pinned


def resolve_validation(
    session: Session, *, actor: User, spec: dict[str, Any], train_format: str
) -> tuple[Dataset, DatasetVersion] | None:
    """The optional `validation_dataset` (+ `validation_dataset_version`): a dataset the actor may use
    whose rows become data/validation.jsonl."""
    if spec.get("validation_dataset") in (None, "", []):
        if spec.get("validation_dataset_version") is not None:
            raise _invalid("validation_dataset_version", "needs validation_dataset")
        return None
    dataset_id = _as_id(spec["validation_dataset"], "validation_dataset")
    try:
        dataset = dataset_service.get_dataset(session, actor=actor, dataset_id=dataset_id)
    except NotFound:
        raise _invalid("validation_dataset", f"no dataset {dataset_id} that you may use") from None
    raw_version = spec.get("validation_dataset_version")
    version_id = (
        dataset.current_version_id
        if raw_version is None
        else _as_id(raw_version, "validation_dataset_version")
    )
    version = session.get(DatasetVersion, version_id) if version_id is not None else None
    if version is None or version.dataset_id != dataset.id:
        raise _invalid("validation_dataset_version", f"dataset {dataset_id} has no version {version_id}")
    if _family(version.format) != _family(train_format):
        raise _invalid(
            "validation_dataset",
            f"a {version.format} dataset cannot validate training on {train_format} data",
        )
    return dataset, version


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


def check_model_refs(session: Session, *, actor: User, spec: dict[str, Any]) -> None:
    """The model rule of jobs and templates: registered names (pinned in place to `name@vN`), demo-tiny,
    hub ids; server paths only for operators/admins."""
    registered = _pin_registered_models(session, actor=actor, spec=spec)
    for key in _MODEL_KEYS:
        if key not in registered:
            _check_model_ref(actor, key, spec.get(key))


def check_spec(session: Session, *, actor: User, spec: dict[str, Any]) -> CheckedSpec:
    """Validate a user's spec with the engine's own schema; pin the dataset version. 422 names the field."""
    check_shape(spec)
    for key in SERVER_PATH_KEYS:
        if spec.get(key) not in (None, "", [], "data"):
            raise _invalid(key, "set by the server (jobs read the pinned dataset version)")
    resume = spec.get("resume_from_checkpoint")
    if isinstance(resume, str):
        raise _invalid("resume_from_checkpoint", "set by the server")
    if spec.get("stage") in ("merge", eval_request.STAGE):
        # A merge job has no dataset and names a registry version: `services.jobs.merge` creates it.
        raise _invalid(
            "stage",
            "merge jobs are created from a model version (POST /api/models/versions/{id}/merge), "
            "evaluation jobs from an evaluation (POST /api/evaluations)",
        )
    spec = dict(spec)
    check_model_refs(session, actor=actor, spec=spec)
    if spec.get("trust_remote_code") and actor.role_enum not in _TRUSTED:
        raise _invalid("trust_remote_code", "only operators and admins may run a model's remote code")
    dataset, version = resolve_dataset(session, actor=actor, spec=spec)
    if version.format == "multiple_choice":  # questions with answer letters: nothing to learn from
        raise _invalid(
            "dataset",
            f"dataset {dataset.id} holds multiple-choice questions, which evaluate a model (metric "
            "multiple_choice) but cannot train one; choose a dataset in a training format",
        )
    if spec.get("stage") == "kto" and version.format != "kto":  # refused here, not at launch
        raise _invalid(
            "dataset",
            f"stage kto needs a KTO dataset (one answer per example with a true/false label); "
            f"dataset {dataset.id} is {version.format}",
        )
    if spec.get(eval_request.SPEC_KEY) is not None:
        spec[eval_request.SPEC_KEY] = eval_request.check_before_after(
            session, actor=actor, block=spec[eval_request.SPEC_KEY]
        )
    validation = resolve_validation(session, actor=actor, spec=spec, train_format=version.format)
    candidate = {
        k: v
        for k, v in spec.items()
        if k not in ("dataset", "dataset_version", *VALIDATION_KEYS, *DERIVED_KEYS, *SERVER_ONLY_KEYS)
    }
    candidate["dataset"] = [_PLACEHOLDER_DATA]
    if validation is not None:
        candidate["validation_file"] = _PLACEHOLDER_VALIDATION
    try:
        load_spec(candidate)
    except SpecError as exc:
        raise spec_error(exc) from None
    stored = {**spec, "dataset": dataset.id, "dataset_version": version.id}
    if validation is not None:
        stored.update(validation_dataset=validation[0].id, validation_dataset_version=validation[1].id)
    return CheckedSpec(spec=stored, dataset=dataset, version=version)


# ---- what the engine gets ---------------------------------------------------------------------------


def _role(message: dict[str, Any]) -> dict[str, str]:
    role = str(message.get("role", "user"))
    role = {"observation": "tool"}.get(role, role)
    return {"role": role, "content": str(message.get("content", ""))}


def engine_row(example: dict[str, Any], fmt: str) -> dict[str, Any]:
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


def write_engine_data(
    normalized: Path, run_dir: Path, fmt: str, *, extra_validation: tuple[Path, str] | None = None
) -> dict[str, Any]:
    """Convert the pinned normalized.jsonl into files the engine reads (OpenAI messages, or text);
    return the spec keys that point the engine at them. `extra_validation` (a validation dataset's
    normalized.jsonl and format) is appended to the split's validation rows."""
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
                text = json.dumps(engine_row(example, fmt), ensure_ascii=False) + "\n"
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
    if extra_validation is not None:
        with validation.open("a", encoding="utf-8") as out_val:
            n_validation += _write_rows(extra_validation[0], out_val, extra_validation[1])
    if n_validation:
        keys["validation_file"] = str(validation)
    return keys


def _write_rows(normalized: Path, out: Any, fmt: str) -> int:
    """Every row of a normalized.jsonl as an engine row (a validation dataset: split marks ignored)."""
    count = 0
    with normalized.open(encoding="utf-8") as src:
        for line in src:
            if line.strip():
                out.write(json.dumps(engine_row(json.loads(line), fmt), ensure_ascii=False) + "\n")
                count += 1
    return count


def engine_spec(
    settings: Settings,
    *,
    spec: dict[str, Any],
    version: DatasetVersion,
    run_dir: Path,
    validation: DatasetVersion | None = None,
) -> dict[str, Any]:
    """The spec written to RUN_DIR/spec.json (data files are written into run_dir on the way).
    `validation`: the pinned `validation_dataset_version` (required when the spec names one)."""
    out = {
        k: v
        for k, v in spec.items()
        if k not in ("dataset", "dataset_version", *VALIDATION_KEYS, *DERIVED_KEYS, *SERVER_ONLY_KEYS)
    }
    normalized = paths.normalized_path(version.dataset_id, version.id, data_dir=settings.data_dir)
    extra: tuple[Path, str] | None = None
    if spec.get("validation_dataset_version") is not None:
        if validation is None or validation.id != spec["validation_dataset_version"]:
            raise RuntimeError("the pinned validation dataset version no longer exists")
        extra = (
            paths.normalized_path(validation.dataset_id, validation.id, data_dir=settings.data_dir),
            validation.format,
        )
    out.update(write_engine_data(normalized, run_dir, version.format, extra_validation=extra))
    out["output_dir"] = str(run_dir / "output")
    if out.get("model_name_or_path") == DEMO_MODEL:
        out["model_name_or_path"] = str(ensure_demo_model(settings))
    load_spec(dict(out))  # the engine will accept it
    return out


def apply_registered_models(session: Session, *, settings: Settings, spec: dict[str, Any]) -> None:
    """Turn the `<name>@v<number>` a checked spec pinned into folders for the engine (at launch): a full
    version is its folder (or hub id); an adapter version is its base plus `adapter_name_or_path`."""
    for key in _MODEL_KEYS:
        found = resolution.pinned_version(session, spec.get(key))
        if found is None:
            if isinstance(spec.get(key), str) and "@v" in spec[key] and not Path(spec[key]).exists():
                raise RuntimeError(f"the registered model {spec[key]!r} no longer exists")
            continue
        base, adapter = resolution.load_paths(session, settings=settings, version=found[1])
        if key == "model_name_or_path":
            spec[key] = base
            if adapter is not None:
                spec["adapter_name_or_path"] = str(adapter)
        else:
            spec[key] = str(adapter) if adapter is not None else base

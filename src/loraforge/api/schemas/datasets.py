"""Datasets: uploads, versions, preview and stats, preprocessing, comparison, imports."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from loraforge.api.ids import Id, Offset
from loraforge.api.schemas.common import Name, RequestModel, ResponseModel

DatasetFormat = Literal["alpaca", "sharegpt", "messages", "preference", "kto", "text", "multiple_choice"]
DatasetDescription = Annotated[str, Field(max_length=10_000)]


class RowErrorView(BaseModel):
    row: int = Field(description="1-based row: the line for JSONL/TXT, the record for JSON/CSV/Parquet.")
    field: str = Field(description="Path of the offending field, e.g. `messages[2].role`.")
    message: str


class DatasetMapping(BaseModel):
    """Like an entry of LLaMA-Factory's dataset_info.json: how columns and role tags map."""

    model_config = ConfigDict(extra="ignore")

    formatting: Literal["alpaca", "sharegpt", "openai", "text", "multiple_choice"] | None = None
    ranking: bool = False
    columns: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)


class DatasetVersionPublic(ResponseModel):
    id: int
    dataset_id: int
    number: int
    parent_id: int | None = Field(description="The version that was current when this one was made.")
    message: str
    author_id: int | None
    author_username: str | None
    created_at: datetime
    format: DatasetFormat
    rows: int
    valid_rows: int
    invalid_rows: int
    size_bytes: int
    normalized_bytes: int
    sha256: str = Field(description="SHA-256 of the normalized JSONL (the content address).")
    source_sha256: str | None = Field(description="SHA-256 of the original file, when there is one.")
    original_filename: str | None
    recipe: dict[str, Any] = Field(
        description="How it was made: `{kind: upload|import|sample|preprocess|rollback, ...}`."
    )
    mapping: dict[str, Any]
    detection: dict[str, Any] = Field(
        description="Evidence: sampled_rows, votes per format, matched_keys, encoding, file_type, notes."
    )
    errors: list[RowErrorView]


class DatasetPublic(ResponseModel):
    id: int
    owner_id: int
    name: str
    description: str
    format: DatasetFormat
    rows: int = Field(description="Rows read from the file (valid + invalid).")
    valid_rows: int
    invalid_rows: int
    errors: list[RowErrorView] = Field(
        description="The first row errors of the current version (at most 100)."
    )
    current_version: int | None = Field(description="Number of the current version.")
    current_version_id: int | None
    size_bytes: int
    created_at: datetime
    updated_at: datetime
    detection: dict[str, Any] = Field(default_factory=dict)
    mapping: dict[str, Any] = Field(default_factory=dict)


class DatasetPage(BaseModel):
    items: list[DatasetPublic]
    total: int
    page: int
    page_size: int


class DatasetUpdate(RequestModel):
    name: Name | None = None
    description: DatasetDescription | None = None


class UploadCreate(RequestModel):
    filename: Annotated[str, Field(min_length=1, max_length=1000, description="Display only; never a path.")]
    size: Offset = Field(description="Total size in bytes.")
    sha256: Annotated[str, Field(min_length=64, max_length=64, description="Hex SHA-256 of the whole file.")]
    name: Name | None = Field(default=None, description="Dataset name (default: the file name).")
    description: DatasetDescription = ""
    format: DatasetFormat | None = Field(default=None, description="Format override; omit to detect.")
    mapping: DatasetMapping | None = None
    txt_mode: Literal["lines", "document"] = "lines"
    dataset_id: Id | None = Field(default=None, description="Make the upload a new version of this dataset.")
    message: Annotated[str, Field(max_length=2000)] = ""


class ByteRange(BaseModel):
    start: int
    end: int = Field(description="Exclusive.")


class UploadPublic(BaseModel):
    id: str
    filename: str
    name: str
    size: int
    sha256: str
    chunk_size: int = Field(description="Suggested chunk size in bytes.")
    max_chunk_bytes: int
    status: Literal["open", "completing", "completed"]
    received_bytes: int
    missing: list[ByteRange]
    dataset_id: int | None = Field(description="Target dataset for a new version, if any.")
    result_dataset_id: int | None
    result_version_id: int | None
    created_at: datetime
    expires_at: datetime


class DatasetCreated(BaseModel):
    dataset: DatasetPublic
    version: DatasetVersionPublic


class PreviewRow(BaseModel):
    model_config = ConfigDict(extra="allow")

    index: int = Field(description="0-based position in the version.")
    row: int = Field(description="1-based row of the source file.")
    prompt: list[dict[str, Any]] = Field(description="Turns `{role, content}` before the answer.")
    response: list[dict[str, Any]] = Field(
        description="The answer turn; [chosen, rejected] for preference; [] for text."
    )
    system: str
    tools: str
    label: bool | None
    split: str | None = None


class PreviewPage(BaseModel):
    items: list[PreviewRow]
    total: int = Field(description="Rows in the version, or with `q`: matches among the scanned rows.")
    page: int
    page_size: int
    version_id: int
    q: str | None
    scanned: int | None = Field(description="With `q`: rows scanned (search stops after 1,000,000).")
    complete: bool = Field(description="False when a search stopped before the end of the dataset.")


class DatasetStats(BaseModel):
    model_config = ConfigDict(extra="allow")

    version_id: int
    format: DatasetFormat
    rows: int
    characters: int
    tokens: dict[str, Any] = Field(
        description="`{approximate, tokenizer, total, mean, max, histogram: [{min, max, count}]}`."
    )
    turns: dict[str, int] = Field(description="Conversations per number of turns.")
    roles: dict[str, int]
    duplicates: dict[str, int] = Field(description="`{rows, groups}`: exact duplicate rows.")
    empty_fields: dict[str, int]


class SplitOptions(RequestModel):
    val_ratio: float = Field(gt=0, lt=1)
    seed: int = 42


class PreprocessOptions(RequestModel):
    clean_text: bool = Field(
        default=False,
        description="In prose: drop control characters and HTML tags, unescape entities, tidy whitespace. "
        "Code blocks, inline code and non-HTML angle brackets are kept as they are.",
    )
    remove_stopwords: bool | list[Literal["en", "zh"]] = Field(
        default=False, description="true: English and Chinese; or a list of languages."
    )
    tokenize: bool = Field(
        default=False, description="Pre-tokenize every turn with `tokenizer` and keep the ids."
    )
    tokenizer: str | None = Field(
        default=None, description="A local model folder under `<data_dir>/models` (e.g. `demo-tiny`)."
    )
    dedupe: bool | Literal["exact", "normalized"] = Field(
        default=False, description="true or normalized: exact and normalized duplicates; exact: exact only."
    )
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=1)
    length_unit: Literal["chars", "tokens"] = "chars"
    drop_empty: bool = False
    mask_pii: bool = Field(
        default=False, description="Emails, phone numbers, ID numbers → [EMAIL]/[PHONE]/[ID]."
    )
    split: SplitOptions | None = None


class PreprocessRequest(RequestModel):
    options: PreprocessOptions
    dry_run: bool = False
    dry_run_rows: int = Field(default=20, ge=1, le=1000)
    version_id: Id | None = Field(default=None, description="Version to process (default: current).")
    message: Annotated[str, Field(max_length=2000)] = ""


class PreprocessReport(BaseModel):
    model_config = ConfigDict(extra="allow")

    original_rows: int
    processed_rows: int
    removed: dict[str, int]


class PreprocessSample(BaseModel):
    row: int | None
    before: dict[str, Any]
    after: dict[str, Any] | None
    removed: str | None = Field(description="Why the row would be removed, or null.")


class PreprocessEstimate(BaseModel):
    rows_in: int = Field(description="Rows in the version.")
    rows_out: int = Field(description="Rows the real run would keep.")
    removed: dict[str, int] = Field(description="Rows the real run would remove, per reason.")
    sample_rows: int = Field(description="The filters ran over the first `sample_rows` rows.")
    extrapolated: bool = Field(
        description="false: the sample is every row and the counts are exact; true: counts scaled by "
        "rows_in / sample_rows."
    )


class PreprocessResult(BaseModel):
    dry_run: bool
    report: PreprocessReport = Field(
        description="What the run reports; for a dry run, the estimate for the whole version."
    )
    estimate: PreprocessEstimate | None = Field(description="Dry run only: how the report was estimated.")
    samples: list[PreprocessSample] = Field(description="Dry run only: before/after pairs.")
    dataset: DatasetPublic | None
    version: DatasetVersionPublic | None


class RollbackRequest(RequestModel):
    message: Annotated[str, Field(max_length=2000)] = ""


class CompareResult(BaseModel):
    a: DatasetVersionPublic
    b: DatasetVersionPublic
    added: int
    removed: int
    changed: int
    unchanged: int
    samples: dict[str, list[dict[str, Any]]] = Field(
        description="`{added: [{row, after}], removed: [{row, before}], changed: [{row, before, after}]}`."
    )


class ImportSkip(BaseModel):
    name: str
    reason: str


class ImportFailure(BaseModel):
    name: str
    code: str
    message: str


class ImportResult(BaseModel):
    items: list[DatasetPublic]
    skipped: list[ImportSkip]
    failed: list[ImportFailure]


class PathImport(RequestModel):
    path: Annotated[
        str, Field(min_length=1, max_length=4096, description="Inside LORAFORGE_DATASET_IMPORT_ROOTS.")
    ]
    name: Name | None = None
    description: DatasetDescription = ""
    format: DatasetFormat | None = None
    mapping: DatasetMapping | None = None
    names: list[str] | None = Field(
        default=None, description="For a folder: dataset_info.json entries to import."
    )


class HubImport(RequestModel):
    repo_id: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[\w.-]+(/[\w.-]+)?$")]
    revision: str | None = None
    split: str = "train"
    name: Name | None = None
    description: DatasetDescription = ""
    format: DatasetFormat | None = None
    mapping: DatasetMapping | None = None

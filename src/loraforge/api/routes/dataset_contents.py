"""Inside one dataset: preview and search, statistics, preprocessing, comparing versions, download.
Thin: parse, call `services.datasets.reads` / `preprocessing`. Included by `routes.datasets` under
/datasets, after the routes of the dataset itself."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from loraforge.api.deps import ClientIP, CurrentUser, SessionDep, SettingsDep
from loraforge.api.ids import Id
from loraforge.api.paging import Page, PageSize
from loraforge.api.routes.dataset_views import dataset_view
from loraforge.api.schemas.datasets import (
    CompareResult,
    DatasetStats,
    DatasetVersionPublic,
    PreprocessOptions,
    PreprocessRequest,
    PreprocessResult,
    PreviewPage,
)
from loraforge.datastore import preprocess as prep
from loraforge.errors import FieldIssue, InvalidInput
from loraforge.services.datasets import preprocessing, reads

router = APIRouter()

VersionParam = Annotated[Id | None, Query(description="A version id of this dataset (default: current).")]


@router.get("/{dataset_id}/preview", response_model=PreviewPage, operation_id="datasets_preview")
def preview(
    dataset_id: Id,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    page: Page = 1,
    page_size: PageSize = 20,
    q: Annotated[
        str | None, Query(max_length=200, description="Text to search for (case-insensitive).")
    ] = None,
    version: VersionParam = None,
) -> PreviewPage:
    """Rows in normalized form (turns). Pages seek through the row index; `q` scans (≤ 1M rows)."""
    found = reads.preview_rows(
        session, settings=settings, actor=user, dataset_id=dataset_id, version_id=version,
        page=page, page_size=page_size, q=q or None,
    )  # fmt: skip
    return PreviewPage.model_validate(
        {
            "items": found.items,
            "total": found.total,
            "page": page,
            "page_size": page_size,
            "version_id": found.version.id,
            "q": q or None,
            "scanned": found.scanned,
            "complete": found.complete,
        }
    )


@router.get("/{dataset_id}/stats", response_model=DatasetStats, operation_id="datasets_stats")
def stats(
    dataset_id: Id,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    version: VersionParam = None,
    tokenizer: Annotated[
        str | None,
        Query(max_length=200, description="A model folder under `<data_dir>/models`, e.g. `demo-tiny`."),
    ] = None,
) -> DatasetStats:
    found, values = reads.dataset_stats(
        session, settings=settings, actor=user, dataset_id=dataset_id, version_id=version, tokenizer=tokenizer
    )
    return DatasetStats.model_validate({**values, "version_id": found.id, "format": found.format})


def _preprocess_options(o: PreprocessOptions) -> prep.Options:
    """The request's options in the terms of `datastore.preprocess` (defaults and shorthands resolved)."""
    if o.tokenize and not o.tokenizer:
        raise InvalidInput(
            "tokenize needs a tokenizer", code="validation_error",
            fields=[FieldIssue(field="options.tokenizer", message="required when tokenize is true")],
        )  # fmt: skip
    languages: list[str] = ["en", "zh"] if o.remove_stopwords is True else list(o.remove_stopwords or [])
    return prep.Options(
        clean_text=o.clean_text,
        remove_stopwords=languages,
        tokenize=o.tokenize,
        tokenizer=o.tokenizer if (o.tokenize or o.length_unit == "tokens") else None,
        dedupe=None if o.dedupe is False else ("normalized" if o.dedupe is True else o.dedupe),
        min_length=o.min_length,
        max_length=o.max_length,
        length_unit=o.length_unit,
        drop_empty=o.drop_empty,
        mask_pii=o.mask_pii,
        val_ratio=o.split.val_ratio if o.split else None,
        seed=o.split.seed if o.split else 42,
    )


@router.post("/{dataset_id}/preprocess", response_model=PreprocessResult, operation_id="datasets_preprocess")
def preprocess(
    dataset_id: Id,
    body: PreprocessRequest,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    ip: ClientIP,
) -> PreprocessResult:
    """Clean, filter, dedupe, mask, tokenize, split → a new version and a report. `dry_run`: the
    first `dry_run_rows` rows before/after and the report estimated for every row, nothing created."""
    outcome = preprocessing.preprocess(
        session, settings=settings, actor=user, dataset_id=dataset_id, version_id=body.version_id,
        options=_preprocess_options(body.options), dry_run=body.dry_run, dry_run_rows=body.dry_run_rows,
        message=body.message, recipe_options=body.options.model_dump(), ip=ip,
    )  # fmt: skip
    return PreprocessResult.model_validate(
        {
            "dry_run": body.dry_run,
            "report": outcome.report,
            "samples": outcome.samples,
            "estimate": asdict(outcome.estimate) if outcome.estimate else None,
            "dataset": dataset_view(outcome.dataset, outcome.version)
            if outcome.dataset and outcome.version
            else None,
            "version": DatasetVersionPublic.model_validate(outcome.version) if outcome.version else None,
        }
    )


@router.get("/{dataset_id}/compare", response_model=CompareResult, operation_id="datasets_compare_versions")
def compare(
    dataset_id: Id,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    a: Annotated[Id, Query(description="Version id (the older one).")],
    b: Annotated[Id, Query(description="Version id (the newer one).")],
    samples: Annotated[int, Query(ge=0, le=50)] = 5,
) -> CompareResult:
    """Rows added, removed and changed from a to b (rows matched by their source row number)."""
    found = reads.compare_versions(
        session, settings=settings, actor=user, dataset_id=dataset_id, a=a, b=b, samples=samples
    )
    r = found.result
    return CompareResult(
        a=DatasetVersionPublic.model_validate(found.a),
        b=DatasetVersionPublic.model_validate(found.b),
        added=r.added,
        removed=r.removed,
        changed=r.changed,
        unchanged=r.unchanged,
        samples=r.samples,
    )


@router.get(
    "/{dataset_id}/download",
    response_class=FileResponse,
    operation_id="datasets_download",
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The file, streamed."}},
)
def download(
    dataset_id: Id,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    version: VersionParam = None,
    normalized: bool = False,
) -> FileResponse:
    """The original file, or with `normalized=true` the normalized JSONL, streamed."""
    path, filename = reads.download(
        session,
        settings=settings,
        actor=user,
        dataset_id=dataset_id,
        version_id=version,
        normalized=normalized,
    )
    media = "application/x-ndjson" if normalized else "application/octet-stream"
    return FileResponse(path, filename=filename, media_type=media)

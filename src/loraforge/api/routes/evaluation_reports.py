"""Evaluation results beyond the totals: the per-sample browser, comparing runs, downloadable reports.
Thin: parse, then `services.evaluation` (samples, compare, reports) reads with the access rule of
`evaluation.access` (owner, staff, or anyone when shared; otherwise 404)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.exceptions import RequestValidationError

from loraforge.api.deps import CurrentUser, SessionDep, SettingsDep
from loraforge.api.ids import Id, parse_id
from loraforge.api.paging import Page, PageSize
from loraforge.api.schemas.evaluation_reports import (
    CompareRequest,
    Comparison,
    ReportFormat,
    SamplePage,
    SampleSort,
)
from loraforge.errors import FieldIssue, InvalidInput
from loraforge.services.evaluation import compare, reports, samples
from loraforge.services.evaluation.access import get_evaluation, run_files_dir, runs_of

router = APIRouter(tags=["evaluations"])

REPORT_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "content": {media: {} for media in reports.MEDIA_TYPES.values()},
        "description": "The report as an attachment named after the id(s).",
    }
}
FormatQuery = Annotated[ReportFormat, Query(description="html (one offline page), md, csv, jsonl or json.")]


@contextmanager
def _query_fields() -> Iterator[None]:
    """A domain refusal of a query parameter names it as `query.<name>`, as FastAPI's own validation
    does (the domain error shape would say `body.<name>`)."""
    try:
        yield
    except InvalidInput as exc:
        problems = [
            {"loc": ("query", f.field), "msg": f"{exc.message}: {f.message}", "type": "value_error"}
            for f in exc.fields
        ]
        raise RequestValidationError(problems) from None


def _attachment(report: reports.Report) -> Response:
    return Response(
        content=report.content,
        media_type=report.media_type,
        headers={"Content-Disposition": f'attachment; filename="{report.filename}"'},
    )


@router.get(
    "/evaluations/{evaluation_id}/samples", response_model=SamplePage, operation_id="evaluations_samples"
)
def list_samples(
    evaluation_id: Id,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    page: Page = 1,
    page_size: PageSize = 20,
    sort: SampleSort = "index",
    metric: Annotated[
        str | None, Query(max_length=64, description="A per-sample totals key (default: the first metric's).")
    ] = None,
    baseline: Annotated[int, Query(ge=0, le=7, description="The baseline run's position.")] = 0,
    min_: Annotated[
        float | None, Query(alias="min", allow_inf_nan=False, description="Lowest metric value kept.")
    ] = None,
    max_: Annotated[
        float | None, Query(alias="max", allow_inf_nan=False, description="Highest metric value kept.")
    ] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="Part of a prompt, reference or answer.")
    ] = None,
) -> SamplePage:
    """The samples with every run's answer, merged by index (a run still going shows what it has).
    `regression`/`improvement` order by how much worse/better the other runs score than the baseline
    on `metric` (direction-aware: for perplexity lower is better); `min`/`max` keep the samples where
    some non-baseline run's `metric` lies in range; `q` matches case-insensitively."""
    evaluation = get_evaluation(session, actor=user, evaluation_id=evaluation_id)
    sources = [
        samples.RunSource(r.id, r.position, r.model_name, run_files_dir(session, settings, r))
        for r in runs_of(session, evaluation)
    ]
    query = samples.SampleQuery(sort=sort, metric=metric, baseline=baseline, min=min_, max=max_, q=q or None)
    with _query_fields():
        items, total, used = samples.select_samples(
            sources, query, offset=(page - 1) * page_size, limit=page_size,
            default=samples.default_metric(evaluation.metrics or []),
        )  # fmt: skip
    return SamplePage.model_validate(
        {
            "items": items,
            "total": total,
            "page": page,
            "page_size": page_size,
            "metric": used,
            "baseline": baseline,
        }
    )


@router.post("/evaluations/compare", response_model=Comparison, operation_id="evaluations_compare")
def compare_runs(body: CompareRequest, user: CurrentUser, session: SessionDep) -> Comparison:
    """Totals of 2–8 runs (of evaluations you may read, on the same dataset version and split) side by
    side: the best run per metric and each run's delta vs the baseline."""
    result = compare.compare_runs(session, actor=user, run_ids=list(body.runs), baseline=body.baseline)
    return Comparison.model_validate(result)


def _run_ids(text: str) -> list[int]:
    ids = [parse_id(part.strip()) for part in text.split(",")]
    if any(i is None for i in ids):
        raise InvalidInput("runs: comma-separated run ids", fields=[FieldIssue("runs", "e.g. 1,2,3")])
    return [i for i in ids if i is not None]


# Declared before /evaluations/{evaluation_id}/report, which would otherwise capture "compare" (422).
@router.get(
    "/evaluations/compare/report",
    operation_id="evaluations_compare_report",
    response_class=Response,
    responses=REPORT_RESPONSES,
)
def download_comparison_report(
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    runs: Annotated[str, Query(min_length=1, max_length=200, description="Run ids, comma-separated (2–8).")],
    baseline: Annotated[Id | None, Query(description="The baseline run id (default: the first).")] = None,
    format: FormatQuery = "html",
) -> Response:
    """A comparison of runs as a report; the same rules as `POST /api/evaluations/compare`."""
    with _query_fields():
        run_ids = _run_ids(runs)
        report = reports.comparison_report(
            session, settings, actor=user, run_ids=run_ids, baseline=baseline, fmt=format
        )
    return _attachment(report)


@router.get(
    "/evaluations/{evaluation_id}/report",
    operation_id="evaluations_report",
    response_class=Response,
    responses=REPORT_RESPONSES,
)
def download_report(
    evaluation_id: Id,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    format: FormatQuery = "html",
) -> Response:
    """The evaluation's report: settings, totals (best marked, deltas vs the first model), charts and
    per-sample results (csv/jsonl: one row per sample × model)."""
    report = reports.evaluation_report(session, settings, actor=user, evaluation_id=evaluation_id, fmt=format)
    return _attachment(report)

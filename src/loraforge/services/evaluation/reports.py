"""Downloadable reports of one evaluation or of a comparison of runs: html, md, csv, jsonl, json.

A report is built from the same pieces the API serves (the comparison of totals, the merged
per-sample results), so a download says what the pages say. csv and jsonl hold one row per
sample × model; json holds the evaluation, its totals and every per-sample record; md a totals table
with the best value in bold and deltas; html one self-contained page (`report_html`). File names
come from ids only; every user-written string is escaped by the format that carries it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from loraforge.db.models import User
from loraforge.services.evaluation.report_data import (
    ReportData,
    comparison_report_data,
    evaluation_report_data,
)
from loraforge.services.evaluation.report_html import render_html
from loraforge.settings import Settings

Format = Literal["html", "md", "csv", "jsonl", "json"]
MEDIA_TYPES: dict[str, str] = {
    "html": "text/html; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "json": "application/json",
}
_CSV_FORMULA = ("=", "+", "-", "@", "\t", "\r")


# ---- formats ------------------------------------------------------------------------------------


def _md(text: Any) -> str:
    """A table cell: HTML-escaped (renderers pass raw HTML through), Markdown specials backslashed,
    one line."""
    out = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for ch in "\\`*_[]|#":
        out = out.replace(ch, "\\" + ch)
    return " ".join(out.split())


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def _signed(value: float | None) -> str:
    return "" if value is None else f"{value:+.4g}"


def render_markdown(data: ReportData) -> str:
    comp = data.comparison
    keys: list[str] = comp["metrics"]
    lines = [f"# {_md(data.title)}", ""]
    if data.evaluation and data.evaluation.get("description"):
        lines += [_md(data.evaluation["description"]), ""]
    version = data.dataset_version
    if version:
        lines.append(f"- Test set: {_md(version.get('dataset_name') or '')} v{version['number']}")
    if data.evaluation:
        lines.append(f"- Split: {_md(data.evaluation['split'])}")
        lines.append(f"- Metrics: {_md(', '.join(data.evaluation['metrics']))}")
    lines += [f"- Samples: {len(data.indices)}", f"- Generated: {data.generated_at}", ""]
    if not keys:
        lines += ["No totals yet: no run has finished.", ""]
    else:
        baseline = next((r["model"] for r in comp["rows"] if r["run_id"] == comp["baseline"]), "")
        header = ["Model", *(f"{_md(k)} {'↓' if comp['direction'][k] == 'lower' else '↑'}" for k in keys)]
        lines += ["## Totals", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in comp["rows"]:
            cells = [_md(row["model"]) + (" (baseline)" if row["run_id"] == comp["baseline"] else "")]
            for key in keys:
                value = row["metrics"].get(key)
                cell = _num(value)
                if comp["best"].get(key) == row["run_id"]:
                    cell = f"**{cell}**"
                if row["run_id"] != comp["baseline"] and row["delta"].get(key) is not None:
                    cell += f" ({_signed(row['delta'][key])})"
                cells.append(cell)
            lines.append("| " + " | ".join(cells) + " |")
        lines += [
            "",
            f"Best value per metric in **bold**; (±) is the difference to the baseline {_md(baseline)}; "
            "↓ lower is better, ↑ higher is better.",
            "",
        ]
    judge = data.judge_results or {}
    vs = judge.get("vs") if isinstance(judge.get("vs"), list) else None
    if vs:
        lines += [f"## Pairwise judge (vs {_md(judge.get('baseline'))})", "",
                  "| Model | win | tie | loss | n |", "|---|---|---|---|---|"]  # fmt: skip
        for v in vs:
            if isinstance(v, dict):
                cells = [
                    _num(n) if isinstance(n := v.get(k), int | float) else "–"
                    for k in ("win", "tie", "loss", "n")
                ]
                lines.append(f"| {_md(v.get('model'))} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _csv_cell(value: Any) -> Any:
    # A cell starting with = + - @ is a formula to a spreadsheet; a quote in front keeps it text.
    if isinstance(value, str) and value.startswith(_CSV_FORMULA):
        return "'" + value
    return value


def _flat_rows(data: ReportData) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for item in data.records():
        for answer in item["answers"]:
            yield item, answer


def render_csv(data: ReportData) -> str:
    keys = data.score_keys()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["index", "run_id", "model", "prompt", "label", "predict", "latency_s",
                     "completion_tokens", *keys, "judge_reason", "error"])  # fmt: skip
    for item, answer in _flat_rows(data):
        judge = answer.get("judge") or {}
        row = [item["index"], answer["run_id"], answer["model"], item["prompt"], item["label"],
               answer["predict"], answer["latency_s"], answer["completion_tokens"],
               *(answer["scores"].get(k) for k in keys), judge.get("reason"), answer["error"]]  # fmt: skip
        writer.writerow(["" if v is None else _csv_cell(v) for v in row])
    return out.getvalue()


def render_jsonl(data: ReportData) -> str:
    lines = []
    for item, answer in _flat_rows(data):
        record = {
            "index": item["index"], "run_id": answer["run_id"], "model": answer["model"],
            "prompt": item["prompt"], "label": item["label"], "predict": answer["predict"],
            "scores": answer["scores"], "judge": answer.get("judge"), "latency_s": answer["latency_s"],
            "completion_tokens": answer["completion_tokens"], "error": answer["error"],
        }  # fmt: skip
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    return "".join(lines)


def render_json(data: ReportData) -> str:
    document = {
        "evaluation": data.evaluation,
        "dataset_version": data.dataset_version,
        "generated_at": data.generated_at,
        **data.comparison,
        "judge_results": data.judge_results,
        "samples": list(data.records()),
    }
    return json.dumps(document, ensure_ascii=False, indent=1)


RENDERERS: dict[str, Callable[[ReportData], str]] = {
    "html": render_html, "md": render_markdown, "csv": render_csv, "jsonl": render_jsonl, "json": render_json,
}  # fmt: skip


@dataclass(frozen=True)
class Report:
    content: bytes
    media_type: str
    filename: str


def render(data: ReportData, fmt: Format, stem: str) -> Report:
    """`stem` must be made of ids (it becomes the attachment's file name)."""
    return Report(RENDERERS[fmt](data).encode("utf-8"), MEDIA_TYPES[fmt], f"{stem}.{fmt}")


def evaluation_report(
    session: Session, settings: Settings, *, actor: User, evaluation_id: int, fmt: Format
) -> Report:
    data = evaluation_report_data(session, settings, actor=actor, evaluation_id=evaluation_id)
    return render(data, fmt, f"evaluation-{int(evaluation_id)}")


def comparison_report(
    session: Session,
    settings: Settings,
    *,
    actor: User,
    run_ids: list[int],
    baseline: int | None,
    fmt: Format,
) -> Report:
    data = comparison_report_data(session, settings, actor=actor, run_ids=run_ids, baseline=baseline)
    return render(data, fmt, "comparison-" + "-".join(str(int(r)) for r in run_ids))

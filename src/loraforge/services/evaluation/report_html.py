"""The HTML report: one self-contained page (inline CSS, charts as inline SVG, no script, no URL), so it
opens offline, from an attachment, years later. Every string that a user or a dataset wrote (names,
descriptions, prompts, answers, labels, metric keys of subjects) goes through `html.escape`."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from loraforge.services.evaluation import report_svg
from loraforge.services.evaluation.report_data import ReportData

SAMPLE_ROWS = 50  # the page shows the first samples; the csv/jsonl reports hold all of them
_TEXT_LIMIT = 600  # characters of a prompt/answer shown in a cell

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1100px;
padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
.meta{color:#555;font-size:.9rem}.meta dt{font-weight:600;float:left;clear:left;width:9rem}
.meta dd{margin-left:9.5rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.best{font-weight:700;background:#e8f5e9}.up{color:#1b7f3b}.down{color:#b3261e}.delta{font-size:.8rem}
.charts{display:flex;flex-wrap:wrap;gap:1rem}.chart{border:1px solid #eee;background:#fff}
.sample td{max-width:22rem;white-space:pre-wrap;word-break:break-word}.note{color:#666;font-size:.85rem}
@media print{.chart{break-inside:avoid}}
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _clip(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= _TEXT_LIMIT else text[:_TEXT_LIMIT] + f"… (+{len(text) - _TEXT_LIMIT} chars)"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def _meta(data: ReportData) -> str:
    rows: list[tuple[str, str]] = []
    info = data.evaluation
    version = data.dataset_version
    if version:
        rows.append(("Test set", f"{_e(version.get('dataset_name'))} v{_e(version['number'])}"))
    if info:
        rows += [
            ("Owner", _e(info.get("owner"))),
            ("Split", _e(info["split"])),
            ("Metrics", _e(", ".join(info["metrics"]))),
            ("Generation", _e(json.dumps(info["generation"], ensure_ascii=False))),
        ]
        if info.get("options"):
            rows.append(("Options", _e(json.dumps(info["options"], ensure_ascii=False))))
        if info.get("judge"):
            rows.append(("Judge", _e(json.dumps(info["judge"], ensure_ascii=False))))
        rows.append(("Created", _e(info.get("created_at"))))
    rows += [("Samples", str(len(data.indices))), ("Report generated", _e(data.generated_at))]
    return '<dl class="meta">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _totals_table(comp: dict[str, Any]) -> str:
    keys: list[str] = comp["metrics"]
    if not keys:
        return '<p class="note">No totals yet: no run has finished.</p>'
    head = "".join(f"<th>{_e(k)} {'↓' if comp['direction'][k] == 'lower' else '↑'}</th>" for k in keys)
    body = []
    for row in comp["rows"]:
        is_base = row["run_id"] == comp["baseline"]
        cells = [f"<td>{_e(row['model'])}{' <em>(baseline)</em>' if is_base else ''}</td>"]
        for key in keys:
            value = row["metrics"].get(key)
            best = comp["best"].get(key) == row["run_id"]
            cell = _num(value) + (" ★" if best else "")
            delta = row["delta"].get(key)
            if not is_base and delta is not None and delta != 0:
                better = (delta < 0) if comp["direction"][key] == "lower" else (delta > 0)
                cell += f' <span class="delta {"up" if better else "down"}">({delta:+.4g})</span>'
            cells.append(f'<td class="num{" best" if best else ""}">{cell}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<table><thead><tr><th>Model</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        '<p class="note">★ best value per metric; (±) difference to the baseline, green when better; '
        "↓ lower is better, ↑ higher is better.</p>"
    )


def _speed_table(comp: dict[str, Any]) -> str:
    keys = ["tokens_per_s", "latency_p50_s", "latency_p95_s", "samples_per_s", "completion_tokens"]
    shown = [k for k in keys if any(k in row["speed"] for row in comp["rows"])]
    if not shown:
        return ""
    head = "".join(f"<th>{_e(k)}</th>" for k in shown)
    body = "".join(
        f"<tr><td>{_e(row['model'])}</td>"
        + "".join(f'<td class="num">{_num(row["speed"].get(k))}</td>' for k in shown)
        + "</tr>"
        for row in comp["rows"]
    )
    return f"<h2>Speed</h2><table><thead><tr><th>Model</th>{head}</tr></thead><tbody>{body}</tbody></table>"


def _charts(comp: dict[str, Any]) -> str:
    keys: list[str] = comp["metrics"]
    if not keys:
        return ""
    rows = comp["rows"]
    bars = []
    for key in keys:
        best_id = comp["best"].get(key)
        best = next((i for i, r in enumerate(rows) if r["run_id"] == best_id), None)
        values = [(r["model"], r["metrics"].get(key)) for r in rows]
        bars.append(
            report_svg.bar_chart(key, values, lower_better=comp["direction"][key] == "lower", best=best)
        )
    axes = keys[:12]
    radar = report_svg.radar_chart(
        axes,
        [(r["model"], [r["metrics"].get(k) for k in axes]) for r in rows],
        [comp["direction"][k] == "lower" for k in axes],
    )
    radar_part = radar or '<p class="note">The radar chart needs at least three metrics.</p>'
    return f'<h2>Charts</h2><div class="charts">{"".join(bars)}</div><h2>Radar</h2>{radar_part}'


def _judge(data: ReportData) -> str:
    results = data.judge_results
    if not results:
        return ""
    found = results.get("vs")
    rows = []
    for v in found if isinstance(found, list) else []:
        if not isinstance(v, dict):
            continue
        cells = "".join(
            f'<td class="num">{_num(n) if isinstance(n := v.get(k), int | float) else "–"}</td>'
            for k in ("win", "tie", "loss", "n")
        )
        rows.append(f"<tr><td>{_e(v.get('model'))}</td>{cells}</tr>")
    return (
        f"<h2>Pairwise judge (vs {_e(results.get('baseline'))})</h2>"
        f"<table><thead><tr><th>Model</th><th>win</th><th>tie</th><th>loss</th><th>n</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _samples(data: ReportData) -> str:
    total = len(data.indices)
    if not total:
        return '<h2>Samples</h2><p class="note">No per-sample results yet.</p>'
    shown = min(total, SAMPLE_ROWS)
    head = "".join(f"<th>{_e(s.model)}</th>" for s in data.sources)
    body = []
    for n, item in enumerate(data.records()):
        if n >= SAMPLE_ROWS:
            break
        answers = []
        for answer in item["answers"]:
            scores = ", ".join(f"{_e(k)} {_num(v)}" for k, v in answer["scores"].items())
            predict = (
                _e(_clip(answer["predict"])) if answer["predict"] is not None else "<em>no answer yet</em>"
            )
            answers.append(f'<td>{predict}<div class="note">{scores}</div></td>')
        body.append(
            f'<tr class="sample"><td class="num">{item["index"]}</td><td>{_e(_clip(item["prompt"]))}</td>'
            f"<td>{_e(_clip(item['label']))}</td>{''.join(answers)}</tr>"
        )
    note = (
        f"Showing the first {shown} of {total} samples; the CSV and JSONL reports hold every sample."
        if shown < total
        else f"All {total} samples."
    )
    return (
        f'<h2>Samples</h2><p class="note">{note}</p><table><thead><tr><th>#</th><th>Prompt</th>'
        f"<th>Reference</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def render_html(data: ReportData) -> str:
    description = (data.evaluation or {}).get("description")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(data.title)} · LoRAForge evaluation report</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(data.title)}</h1>",
        f"<p>{_e(description)}</p>" if description else "",
        _meta(data),
        "<h2>Totals</h2>",
        _totals_table(data.comparison),
        _speed_table(data.comparison),
        _charts(data.comparison),
        _judge(data),
        _samples(data),
        '<p class="note">Generated by LoRAForge.</p>',
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)

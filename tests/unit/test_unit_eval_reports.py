"""Evaluation samples, comparison and reports on hand-built result files and totals (no database).

The API tests (tests/api/test_api_evaluation_reports.py) run the same code over files the real engine
wrote; these pin the rules: direction of each metric, best and deltas, merging runs that are still
writing, sorting by regression, and reports that escape every user string and need no network.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from loraforge.errors import InvalidInput
from loraforge.services.evaluation import compare, report_svg, reports, samples
from loraforge.services.evaluation.report_data import ReportData
from loraforge.services.evaluation.report_html import render_html

EVIL = '<script>alert("x")</script>'


def _write(path: Path, records: list[dict[str, Any]], torn: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in records)
    path.write_text(text + torn, encoding="utf-8")


def _sample(index: int, predict: str, bleu: float, **extra: Any) -> dict[str, Any]:
    return {"index": index, "prompt": f"question {index}", "label": f"answer {index}", "predict": predict,
            "prompt_tokens": 5, "completion_tokens": 3, "latency_s": 0.1, "tokens_per_s": 30.0,
            "scores": {"bleu-4": bleu}, **extra}  # fmt: skip


# ---- totals: flattening, direction, best, deltas ---------------------------------------------------


def test_flat_metrics_reads_every_totals_shape() -> None:
    results = {
        "metrics": {
            "bleu-4": 12.5, "perplexity": float("inf"), "mean_nll": 2.0, "labelled_tokens": 40,
            "multiple_choice": {"accuracy": 50.0, "questions": 4, "by_subject": {"math": 100.0, "law": 0.0}},
            "exact_match": True, "judge_score": 7,
        },
        "speed": {"tokens_per_s": 12.0, "latency_p50_s": 0.2, "note": "x"},
    }  # fmt: skip
    flat = compare.flat_metrics(results)
    # inf (nothing measured) and booleans are not numbers to rank; counts are not scores.
    assert flat == {"bleu-4": 12.5, "loss": 2.0, "multiple_choice": 50.0, "multiple_choice/math": 100.0,
                    "multiple_choice/law": 0.0, "judge_score": 7.0}  # fmt: skip
    assert compare.speed_of(results) == {"tokens_per_s": 12.0, "latency_p50_s": 0.2}
    assert compare.flat_metrics(None) == {} and compare.flat_metrics({"metrics": "junk"}) == {}


def test_direction_lower_only_for_perplexity_loss_latency_and_unparseable() -> None:
    assert [compare.direction(k) for k in ("perplexity", "loss", "latency_p95_s", "judge_unparseable")] == [
        "lower"
    ] * 4
    assert {compare.direction(k) for k in ("bleu-4", "rouge-l", "exact_match", "multiple_choice")} == {
        "higher"
    }


def test_rank_marks_the_best_by_direction_and_deltas_vs_the_baseline() -> None:
    rows = [
        compare.RunTotals(1, 10, "base", {"bleu-4": 10.0, "perplexity": 9.0}, {}),
        compare.RunTotals(2, 10, "tuned", {"bleu-4": 14.0, "perplexity": 5.0, "exact_match": 50.0}, {}),
        compare.RunTotals(3, 11, "other", {"bleu-4": 14.0, "perplexity": 12.0}, {}),
    ]
    result = compare.rank(rows, baseline=1)
    assert result["metrics"] == ["bleu-4", "exact_match", "perplexity"]  # one fixed order, not the files'
    assert compare.rank([compare.RunTotals(1, 1, "m", {"x/y": 1.0, "loss": 1.0}, {})], 1)["metrics"] == [
        "loss",
        "x/y",
    ]
    assert result["direction"] == {"bleu-4": "higher", "perplexity": "lower", "exact_match": "higher"}
    # bleu ties between runs 2 and 3: the first listed wins; perplexity: the lowest.
    assert result["best"] == {"bleu-4": 2, "perplexity": 2, "exact_match": 2}
    by_id = {r["run_id"]: r for r in result["rows"]}
    assert by_id[1]["delta"] == {"bleu-4": 0.0, "perplexity": 0.0, "exact_match": None}
    assert by_id[2]["delta"] == {"bleu-4": 4.0, "perplexity": -4.0, "exact_match": None}
    assert by_id[3]["delta"]["perplexity"] == 3.0
    # Another baseline: deltas move, the best does not.
    again = compare.rank(rows, baseline=2)
    assert again["best"] == result["best"]
    assert {r["run_id"]: r["delta"]["bleu-4"] for r in again["rows"]} == {1: -4.0, 2: 0.0, 3: 0.0}
    # When every run scores the same there is no best (a ★ on a 0-0 tie would say nothing true).
    tied = [
        compare.RunTotals(1, 1, "a", {"rouge-1": 0.0}, {}),
        compare.RunTotals(2, 1, "b", {"rouge-1": 0.0}, {}),
    ]
    assert compare.rank(tied, baseline=1)["best"] == {}
    assert compare.rank(tied[:1], baseline=1)["best"] == {"rouge-1": 1}


# ---- per-sample results --------------------------------------------------------------------------


def _runs(tmp_path: Path) -> list[samples.RunSource]:
    base, tuned, going = tmp_path / "base", tmp_path / "tuned", tmp_path / "going"
    _write(base / "samples.jsonl", [_sample(i, f"base {i}", [50, 40, 30, 20][i]) for i in range(4)])
    _write(base / "perplexity.jsonl", [{"index": i, "nll": 2.0 * (i + 1), "tokens": 2} for i in range(4)])
    _write(
        tuned / "samples.jsonl",
        [_sample(0, "Tuned 0", 60), _sample(1, "tuned 1", 10), _sample(2, "tuned 2", 30),
         _sample(3, "tuned 3", 90, judge={"score": 8, "reason": "close"})],
    )  # fmt: skip
    _write(tuned / "perplexity.jsonl", [{"index": i, "nll": 1.0 * (i + 1), "tokens": 2} for i in range(4)])
    # A run still writing: two answers so far and half of the third (no newline yet); no perplexity file.
    _write(
        going / "samples.jsonl",
        [_sample(1, "going 1", 5), _sample(0, "going 0", 55)],
        torn='{"index": 2, "pre',
    )
    return [
        samples.RunSource(1, 0, "base", base),
        samples.RunSource(2, 1, "tuned", tuned),
        samples.RunSource(3, 2, "going", going),
        samples.RunSource(4, 3, "not started", None),
    ]


def test_runs_merge_by_index_with_torn_and_missing_files(tmp_path: Path) -> None:
    sources = _runs(tmp_path)
    items, total, metric = samples.select_samples(
        sources, samples.SampleQuery(), offset=0, limit=10, default="bleu-4"
    )
    assert total == 4 and metric == "bleu-4" and [i["index"] for i in items] == [0, 1, 2, 3]
    first = items[0]
    assert first["prompt"] == "question 0" and first["label"] == "answer 0"
    assert [a["predict"] for a in first["answers"]] == ["base 0", "Tuned 0", "going 0", None]
    assert first["answers"][0]["scores"] == {"bleu-4": 50, "loss": 1.0, "perplexity": pytest.approx(math.e)}
    empty = {"predict": None, "scores": {}, "latency_s": None, "completion_tokens": None, "error": None}
    assert first["answers"][3] == {"run_id": 4, "position": 3, "model": "not started", **empty}
    assert items[2]["answers"][2]["predict"] is None  # the torn line is not an answer
    assert items[3]["answers"][1]["judge"] == {"score": 8.0, "reason": "close", "error": None}
    assert items[3]["answers"][1]["scores"]["judge_score"] == 8.0
    page, total, _ = samples.select_samples(
        sources, samples.SampleQuery(), offset=2, limit=1, default="bleu-4"
    )
    assert total == 4 and [i["index"] for i in page] == [2]


def test_sort_by_regression_and_improvement_respects_direction(tmp_path: Path) -> None:
    sources = _runs(tmp_path)[:2]  # base vs tuned: bleu deltas +10, -30, 0, +70
    order = lambda **q: [  # noqa: E731
        i["index"] for i in samples.select_samples(sources, samples.SampleQuery(**q), offset=0, limit=10)[0]
    ]
    assert order(sort="regression", metric="bleu-4") == [1, 2, 0, 3]
    assert order(sort="improvement", metric="bleu-4") == [3, 0, 2, 1]
    # Perplexity: lower is better, so a higher perplexity than the baseline's is the regression.
    assert order(sort="regression", metric="perplexity", baseline=1) == [3, 2, 1, 0]
    assert order(sort="improvement", metric="perplexity", baseline=1)[0] == 0
    # A metric no sample has: nothing to order by, index order.
    assert order(sort="regression", metric="exact_match") == [0, 1, 2, 3]


def test_filter_by_metric_range_and_text(tmp_path: Path) -> None:
    sources = _runs(tmp_path)[:2]

    def found(**q: Any) -> list[int]:
        return [
            i["index"]
            for i in samples.select_samples(sources, samples.SampleQuery(**q), offset=0, limit=10)[0]
        ]

    # min/max look at the non-baseline runs only (base's 50 at index 0 does not count).
    assert found(metric="bleu-4", min=25, max=65) == [0, 2]
    assert found(metric="bleu-4", max=10) == [1]
    assert found(q="TUNED 3") == [3] and found(q="question 1") == [1] and found(q="nowhere") == []


def test_bad_sample_queries_name_the_field(tmp_path: Path) -> None:
    sources = _runs(tmp_path)[:2]
    for query, field in [
        (samples.SampleQuery(metric="sacrebleu"), "metric"),
        (samples.SampleQuery(sort="regression"), "metric"),  # no default metric either
        (samples.SampleQuery(metric="bleu-4", baseline=5), "baseline"),
        (samples.SampleQuery(metric="bleu-4", min=5, max=1), "min"),
    ]:
        with pytest.raises(InvalidInput) as err:
            samples.select_samples(sources, query, offset=0, limit=10)
        assert [f.field for f in err.value.fields] == [field]


def test_choices_runs_and_default_metric(tmp_path: Path) -> None:
    question = {"subject": "law", "logits": {}}
    _write(tmp_path / "mc" / "choices.jsonl",
           [{"index": 0, "answer": "B", "pick": "B", "correct": True, **question},
            {"index": 1, "answer": "A", "pick": "C", "correct": False, **question}])  # fmt: skip
    items, _, metric = samples.select_samples(
        [samples.RunSource(1, 0, "m", tmp_path / "mc")], samples.SampleQuery(sort="regression"),
        offset=0, limit=5, default=samples.default_metric(["multiple_choice"]),
    )  # fmt: skip
    assert metric == "multiple_choice"
    assert [(i["label"], i["answers"][0]["predict"], i["answers"][0]["scores"]) for i in items] == [
        ("B", "B", {"multiple_choice": 100.0}), ("A", "C", {"multiple_choice": 0.0})
    ]  # fmt: skip
    assert (
        samples.default_metric(["sacrebleu", "rouge"]) == "rouge-l"
        and samples.default_metric(["chrf"]) is None
    )


def test_parsed_runs_are_cached_until_a_file_changes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _write(run / "samples.jsonl", [_sample(0, "a", 1)])
    first = samples.run_answers(run)
    assert samples.run_answers(run) is first  # unchanged files: parsed once
    with (run / "samples.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(_sample(1, "b", 2)) + "\n")
    again = samples.run_answers(run)
    assert again is not first and sorted(again) == [0, 1]
    assert samples.run_answers(tmp_path / "absent") == {} and samples.run_answers(None) == {}


# ---- reports ------------------------------------------------------------------------------------


def _report(tmp_path: Path, name: str = EVIL) -> ReportData:
    sources = _runs(tmp_path)[:2]
    sources[1] = samples.RunSource(2, 1, f"tuned|{EVIL}", tmp_path / "tuned")
    _write(tmp_path / "tuned" / "samples.jsonl", [_sample(0, EVIL, 60), _sample(1, "=HYPERLINK(1)", 10)])
    indices, per_run = samples.all_samples(sources)
    comparison = compare.rank(
        [compare.RunTotals(1, 1, "base", {"bleu-4": 35.0, "perplexity": 4.0, "rouge-l": 20.0}, {}),
         compare.RunTotals(2, 1, sources[1].model, {"bleu-4": 35.5, "perplexity": 6.0, "rouge-l": 30.0},
                           {"tokens_per_s": 3.0})],
        baseline=1,
    )  # fmt: skip
    evaluation = {"id": 1, "name": name, "description": f"about {EVIL}", "owner": "alice", "dataset": None,
                  "dataset_version": None, "split": "all", "metrics": ["bleu", "perplexity", "rouge"],
                  "generation": {"max_new_tokens": 8}, "options": {"regex_pattern": EVIL}, "judge": None,
                  "shared": False, "source_job_id": None, "created_at": "2026-01-01"}  # fmt: skip
    judged = {"baseline": EVIL, "vs": [{"model": EVIL, "win": 0.5, "tie": 0, "loss": 0.5, "n": 2}]}
    return ReportData(name, evaluation, None, comparison, sources, indices, per_run, judge_results=judged,
                      generated_at="2026-01-02T00:00:00+00:00")  # fmt: skip


def test_html_report_is_offline_and_escapes_every_user_string(tmp_path: Path) -> None:
    html = render_html(_report(tmp_path))
    assert "<script" not in html.lower() and EVIL not in html
    assert "&lt;script&gt;" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", html, re.IGNORECASE)
    assert "http" not in html  # no URL at all: not even an SVG namespace
    assert html.count("<svg") == 4  # a bar chart per metric (3) and the radar
    assert "<style>" in html and "<link" not in html
    assert "★" in html and "(+0.5)" in html and "(+2)" in html  # perplexity 4 -> 6: worse, still signed
    assert "All 4 samples." in html


def test_html_report_notes_how_many_samples_it_shows(tmp_path: Path) -> None:
    data = _report(tmp_path, name="plain")
    many = {
        i: samples.Answer(prompt=f"p{i}", label="l", predict="x", scores={"bleu-4": 1.0}) for i in range(60)
    }
    data.indices, data.per_run = list(range(60)), [many, many]
    html = render_html(data)
    assert "Showing the first 50 of 60 samples" in html and html.count('<tr class="sample">') == 50


def test_svg_builders(tmp_path: Path) -> None:
    bar = report_svg.bar_chart(EVIL, [("a", 2.0), (EVIL, None), ("c", 4.0)], lower_better=True, best=0)
    assert EVIL not in bar and "n/a" in bar and "lower is better" in bar and "★" in bar
    assert report_svg.radar_chart(["a", "b"], [("m", [1.0, 2.0])], [False, False]) is None
    radar = report_svg.radar_chart(["a", "b", EVIL], [("m", [1.0, None, 0.0]), ("n", [2.0, 1.0, 0.0])],
                                   [False, True, False])  # fmt: skip
    assert radar is not None and EVIL not in radar and radar.count("<polygon") == 4 + 2  # 4 rings + 2 runs


def test_markdown_marks_the_best_in_bold_with_deltas(tmp_path: Path) -> None:
    md = reports.render_markdown(_report(tmp_path))
    assert "<script" not in md and "&lt;script&gt;" in md
    lines = md.splitlines()
    header = next(line for line in lines if line.startswith("| Model"))
    assert "perplexity ↓" in header and "bleu-4 ↑" in header
    base = next(line for line in lines if "(baseline)" in line)
    tuned = next(line for line in lines if line.startswith("| tuned"))
    assert "**4**" in base and "**35.5** (+0.5)" in tuned and "6 (+2)" in tuned
    assert "tuned\\|" in tuned  # a | in a model name does not split the table


def test_csv_and_jsonl_have_one_row_per_sample_and_model(tmp_path: Path) -> None:
    data = _report(tmp_path)
    rows = list(csv.DictReader(io.StringIO(reports.render_csv(data))))
    assert len(rows) == 4 * 2
    assert list(rows[0])[:6] == ["index", "run_id", "model", "prompt", "label", "predict"]
    assert {"bleu-4", "perplexity", "loss"} <= set(rows[0])
    tuned_1 = next(r for r in rows if r["index"] == "1" and r["run_id"] == "2")
    assert tuned_1["predict"] == "'=HYPERLINK(1)"  # a formula stays text in a spreadsheet
    assert next(r for r in rows if r["index"] == "0" and r["run_id"] == "2")["predict"] == EVIL
    lines = [json.loads(line) for line in reports.render_jsonl(data).splitlines()]
    assert len(lines) == 8 and lines[1]["predict"] == EVIL and lines[1]["scores"]["bleu-4"] == 60
    document = json.loads(reports.render_json(data))
    assert document["evaluation"]["name"] == EVIL and len(document["samples"]) == 4
    assert document["best"]["bleu-4"] == 2 and document["direction"]["perplexity"] == "lower"
    assert reports.render(data, "csv", "evaluation-1").filename == "evaluation-1.csv"

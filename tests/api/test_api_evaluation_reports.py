"""Evaluation samples, comparisons and reports over result files the real engine wrote.

The engine's eval runner scores demo-tiny on a 4-row test set twice (8 and 3 new tokens: different
answers, so real deltas) in a subprocess (this process never imports torch); each test copies those
run folders into job run directories and writes the Evaluation / EvaluationRun / Job rows the
evaluation service would, then reads everything back through the API as the owner, a stranger, an
operator and, once shared, as anyone.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from api_helpers import Account, Api, assert_error
from evaluation_helpers import create_evaluation, evaluation_body, finish_job_by_hand, run_sync, tiny_test_set
from fastapi import FastAPI
from job_helpers import sample_dataset

from loraforge.db.models import Evaluation, EvaluationRun, Job
from loraforge.db.session import Database
from loraforge.services.jobs.access import run_dir_of
from loraforge.settings import Settings

NAME = 'Eval <script>alert("name")</script>'
PROMPT_MARK = "<script>alert(1)</script>"
METRICS = ["bleu", "rouge", "exact_match", "perplexity"]

_RUNNER = """
import io, json, sys
from pathlib import Path
from loraforge.engine.eval.runner import run_evaluation
from loraforge.engine.eval.spec import load_eval_spec
from loraforge.engine.events import EventWriter
args = json.loads(sys.argv[1])
for name, tokens in (("long", 8), ("short", 3)):
    out = Path(args["root"]) / name
    spec = load_eval_spec({
        "model_name_or_path": args["model"], "template": "auto", "eval_dataset": args["data"],
        "max_new_tokens": tokens, "per_device_eval_batch_size": 4, "cutoff_len": 128, "use_cpu": True,
        "metrics": args["metrics"], "output_dir": str(out),
    })
    run_evaluation(spec, out, EventWriter(out, stream=io.StringIO()))
"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"scheduler_enabled": False})  # jobs here are finished by hand


@pytest.fixture(scope="session")
def engine_results(demo_model_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two real result folders of the eval runner on demo-tiny: `long` (8 tokens) and `short` (3)."""
    root = tmp_path_factory.mktemp("eval-results")
    data = root / "test.jsonl"
    rows = [
        {"instruction": f"Say hello {PROMPT_MARK}", "input": "", "output": "Hello there."},
        {"instruction": "Name a colour.", "input": "", "output": "Blue"},
        {"instruction": "Count to three.", "input": "", "output": "1 2 3"},
        {"instruction": "What is 2 + 2?", "input": "", "output": "4"},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    args = {"root": str(root), "model": str(demo_model_cache), "data": str(data), "metrics": METRICS}
    subprocess.run([sys.executable, "-c", _RUNNER, json.dumps(args)], check=True, capture_output=True)
    return {"long": root / "long", "short": root / "short"}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


class Seeder:
    """Writes an evaluation and its runs as the evaluation service would, result files included."""

    def __init__(self, app: FastAPI, settings: Settings, results: dict[str, Path]) -> None:
        self.db: Database = app.state.db
        self.settings = settings
        self.results = results

    def evaluation(
        self, owner: Account, version_id: int | None, runs: list[str | None], *, name: str = NAME,
        shared: bool = False, split: str = "all",
    ) -> tuple[int, list[int]]:  # fmt: skip
        """`runs`: per model, the result folder to copy (`long`/`short`), "partial" (two answers and a
        torn line, job running) or None (no job yet)."""
        with self.db.session() as session:
            evaluation = Evaluation(
                owner_id=owner.id, name=name, description="a <b>test</b>", dataset_version_id=version_id,
                split=split, metrics=METRICS, generation={"max_new_tokens": 8}, options={}, shared=shared,
            )  # fmt: skip
            session.add(evaluation)
            session.flush()
            run_ids = []
            for position, kind in enumerate(runs):
                job_id, results = None, None
                if kind is not None:
                    job = Job(owner_id=owner.id, name=f"eval: {name} · {kind}", executor="local",
                              status="running" if kind == "partial" else "succeeded",
                              spec={"stage": "evaluation"})  # fmt: skip
                    session.add(job)
                    session.flush()
                    job_id = job.id
                    results = self._files(kind, run_dir_of(self.settings, job.id))
                run = EvaluationRun(
                    evaluation_id=evaluation.id, owner_id=owner.id, position=position,
                    model_name=f"demo-tiny ({kind})", model_kind="demo", cache_key="0" * 64, job_id=job_id,
                    results=results,
                )  # fmt: skip
                session.add(run)
                session.flush()
                run_ids.append(run.id)
            session.commit()
            return evaluation.id, run_ids

    def _files(self, kind: str, run_dir: Path) -> dict[str, Any] | None:
        if kind == "partial":
            run_dir.mkdir(parents=True)
            kept = (self.results["long"] / "samples.jsonl").read_text(encoding="utf-8").splitlines()[:2]
            (run_dir / "samples.jsonl").write_text("\n".join(kept) + '\n{"index": 2, "pred', encoding="utf-8")
            return None
        shutil.copytree(self.results[kind], run_dir)
        found = json.loads((run_dir / "eval_results.json").read_text(encoding="utf-8"))
        return {k: found[k] for k in ("metrics", "speed", "test_set")}


@pytest.fixture
def seed(app: FastAPI, settings: Settings, engine_results: dict[str, Path]) -> Seeder:
    return Seeder(app, settings, engine_results)


def _version(api: Api, account: Account) -> int:
    dataset = sample_dataset(api.client, account)
    version: int = dataset["current_version_id"]
    return version


def _get(api: Api, who: Account, url: str, **params: Any) -> Any:
    response = api.client.get(url, params=params, headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_samples_merge_runs_page_sort_and_filter(
    api: Api, seed: Seeder, engine_results: dict[str, Path]
) -> None:
    alice = api.account("alice")
    evaluation_id, (long_id, short_id, partial_id, draft_id) = seed.evaluation(
        alice, _version(api, alice), ["long", "short", "partial", None]
    )
    url = f"/api/evaluations/{evaluation_id}/samples"
    long_samples = _lines(engine_results["long"] / "samples.jsonl")
    short_samples = {s["index"]: s for s in _lines(engine_results["short"] / "samples.jsonl")}

    first = _get(api, alice, url, page_size=3)
    assert (first["total"], first["page"], first["page_size"], first["metric"], first["baseline"]) == (
        4, 1, 3, "bleu-4", 0
    )  # fmt: skip
    assert [i["index"] for i in first["items"]] == [0, 1, 2]
    item = first["items"][0]
    assert PROMPT_MARK in item["prompt"] and item["label"] == long_samples[0]["label"]
    answers = item["answers"]
    assert [a["run_id"] for a in answers] == [long_id, short_id, partial_id, draft_id]
    assert answers[0]["predict"] == next(s["predict"] for s in long_samples if s["index"] == 0)
    assert answers[0]["scores"]["bleu-4"] == next(
        s["scores"]["bleu-4"] for s in long_samples if s["index"] == 0
    )
    assert answers[0]["scores"]["perplexity"] > 1 and answers[0]["completion_tokens"] >= 1
    # The running run has answered two samples (its torn third line is no answer); the draft none.
    assert [i["answers"][2]["predict"] is not None for i in first["items"]] == [True, True, False]
    assert answers[3]["predict"] is None and answers[3]["scores"] == {}
    second = _get(api, alice, url, page_size=3, page=2)
    assert [i["index"] for i in second["items"]] == [3] and second["total"] == 4

    # Regression order: (other run − baseline) on rouge-1, the worst first, as the files say.
    def delta(index: int) -> float:
        base = next(s for s in long_samples if s["index"] == index)["scores"]["rouge-1"]
        return float(short_samples[index]["scores"]["rouge-1"] - base)

    worst = _get(api, alice, url, sort="regression", metric="rouge-1")
    got = [i["index"] for i in worst["items"]]
    partial = {s["index"]: s for s in long_samples[:2]}  # the running run's answers are long's first two

    def changes(index: int) -> list[float]:
        found = [delta(index)]
        if index in partial:
            found.append(0.0)
        return found

    assert got == sorted(range(4), key=lambda i: (min(changes(i)), i))
    best = _get(api, alice, url, sort="improvement", metric="rouge-1")
    assert [i["index"] for i in best["items"]] == sorted(range(4), key=lambda i: (-max(changes(i)), i))
    # Against the short run as baseline, the order flips.
    flipped = _get(api, alice, url, sort="regression", metric="rouge-1", baseline=1)
    assert flipped["baseline"] == 1 and flipped["metric"] == "rouge-1"

    # min/max: samples where some non-baseline run scores in range; q: text anywhere.
    high = _get(api, alice, url, metric="bleu-4", min=0.0, max=100.0)
    assert high["total"] == 4
    assert _get(api, alice, url, q="NAME A COLOUR")["total"] == 1
    assert _get(api, alice, url, q="no such text anywhere")["items"] == []

    assert_error(
        api.client.get(url, params={"metric": "sacrebleu"}, headers=alice.headers), 422, field="query.metric"
    )
    assert_error(
        api.client.get(url, params={"baseline": 6}, headers=alice.headers), 422, field="query.baseline"
    )
    response = api.client.get(url, params={"min": 3, "max": 1, "metric": "bleu-4"}, headers=alice.headers)
    assert_error(response, 422, field="query.min")
    assert api.client.get(url, params={"sort": "sideways"}, headers=alice.headers).status_code == 422
    assert api.client.get(url, params={"min": "nan"}, headers=alice.headers).status_code == 422


def test_compare_ranks_runs_with_deltas_and_checks_the_test_set(api: Api, seed: Seeder) -> None:
    alice = api.account("alice")
    version = _version(api, alice)
    _, (long_id, short_id) = seed.evaluation(alice, version, ["long", "short"])
    _, (other_long,) = seed.evaluation(alice, version, ["long"], name="second")
    _, (_, pending_id) = seed.evaluation(alice, version, ["long", None], name="third")
    body = {"runs": [long_id, short_id, other_long, pending_id], "baseline": short_id}
    response = api.client.post("/api/evaluations/compare", json=body, headers=alice.headers)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["baseline"] == short_id and result["dataset_version"]["id"] == version
    assert result["dataset_version"]["number"] == 1 and result["dataset_version"]["dataset_name"]
    assert {"bleu-4", "rouge-1", "rouge-2", "rouge-l", "exact_match", "perplexity", "loss"} <= set(
        result["metrics"]
    )
    assert result["direction"]["perplexity"] == "lower" and result["direction"]["bleu-4"] == "higher"
    rows = {r["run_id"]: r for r in result["rows"]}
    assert [r["run_id"] for r in result["rows"]] == body["runs"]
    for key in result["metrics"]:
        scored = {rid: r["metrics"][key] for rid, r in rows.items() if key in r["metrics"]}
        pick = min(scored.values()) if result["direction"][key] == "lower" else max(scored.values())
        if len(set(scored.values())) == 1:
            assert key not in result["best"]  # all tie (demo-tiny's rouge is often 0 for every run)
        else:
            assert scored[result["best"][key]] == pick
        for rid, value in scored.items():
            assert rows[rid]["delta"][key] == pytest.approx(value - rows[short_id]["metrics"][key])
    assert rows[short_id]["delta"]["bleu-4"] == 0
    assert rows[pending_id]["metrics"] == {} and set(rows[pending_id]["delta"].values()) == {None}
    assert rows[long_id]["speed"]["tokens_per_s"] > 0
    # Same model and data: the two long runs agree, so their perplexity delta is the same.
    assert rows[long_id]["metrics"] == rows[other_long]["metrics"]

    # Another test set (a different dataset version or split) cannot be compared.
    _, (elsewhere,) = seed.evaluation(alice, _version(api, alice), ["long"], name="elsewhere")
    _, (other_split,) = seed.evaluation(alice, version, ["long"], name="split", split="test")
    for odd in (elsewhere, other_split):
        response = api.client.post(
            "/api/evaluations/compare", json={"runs": [long_id, odd]}, headers=alice.headers
        )
        assert_error(response, 422, field="body.runs")
    for bad in ({"runs": [long_id]}, {"runs": [long_id, long_id]}, {"runs": list(range(1, 10))}):
        assert api.client.post("/api/evaluations/compare", json=bad, headers=alice.headers).status_code == 422
    response = api.client.post(
        "/api/evaluations/compare",
        json={"runs": [long_id, short_id], "baseline": other_long},
        headers=alice.headers,
    )
    assert_error(response, 422, field="body.baseline")


def _attachment(response: Any, filename: str) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"] == f'attachment; filename="{filename}"'


def test_every_report_format(api: Api, seed: Seeder, engine_results: dict[str, Path]) -> None:
    alice = api.account("alice")
    version = _version(api, alice)
    evaluation_id, (long_id, short_id, _) = seed.evaluation(alice, version, ["long", "short", "partial"])
    url = f"/api/evaluations/{evaluation_id}/report"
    get: Callable[..., Any] = lambda fmt: api.client.get(url, params={"format": fmt}, headers=alice.headers)  # noqa: E731

    html = get("html")
    _attachment(html, f"evaluation-{evaluation_id}.html")
    assert html.headers["content-type"].startswith("text/html")
    page = html.text
    assert "<script" not in page.lower() and "&lt;script&gt;alert(&quot;name&quot;)" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", page, re.IGNORECASE)
    assert "<link" not in page and page.count("<svg") >= 6  # a bar chart per metric and the radar
    assert "demo-tiny (long)" in page and "★" in page and "All 4 samples." in page

    md = get("md")
    _attachment(md, f"evaluation-{evaluation_id}.md")
    table = [line for line in md.text.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| Model | bleu-4 ↑") and len(table) == 1 + 3
    assert "**" in md.text and "(baseline)" in table[1] and "<script" not in md.text

    rows = list(csv.DictReader(io.StringIO(get("csv").text)))
    _attachment(get("csv"), f"evaluation-{evaluation_id}.csv")
    assert len(rows) == 4 * 3  # sample × model, the running run's unanswered samples included
    long_samples = {s["index"]: s for s in _lines(engine_results["long"] / "samples.jsonl")}
    for row in rows:
        if row["run_id"] == str(long_id):
            sample = long_samples[int(row["index"])]
            assert row["predict"] == (
                "'" + sample["predict"]
                if sample["predict"][:1] in ("=", "+", "-", "@")
                else sample["predict"]
            )
            assert float(row["bleu-4"]) == pytest.approx(sample["scores"]["bleu-4"])
            assert row["label"] == sample["label"] and float(row["perplexity"]) > 1

    jsonl = get("jsonl")
    _attachment(jsonl, f"evaluation-{evaluation_id}.jsonl")
    records = [json.loads(line) for line in jsonl.text.splitlines()]
    assert len(records) == 12 and {r["run_id"] for r in records} >= {long_id, short_id}
    assert {"index", "model", "prompt", "label", "predict", "scores"} <= set(records[0])

    document = get("json")
    _attachment(document, f"evaluation-{evaluation_id}.json")
    data = document.json()
    assert data["evaluation"]["name"] == NAME and data["evaluation"]["dataset_version"]["id"] == version
    assert (
        len(data["samples"]) == 4
        and data["baseline"] == long_id
        and data["best"]["bleu-4"] in (long_id, short_id)
    )
    assert api.client.get(url, params={"format": "pdf"}, headers=alice.headers).status_code == 422

    compared = api.client.get(
        "/api/evaluations/compare/report",
        params={"runs": f"{long_id},{short_id}", "baseline": short_id, "format": "md"},
        headers=alice.headers,
    )
    _attachment(compared, f"comparison-{long_id}-{short_id}.md")
    assert "(baseline)" in next(line for line in compared.text.splitlines() if "demo-tiny (short)" in line)
    compared_html = api.client.get(
        "/api/evaluations/compare/report", params={"runs": f"{long_id},{short_id}"}, headers=alice.headers
    )
    _attachment(compared_html, f"comparison-{long_id}-{short_id}.html")
    for runs in ("1,x", f"{long_id}", f"{long_id},{long_id}", ""):
        response = api.client.get(
            "/api/evaluations/compare/report", params={"runs": runs}, headers=alice.headers
        )
        assert_error(response, 422, field="query.runs")


def test_strangers_get_404_until_shared_and_staff_read(api: Api, seed: Seeder) -> None:
    alice, bob = api.account("alice"), api.account("bob")
    version = _version(api, alice)
    evaluation_id, (long_id, short_id) = seed.evaluation(alice, version, ["long", "short"])
    _, (bob_run,) = seed.evaluation(bob, version, ["long"], name="bob's")
    urls = [f"/api/evaluations/{evaluation_id}/samples", f"/api/evaluations/{evaluation_id}/report"]
    compare_report = {"runs": f"{long_id},{short_id}"}

    def refused(who: Account) -> None:
        for url in urls:
            error = assert_error(api.client.get(url, headers=who.headers), 404, code="evaluation_not_found")
            assert "demo-tiny" not in json.dumps(error)
        for runs in ([long_id, short_id], [bob_run, long_id], [bob_run, 999_999]):
            response = api.client.post("/api/evaluations/compare", json={"runs": runs}, headers=who.headers)
            assert_error(response, 404, code="evaluation_not_found")
        response = api.client.get(
            "/api/evaluations/compare/report", params=compare_report, headers=who.headers
        )
        assert_error(response, 404, code="evaluation_not_found")

    refused(bob)
    # An absent evaluation answers exactly like a private one.
    assert_error(
        api.client.get("/api/evaluations/999999/samples", headers=alice.headers),
        404,
        code="evaluation_not_found",
    )
    assert api.client.get(urls[0]).status_code == 401

    operator = api.account("olga", role="operator")  # staff read every evaluation
    assert _get(api, operator, urls[0])["total"] == 4

    with seed.db.session() as session:
        evaluation = session.get(Evaluation, evaluation_id)
        assert evaluation is not None
        evaluation.shared = True
        session.commit()
    assert _get(api, bob, urls[0])["total"] == 4
    assert api.client.get(urls[1], params={"format": "csv"}, headers=bob.headers).status_code == 200
    response = api.client.post(
        "/api/evaluations/compare", json={"runs": [bob_run, long_id]}, headers=bob.headers
    )
    assert response.status_code == 200 and response.json()["baseline"] == bob_run
    assert (
        api.client.get(
            "/api/evaluations/compare/report", params=compare_report, headers=bob.headers
        ).status_code
        == 200
    )


def test_an_evaluation_made_through_the_api(
    api: Api,
    app: FastAPI,
    settings: Settings,
    seed: Seeder,
    engine_results: dict[str, Path],
    demo_model: Path,
) -> None:
    """The real create flow: POST /api/evaluations queues a job; it ends with the engine's files (the
    ones the fixture made) and the sync copies its totals; samples, reports and compare read them."""
    alice = api.account("alice")
    dataset = tiny_test_set(api.client, alice, rows=4)
    body = evaluation_body(dataset["id"], metrics=METRICS, start=True, name=NAME)
    created = create_evaluation(api.client, alice, body)
    (run,) = created["runs"]
    totals = json.loads((engine_results["long"] / "eval_results.json").read_text(encoding="utf-8"))["metrics"]
    finish_job_by_hand(app, settings, run["job_id"], totals)
    for name in ("samples.jsonl", "perplexity.jsonl"):
        shutil.copy(engine_results["long"] / name, settings.runs_dir / str(run["job_id"]) / name)
    run_sync(app)

    page = _get(api, alice, f"/api/evaluations/{created['id']}/samples", sort="improvement")
    assert page["total"] == 4 and page["metric"] == "bleu-4"
    assert [a["run_id"] for a in page["items"][0]["answers"]] == [run["id"]]
    report = api.client.get(
        f"/api/evaluations/{created['id']}/report", params={"format": "json"}, headers=alice.headers
    )
    _attachment(report, f"evaluation-{created['id']}.json")
    assert report.json()["rows"][0]["metrics"]["bleu-4"] == pytest.approx(totals["bleu-4"])

    # A run of another evaluation on the same dataset version and split compares with it.
    _, (short_id,) = seed.evaluation(alice, dataset["current_version_id"], ["short"], name="short")
    response = api.client.post(
        "/api/evaluations/compare", json={"runs": [run["id"], short_id]}, headers=alice.headers
    )
    assert response.status_code == 200, response.text
    rows = response.json()["rows"]
    assert rows[1]["delta"]["bleu-4"] == pytest.approx(rows[1]["metrics"]["bleu-4"] - totals["bleu-4"])

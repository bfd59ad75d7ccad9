"""Evaluation jobs without a model: the job spec's checks, the provider client, the judge's totals."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from loraforge.engine.eval.jobspec import load_eval_job
from loraforge.engine.eval.judging import judge_totals, verdict_record
from loraforge.engine.eval.provider import ProviderClient, complete_all
from loraforge.engine.eval.results import ResultStore, check_state
from loraforge.engine.eval.spec import EvalSpecError, load_eval_spec

EVALUATION = {"model_name_or_path": "m", "template": "default", "eval_dataset": "x", "metrics": ["bleu"]}
PROVIDER = {"base_url": "http://127.0.0.1:9/v1", "model": "gpt"}


def _problems(raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(EvalSpecError) as caught:
        load_eval_job(raw)
    return {p.key: p.message for p in caught.value.problems}


def test_job_spec_checks_name_each_key() -> None:
    job, spec = load_eval_job({"stage": "evaluation", "evaluation": EVALUATION, "provider": PROVIDER})
    assert spec is not None and spec.provider_concurrency == 4 and job.provider is not None

    logits = {**EVALUATION, "metrics": ["bleu", "perplexity"]}
    assert (
        "logits"
        in _problems({"stage": "evaluation", "evaluation": logits, "provider": PROVIDER})[
            "evaluation.metrics"
        ]
    )
    judged = {**EVALUATION, "metrics": ["judge"]}
    assert "judge" in _problems({"stage": "evaluation", "evaluation": judged})
    bad_prompt = {"mode": "single", "prompt": "Rate {answer}", "provider": PROVIDER}
    problems = _problems({"stage": "evaluation", "evaluation": judged, "judge": bad_prompt})
    assert "{question}" in problems["judge.prompt"] and "{reference}" in problems["judge.prompt"]
    both = {"mode": "single", "provider": PROVIDER, "local": {"model_name_or_path": "m"}}
    assert "exactly one" in _problems({"stage": "evaluation", "evaluation": judged, "judge": both})["judge"]
    assert "evaluation.provider_concurrency" in _problems(
        {"stage": "evaluation", "evaluation": {**EVALUATION, "provider_concurrency": 33}}
    )
    assert "evaluation" in _problems({"stage": "evaluation"})
    assert "provider.base_url" in _problems(
        {"stage": "evaluation", "evaluation": EVALUATION, "provider": {"base_url": "file:///x", "model": "m"}}
    )
    pairwise = {"runs": [{"name": "a", "samples": "/a"}, {"name": "b", "samples": "/b"}], "baseline": 2}
    problems = _problems({"stage": "evaluation", "pairwise": pairwise, "judge": {"provider": PROVIDER}})
    assert set(problems) == {"pairwise.baseline", "judge"}  # out of range; and mode is not pairwise


def test_the_resume_fingerprint_is_stable_across_relaunches(tmp_path: Path) -> None:
    raw = {**EVALUATION, "eval_dataset": "a,b", "columns": {"prompt": "q", "response": "a"}, "bf16": True}
    first = load_eval_spec(raw).generation_fingerprint()
    again = load_eval_spec(json.loads(json.dumps(raw))).generation_fingerprint()
    assert first == again
    assert check_state(tmp_path, first) is False and check_state(tmp_path, again) is True


def _client(handler: Any) -> ProviderClient:
    return ProviderClient(
        "http://provider/v1", "gpt", "sk-test", transport=httpx.MockTransport(handler), backoff_s=0.0
    )


def _answer(text: str, **usage: int) -> httpx.Response:
    body: dict[str, Any] = {"choices": [{"message": {"role": "assistant", "content": text}}]}
    if usage:
        body["usage"] = usage
    return httpx.Response(200, json=body)


def test_provider_retries_429_and_5xx_then_stores_the_error() -> None:
    seen: list[httpx.Request] = []
    replies = [httpx.Response(429), httpx.Response(502), _answer("Paris", completion_tokens=2)]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return replies[len(seen) - 1]

    done = _client(handler).complete(
        0, [{"role": "user", "content": "Capital?"}], max_tokens=8, temperature=0, top_p=1
    )
    assert done.text == "Paris" and done.completion_tokens == 2 and done.error is None
    body = json.loads(seen[0].content)
    assert (
        seen[0].url == "http://provider/v1/chat/completions"
        and seen[0].headers["authorization"] == "Bearer sk-test"
    )
    assert body["max_tokens"] == 8 and body["stream"] is False and body["model"] == "gpt"

    calls: list[int] = []

    def down(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503, json={"error": {"message": "overloaded"}})

    failed = _client(down).complete(1, [], max_tokens=8, temperature=0, top_p=1)
    assert len(calls) == 3 and failed.error == "HTTP 503: overloaded" and failed.text == ""

    calls.clear()

    def refused(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(401, json={"error": {"message": "Incorrect API key"}})

    assert "401" in (_client(refused).complete(2, [], max_tokens=8, temperature=0, top_p=1).error or "")
    assert len(calls) == 1  # a client error is not retried


def test_complete_all_bounds_concurrency_and_stops_submitting() -> None:
    lock = threading.Lock()
    running = [0, 0]  # now, peak

    def call(key: int, messages: list[dict[str, str]]) -> Any:
        from loraforge.engine.eval.provider import Completion

        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        return Completion(key=key, text=str(key), latency_s=0.01)

    requests: list[tuple[int, list[dict[str, str]]]] = [(i, []) for i in range(12)]
    keys = [c.key for group in complete_all(call, requests, concurrency=3) for c in group]
    assert sorted(keys) == list(range(12)) and running[1] <= 3

    stopped: list[int] = []

    def enough() -> bool:
        return len(stopped) >= 2

    for group in complete_all(call, requests, concurrency=2, stop=enough):
        stopped.extend(c.key for c in group)
    assert 2 <= len(stopped) < 12  # what was in flight finished; nothing new started


def test_judge_verdicts_unparseable_answers_are_counted_not_guessed() -> None:
    answers = ["Score: 8\nThe answer is right.", "**7/10** close enough", "I cannot tell.", "Score: 42"]
    verdicts = [verdict_record(text, None) for text in answers] + [verdict_record("", "HTTP 500: down")]
    assert verdicts[0] == {"score": 8.0, "reason": "The answer is right."}
    assert [v["score"] for v in verdicts] == [8.0, 7.0, None, None, None]
    totals = judge_totals([{"judge": v} for v in verdicts] + [{"predict": "not judged"}])
    assert totals == {"judge_score": 7.5, "judge_unparseable": 3}
    assert judge_totals([{"judge": verdicts[2]}]) == {"judge_unparseable": 1}


def test_compact_keeps_the_last_record_per_index(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "samples.jsonl")
    store.append([{"index": 1, "v": "a"}, {"index": 0, "v": "b"}])
    store.append([{"index": 1, "v": "c"}])
    store.compact()
    lines = [json.loads(x) for x in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert lines == [{"index": 0, "v": "b"}, {"index": 1, "v": "c"}]


def _judge_backend(mode: str, reply: Any) -> Any:
    from loraforge.engine.eval.jobspec import JudgeSpec
    from loraforge.engine.eval.judging import JudgeBackend

    def handler(request: httpx.Request) -> httpx.Response:
        prompt = json.loads(request.content)["messages"][0]["content"]
        return _answer(reply(prompt))

    judge = JudgeSpec.model_validate({"mode": mode, "provider": PROVIDER})
    return JudgeBackend(judge, None, transport=httpx.MockTransport(handler))


def test_single_judge_scores_each_unjudged_sample(tmp_path: Path) -> None:
    from loraforge.engine.eval.judging import judge_samples
    from loraforge.engine.eval.progress import Progress
    from loraforge.engine.events import EventWriter

    store = ResultStore(tmp_path / "samples.jsonl")
    store.append(
        [
            {"index": 0, "question": "2+2?", "label": "4", "predict": "4"},
            {"index": 1, "question": "3+3?", "label": "6", "predict": "five"},
            {
                "index": 2,
                "question": "1+1?",
                "label": "2",
                "predict": "2",
                "judge": {"score": 3.0, "reason": "old"},
            },
            {"index": 3, "question": "q", "label": "x", "predict": "", "error": "HTTP 500"},
        ]
    )

    def reply(prompt: str) -> str:
        return "Score: 9\nCorrect." if "Answer to grade:\n4" in prompt else "Hmm, hard to say."

    backend = _judge_backend("single", reply)
    judge_samples(
        backend, store, [0, 1, 2, 3], Progress(EventWriter(None, stream=io.StringIO()), 4), lambda: False
    )
    assert store.records[0]["judge"] == {"score": 9.0, "reason": "Correct."}
    assert store.records[1]["judge"]["score"] is None  # unparseable: stored, never guessed
    assert store.records[2]["judge"]["reason"] == "old"  # judged before: not asked again
    assert "judge" not in store.records[3]  # no answer to judge
    assert judge_totals(list(store.records.values())) == {"judge_score": 6.0, "judge_unparseable": 1}


def test_pairwise_needs_both_orders_to_agree(tmp_path: Path) -> None:
    from loraforge.engine.eval.jobspec import PairwiseSpec
    from loraforge.engine.eval.pairwise import run_pairwise
    from loraforge.engine.events import EventWriter

    def write(name: str, answers: list[str]) -> str:
        path = tmp_path / f"{name}.jsonl"
        rows = [
            {"index": i, "question": f"q{i}", "label": "right", "predict": a} for i, a in enumerate(answers)
        ]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return str(path)

    spec = PairwiseSpec.model_validate(
        {
            "runs": [
                {"name": "base", "samples": write("base", ["wrong", "right", "wrong", "right"])},
                {"name": "better", "samples": write("better", ["right", "right", "right", "wrong"])},
                {"name": "biased", "samples": write("biased", ["right", "wrong", "wrong", "right"])},
            ]
        }
    )

    def reply(prompt: str) -> str:
        a = prompt.split("Answer A:\n")[1].split("\n")[0]
        b = prompt.split("Answer B:\n")[1].split("\n")[0]
        if a == b:
            return "Verdict: tie"
        return "Verdict: A" if a == "right" else "Verdict: B"

    run_dir = tmp_path / "pairwise"
    run_dir.mkdir()
    writer = EventWriter(run_dir, stream=io.StringIO())
    report = run_pairwise(spec, _judge_backend("pairwise", reply), run_dir, writer, lambda: False)
    better, biased = report["vs"]
    assert report["baseline"] == "base"
    assert (better["win"], better["tie"], better["loss"], better["n"]) == (50.0, 25.0, 25.0, 4)
    assert (biased["win"], biased["tie"], biased["loss"]) == (25.0, 50.0, 25.0)
    assert json.loads((run_dir / "pairwise.json").read_text()) == report

    # A judge that always says "A" favours a position: every pair is a tie, never a win.
    again = tmp_path / "again"
    again.mkdir()
    always_a = _judge_backend("pairwise", lambda prompt: "Verdict: A")
    report = run_pairwise(spec, always_a, again, EventWriter(again, stream=io.StringIO()), lambda: False)
    assert all(v["tie"] == 100.0 for v in report["vs"])

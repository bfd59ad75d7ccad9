"""Evaluation jobs through `python -m loraforge.engine run RUN_DIR` (spec.json `"stage": "evaluation"`).

The real engine process on the tiny demo model: a run to the end, SIGTERM at a batch boundary and
the relaunch that continues, seeded answers rescored for a new metric without generating, and a
provider model plus a provider judge served by our own inference worker on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from runtime_helpers import DATA, engine_env, make_run, run_engine

from loraforge.engine.events import parse_line, read_events_file


def _evaluation(model: Path | str, **extra: Any) -> dict[str, Any]:
    spec = {
        "model_name_or_path": str(model),
        "template": "auto",
        "eval_dataset": "alpaca_en_demo",
        "dataset_dir": str(DATA),
        "max_samples": 6,
        "cutoff_len": 96,
        "max_new_tokens": 8,
        "per_device_eval_batch_size": 2,
        "use_cpu": True,
        "metrics": ["bleu", "exact_match"],
    }
    return {**spec, **extra}


def _job(evaluation: dict[str, Any] | None, **blocks: Any) -> dict[str, Any]:
    return {"stage": "evaluation", "evaluation": evaluation, **blocks}


def _samples(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run_dir / "samples.jsonl").read_text(encoding="utf-8").splitlines()]


def _results(run_dir: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((run_dir / "eval_results.json").read_text(encoding="utf-8"))
    return result


def test_run_cancel_resume_and_seeded_rescoring(tmp_path: Path, tiny_qwen_dir: Path) -> None:
    # The judge metric with a local judge (the demo model itself, greedy, batched).
    judge = {"mode": "single", "local": {"model_name_or_path": str(tiny_qwen_dir)}, "max_new_tokens": 16}
    evaluation = _evaluation(tiny_qwen_dir, metrics=["bleu", "exact_match", "judge"])
    run_dir = make_run(tmp_path, "eval", _job(evaluation, judge=judge))
    # SIGTERM while the model loads: the flag is read at the first batch boundary, so exactly one
    # batch (2 samples) is stored before the run ends as cancelled.
    proc = subprocess.Popen(
        [sys.executable, "-m", "loraforge.engine", "run", str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=engine_env(),
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        event = parse_line(line)
        if event.type == "status" and getattr(event, "status", None) == "loading_model":
            proc.send_signal(signal.SIGTERM)
            break
    proc.stdout.read()
    assert proc.wait(timeout=120) == 0
    events = read_events_file(run_dir / "events.jsonl")
    assert events[-1].type == "status" and events[-1].status == "cancelled"
    kept = _samples(run_dir)
    assert len(kept) == 2 and not (run_dir / "eval_results.json").exists()

    # The relaunch (same RUN_DIR, same spec.json) continues: the stored answers are not generated again.
    res = run_engine(run_dir, timeout=180)
    assert res.rc == 0 and res.final_status == "succeeded", res.explain()
    result = _results(run_dir)
    assert result["resumed"] and result["speed"]["generated_now"] == 4
    samples = _samples(run_dir)
    assert [s["index"] for s in samples] == list(range(6))
    again = {s["index"]: s for s in samples}
    assert all({**again[k["index"]], "judge": None} == {**k, "judge": None} for k in kept)
    assert {"bleu-4", "exact_match", "judge_unparseable"} <= set(result["metrics"])
    verdicts = [s["judge"] for s in samples]
    parsed = [v["score"] for v in verdicts if v["score"] is not None]
    assert result["metrics"]["judge_unparseable"] == 6 - len(parsed)
    progress = res.of_type("metric")
    assert progress[-1].step == progress[-1].total_steps == 12 and progress[-1].eta_s is not None
    assert (run_dir / "generated_predictions.jsonl").exists()

    # Another job seeded with those answers and one more metric: rescored, nothing generated, no model.
    seeded_dir = make_run(
        tmp_path,
        "seeded",
        _job(
            _evaluation(tiny_qwen_dir, metrics=["bleu", "exact_match", "contains"]),
            seed_samples=str(run_dir / "samples.jsonl"),
        ),
    )
    res = run_engine(seeded_dir, timeout=180)
    assert res.rc == 0 and res.final_status == "succeeded", res.explain()
    seeded = _results(seeded_dir)
    assert seeded["speed"]["generated_now"] == 0 and seeded["device"] == "none"
    assert seeded["metrics"]["bleu-4"] == pytest.approx(result["metrics"]["bleu-4"])
    assert "contains" in seeded["metrics"]
    assert [s["predict"] for s in _samples(seeded_dir)] == [s["predict"] for s in samples]
    assert all("contains" in s["scores"] for s in _samples(seeded_dir))
    assert "loading_model" not in [e.status for e in res.of_type("status")]


def test_bad_job_specs_fail_with_an_error_event(tmp_path: Path, tiny_qwen_dir: Path) -> None:
    bad = _job(
        _evaluation(tiny_qwen_dir, metrics=["perplexity"]),
        provider={"base_url": "http://127.0.0.1:9/v1", "model": "x"},
    )
    res = run_engine(make_run(tmp_path, "bad", bad), timeout=60)
    errors = res.of_type("error")
    assert res.rc == 2 and res.final_status == "failed" and errors[0].code == "invalid_input", res.explain()
    assert "evaluation.metrics" in errors[0].message


# ---- a provider model and a provider judge: our own inference worker on 127.0.0.1 ----------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def worker(tiny_qwen_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base_url, token) of a worker serving the demo model as `demo-tiny`; stopped by its PID."""
    port, token = _free_port(), secrets.token_urlsafe(16)
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "loraforge.inference.worker", "--host", "127.0.0.1", "--port", str(port),
             "--model", f"demo-tiny={tiny_qwen_dir}", "--concurrency", "2", "--device", "cpu",
             "--memory-budget-mb", "1024"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**engine_env(), "LORAFORGE_WORKER_TOKEN": token},
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1", token
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


def test_provider_model_with_a_provider_judge_then_pairwise(
    tmp_path: Path, tiny_qwen_dir: Path, worker: tuple[str, str]
) -> None:
    base_url, token = worker
    provider = {"base_url": base_url, "model": "demo-tiny"}
    evaluation = _evaluation("demo-tiny", metrics=["bleu", "exact_match", "judge"], provider_concurrency=2)
    judge = {"mode": "single", "provider": provider, "max_new_tokens": 16}
    run_dir = make_run(tmp_path, "provider", _job(evaluation, provider=provider, judge=judge))
    keys = {"LORAFORGE_EVAL_PROVIDER_KEY": token, "LORAFORGE_EVAL_JUDGE_KEY": token}
    res = run_engine(run_dir, timeout=180, **keys)
    assert res.rc == 0 and res.final_status == "succeeded", res.explain()
    result = _results(run_dir)
    samples = _samples(run_dir)
    assert len(samples) == 6 and result["device"] == "provider" and result["test_set"]["failed_samples"] == 0
    assert all("error" not in s and isinstance(s["completion_tokens"], int) for s in samples)
    assert all(s["latency_s"] > 0 and s["question"] and s["label"] for s in samples)
    # The same rows and references as a local evaluation of that test set.
    local = _questions(tiny_qwen_dir)
    assert [s["question"] for s in samples] == local
    verdicts = [s["judge"] for s in samples]
    parsed = [v for v in verdicts if v["score"] is not None]
    assert result["metrics"]["judge_unparseable"] == len(verdicts) - len(parsed)
    assert ("judge_score" in result["metrics"]) == bool(parsed)

    # A wrong key: every request is refused (401, not retried): the job fails and says why.
    wrong = make_run(tmp_path, "wrong-key", _job(_evaluation("demo-tiny"), provider=provider))
    res = run_engine(wrong, timeout=120, LORAFORGE_EVAL_PROVIDER_KEY="not-the-key")
    errors = res.of_type("error")
    assert res.final_status == "failed" and errors[0].code == "provider_failed", res.explain()
    assert "401" in errors[0].message

    # Pairwise: the provider run against the seeded copy of itself, judged in both orders.
    pairwise = {
        "runs": [{"name": "base", "samples": str(run_dir / "samples.jsonl")},
                 {"name": "copy", "samples": str(run_dir / "samples.jsonl")}],
        "baseline": 0,
    }  # fmt: skip
    pair_dir = make_run(
        tmp_path, "pairwise", _job(None, pairwise=pairwise, judge={**judge, "mode": "pairwise"})
    )
    res = run_engine(pair_dir, timeout=180, LORAFORGE_EVAL_JUDGE_KEY=token)
    assert res.rc == 0 and res.final_status == "succeeded", res.explain()
    report = json.loads((pair_dir / "pairwise.json").read_text(encoding="utf-8"))
    assert report["baseline"] == "base" and [v["model"] for v in report["vs"]] == ["copy"]
    vs = report["vs"][0]
    assert vs["n"] + vs["unparseable"] == 6
    assert vs["n"] == 0 or vs["win"] + vs["tie"] + vs["loss"] == pytest.approx(100)
    assert res.of_type("metric")[-1].step == 6


def _questions(model: Path) -> list[str]:
    """The last user turns of the test rows, as the local path reads them."""
    from loraforge.engine.eval.spec import load_eval_spec
    from loraforge.engine.eval.testset import load_generation_set

    examples, _ = load_generation_set(load_eval_spec(_evaluation(model)))
    return [str(ex["prompt"][-1]["content"]) for ex in examples]

"""The evaluation engine on a real tiny model: batched generation, resume, perplexity, multiple choice, CLI.

The tiny Llama demo model (random weights, LLaMA-Factory's `default` template) answers with varied
tokens, so batched and one-by-one greedy answers can really differ if padding leaks into them.
"""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from runtime_helpers import DATA, engine_env

from loraforge.engine.chat_templates import get_template
from loraforge.engine.data.collators import PaddedCollator
from loraforge.engine.data.prepare import prepare_data
from loraforge.engine.eval.batching import MAX_AUTO_BATCH, BatchPlan
from loraforge.engine.eval.encoding import choice_prompt_ids, generation_rows
from loraforge.engine.eval.generate import Generator
from loraforge.engine.eval.loading import load_eval_model, stop_token_ids
from loraforge.engine.eval.runner import run_evaluation
from loraforge.engine.eval.spec import load_eval_spec
from loraforge.engine.eval.testset import choice_items, load_generation_set
from loraforge.engine.events import EventWriter, read_events_file
from loraforge.engine.spec_loading import load_spec


def _spec(model: Path, out: Path, **extra: Any) -> dict[str, Any]:
    spec = {
        "model_name_or_path": str(model),
        "template": "default",
        "eval_dataset": "alpaca_en_demo",
        "dataset_dir": str(DATA),
        "max_samples": 10,
        "cutoff_len": 96,
        "max_new_tokens": 8,
        "per_device_eval_batch_size": 4,
        "use_cpu": True,
        "output_dir": str(out),
    }
    return {**spec, **extra}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_batched_generation_order_resume_and_perplexity(tmp_path: Path, tiny_llama_dir: Path) -> None:
    out = tmp_path / "eval"
    spec = load_eval_spec(_spec(tiny_llama_dir, out, metrics=["bleu", "rouge", "exact_match", "perplexity"]))
    first = run_evaluation(spec, out, EventWriter(out, stream=io.StringIO()))
    predictions = _lines(out / "generated_predictions.jsonl")
    assert len(predictions) == 10 and first["speed"]["generated_now"] == 10

    # Batched (left-padded, length-sorted) greedy answers equal one-by-one answers, in file order.
    model, tokenizer = load_eval_model(spec, "cpu")
    template = get_template("default", tokenizer)
    examples, _ = load_generation_set(spec)
    rows = generation_rows(examples, tokenizer, template, cutoff_len=spec.cutoff_len)
    assert len({len(r.prompt_ids) for r in rows}) > 1  # the batches really needed padding
    generator = Generator(model, tokenizer, stop_token_ids(model, tokenizer, template), spec)
    alone = [generator.run([row])[0].predict for row in rows]
    assert [p["predict"] for p in predictions] == alone
    assert any(alone) and len(set(alone)) > 1
    assert [p["label"] for p in predictions] == [r.label for r in rows]
    assert [p["prompt"] for p in predictions] == [tokenizer.decode(r.prompt_ids) for r in rows]
    assert all(
        ex["prompt"][-1]["content"][:20] in p["prompt"] for ex, p in zip(examples, predictions, strict=True)
    )
    lf = json.loads((out / "predict_results.json").read_text())
    assert lf["predict_bleu-4"] == pytest.approx(first["metrics"]["bleu-4"])
    events = read_events_file(out / "events.jsonl")
    progress = [e for e in events if e.type == "metric"]
    assert progress[-1].step == progress[-1].total_steps == 20  # 10 generated + 10 perplexity rows
    assert events[-1].type == "status" and events[-1].status == "succeeded"

    # Perplexity = exp(the training loss) of a plain forward over the rows the training data path builds.
    job = load_spec(
        {"model_name_or_path": str(tiny_llama_dir), "stage": "sft", "dataset": "alpaca_en_demo",
         "dataset_dir": str(DATA), "template": "default", "cutoff_len": 96, "max_samples": 10}
    )  # fmt: skip
    train = prepare_data(job, tokenizer).train_dataset
    batch = PaddedCollator(tokenizer.pad_token_id)([train[i] for i in range(len(train))])
    with torch.inference_mode():
        loss = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]
        ).loss
    assert first["metrics"]["perplexity"] == pytest.approx(math.exp(loss.item()), rel=1e-4)
    assert first["metrics"]["labelled_tokens"] == int((batch["labels"][:, 1:] != -100).sum())

    # A restart skips what is stored; a torn last line (killed mid-write) is dropped, not misread.
    samples = out / "samples.jsonl"
    kept = samples.read_text(encoding="utf-8").splitlines()[:3]
    samples.write_text("\n".join(kept) + '\n{"index": 7, "predi', encoding="utf-8")
    (out / "perplexity.jsonl").unlink()
    again = run_evaluation(spec, out, EventWriter(out, stream=io.StringIO()))
    assert again["resumed"] and again["speed"]["generated_now"] == 7
    assert _lines(out / "generated_predictions.jsonl") == predictions
    assert again["metrics"] == pytest.approx(first["metrics"])
    assert len(_lines(samples)) == 10


def test_multiple_choice_picks_the_highest_letter_logit(tmp_path: Path, tiny_llama_dir: Path) -> None:
    path = tmp_path / "mc.csv"
    rows = [
        ("math", "1 + 1 = ?", "1", "2", "3", "4", "B"),
        ("math", "2 + 2 = ?", "4", "5", "6", "7", "A"),
        ("math", "3 + 3 = ?", "5", "6", "7", "8", "B"),
        ("law", "Who makes laws?", "parliament", "a cat", "rain", "nobody", "A"),
        ("law", "What is a contract?", "a fish", "an agreement", "a song", "a tree", "B"),
        ("law", "What is a court?", "a fruit", "a tool", "a place of trials", "a car", "C"),
    ]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["subject", "question", "A", "B", "C", "D", "answer"])
        writer.writerows(rows)
    out = tmp_path / "mc"
    spec = load_eval_spec(
        _spec(
            tiny_llama_dir, out, eval_dataset=str(path), metrics=["multiple_choice"], n_shot=1, cutoff_len=512
        )
    )
    result = run_evaluation(spec, out, EventWriter(out, stream=io.StringIO()))
    mc = result["metrics"]["multiple_choice"]
    assert mc["questions"] == 4 and mc["shot_rows_not_scored"] == 2  # each subject's first row is its shot
    assert set(mc["by_subject"]) == {"math", "law"}
    records = sorted(_lines(out / "choices.jsonl"), key=lambda r: r["index"])
    assert mc["accuracy"] == pytest.approx(100 * sum(r["correct"] for r in records) / 4)

    # The pick is the letter whose token (with or without a space) a plain forward scores highest.
    model, tokenizer = load_eval_model(spec, "cpu")
    template = get_template("default", tokenizer)
    items, _ = choice_items(spec)
    for item, record in zip(items, records, strict=True):
        ids = choice_prompt_ids(item, tokenizer, template, spec.cutoff_len)
        text = tokenizer.decode(ids, skip_special_tokens=True)
        assert text.startswith("Human: The following are") and text.endswith("Answer:\nAssistant:"), text
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
        best = {
            letter: max(
                float(logits[tokenizer.encode(s, add_special_tokens=False)[-1]])
                for s in (letter, " " + letter)
            )
            for letter in "ABCD"
        }
        assert record["pick"] == max(best, key=lambda k: best[k])
        assert record["correct"] == (record["pick"] == item.question.answer)


def test_batches_are_sorted_and_sized_by_rows_or_by_token_budget() -> None:
    lengths = [10, 50, 10, 30, 20]
    assert BatchPlan(2, 0).split(lengths, int) == [[50, 30], [20, 10], [10]]
    # By budget: a batch holds budget // (its longest prompt + new tokens) rows, capped.
    assert BatchPlan(None, 210).split(lengths, int, new_tokens=50) == [[50, 30], [20, 10, 10]]
    assert BatchPlan(None, 10).split(lengths, int) == [[50], [30], [20], [10], [10]]
    assert len(BatchPlan(None, 10**6).split([1] * 100, int)[0]) == MAX_AUTO_BATCH


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loraforge", "eval", *args],
        capture_output=True, text=True, timeout=300, env=engine_env(), check=False,
    )  # fmt: skip


def test_cli_writes_llamafactory_files_and_explains_bad_specs(tmp_path: Path, tiny_llama_dir: Path) -> None:
    out = tmp_path / "cli"
    # OpenAI chat rows this time, with a system turn and a two-turn history.
    chats = tmp_path / "chats.jsonl"

    def turn(role: str, content: str) -> dict[str, str]:
        return {"role": role, "content": content}

    rows = [
        [
            turn("system", "Answer briefly."),
            turn("user", f"What is {i} + {i}?"),
            turn("assistant", str(2 * i)),
        ]
        for i in range(5)
    ]
    rows.append([*rows[0], turn("user", "And 3 + 3?"), turn("assistant", "6")])
    chats.write_text("".join(json.dumps({"messages": r}) + "\n" for r in rows), encoding="utf-8")
    metrics = ["bleu", "rouge", "sacrebleu", "chrf", "exact_match"]
    spec = _spec(tiny_llama_dir, out, eval_dataset=str(chats), metrics=metrics)
    del spec["per_device_eval_batch_size"]  # batches by token budget
    # An LF prediction YAML's own keys load too (LF's machinery keys are accepted without effect).
    spec.update(
        stage="sft", do_predict=True, predict_with_generate=True, do_sample=False, finetuning_type="lora"
    )
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(spec))
    proc = _cli(str(path))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "6/6 samples" in proc.stderr
    predictions = _lines(out / "generated_predictions.jsonl")
    assert len(predictions) == 6 and all(set(p) == {"prompt", "predict", "label"} for p in predictions)
    assert predictions[0]["prompt"] == "System: Answer briefly.</s>\nHuman: What is 0 + 0?</s>\nAssistant:"
    assert predictions[5]["prompt"].endswith("Assistant:0</s>\nHuman: And 3 + 3?</s>\nAssistant:")
    assert [p["label"] for p in predictions] == ["0\n", "2\n", "4\n", "6\n", "8\n", "6\n"]  # as LF decodes
    lf = json.loads((out / "predict_results.json").read_text())
    assert set(lf) == {
        "predict_bleu-4", "predict_rouge-1", "predict_rouge-2", "predict_rouge-l",
        "predict_runtime", "predict_samples_per_second", "predict_steps_per_second",
    }  # fmt: skip
    ours = json.loads((out / "eval_results.json").read_text())
    assert {"sacrebleu", "chrf", "bleu-4"} <= set(ours["metrics"]) and ours["speed"]["completion_tokens"] > 0
    assert json.loads(proc.stdout)["metrics"] == ours["metrics"]

    def refused(spec_text: str, *needles: str) -> None:
        bad = tmp_path / "bad.yaml"
        bad.write_text(spec_text)
        proc = _cli(str(bad))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        for needle in needles:
            assert needle in proc.stderr, proc.stderr

    base = yaml.safe_dump(_spec(tiny_llama_dir, tmp_path / "elsewhere"))
    refused(base + "max_new_token: 4\n", "max_new_token: unknown key (did you mean 'max_new_tokens'?)")
    refused(base.replace("alpaca_en_demo", "no_such_set"), "no_such_set", "neither in")
    refused(base + "metrics: [regex]\n", "regex_pattern")
    refused(
        yaml.safe_dump(_spec(tiny_llama_dir, out, max_new_tokens=9)), "different evaluation", "max_new_tokens"
    )
    refused(yaml.safe_dump(_spec(tmp_path / "nowhere", tmp_path / "x")), "does not exist")

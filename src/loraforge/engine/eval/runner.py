"""One evaluation, top to bottom: test set -> model -> passes -> totals -> result files.

    run_evaluation(spec, output_dir, writer) writes into output_dir
        eval_state.json              what decides the answers (a resume must match it)
        samples.jsonl                per generated sample: prompt, predict, label, tokens, latency, scores
        perplexity.jsonl             per sample: summed NLL and labelled-token count
        choices.jsonl                per question: letter logits, pick, correct
        generated_predictions.jsonl  LLaMA-Factory's file: prompt, predict, label (test-set order)
        predict_results.json         LLaMA-Factory's totals (predict_bleu-4, predict_rouge-*, runtime)
        eval_results.json            every total, the speed figures and the files above
        events.jsonl                 progress and status events (`engine/events.py`)

Every pass skips the samples its file already holds, so rerunning a stopped evaluation with the
same spec continues where it stopped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from loraforge.engine.chat_templates import get_template
from loraforge.engine.eval.encoding import (
    choice_prompt_ids,
    generation_rows,
    letter_token_ids,
    perplexity_rows,
)
from loraforge.engine.eval.progress import Progress
from loraforge.engine.eval.results import ResultStore, check_state
from loraforge.engine.eval.scoring import (
    SampleScorer,
    choice_totals,
    generation_totals,
    perplexity_totals,
    speed_totals,
)
from loraforge.engine.eval.spec import EvalSpec
from loraforge.engine.eval.testset import ChoiceItem, choice_items, load_generation_set
from loraforge.engine.events import EventWriter

RESULTS_FILE = "eval_results.json"
LF_PREDICTIONS = "generated_predictions.jsonl"
LF_RESULTS = "predict_results.json"


def run_evaluation(
    spec: EvalSpec, output_dir: Path, writer: EventWriter, *, base_dir: Path | None = None
) -> dict[str, Any]:
    """Run every pass the spec asks for and write the result files; returns eval_results.json's content."""
    resumed = check_state(output_dir, spec.generation_fingerprint())
    writer.status("loading_data", "resuming" if resumed else None)
    multiple_choice = "multiple_choice" in spec.metrics
    if multiple_choice:
        items, shots_excluded = choice_items(spec, base_dir)
        examples: list[Any] = []
        test_set = {"questions": len(items), "shot_rows": shots_excluded}
    else:
        examples, data_stats = load_generation_set(spec, base_dir)
        skipped = sum(s.rows_read for s in data_stats) - len(examples)  # unreadable or no answer
        if skipped:
            writer.log(f"{skipped} test rows are unreadable or have no answer: left out", level="warning")
        test_set = {"rows": len(examples), "rows_skipped": skipped}

    writer.status("loading_model")
    from loraforge.engine.eval.loading import load_eval_model, pick_device  # torch: after the cheap checks

    device = pick_device(spec)
    model, tokenizer = load_eval_model(spec, device)
    template = get_template(spec.template, tokenizer, spec.default_system)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    generate = spec.predict_with_generate and not multiple_choice
    stores = {
        "samples": ResultStore(output_dir / "samples.jsonl"),
        "perplexity": ResultStore(output_dir / "perplexity.jsonl"),
        "choices": ResultStore(output_dir / "choices.jsonl"),
    }
    totals: dict[str, Any] = {}
    speed: dict[str, Any] = {}
    files: dict[str, str] = {}

    writer.status("evaluating")
    if multiple_choice:
        progress = Progress(writer, len(items), sum(i.index in stores["choices"] for i in items))
        _choice_pass(spec, model, tokenizer, template, items, stores["choices"], progress)
        totals["multiple_choice"] = choice_totals(stores["choices"].ordered(), shots_excluded)
        files["choices"] = "choices.jsonl"
    else:
        wants_ppl = "perplexity" in spec.metrics
        gen_rows = (
            generation_rows(examples, tokenizer, template, cutoff_len=spec.cutoff_len) if generate else []
        )
        ppl_rows = perplexity_rows(examples, tokenizer, template, spec) if wants_ppl else []
        done = sum(r.index in stores["samples"] for r in gen_rows)
        done += sum(r.index in stores["perplexity"] for r in ppl_rows)
        progress = Progress(writer, len(gen_rows) + len(ppl_rows), done)
        if generate:
            speed = _generation_pass(spec, model, tokenizer, template, gen_rows, stores["samples"], progress)
            samples = stores["samples"].ordered()
            totals.update(generation_totals(spec, samples))
            speed.update(speed_totals(samples, speed["runtime_s"]))
            _write_lf_files(output_dir, samples, totals, speed)
            files.update(samples="samples.jsonl", lf_predictions=LF_PREDICTIONS, lf_results=LF_RESULTS)
        if wants_ppl:
            from loraforge.engine.eval.likelihood import nll_records

            todo = [r for r in ppl_rows if r.index not in stores["perplexity"]]
            for records in nll_records(model, todo, spec.batch_plan(), pad_id):
                stores["perplexity"].append(records)
                progress.advance(len(records))
            totals.update(perplexity_totals(stores["perplexity"].ordered()))
            files["perplexity"] = "perplexity.jsonl"

    result = {
        "model": spec.model_name_or_path,
        "adapter": spec.adapter_name_or_path,
        "eval_dataset": spec.eval_dataset,
        "metrics": totals,
        "speed": speed,
        "device": device,
        "test_set": test_set,
        "resumed": resumed,
        "files": files,
        "spec": spec.model_dump(mode="json"),
    }
    (output_dir / RESULTS_FILE).write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    writer.emit("eval", step=progress.done, metrics=totals)
    writer.emit("artifact", kind="summary", path=str(output_dir / RESULTS_FILE))
    writer.status("succeeded")
    return result


def _choice_pass(
    spec: EvalSpec,
    model: Any,
    tokenizer: Any,
    template: Any,
    items: list[ChoiceItem],
    store: ResultStore,
    progress: Progress,
) -> None:
    """Score the questions the store lacks by their option letters' logits, storing each batch."""
    from loraforge.engine.eval.likelihood import ChoiceRow, choice_records

    rows = [
        ChoiceRow(
            item.index,
            choice_prompt_ids(item, tokenizer, template, spec.cutoff_len),
            item.question.answer,
            item.question.subject,
            len(item.question.options),
        )
        for item in items
        if item.index not in store
    ]
    letters = letter_token_ids(tokenizer, max((len(i.question.options) for i in items), default=2))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    for records in choice_records(model, rows, letters, spec.batch_plan(), pad_id):
        store.append(records)
        progress.advance(len(records))


def _generation_pass(
    spec: EvalSpec,
    model: Any,
    tokenizer: Any,
    template: Any,
    rows: list[Any],
    store: ResultStore,
    progress: Progress,
) -> dict[str, Any]:
    """Generate the answers the store lacks, scoring and storing each batch as it finishes."""
    from loraforge.engine.eval.generate import Generator
    from loraforge.engine.eval.loading import stop_token_ids

    started = time.perf_counter()
    scorer = SampleScorer(spec)
    generator = Generator(model, tokenizer, stop_token_ids(model, tokenizer, template), spec)
    by_index = {r.index: r for r in rows}
    todo = [r for r in rows if r.index not in store]
    batches = 0
    for results in generator.stream(todo):
        records = []
        for g in results:
            row = by_index[g.index]
            records.append(
                {
                    "index": g.index,
                    "prompt": tokenizer.decode(row.prompt_ids, skip_special_tokens=False),
                    "predict": g.predict,
                    "label": row.label,
                    "prompt_tokens": g.prompt_tokens,
                    "completion_tokens": g.completion_tokens,
                    "latency_s": g.latency_s,
                    "tokens_per_s": g.tokens_per_s,
                    "scores": scorer(g.predict, row.label),
                }
            )
        store.append(records)
        batches += 1
        progress.advance(len(records), sum(r["completion_tokens"] for r in records))
    runtime = time.perf_counter() - started
    return {
        "runtime_s": round(runtime, 4),
        "generated_now": len(todo),
        "batches_now": batches,
        "samples_per_s": round(len(todo) / runtime, 4) if runtime > 0 and todo else 0.0,
        "batches_per_s": round(batches / runtime, 4) if runtime > 0 and batches else 0.0,
    }


def _write_lf_files(
    output_dir: Path, samples: list[dict[str, Any]], totals: dict[str, Any], speed: dict[str, Any]
) -> None:
    """LLaMA-Factory's two prediction files, with its field names, in test-set order."""
    with (output_dir / LF_PREDICTIONS).open("w", encoding="utf-8") as fh:
        for s in samples:
            line = {"prompt": s["prompt"], "predict": s["predict"], "label": s["label"]}
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
    lf: dict[str, Any] = {
        f"predict_{key}": totals[key] for key in ("bleu-4", "rouge-1", "rouge-2", "rouge-l") if key in totals
    }
    lf["predict_runtime"] = speed["runtime_s"]
    lf["predict_samples_per_second"] = speed["samples_per_s"]
    lf["predict_steps_per_second"] = speed["batches_per_s"]
    (output_dir / LF_RESULTS).write_text(json.dumps(lf, indent=2), encoding="utf-8")

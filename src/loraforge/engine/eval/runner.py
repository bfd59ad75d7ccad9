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
same spec continues where it stopped. A provider model generates over HTTP (no model loads); the
`judge` metric's single-mode judge scores each stored answer after generation; stored answers that
lack a score of the current metrics are rescored, not generated again.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loraforge.engine.eval.errors import ProviderFailedError
from loraforge.engine.eval.passes import (
    answered,
    chat_rows,
    check_stop,
    choice_pass,
    local_generation_pass,
    pass_speed,
    provider_generation_pass,
    rescore,
)
from loraforge.engine.eval.progress import Progress
from loraforge.engine.eval.results import ResultStore, check_state
from loraforge.engine.eval.scoring import choice_totals, generation_totals, perplexity_totals, speed_totals
from loraforge.engine.eval.spec import LOGIT_METRICS, EvalSpec
from loraforge.engine.eval.testset import choice_items, load_generation_set
from loraforge.engine.events import EventWriter

if TYPE_CHECKING:
    from loraforge.engine.eval.jobspec import JudgeSpec, ProviderRef

RESULTS_FILE = "eval_results.json"
LF_PREDICTIONS = "generated_predictions.jsonl"
LF_RESULTS = "predict_results.json"


def _never() -> bool:
    return False


def run_evaluation(
    spec: EvalSpec,
    output_dir: Path,
    writer: EventWriter,
    *,
    base_dir: Path | None = None,
    provider: ProviderRef | None = None,
    judge: JudgeSpec | None = None,
    stop: Callable[[], bool] = _never,
) -> dict[str, Any]:
    """Run every pass the spec asks for and write the result files; returns eval_results.json's content.

    `provider`: generate through that endpoint instead of loading the model. `judge`: the judge of
    the `judge` metric (single mode scores here; pairwise mode is a job of its own). `stop()` true at
    a batch boundary raises EvalCancelled with everything so far stored.
    """
    if "judge" in spec.metrics and judge is None:
        raise ValueError("metrics: the judge metric needs a judge model (an evaluation job's `judge`)")
    if provider is not None and LOGIT_METRICS & set(spec.metrics):
        raise ValueError("metrics: perplexity and multiple_choice need logits, which a provider model lacks")
    fingerprint = spec.generation_fingerprint()
    if provider is not None:  # the same model name on another endpoint is another model
        fingerprint["provider"] = provider.model_dump(mode="json")
    resumed = check_state(output_dir, fingerprint)
    writer.status("loading_data", "resuming" if resumed else None)
    multiple_choice = "multiple_choice" in spec.metrics
    if multiple_choice:
        items, shots_excluded = choice_items(spec, base_dir)
        examples: list[Any] = []
        test_set: dict[str, Any] = {"questions": len(items), "shot_rows": shots_excluded}
    else:
        examples, data_stats = load_generation_set(spec, base_dir)
        skipped = sum(s.rows_read for s in data_stats) - len(examples)  # unreadable or no answer
        if skipped:
            writer.log(f"{skipped} test rows are unreadable or have no answer: left out", level="warning")
        test_set = {"rows": len(examples), "rows_skipped": skipped}
    check_stop(stop)

    generate = spec.predict_with_generate and not multiple_choice
    single_judge = "judge" in spec.metrics and judge is not None and judge.mode == "single" and generate
    wants_ppl = "perplexity" in spec.metrics
    stores = {
        "samples": ResultStore(output_dir / "samples.jsonl"),
        "perplexity": ResultStore(output_dir / "perplexity.jsonl"),
        "choices": ResultStore(output_dir / "choices.jsonl"),
    }
    indices = list(range(len(examples))) if generate else []
    to_generate = [i for i in indices if not answered(stores["samples"].records.get(i))]
    model: Any = None
    tokenizer: Any = None
    template: Any = None
    device = "provider" if provider is not None else "none"  # "none": every answer was stored already
    if provider is None and (multiple_choice or wants_ppl or to_generate):
        writer.status("loading_model")
        from loraforge.engine.chat_templates import get_template
        from loraforge.engine.eval.loading import load_eval_model, pick_device  # torch: after cheap checks

        device = pick_device(spec)
        model, tokenizer = load_eval_model(spec, device)
        template = get_template(spec.template, tokenizer, spec.default_system)
    totals: dict[str, Any] = {}
    speed: dict[str, Any] = {}
    files: dict[str, str] = {}

    writer.status("evaluating")
    if multiple_choice:
        progress = Progress(writer, len(items), sum(i.index in stores["choices"] for i in items))
        choice_pass(spec, model, tokenizer, template, items, stores["choices"], progress, stop)
        totals["multiple_choice"] = choice_totals(
            [stores["choices"].records[i.index] for i in items if i.index in stores["choices"]],
            shots_excluded,
        )
        files["choices"] = "choices.jsonl"
    else:
        from loraforge.engine.eval.encoding import generation_rows, perplexity_rows

        ppl_rows = perplexity_rows(examples, tokenizer, template, spec) if wants_ppl else []
        samples_store = stores["samples"]
        done = sum(answered(samples_store.records.get(i)) for i in indices)
        done += sum(r.index in stores["perplexity"] for r in ppl_rows)
        judge_total = len(indices) if single_judge else 0
        done += sum("judge" in samples_store.records.get(i, {}) for i in indices) if single_judge else 0
        progress = Progress(writer, len(indices) + len(ppl_rows) + judge_total, done)
        if generate:
            if provider is not None:
                speed = provider_generation_pass(
                    spec, provider, chat_rows(examples), samples_store, progress, stop
                )
            elif to_generate:
                rows = generation_rows(examples, tokenizer, template, cutoff_len=spec.cutoff_len)
                questions = {i: str(ex["prompt"][-1]["content"]) for i, ex in enumerate(examples)}
                speed = local_generation_pass(
                    spec, model, tokenizer, template, rows, questions, samples_store, progress, stop
                )
            else:
                speed = pass_speed(0.0, 0, 0)
            rescored = rescore(spec, samples_store, indices)
            if rescored:
                writer.log(f"{rescored} stored answers scored for metrics they lacked")
        if wants_ppl:
            from loraforge.engine.eval.likelihood import nll_records

            pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
            todo = [r for r in ppl_rows if r.index not in stores["perplexity"]]
            for records in nll_records(model, todo, spec.batch_plan(), pad_id):
                stores["perplexity"].append(records)
                progress.advance(len(records))
                check_stop(stop)
            totals.update(perplexity_totals([stores["perplexity"].records[r.index] for r in ppl_rows]))
            files["perplexity"] = "perplexity.jsonl"
        if single_judge and judge is not None:
            from loraforge.engine.eval.judging import JudgeBackend, judge_samples

            model = None  # a local judge may need the memory the evaluated model holds
            gc.collect()
            backend = JudgeBackend(judge, spec)
            try:
                judge_samples(backend, samples_store, indices, progress, stop)
            finally:
                backend.close()
        if generate:
            samples_store.compact(keep=set(indices))
            all_samples = [samples_store.records[i] for i in indices if i in samples_store]
            samples = [s for s in all_samples if answered(s)]
            if all_samples and not samples:  # a wrong key or URL, not a few bad samples: say so
                raise ProviderFailedError(f"every sample failed: {all_samples[0].get('error')}")
            totals.update(generation_totals(spec, samples))
            if single_judge:
                from loraforge.engine.eval.judging import judge_totals

                totals.update(judge_totals(samples))
            speed.update(speed_totals(samples, speed["runtime_s"]))
            test_set["failed_samples"] = len(indices) - len(samples)
            _write_lf_files(output_dir, all_samples, totals, speed)
            files.update(samples="samples.jsonl", lf_predictions=LF_PREDICTIONS, lf_results=LF_RESULTS)

    result = {
        "model": spec.model_name_or_path,
        "adapter": spec.adapter_name_or_path,
        "provider": provider.model_dump(mode="json") if provider is not None else None,
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

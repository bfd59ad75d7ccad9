"""The passes of an evaluation over its test rows, each storing its results batch by batch.

Local generation (batched `Generator`), provider generation (an OpenAI-compatible endpoint, a
bounded pool of requests), multiple choice (option-letter logits) and the rescoring of stored
answers for metrics they were not scored with. Every pass skips what its store already holds and
checks `stop` after each stored batch: SIGTERM ends the run at a batch boundary with nothing lost.
A provider sample that failed is stored with an `error` and generated again on the next run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loraforge.engine.data.encode import system_of
from loraforge.engine.data.formats import Example
from loraforge.engine.eval.encoding import choice_prompt_ids, letter_token_ids
from loraforge.engine.eval.errors import EvalCancelled
from loraforge.engine.eval.progress import Progress
from loraforge.engine.eval.results import ResultStore
from loraforge.engine.eval.scoring import SAMPLE_KEYS, SampleScorer

if TYPE_CHECKING:
    from loraforge.engine.eval.jobspec import ProviderRef
    from loraforge.engine.eval.spec import EvalSpec
    from loraforge.engine.eval.testset import ChoiceItem

Stop = Callable[[], bool]


def answered(record: dict[str, Any] | None) -> bool:
    """A stored sample with an answer (a failed provider request is generated again)."""
    return record is not None and "error" not in record


def check_stop(stop: Stop) -> None:
    if stop():
        raise EvalCancelled()


def local_generation_pass(
    spec: EvalSpec,
    model: Any,
    tokenizer: Any,
    template: Any,
    rows: list[Any],
    questions: dict[int, str],
    store: ResultStore,
    progress: Progress,
    stop: Stop,
) -> dict[str, Any]:
    """Generate the answers the store lacks, scoring and storing each batch as it finishes."""
    from loraforge.engine.eval.generate import Generator
    from loraforge.engine.eval.loading import stop_token_ids

    started = time.perf_counter()
    scorer = SampleScorer(spec)
    generator = Generator(model, tokenizer, stop_token_ids(model, tokenizer, template), spec)
    by_index = {r.index: r for r in rows}
    todo = [r for r in rows if not answered(store.records.get(r.index))]
    batches = 0
    for results in generator.stream(todo):
        records = []
        for g in results:
            row = by_index[g.index]
            records.append(
                {
                    "index": g.index,
                    "prompt": tokenizer.decode(row.prompt_ids, skip_special_tokens=False),
                    "question": questions.get(g.index, ""),
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
        check_stop(stop)
    return pass_speed(time.perf_counter() - started, len(todo), batches)


@dataclass(frozen=True)
class ChatRow:
    """One provider request: the test row's chat turns up to the last user turn, and its reference."""

    index: int
    messages: list[dict[str, str]]
    label: str

    @property
    def prompt(self) -> str:
        return "\n\n".join(f"{m['role']}: {m['content']}" for m in self.messages)


def chat_rows(examples: list[Example]) -> list[ChatRow]:
    """The same rows and references the local path uses, as chat messages (no tokenizer)."""
    rows = []
    for index, ex in enumerate(examples):
        system = system_of(ex)
        messages = [{"role": "system", "content": system}] if system else []
        messages += [{"role": str(m["role"]), "content": str(m["content"])} for m in ex["prompt"]]
        rows.append(ChatRow(index=index, messages=messages, label=str(ex["response"][0]["content"])))
    return rows


def provider_generation_pass(
    spec: EvalSpec,
    provider: ProviderRef,
    rows: list[ChatRow],
    store: ResultStore,
    progress: Progress,
    stop: Stop,
) -> dict[str, Any]:
    from loraforge.engine.eval.jobspec import PROVIDER_KEY_ENV
    from loraforge.engine.eval.provider import Completion, ProviderClient, complete_all

    started = time.perf_counter()
    scorer = SampleScorer(spec)
    by_index = {r.index: r for r in rows}
    todo = [r for r in rows if not answered(store.records.get(r.index))]
    client = ProviderClient(provider.base_url, provider.model, os.environ.get(PROVIDER_KEY_ENV) or None)
    max_tokens, temperature, top_p = (
        spec.max_new_tokens,
        (0.0 if spec.greedy else spec.temperature),
        spec.top_p,
    )

    def call(key: int, messages: list[dict[str, str]]) -> Completion:
        return client.complete(key, messages, max_tokens=max_tokens, temperature=temperature, top_p=top_p)

    groups = 0
    try:
        requests = [(r.index, r.messages) for r in todo]
        for group in complete_all(call, requests, concurrency=spec.provider_concurrency, stop=stop):
            records = [_provider_record(by_index[c.key], c, scorer) for c in group]
            store.append(records)
            groups += 1
            progress.advance(len(records), sum(r["completion_tokens"] or 0 for r in records))
            check_stop(stop)
    finally:
        client.close()
    return pass_speed(time.perf_counter() - started, len(todo), groups)


def _provider_record(row: ChatRow, c: Any, scorer: SampleScorer) -> dict[str, Any]:
    record: dict[str, Any] = {
        "index": row.index,
        "prompt": row.prompt,
        "question": row.messages[-1]["content"] if row.messages else "",
        "predict": c.text,
        "label": row.label,
        "prompt_tokens": c.prompt_tokens,
        "completion_tokens": c.completion_tokens,
        "latency_s": c.latency_s,
        "tokens_per_s": round(c.completion_tokens / c.latency_s, 2)
        if c.completion_tokens and c.latency_s > 0
        else None,
    }
    if c.error is not None:
        record["error"] = c.error
        record["scores"] = {}
    else:
        record["scores"] = scorer(c.text, row.label)
    return record


def pass_speed(runtime: float, generated: int, batches: int) -> dict[str, Any]:
    return {
        "runtime_s": round(runtime, 4),
        "generated_now": generated,
        "batches_now": batches,
        "samples_per_s": round(generated / runtime, 4) if runtime > 0 and generated else 0.0,
        "batches_per_s": round(batches / runtime, 4) if runtime > 0 and batches else 0.0,
    }


def rescore(spec: EvalSpec, store: ResultStore, indices: Sequence[int]) -> int:
    """Score stored answers that lack a per-sample key of the current metrics (no generation); the count."""
    scorer = SampleScorer(spec)
    needed = {key for metric in scorer.metrics for key in SAMPLE_KEYS[metric]}
    stale = [
        store.records[i]
        for i in indices
        if answered(store.records.get(i)) and not needed <= set(store.records[i].get("scores") or {})
    ]
    if stale:
        store.append(
            [{**s, "scores": {**(s.get("scores") or {}), **scorer(s["predict"], s["label"])}} for s in stale]
        )
    return len(stale)


def choice_pass(
    spec: EvalSpec,
    model: Any,
    tokenizer: Any,
    template: Any,
    items: list[ChoiceItem],
    store: ResultStore,
    progress: Progress,
    stop: Stop,
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
        check_stop(stop)

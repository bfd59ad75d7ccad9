"""The judge at work: a backend that answers judge prompts, and the single-mode scoring pass.

The backend is a provider endpoint (`judge.provider`, key from LORAFORGE_EVAL_JUDGE_KEY) or a local
model (`judge.local`), loaded with the evaluation's own loading code and run greedily in batches by
the same `Generator`. Prompts and parsing are `judge.py`'s; an answer without a readable score is
stored with `score: null` and counted as unparseable, never guessed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from statistics import fmean
from typing import TYPE_CHECKING, Any

from loraforge.engine.eval.errors import EvalCancelled
from loraforge.engine.eval.jobspec import JUDGE_KEY_ENV, JudgeSpec
from loraforge.engine.eval.judge import SCORE_PROMPT, parse_score

if TYPE_CHECKING:
    import httpx

    from loraforge.engine.eval.progress import Progress
    from loraforge.engine.eval.results import ResultStore
    from loraforge.engine.eval.spec import EvalSpec

# (key, answer text, error): what a backend returns per prompt.
Answer = tuple[int, str, str | None]
JUDGE_CONTEXT = 8192  # a judge prompt longer than this keeps its end (the answers and the instruction)
_SCORE_LINE = re.compile(r"^\W*(score|rating|grade|verdict)\b", re.IGNORECASE)


class JudgeBackend:
    """Answers judge prompts in groups; `stop()` ends the iteration at the next group."""

    def __init__(
        self, judge: JudgeSpec, spec: EvalSpec | None, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.judge = judge
        self._client: Any = None
        self._generator: Any = None
        if judge.provider is not None:
            from loraforge.engine.eval.provider import ProviderClient

            self._client = ProviderClient(
                judge.provider.base_url,
                judge.provider.model,
                os.environ.get(JUDGE_KEY_ENV) or None,
                transport=transport,
            )
            self.concurrency = spec.provider_concurrency if spec is not None else 4
        else:
            self._load_local(spec)

    def _load_local(self, spec: EvalSpec | None) -> None:
        from loraforge.engine.chat_templates import get_template
        from loraforge.engine.eval.generate import Generator
        from loraforge.engine.eval.loading import load_eval_model, pick_device, stop_token_ids
        from loraforge.engine.eval.spec import EvalSpec

        local = self.judge.local
        assert local is not None  # the job spec checks that exactly one backend is named
        judge_spec = EvalSpec(
            model_name_or_path=local.model_name_or_path,
            adapter_name_or_path=local.adapter_name_or_path,
            template=local.template,
            eval_dataset=["judge"],
            metrics=["bleu"],
            max_new_tokens=self.judge.max_new_tokens,
            temperature=0.0,
            use_cpu=spec.use_cpu if spec is not None else None,
            per_device_eval_batch_size=spec.per_device_eval_batch_size if spec is not None else None,
        )
        model, tokenizer = load_eval_model(judge_spec, pick_device(judge_spec))
        self._template = get_template(local.template, tokenizer)
        self._tokenizer = tokenizer
        self._generator = Generator(
            model, tokenizer, stop_token_ids(model, tokenizer, self._template), judge_spec
        )

    def answers(self, prompts: Sequence[tuple[int, str]], stop: Callable[[], bool]) -> Iterator[list[Answer]]:
        if self._client is not None:
            from loraforge.engine.eval.provider import complete_all

            client = self._client

            def call(key: int, messages: list[dict[str, str]]) -> Any:
                return client.complete(
                    key, messages, max_tokens=self.judge.max_new_tokens, temperature=0.0, top_p=1.0
                )

            requests = [(key, [{"role": "user", "content": text}]) for key, text in prompts]
            for group in complete_all(call, requests, concurrency=self.concurrency, stop=stop):
                yield [(c.key, c.text, c.error) for c in group]
            return
        from loraforge.engine.eval.encoding import PromptRow

        rows = []
        for key, text in prompts:
            messages = [{"role": "user", "content": text}, {"role": "assistant", "content": ""}]
            ids = self._template.encode_pairs(self._tokenizer, messages)[0][0]
            rows.append(PromptRow(index=key, prompt_ids=ids[-JUDGE_CONTEXT:], label=""))
        for batch in self._generator.stream(rows):
            yield [(g.index, g.predict, None) for g in batch]
            if stop():
                return

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._generator = None


def verdict_record(text: str, error: str | None) -> dict[str, Any]:
    """What a sample stores as `judge`: the score (None: unparseable) and the judge's reason."""
    if error is not None:
        return {"score": None, "reason": "", "error": error}
    lines = [line for line in text.strip().splitlines() if line.strip()]
    reason = " ".join(line.strip() for line in lines if not _SCORE_LINE.match(line)) or text.strip()
    return {"score": parse_score(text), "reason": reason[:2000]}


def question_of(sample: dict[str, Any]) -> str:
    """The question the judge sees: the user's last turn, else the rendered prompt."""
    return str(sample.get("question") or sample.get("prompt") or "")


def judge_samples(
    backend: JudgeBackend,
    store: ResultStore,
    indices: Sequence[int],
    progress: Progress,
    stop: Callable[[], bool],
) -> None:
    """Score every stored sample in `indices` that has an answer and no judge result yet."""
    template = backend.judge.prompt or SCORE_PROMPT
    todo = [store.records[i] for i in indices if i in store and needs_judging(store.records[i])]
    prompts = [
        (s["index"], template.format(question=question_of(s), reference=s["label"], answer=s["predict"]))
        for s in todo
    ]
    for group in backend.answers(prompts, stop):
        records = [{**store.records[key], "judge": verdict_record(text, error)} for key, text, error in group]
        store.append(records)
        progress.advance(len(records))
        if stop():
            raise EvalCancelled()


def needs_judging(sample: dict[str, Any]) -> bool:
    return "error" not in sample and "judge" not in sample


def judge_totals(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """judge_score: mean of the parsed scores (left out when none parsed); judge_unparseable: count."""
    verdicts = [s["judge"] for s in samples if isinstance(s.get("judge"), dict)]
    scores = [v["score"] for v in verdicts if isinstance(v.get("score"), int | float)]
    totals: dict[str, Any] = {"judge_unparseable": len(verdicts) - len(scores)}
    if scores:
        totals["judge_score"] = round(fmean(scores), 4)
    return totals

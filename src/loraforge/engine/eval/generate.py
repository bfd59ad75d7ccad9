"""Batched generation with the KV cache.

Batches come from `batching.BatchPlan` (sorted by prompt length). A decoder-only model is fed a batch
padded on the LEFT, so every row's next token follows its last real token and one `generate()` call
serves the whole batch. Callers get each batch's answers as soon as it is done, tagged with the rows'
test-set indices, so they can store them in any order and report them in the original one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loraforge.engine.eval.encoding import PromptRow

if TYPE_CHECKING:
    from loraforge.engine.eval.spec import EvalSpec


@dataclass(frozen=True)
class Generated:
    index: int
    predict: str
    prompt_tokens: int
    completion_tokens: int  # up to and including the stop token
    latency_s: float  # the batch's wall time: every row of a batch waits for all of it
    tokens_per_s: float


class Generator:
    """generate() for one batch of prompt rows at a time, with the spec's decoding parameters."""

    def __init__(self, model: Any, tokenizer: Any, stop_ids: list[int], spec: EvalSpec) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.stop_ids = stop_ids
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
        self.spec = spec
        self.device = next(model.parameters()).device
        # Prompt plus answer must fit the positions the model knows.
        self.context = int(getattr(model.config, "max_position_embeddings", None) or 1 << 20)

    def _kwargs(self, width: int) -> dict[str, Any]:
        spec = self.spec
        kwargs: dict[str, Any] = {
            "max_new_tokens": max(1, min(spec.max_new_tokens, self.context - width)),
            "eos_token_id": self.stop_ids,
            "pad_token_id": self.pad_id,
            "repetition_penalty": spec.repetition_penalty,
            "num_beams": 1,
        }
        if spec.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(
                do_sample=True, temperature=spec.temperature, top_p=spec.top_p, top_k=spec.top_k or 0
            )
        return kwargs

    def run(self, batch: Sequence[PromptRow]) -> list[Generated]:
        import torch

        width = max(len(r.prompt_ids) for r in batch)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for i, row in enumerate(batch):
            n = len(row.prompt_ids)
            input_ids[i, width - n :] = torch.as_tensor(row.prompt_ids, dtype=torch.long)
            attention[i, width - n :] = 1
        started = time.perf_counter()
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=attention.to(self.device),
                **self._kwargs(width),
            )
        elapsed = time.perf_counter() - started
        new_tokens = output[:, width:].tolist()
        results = []
        for row, tokens in zip(batch, new_tokens, strict=True):
            answer = _until_stop(tokens, set(self.stop_ids))
            count = min(len(answer) + 1, len(tokens))  # the stop token was generated too
            text = self.tokenizer.decode(answer, skip_special_tokens=True)
            results.append(
                Generated(
                    index=row.index,
                    predict=text,
                    prompt_tokens=len(row.prompt_ids),
                    completion_tokens=count,
                    latency_s=round(elapsed, 4),
                    tokens_per_s=round(count / elapsed, 2) if elapsed > 0 else 0.0,
                )
            )
        return results

    def stream(self, rows: Sequence[PromptRow]) -> Iterator[list[Generated]]:
        if not self.spec.greedy:
            import torch

            torch.manual_seed(self.spec.seed)
        plan = self.spec.batch_plan()
        for batch in plan.split(rows, lambda r: len(r.prompt_ids), new_tokens=self.spec.max_new_tokens):
            yield self.run(batch)


def _until_stop(tokens: list[int], stops: set[int]) -> list[int]:
    for i, token in enumerate(tokens):
        if token in stops:
            return tokens[:i]
    return tokens

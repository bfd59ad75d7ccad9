"""Forward-only scoring: the NLL of labelled tokens (perplexity) and the option letters' logits.

Batches are right-padded with the training collator (`PaddedCollator`) and sorted by length. The
output layer runs only where it is needed (`logits_to_keep`): at the positions that predict a
labelled token for perplexity, at each row's last prompt token for multiple choice. With a large
vocabulary that is most of the memory a full forward would take.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from loraforge.engine.data.collators import PaddedCollator
from loraforge.engine.eval.batching import BatchPlan
from loraforge.engine.eval.choice import LETTERS, pick
from loraforge.engine.eval.encoding import LabelledRow
from loraforge.engine.eval.perplexity import IGNORE_INDEX, aligned_nll


def nll_records(
    model: Any, rows: Sequence[LabelledRow], plan: BatchPlan, pad_id: int
) -> Iterator[list[dict[str, Any]]]:
    """Per batch, one record per row: {index, nll (summed over its labelled tokens), tokens}."""
    import torch

    collate = PaddedCollator(pad_id)
    device = next(model.parameters()).device
    for batch in plan.split(rows, lambda r: len(r.input_ids)):
        inputs = collate([{"input_ids": r.input_ids, "labels": r.labels} for r in batch])
        targets = inputs["labels"][:, 1:]
        # positions t whose next token carries a label in any row of the batch
        keep = (targets != IGNORE_INDEX).any(dim=0).nonzero().flatten()
        with torch.inference_mode():
            logits = model(
                input_ids=inputs["input_ids"].to(device),
                attention_mask=inputs["attention_mask"].to(device),
                use_cache=False,
                logits_to_keep=keep.to(device),
            ).logits
        kept_targets = targets[:, keep].to(device)
        records = []
        for i, row in enumerate(batch):
            nll, count = aligned_nll(logits[i], kept_targets[i])
            records.append({"index": row.index, "nll": nll, "tokens": count})
        yield records


@dataclass(frozen=True)
class ChoiceRow:
    """One multiple-choice question, tokenised."""

    index: int
    input_ids: list[int]
    answer: str
    subject: str | None
    options: int


def choice_records(
    model: Any, rows: Sequence[ChoiceRow], letter_ids: list[list[int]], plan: BatchPlan, pad_id: int
) -> Iterator[list[dict[str, Any]]]:
    """Per batch, one record per question: {index, subject, answer, pick, correct, logits per letter}."""
    import torch

    collate = PaddedCollator(pad_id)
    device = next(model.parameters()).device
    for batch in plan.split(rows, lambda r: len(r.input_ids)):
        inputs = collate([{"input_ids": r.input_ids, "labels": r.input_ids} for r in batch])
        ends = sorted({len(r.input_ids) - 1 for r in batch})
        with torch.inference_mode():
            logits = model(
                input_ids=inputs["input_ids"].to(device),
                attention_mask=inputs["attention_mask"].to(device),
                use_cache=False,
                logits_to_keep=torch.tensor(ends, device=device),
            ).logits
        records = []
        for i, row in enumerate(batch):
            last = logits[i, ends.index(len(row.input_ids) - 1)].float()
            scores = {LETTERS[k]: max(float(last[t]) for t in letter_ids[k]) for k in range(row.options)}
            chosen = pick(scores)
            records.append(
                {
                    "index": row.index,
                    "subject": row.subject,
                    "answer": row.answer,
                    "pick": chosen,
                    "correct": chosen == row.answer,
                    "logits": {k: round(v, 4) for k, v in scores.items()},
                }
            )
        yield records

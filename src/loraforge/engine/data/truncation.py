"""Join a conversation's (prompt, answer) token pairs into input_ids / labels the way LLaMA-Factory does:
its per-turn truncation budget (or keep-the-latest / drop), and label masking of prompts and history.

Torch-free: plain lists of token ids in, plain lists out.
"""

from __future__ import annotations

from collections.abc import Sequence

from loraforge.engine.chat_templates import Pair


def build_conversation_ids(
    pairs: Sequence[Pair],
    *,
    cutoff_len: int,
    train_on_prompt: bool = False,
    mask_history: bool = False,
    truncation: str = "right",
    ignore_index: int = -100,
) -> tuple[list[int], list[int]] | None:
    """Join (prompt, answer) pairs into input_ids / labels with LF's truncation and masking.

    * right: each turn gets a share of the remaining budget (LF's `infer_seqlen`: long answers
      and long prompts are cut proportionally), later turns are dropped when the budget is gone.
    * left: keep the most recent turns that fit whole, then cut the oldest kept turn from its start.
    * drop: return None when the whole conversation does not fit.
    Labels are `ignore_index` on prompt tokens (unless train_on_prompt) and, with mask_history,
    on every answer but the last.
    """
    total = sum(len(s) + len(t) for s, t in pairs)
    if truncation == "drop" and total > cutoff_len:
        return None
    if truncation == "left" and total > cutoff_len:
        return _left_truncated(pairs, cutoff_len, train_on_prompt, mask_history, ignore_index)

    ordered = list(reversed(pairs)) if mask_history else list(pairs)
    input_ids: list[int] = []
    labels: list[int] = []
    used = 0
    for turn, (source, target) in enumerate(ordered):
        if used >= cutoff_len:
            break
        s_len, t_len = _infer_seqlen(len(source), len(target), cutoff_len - used)
        source, target = source[:s_len], target[:t_len]
        used += s_len + t_len
        source_labels = list(source) if train_on_prompt else [ignore_index] * s_len
        target_labels = [ignore_index] * t_len if (mask_history and turn != 0) else list(target)
        if mask_history:  # we walk backwards, so prepend to keep the conversation order
            input_ids = source + target + input_ids
            labels = source_labels + target_labels + labels
        else:
            input_ids += source + target
            labels += source_labels + target_labels
    return input_ids, labels


def _infer_seqlen(source_len: int, target_len: int, budget: int) -> tuple[int, int]:
    """Split `budget` tokens between a prompt and an answer the way LLaMA-Factory does."""
    if target_len * 2 < budget:  # short answer: keep it whole, cut the prompt
        max_target = budget
    elif source_len * 2 < budget:  # short prompt: keep it whole, cut the answer
        max_target = budget - source_len
    else:  # both long: proportional shares
        max_target = int(budget * (target_len / (source_len + target_len)))
    new_target = min(max_target, target_len)
    new_source = min(max(budget - new_target, 0), source_len)
    return new_source, new_target


def _left_truncated(
    pairs: Sequence[Pair], cutoff_len: int, train_on_prompt: bool, mask_history: bool, ignore_index: int
) -> tuple[list[int], list[int]]:
    input_ids: list[int] = []
    labels: list[int] = []
    last = len(pairs) - 1
    for turn in range(last, -1, -1):
        source, target = pairs[turn]
        ids = list(source) + list(target)
        lab = (list(source) if train_on_prompt else [ignore_index] * len(source)) + (
            [ignore_index] * len(target) if (mask_history and turn != last) else list(target)
        )
        room = cutoff_len - len(input_ids)
        if room <= 0:
            break
        if len(ids) > room:  # cut this (oldest kept) turn from its start
            ids, lab = ids[-room:], lab[-room:]
        input_ids = ids + input_ids
        labels = lab + labels
    return input_ids, labels

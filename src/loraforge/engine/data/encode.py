"""Tokenise normalised examples per stage: pt (text + eos, blocks), sft (templated turns), dpo (strings)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loraforge.engine.chat_templates import ChatTemplate
from loraforge.engine.data.formats import Example
from loraforge.engine.data.packing import chunk_stream, greedy_knapsack
from loraforge.engine.data.truncation import build_conversation_ids

IGNORE_INDEX = -100
TOOLS_PREAMBLE = "You have access to the following tools:\n"

Rows = tuple[list[list[int]], list[list[int]], list[list[int]] | None]


def system_of(example: Example) -> str | None:
    """The example's system text, with tool definitions appended (None: use the template default)."""
    system = example.get("system") or ""
    tools = example.get("tools") or ""
    if tools:
        system = (system + "\n\n" if system else "") + TOOLS_PREAMBLE + tools
    return system or None


def encode_pretrain(
    examples: Sequence[Example], tokenizer: Any, *, cutoff_len: int, packing: bool, neat_packing: bool
) -> tuple[Rows, int]:
    """LF pretraining: each text + eos; packing concatenates everything into cutoff_len blocks.

    Returns rows and the number of tokens dropped (block remainder or truncation).
    """
    eos = tokenizer.eos_token or ""
    texts = [ex["prompt"][0]["content"] + eos for ex in examples]
    encoded: list[list[int]] = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    total = sum(len(e) for e in encoded)
    if packing and not neat_packing:
        stream = [t for ids in encoded for t in ids]
        blocks = chunk_stream(stream, cutoff_len)
        return (blocks, [list(b) for b in blocks], None), total - len(blocks) * cutoff_len
    cut = [ids[:cutoff_len] for ids in encoded]
    dropped = total - sum(len(c) for c in cut)
    if neat_packing:
        return pack_rows(cut, [list(c) for c in cut], cutoff_len, neat=True), dropped
    return (cut, [list(c) for c in cut], None), dropped


def encode_supervised(
    example: Example,
    tokenizer: Any,
    template: ChatTemplate,
    *,
    cutoff_len: int,
    train_on_prompt: bool,
    mask_history: bool,
    truncation: str,
) -> tuple[list[int], list[int]] | None:
    """Templated conversation with labels only on assistant tokens; None when `drop` skips it."""
    if not example["response"]:
        raise ValueError("response: missing (supervised training needs an answer)")
    messages = example["prompt"] + example["response"][:1]
    pairs = template.encode_pairs(tokenizer, messages, system_of(example))
    return build_conversation_ids(
        pairs,
        cutoff_len=cutoff_len,
        train_on_prompt=train_on_prompt,
        mask_history=mask_history,
        truncation=truncation,
    )


def render_preference(example: Example, tokenizer: Any, template: ChatTemplate) -> dict[str, str]:
    """prompt / chosen / rejected strings for TRL's DPOTrainer, rendered through the template.

    TRL appends eos to chosen/rejected unless they already end with it, so a trailing newline after
    the template's eos is dropped here to avoid a double eos.
    """
    if len(example["response"]) != 2:
        raise ValueError("chosen/rejected: a preference example needs both answers")
    system = system_of(example)
    chosen_msgs = example["prompt"] + [example["response"][0]]
    rejected_msgs = example["prompt"] + [example["response"][1]]
    prompt, chosen = template.render_pair_text(tokenizer, chosen_msgs, system)
    _, rejected = template.render_pair_text(tokenizer, rejected_msgs, system)
    eos = tokenizer.eos_token or ""

    def tidy(text: str) -> str:
        stripped = text.rstrip()
        return stripped if eos and stripped.endswith(eos) else text

    return {"prompt": prompt, "chosen": tidy(chosen), "rejected": tidy(rejected)}


def pack_rows(
    rows_ids: Sequence[list[int]], rows_labels: Sequence[list[int]], cutoff_len: int, *, neat: bool
) -> Rows:
    """Knapsack-pack examples into rows of ≤ cutoff_len tokens.

    neat: position ids restart per example and each example's first label is masked, because alone
    that token is never predicted (nothing precedes it); this makes a packed example's loss equal
    its loss computed alone. Plain packing keeps LF's layout (continuous positions, labels as is).
    """
    packs = greedy_knapsack([len(r) for r in rows_ids], cutoff_len)
    out_ids: list[list[int]] = []
    out_labels: list[list[int]] = []
    out_pos: list[list[int]] = []
    for pack in packs:
        ids: list[int] = []
        labels: list[int] = []
        pos: list[int] = []
        for i in pack:
            ids += rows_ids[i]
            lab = list(rows_labels[i])
            if neat and lab:
                lab[0] = IGNORE_INDEX
            labels += lab
            pos += range(len(rows_ids[i]))
        out_ids.append(ids)
        out_labels.append(labels)
        out_pos.append(pos)
    return out_ids, out_labels, (out_pos if neat else None)

"""KTO rows: one answer per example with a desirable/undesirable label, rendered for TRL's KTOTrainer.

TRL's KTOTrainer takes `prompt` / `completion` text and a boolean `label`; the text is rendered
through the job's chat template here, exactly as DPO rows are (`encode.render_preference`), so the
template a model is trained with is the one it is served with.
"""

from __future__ import annotations

from typing import Any

from loraforge.engine.chat_templates import ChatTemplate
from loraforge.engine.data.encode import system_of
from loraforge.engine.data.formats import Example


def render_unpaired(example: Example, tokenizer: Any, template: ChatTemplate) -> dict[str, Any]:
    """prompt / completion strings and the label of one KTO example."""
    if len(example["response"]) != 1:
        raise ValueError("messages: a KTO example needs exactly one assistant answer after the prompt")
    if example.get("label") is None:
        raise ValueError("label: a KTO example needs a true/false label")
    prompt, completion = template.render_pair_text(
        tokenizer, example["prompt"] + example["response"], system_of(example)
    )
    # TRL appends eos to a completion unless it already ends with it; a newline after the
    # template's eos would make that a second eos.
    eos = tokenizer.eos_token or ""
    stripped = completion.rstrip()
    if eos and stripped.endswith(eos):
        completion = stripped
    return {"prompt": prompt, "completion": completion, "label": bool(example["label"])}

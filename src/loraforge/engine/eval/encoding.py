"""Token ids for evaluation, rendered with the chat template exactly as training renders them.

* Generation prompts follow LLaMA-Factory's `do_predict` (its "unsupervised" encoding): every turn
  up to the last user turn is the prompt, the reference answer's tokens are the label, and both are
  cut with LF's prompt/answer budget (`truncation._infer_seqlen`). The label text is the answer's
  tokens decoded without special tokens, which is what LF writes as `label` and scores against.
* Perplexity rows are the SFT training rows themselves (`encode.encode_supervised`), so the
  labelled tokens are the ones a training run computes its loss on.
* Multiple-choice prompts are the k-shot text (`choice.build_prompt`) as one user turn.

Torch-free: only a tokenizer is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loraforge.engine.chat_templates import ChatTemplate
from loraforge.engine.data.encode import encode_supervised, system_of
from loraforge.engine.data.formats import Example
from loraforge.engine.data.truncation import _infer_seqlen
from loraforge.engine.eval.choice import LETTERS, build_prompt
from loraforge.engine.eval.testset import ChoiceItem

if TYPE_CHECKING:
    from loraforge.engine.eval.spec import EvalSpec


@dataclass(frozen=True)
class PromptRow:
    """One generation request: the prompt's ids and the reference it is scored against."""

    index: int  # position in the test set (results are reported in this order)
    prompt_ids: list[int]
    label: str


def generation_rows(
    examples: list[Example], tokenizer: Any, template: ChatTemplate, *, cutoff_len: int
) -> list[PromptRow]:
    rows = []
    for index, ex in enumerate(examples):
        messages = ex["prompt"] + ex["response"][:1]
        pairs = template.encode_pairs(tokenizer, messages, system_of(ex))
        prompt = [t for source, target in pairs[:-1] for t in source + target] + pairs[-1][0]
        target = pairs[-1][1]
        source_len, target_len = _infer_seqlen(len(prompt), len(target), cutoff_len)
        label = tokenizer.decode(target[:target_len], skip_special_tokens=True)
        rows.append(PromptRow(index=index, prompt_ids=prompt[:source_len], label=label))
    return rows


@dataclass(frozen=True)
class LabelledRow:
    index: int
    input_ids: list[int]
    labels: list[int]


def perplexity_rows(
    examples: list[Example], tokenizer: Any, template: ChatTemplate, spec: EvalSpec
) -> list[LabelledRow]:
    """The training rows of the examples (rows a `drop` truncation would skip are left out)."""
    rows = []
    for index, ex in enumerate(examples):
        encoded = encode_supervised(
            ex,
            tokenizer,
            template,
            cutoff_len=spec.cutoff_len,
            train_on_prompt=spec.train_on_prompt,
            mask_history=spec.mask_history,
            truncation="right",
        )
        if encoded is not None and encoded[0]:
            rows.append(LabelledRow(index=index, input_ids=encoded[0], labels=encoded[1]))
    return rows


def choice_prompt_ids(item: ChoiceItem, tokenizer: Any, template: ChatTemplate, cutoff_len: int) -> list[int]:
    """The k-shot question as one user turn, up to where the model starts answering.

    A prompt over `cutoff_len` loses shots, the last one first, until it fits; a question too long
    even alone keeps its end (the options and "Answer:"), which the pick depends on.
    """
    shots = list(item.shots)
    while True:
        text = build_prompt(item.question, shots)
        messages = [{"role": "user", "content": text}, {"role": "assistant", "content": ""}]
        ids = template.encode_pairs(tokenizer, messages)[0][0]
        if len(ids) <= cutoff_len or not shots:
            return ids[-cutoff_len:]
        shots.pop()


def letter_token_ids(tokenizer: Any, count: int) -> list[list[int]]:
    """Per option letter, the token ids that spell it right after "Answer:" — "A" and " A".

    A tokenizer may write the answer with or without a leading space; the letter's logit is the
    larger of the two, so neither spelling is favoured.
    """
    out = []
    for letter in LETTERS[:count]:
        ids = {
            tokenizer.encode(spelling, add_special_tokens=False)[-1] for spelling in (letter, " " + letter)
        }
        out.append(sorted(ids))
    return out

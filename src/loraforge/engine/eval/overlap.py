"""Text-overlap scores, on two conventions users compare against.

LLaMA-Factory's (what its `do_predict` writes to `predict_results.json`): per sample, BLEU-4 over
characters with NLTK's smoothing method 3 and ROUGE-1/2/L F-scores over jieba words (rouge-chinese),
each ×100, then the plain mean over samples. Characters and jieba make Chinese score as Chinese;
rouge-score's default tokenizer would drop every non-ASCII character and score Chinese as empty.

sacreBLEU's (what papers report): corpus BLEU and chrF, with the `13a` tokenizer, or `zh` when the
references are Chinese.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import cache
from statistics import fmean
from typing import Any, Literal

LF_KEYS = ("bleu-4", "rouge-1", "rouge-2", "rouge-l")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


@cache
def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.CRITICAL)  # its first use prints a dictionary-loading banner
    jieba.initialize()
    return jieba


def bleu4_chars(prediction: str, reference: str) -> float:
    """LLaMA-Factory's sentence BLEU-4: characters as tokens, smoothing method 3, ×100."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    if not prediction or not reference:
        return 0.0
    score = sentence_bleu([list(reference)], list(prediction), smoothing_function=SmoothingFunction().method3)
    return round(float(score) * 100, 4)


def rouge_words(prediction: str, reference: str) -> dict[str, float]:
    """LLaMA-Factory's ROUGE-1/2/L F-scores over jieba-segmented words, ×100 (0 for an empty side)."""
    from rouge_chinese import Rouge

    jieba = _jieba()
    hypothesis = " ".join(jieba.cut(prediction))
    target = " ".join(jieba.cut(reference))
    if not hypothesis.split() or not target.split():
        return {"rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0}
    scores = Rouge().get_scores(hypothesis, target)[0]
    return {key: round(float(value["f"]) * 100, 4) for key, value in scores.items()}


def lf_sample_scores(prediction: str, reference: str) -> dict[str, float]:
    """One sample's BLEU-4 and ROUGE-1/2/L, under the names LLaMA-Factory writes."""
    return {"bleu-4": bleu4_chars(prediction, reference), **rouge_words(prediction, reference)}


def lf_scores(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """The mean of each per-sample score, as LLaMA-Factory averages them (0 for no samples)."""
    _same_length(predictions, references)
    if not predictions:
        return dict.fromkeys(LF_KEYS, 0.0)
    per_sample = [lf_sample_scores(p, r) for p, r in zip(predictions, references, strict=True)]
    return {key: fmean(sample[key] for sample in per_sample) for key in LF_KEYS}


def sacrebleu_tokenizer(references: Sequence[str]) -> Literal["13a", "zh"]:
    """`zh` when any reference holds Chinese characters (13a would treat a sentence as one word)."""
    return "zh" if any(_CJK.search(text) for text in references) else "13a"


def corpus_bleu(predictions: Sequence[str], references: Sequence[str], tokenize: str | None = None) -> float:
    """sacreBLEU corpus BLEU (one reference per sample), 0–100."""
    import sacrebleu

    _same_length(predictions, references)
    if not predictions:
        return 0.0
    tokenizer = tokenize or sacrebleu_tokenizer(references)
    result = sacrebleu.corpus_bleu(list(predictions), [list(references)], tokenize=tokenizer)
    return round(float(result.score), 4)


def corpus_chrf(predictions: Sequence[str], references: Sequence[str]) -> float:
    """sacreBLEU chrF (character n-grams, so no tokenizer choice), 0–100."""
    import sacrebleu

    _same_length(predictions, references)
    if not predictions:
        return 0.0
    return round(float(sacrebleu.corpus_chrf(list(predictions), [list(references)]).score), 4)


def _same_length(predictions: Sequence[str], references: Sequence[str]) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")

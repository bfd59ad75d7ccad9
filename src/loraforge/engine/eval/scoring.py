"""The spec's metrics applied to stored per-sample results: each sample's scores, then the totals.

Per-sample scores (BLEU-4, ROUGE, the answer checks) are computed when a sample is generated and
stored with it; totals are the plain means over samples (LLaMA-Factory's way), except sacreBLEU
and chrF, which are corpus scores over all answers at once. Answer checks report 0–100 like the
rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import fmean
from typing import TYPE_CHECKING, Any

from loraforge.engine.eval import matching, overlap
from loraforge.engine.eval.choice import accuracy
from loraforge.engine.eval.perplexity import NllTotal

if TYPE_CHECKING:
    from loraforge.engine.eval.spec import EvalSpec

# Per-sample keys written by each metric (the result file uses these names).
SAMPLE_KEYS: dict[str, tuple[str, ...]] = {
    "bleu": ("bleu-4",),
    "rouge": ("rouge-1", "rouge-2", "rouge-l"),
    "exact_match": ("exact_match",),
    "contains": ("contains",),
    "regex": ("regex",),
    "valid_json": ("valid_json",),
}


class SampleScorer:
    """Scores one (prediction, label) pair with every per-sample metric the spec names."""

    def __init__(self, spec: EvalSpec) -> None:
        self.metrics = [m for m in spec.metrics if m in SAMPLE_KEYS]
        self.case_sensitive = spec.case_sensitive
        self.pattern = matching.compile_pattern(spec.regex_pattern) if spec.regex_pattern else None
        self.schema = spec.json_schema

    def __call__(self, prediction: str, label: str) -> dict[str, float]:
        scores: dict[str, float] = {}
        for metric in self.metrics:
            if metric == "bleu":
                scores["bleu-4"] = overlap.bleu4_chars(prediction, label)
            elif metric == "rouge":
                scores.update(overlap.rouge_words(prediction, label))
            elif metric == "exact_match":
                scores["exact_match"] = 100 * matching.exact_match(
                    prediction, label, case_sensitive=self.case_sensitive
                )
            elif metric == "contains":
                scores["contains"] = 100 * matching.contains(
                    prediction, label, case_sensitive=self.case_sensitive
                )
            elif metric == "regex" and self.pattern is not None:
                scores["regex"] = 100 * matching.regex_match(prediction, self.pattern)
            elif metric == "valid_json":
                scores["valid_json"] = 100 * matching.valid_json(prediction, self.schema)
        return scores


def generation_totals(spec: EvalSpec, samples: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Means of the stored per-sample scores, plus the corpus scores; rounded to 4 decimals."""
    totals: dict[str, float] = {}
    for metric in spec.metrics:
        for key in SAMPLE_KEYS.get(metric, ()):
            values = [s["scores"][key] for s in samples if key in s.get("scores", {})]
            totals[key] = round(fmean(values), 4) if values else 0.0
    predictions = [s["predict"] for s in samples]
    labels = [s["label"] for s in samples]
    if "sacrebleu" in spec.metrics:
        totals["sacrebleu"] = overlap.corpus_bleu(predictions, labels)
    if "chrf" in spec.metrics:
        totals["chrf"] = overlap.corpus_chrf(predictions, labels)
    return totals


def perplexity_totals(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    total = NllTotal()
    for r in records:
        total.add(r["nll"], r["tokens"])
    mean = total.nll / total.tokens if total.tokens else None
    return {"perplexity": round(total.perplexity, 6), "mean_nll": mean, "labelled_tokens": total.tokens}


def choice_totals(records: Sequence[dict[str, Any]], shots_excluded: int) -> dict[str, Any]:
    acc = accuracy([(r.get("subject"), bool(r["correct"])) for r in records])
    return {
        "accuracy": acc.overall,
        "questions": acc.count,
        "by_subject": acc.by_subject,
        "shot_rows_not_scored": shots_excluded,
    }


def speed_totals(samples: Sequence[dict[str, Any]], runtime_s: float) -> dict[str, Any]:
    """Throughput of the generation pass and the per-sample latency spread."""
    if not samples:
        return {}
    latencies = sorted(s["latency_s"] for s in samples)
    # A provider that reports no `usage` leaves token counts unknown (None): counted as far as known.
    completion = sum(s.get("completion_tokens") or 0 for s in samples)
    rates = [s["tokens_per_s"] for s in samples if isinstance(s.get("tokens_per_s"), int | float)]

    def quantile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]

    return {
        "completion_tokens": completion,
        "prompt_tokens": sum(s.get("prompt_tokens") or 0 for s in samples),
        "tokens_per_s": round(completion / runtime_s, 2) if runtime_s > 0 and completion else None,
        "latency_p50_s": quantile(0.5),
        "latency_p95_s": quantile(0.95),
        "mean_sample_tokens_per_s": round(fmean(rates), 2) if rates else None,
    }

"""The pairwise judge job: the baseline's answers against each other model's, judged in both orders.

Reads the runs' samples.jsonl (the last record per index wins; samples that failed to generate are
left out), asks the judge about every common sample twice (the other model as A, then as B; a win
needs both orders to agree, `judge.pairwise_outcome`), stores each pair's verdicts in
RUN_DIR/pairwise.jsonl as it goes (a relaunch continues) and writes RUN_DIR/pairwise.json:

    {"baseline": name, "vs": [{"model": name, "win": %, "tie": %, "loss": %, "n": pairs, "unparseable": k}]}

Rates are 0–100 over the parseable pairs, like every other score.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loraforge.engine.data.stats import DataError
from loraforge.engine.eval.errors import EvalCancelled
from loraforge.engine.eval.jobspec import PairwiseSpec
from loraforge.engine.eval.judge import PAIRWISE_PROMPT, pairwise_outcome, pairwise_rates, parse_verdict
from loraforge.engine.eval.judging import JudgeBackend, question_of
from loraforge.engine.eval.progress import Progress
from loraforge.engine.eval.results import ResultStore, is_answer, read_records
from loraforge.engine.events import EventWriter

PAIRWISE_FILE = "pairwise.json"
VERDICTS_FILE = "pairwise.jsonl"
_SLOTS = 16  # pair key = sample index * _SLOTS + run position (at most 8 runs)


def read_samples(path: Path, where: str) -> dict[int, dict[str, Any]]:
    """A run's answered samples by index (the last line per index wins)."""
    if not path.is_file():
        raise DataError(f"{where}: no such samples file {str(path)!r}")
    return {i: s for i, s in read_records(path).items() if is_answer(s)}


def run_pairwise(
    pairwise: PairwiseSpec,
    backend: JudgeBackend,
    run_dir: Path,
    writer: EventWriter,
    stop: Callable[[], bool],
) -> dict[str, Any]:
    writer.status("loading_data")
    runs = [
        read_samples(Path(run.samples), f"pairwise.runs[{pos}].samples")
        for pos, run in enumerate(pairwise.runs)
    ]
    base = runs[pairwise.baseline]
    pairs = [
        (index, pos)
        for pos, samples in enumerate(runs)
        if pos != pairwise.baseline
        for index in sorted(samples.keys() & base.keys())
    ]
    store = ResultStore(run_dir / VERDICTS_FILE)
    progress = Progress(writer, len(pairs), sum(index * _SLOTS + pos in store for index, pos in pairs))
    template = backend.judge.prompt or PAIRWISE_PROMPT

    def prompt(index: int, pos: int, other_first: bool) -> str:
        ours, theirs = runs[pos][index], base[index]
        a, b = (ours, theirs) if other_first else (theirs, ours)
        return template.format(
            question=question_of(theirs),
            reference=theirs["label"],
            answer_a=a["predict"],
            answer_b=b["predict"],
        )

    prompts = []
    for index, pos in pairs:
        key = index * _SLOTS + pos
        if key not in store:
            prompts += [(2 * key, prompt(index, pos, True)), (2 * key + 1, prompt(index, pos, False))]
    writer.status("evaluating")
    halves: dict[int, dict[str, Any]] = {}
    for group in backend.answers(prompts, stop):
        records = []
        for key, text, error in group:
            pair_key, second = divmod(key, 2)
            half = {"verdict": parse_verdict(text) if error is None else None, "error": error}
            other = halves.pop(pair_key, None)
            if other is None:
                halves[pair_key] = {"second" if second else "first": half}
                continue
            both = {**other, "second" if second else "first": half}
            as_a, as_b = both["first"]["verdict"], both["second"]["verdict"]
            index, pos = divmod(pair_key, _SLOTS)
            records.append(
                {
                    "index": pair_key,
                    "sample": index,
                    "run": pos,
                    "verdict_as_a": as_a,
                    "verdict_as_b": as_b,
                    "outcome": pairwise_outcome(as_a, as_b),
                    "errors": [h["error"] for h in both.values() if h["error"]] or None,
                }
            )
        if records:
            store.append(records)
            progress.advance(len(records))
        if stop():
            raise EvalCancelled()

    vs = []
    for pos, run in enumerate(pairwise.runs):
        if pos == pairwise.baseline:
            continue
        outcomes = [r["outcome"] for r in store.records.values() if r["run"] == pos]
        rates = pairwise_rates(outcomes)
        vs.append(
            {
                "model": run.name,
                "win": rates.win,
                "tie": rates.tie,
                "loss": rates.loss,
                "n": len(outcomes) - rates.unparseable,
                "unparseable": rates.unparseable,
            }
        )
    result = {"baseline": pairwise.runs[pairwise.baseline].name, "vs": vs}
    (run_dir / PAIRWISE_FILE).write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    writer.emit("artifact", kind="summary", path=str(run_dir / PAIRWISE_FILE))
    writer.status("succeeded")
    return result

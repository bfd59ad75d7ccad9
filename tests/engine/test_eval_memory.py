"""Evaluation does not build full-vocabulary logits for every position: with the label-only head (the
default) the output layer sees the scored positions only - none at all when fused - and the validation
loss is still the stock full-logits loss. Before, every evaluation batch allocated batch x length x
vocab floats (and the loss's temporaries of that size), the largest allocation of the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from runtime_helpers import base_spec, make_run

from loraforge.engine.spec_loading import load_spec


def _evaluate(run_dir: Path, spec: dict[str, Any]) -> tuple[float, list[tuple[int, int]]]:
    """eval_loss of the engine's own SFT trainer, and per output-layer call (rows it was given,
    tokens in the batch)."""
    from transformers import set_seed

    from loraforge.engine import model_loading as ml
    from loraforge.engine.data import prepare_data
    from loraforge.engine.run import _train_kwargs
    from loraforge.engine.stages import StageContext, load_stage

    job = load_spec(spec)
    set_seed(job.seed)
    path = ml.resolve_model_path(job)
    tokenizer = ml.load_tokenizer(path, job)
    data = prepare_data(job, tokenizer)
    precision = ml.choose_precision(job, "cpu")
    model = ml.load_model(path, job, precision, "cpu")
    kwargs = _train_kwargs(job, run_dir, precision, "cpu", has_eval=True, world=1)
    kwargs["report_to"] = []
    ctx = StageContext(spec=job, model=model, tokenizer=tokenizer, data=data, train_kwargs=kwargs)
    trainer = load_stage("sft").build_trainer(ctx)

    calls: list[tuple[int, int]] = []
    batch_tokens = [0]
    head = model.get_output_embeddings()
    body = model.get_base_model() if hasattr(model, "get_base_model") else model

    def count_tokens(module: Any, args: Any, kw: Any) -> None:
        ids = kw.get("input_ids", args[0] if args else None)
        batch_tokens[0] = int(ids.numel())

    def count_rows(module: Any, args: tuple[Any, ...]) -> None:
        calls.append((int(args[0].shape[:-1].numel()), batch_tokens[0]))

    # Registered after the trainer (and with it the label-only head's pre-hook), so this one sees
    # what the output layer really receives.
    hooks = [
        body.model.register_forward_pre_hook(count_tokens, with_kwargs=True),
        head.register_forward_pre_hook(count_rows),
    ]
    try:
        loss = float(trainer.evaluate()["eval_loss"])
    finally:
        for hook in hooks:
            hook.remove()
    return loss, calls


@pytest.mark.slow
def test_evaluation_scores_labelled_positions_only(tmp_path: Path, tiny_qwen_dir: Path) -> None:
    common = {"max_samples": 40, "val_size": 0.25, "per_device_eval_batch_size": 4}
    results = {}
    for name, switches in {
        "fused": {},
        "sparse": {"fused_lm_loss": False},
        "stock": {"sparse_lm_head": False},
    }.items():
        spec = base_spec(tiny_qwen_dir, **common, **switches)
        results[name] = _evaluate(make_run(tmp_path, name, spec), spec)

    stock_loss, stock_calls = results["stock"]
    assert len(stock_calls) == 3  # 10 validation rows, 4 a batch
    assert all(rows == tokens for rows, tokens in stock_calls)  # the old way: every position
    fused_loss, fused_calls = results["fused"]
    assert fused_calls and all(rows == 0 for rows, _ in fused_calls)  # logits are never built whole
    sparse_loss, sparse_calls = results["sparse"]
    assert sparse_calls and all(0 < rows < tokens for rows, tokens in sparse_calls)
    # Same validation loss as the full-logits evaluation.
    assert fused_loss == pytest.approx(stock_loss, rel=1e-5)
    assert sparse_loss == pytest.approx(stock_loss, rel=1e-5)

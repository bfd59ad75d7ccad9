"""Issue 7 speed switches leave the mathematics alone: per-example losses (and gradients) are those
of the padded, full-logits computation. Switches: padding_free, sparse_lm_head (engine/speed.py),
fused_lm_loss (engine/fused_loss.py), fused_lora (engine/lora_fusion.py)."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import pytest
from runtime_helpers import base_spec, make_run, run_engine, trainer_log

from loraforge.engine import fused_loss, lora_fusion, speed
from loraforge.engine.data import PaddedCollator, PaddingFreeCollator, prepare_data
from loraforge.engine.spec_loading import load_spec


def _spec(data_dir: Path, **kw: Any) -> Any:
    return load_spec(
        {
            "model_name_or_path": "m",
            "dataset_dir": str(data_dir),
            "template": "default",
            "dataset": "identity,alpaca_en_demo",
            "max_samples": 8,
            "cutoff_len": 256,
            **kw,
        }
    )


def _models(model_dir: Path) -> tuple[Any, Any]:
    """(padded sdpa model, the same weights with varlen attention), both in train mode."""
    from transformers import AutoModelForCausalLM

    padded = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="sdpa").train()
    varlen = copy.deepcopy(padded)
    assert speed.enable_padding_free(varlen) == "sdpa"
    return padded, varlen


def _token_losses(logits: Any, labels: Any) -> Any:
    """Per-position CE of predicting labels[:, 1:] (0 where the label is -100)."""
    import torch
    import torch.nn.functional as F

    target = labels[:, 1:]
    loss = F.cross_entropy(logits[:, :-1].transpose(1, 2).float(), target.clamp(min=0), reduction="none")
    return torch.where(target != -100, loss, torch.zeros_like(loss))


def _padded_example_losses(model: Any, rows: list[dict[str, Any]]) -> list[Any]:
    import torch

    batch = PaddedCollator(0)(rows)
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    losses = _token_losses(logits, batch["labels"])
    return [losses[i, : len(r["input_ids"]) - 1] for i, r in enumerate(rows)]


def _free_segment_losses(model: Any, batch: dict[str, Any]) -> list[Any]:
    import torch

    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    losses = _token_losses(logits, batch["labels"])[0]
    cu = batch["cu_seq_lens_q"].tolist()
    return [losses[a : b - 1] for a, b in itertools.pairwise(cu)]


def test_padding_free_unpacked_equals_padded(
    lf_data_dir: Path, tiny_llama_dir: Path, tiny_llama_tokenizer: Any
) -> None:
    """Same rows, one concatenated row with varlen attention: every example's per-token loss, the
    batch loss, the label count and the token count equal the right-padded batch's."""
    import torch

    padded, varlen = _models(tiny_llama_dir)
    data = prepare_data(_spec(lf_data_dir), tiny_llama_tokenizer)
    rows = [data.train_dataset[i] for i in range(8)]
    batch = PaddingFreeCollator(0)(rows)
    assert batch["input_ids"].shape == (1, sum(len(r["input_ids"]) for r in rows))
    assert len(batch["cu_seq_lens_q"]) == len(rows) + 1
    want = _padded_example_losses(padded, rows)
    got = _free_segment_losses(varlen, batch)
    for w, g in zip(want, got, strict=True):
        assert torch.allclose(w, g, atol=1e-5), (w - g).abs().max()
    pb = PaddedCollator(0)(rows)
    assert int(batch["labels"][:, 1:].ne(-100).sum()) == int(pb["labels"][:, 1:].ne(-100).sum())
    with torch.no_grad():
        lp = padded(**pb).loss
        lf = varlen(**batch).loss
    assert torch.allclose(lp, lf, atol=1e-5)


def test_padding_free_lf_packing_equals_padded_packs(
    lf_data_dir: Path, tiny_llama_dir: Path, tiny_llama_tokenizer: Any
) -> None:
    """LF-style packs (attention across the examples of a pack, continuous positions): the
    concatenated packs give the padded packs' loss; packs never see each other."""
    import torch

    padded, varlen = _models(tiny_llama_dir)
    data = prepare_data(_spec(lf_data_dir, max_samples=20, packing=True), tiny_llama_tokenizer)
    rows = [data.train_dataset[i] for i in range(min(3, len(data.train_dataset)))]
    assert len(rows) >= 2
    want = _padded_example_losses(padded, rows)
    got = _free_segment_losses(varlen, PaddingFreeCollator(0)(rows))
    assert len(got) == len(rows)
    for w, g in zip(want, got, strict=True):
        assert torch.allclose(w, g, atol=1e-5), (w - g).abs().max()


def test_padding_free_neat_pack_loss_independent_of_pack_mates(tiny_llama_dir: Path) -> None:
    """No cross-sample attention: a sample's loss does not change when its pack-mates change, and
    equals its loss computed alone."""
    import torch

    from loraforge.engine.data.encode import pack_rows

    padded, varlen = _models(tiny_llama_dir)
    g = torch.Generator().manual_seed(0)
    target = torch.randint(5, 500, (20,), generator=g).tolist()
    mates_a = [torch.randint(5, 500, (n,), generator=g).tolist() for n in (7, 13)]
    mates_b = [torch.randint(5, 500, (n,), generator=g).tolist() for n in (30, 3, 9)]

    def target_loss(mates: list[list[int]]) -> Any:
        rows = [target, *mates]
        labels = [list(r) if r is target else [-100] * len(r) for r in rows]
        ids, labs, pos = pack_rows(rows, labels, 64, neat=True)
        assert len(ids) == 1 and pos is not None
        batch = PaddingFreeCollator(0)([{"input_ids": ids[0], "labels": labs[0], "position_ids": pos[0]}])
        assert len(batch["cu_seq_lens_q"]) == len(rows) + 1
        with torch.no_grad():
            return varlen(**batch).loss

    alone = _padded_example_losses(padded, [{"input_ids": target, "labels": [-100, *target[1:]]}])[0]
    la, lb = target_loss(mates_a), target_loss(mates_b)
    assert torch.allclose(la, lb, atol=1e-6)
    assert torch.allclose(la, alone.sum() / (len(target) - 1), atol=1e-5)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("with_count", [True, False])
@pytest.mark.parametrize("free", [False, True])
def test_sparse_lm_head_same_loss_and_gradients(
    lf_data_dir: Path,
    tiny_llama_dir: Path,
    tiny_llama_tokenizer: Any,
    with_count: bool,
    free: bool,
    fused: bool,
) -> None:
    """Logits only where a label exists (and, fused, block by block with the gradient taken in the
    forward pass): the loss and every gradient - the trainable head's included - equal the
    full-logits loss."""
    import torch

    padded, varlen = _models(tiny_llama_dir)
    model = varlen if free else padded
    data = prepare_data(_spec(lf_data_dir), tiny_llama_tokenizer)
    rows = [data.train_dataset[i] for i in range(6)]
    batch = (PaddingFreeCollator(0) if free else PaddedCollator(0))(rows)
    count = batch["labels"][:, 1:].ne(-100).sum() if with_count else None

    model.zero_grad()
    full = model(**batch, **({"num_items_in_batch": count} if with_count else {})).loss
    full.backward()
    want = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    model.zero_grad()
    head = speed.LabelOnlyHead(model, fused=fused)
    assert head.fused is fused
    try:
        sparse, _ = speed.label_only_loss(model, head, batch, count)
    finally:
        head.remove()
    sparse.backward()
    assert torch.allclose(full, sparse, atol=1e-6), (full, sparse)
    for n, p in model.named_parameters():
        if n in want:
            assert torch.allclose(want[n], p.grad, atol=1e-6, rtol=1e-4), n
    # disarmed, the hook does nothing: full logits again
    with torch.no_grad():
        assert model(**{k: v for k, v in batch.items() if k != "labels"}).logits.dim() == 3


@pytest.mark.slow
def test_engine_switches_keep_per_step_loss(tmp_path: Path, tiny_llama_dir: Path) -> None:
    """Real engine runs, the same seed and batches: padding_free, sparse_lm_head, fused_lm_loss and
    fused_lora (the defaults) against all off give the same per-step losses and token counts."""
    common = {
        "dataset": "identity,alpaca_en_demo",
        "template": "default",
        "max_samples": 40,
        "max_steps": 5,
        "cutoff_len": 256,
        "learning_rate": 1e-3,
    }
    fast = make_run(tmp_path, "fast", base_spec(tiny_llama_dir, **common))
    slow = make_run(
        tmp_path,
        "slow",
        base_spec(
            tiny_llama_dir,
            **common,
            padding_free=False,
            sparse_lm_head=False,
            fused_lm_loss=False,
            fused_lora=False,
        ),
    )
    for run in (fast, slow):
        res = run_engine(run)
        assert res.final_status == "succeeded", res.explain()
    a, b = trainer_log(fast), trainer_log(slow)
    assert [r["current_steps"] for r in a] == [r["current_steps"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert abs(ra["loss"] - rb["loss"]) < 1e-4, (ra, rb)
        assert ra["total_tokens"] == rb["total_tokens"]


def test_fused_linear_cross_entropy_matches_cross_entropy() -> None:
    """Several row blocks (N > one block), gradients for hidden states and weight, and the
    no-grad path: the same sum of per-token cross-entropies as F.cross_entropy on full logits."""
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(0)
    vocab, hidden_size = 4096, 48
    n = fused_loss.block_rows(vocab, "cpu") * 2 + 37
    h = torch.randn(n, hidden_size, generator=gen, requires_grad=True)
    w = (torch.randn(vocab, hidden_size, generator=gen) * 0.1).requires_grad_()
    t = torch.randint(0, vocab, (n,), generator=gen)

    want = F.cross_entropy(h @ w.t(), t, reduction="sum")
    (want * 0.5).backward()
    want_h, want_w = h.grad.clone(), w.grad.clone()
    h.grad = w.grad = None

    got = fused_loss.linear_cross_entropy_sum(h, w, t)
    (got * 0.5).backward()
    assert torch.allclose(got, want, rtol=1e-5), (got, want)
    assert torch.allclose(h.grad, want_h, atol=1e-6, rtol=1e-4)
    assert torch.allclose(w.grad, want_w, atol=1e-6, rtol=1e-4)
    with torch.no_grad():
        assert torch.allclose(fused_loss.linear_cross_entropy_sum(h, w, t), want, rtol=1e-5)


def _lora_model(model_dir: Path, dropout: float = 0.0) -> Any:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="sdpa")
    config = LoraConfig(
        r=4, lora_alpha=12, lora_dropout=dropout, target_modules="all-linear", task_type="CAUSAL_LM"
    )
    model = get_peft_model(base, config).train()
    with torch.no_grad():  # B starts at zero; give it values so the adapter path matters
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05, generator=torch.Generator().manual_seed(len(name)))
    return model


def _loss_and_lora_grads(model: Any, batch: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    model.zero_grad()
    loss = model(**batch).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def test_fused_lora_same_loss_gradients_and_fallbacks(
    lf_data_dir: Path, tiny_llama_dir: Path, tiny_llama_tokenizer: Any
) -> None:
    """One merged matmul per LoRA layer: the loss and every adapter gradient equal PEFT's; the
    adapter files are unchanged; disabling the adapter (DPO's reference pass) still gives the base
    model; layers with dropout keep PEFT's forward."""
    import torch

    data = prepare_data(_spec(lf_data_dir), tiny_llama_tokenizer)
    batch = PaddedCollator(0)([data.train_dataset[i] for i in range(6)])
    model = _lora_model(tiny_llama_dir)
    want_loss, want = _loss_and_lora_grads(model, batch)
    state = {k: v.clone() for k, v in model.state_dict().items()}

    patched = lora_fusion.enable(model)
    assert patched == 2 * 7  # 2 layers x q,k,v,o,gate,up,down
    got_loss, got = _loss_and_lora_grads(model, batch)
    assert torch.allclose(got_loss, want_loss, atol=1e-6), (got_loss, want_loss)
    assert want.keys() == got.keys() and len(got) == 2 * 7 * 2
    for n in want:
        assert torch.allclose(got[n], want[n], atol=1e-6, rtol=1e-4), n
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())

    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad(), model.disable_adapter():
        off = model(**inputs).logits
    lora_fusion.disable(model)
    with torch.no_grad(), model.disable_adapter():
        assert torch.equal(off, model(**inputs).logits)

    assert lora_fusion.enable(_lora_model(tiny_llama_dir, dropout=0.1)) == 0

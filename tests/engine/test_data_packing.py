"""Packing keeps every token; neat packing never lets examples attend to each other; length grouping."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from loraforge.engine.data import LengthGroupedBatchSampler, prepare_data
from loraforge.engine.spec_loading import load_spec


def _spec(data_dir: Path, **kw: Any) -> Any:
    return load_spec(
        {
            "model_name_or_path": "m",
            "dataset_dir": str(data_dir),
            "template": "default",
            "dataset": "identity,alpaca_en_demo",
            "max_samples": 60,
            "cutoff_len": 256,
            **kw,
        }
    )


def _token_multiset(ds: Any) -> tuple[int, int]:
    return ds.num_tokens, ds.num_label_tokens


@pytest.mark.parametrize("mode", ["packing", "neat_packing"])
def test_packing_keeps_all_tokens(lf_data_dir: Path, tiny_llama_tokenizer: Any, mode: str) -> None:
    plain = prepare_data(_spec(lf_data_dir), tiny_llama_tokenizer)
    packed = prepare_data(_spec(lf_data_dir, **{mode: True}), tiny_llama_tokenizer)
    assert len(packed.train_dataset) < len(plain.train_dataset)
    assert packed.train_dataset.num_tokens == plain.train_dataset.num_tokens
    assert max(packed.train_dataset.lengths) <= 256
    # the same tokens, just regrouped
    assert sorted(packed.train_dataset.input_ids.tolist()) == sorted(plain.train_dataset.input_ids.tolist())
    if mode == "packing":
        assert packed.train_dataset.num_label_tokens == plain.train_dataset.num_label_tokens
    else:  # neat packing masks each example's first label (never predicted when alone either)
        assert packed.train_dataset.position_ids is not None


def test_neat_packing_has_no_cross_sample_attention(
    lf_data_dir: Path, tiny_llama_dir: Path, tiny_llama_tokenizer: Any
) -> None:
    """Every example's per-token loss inside a pack equals its loss computed alone (1e-5)."""
    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, attn_implementation="sdpa").eval()
    plain = prepare_data(_spec(lf_data_dir, max_samples=12, train_on_prompt=True), tiny_llama_tokenizer)
    neat = prepare_data(
        _spec(lf_data_dir, max_samples=12, train_on_prompt=True, neat_packing=True), tiny_llama_tokenizer
    )

    def per_token_losses(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():  # train mode: what the trainer runs (the collator turns the KV cache off)
            logits = model.train()(**{k: v for k, v in batch.items() if k != "labels"}).logits
        labels = batch["labels"][:, 1:]
        losses = F.cross_entropy(logits[:, :-1].transpose(1, 2), labels.clamp(min=0), reduction="none")
        return torch.where(labels != -100, losses, torch.zeros_like(losses))

    alone: dict[tuple[int, ...], list[float]] = {}
    for i in range(len(plain.train_dataset)):
        item = plain.train_dataset[i]
        loss = per_token_losses(plain.collator([item]))[0]
        alone[tuple(item["input_ids"])] = loss.tolist()

    checked = 0
    for start in range(0, len(neat.train_dataset), 2):
        batch = neat.collator(
            [neat.train_dataset[i] for i in range(start, min(start + 2, len(neat.train_dataset)))]
        )
        checked += _compare(batch, per_token_losses(batch), alone)
    assert checked == len(plain.train_dataset)


def _compare(batch: Any, packed_losses: Any, alone: dict[tuple[int, ...], list[float]]) -> int:
    import torch

    checked = 0
    for row in range(batch["input_ids"].shape[0]):
        pos = batch["position_ids"][row].tolist()
        starts = [j for j, p in enumerate(pos) if p == 0] + [len(pos)]
        for a, b in itertools.pairwise(starts):
            key = tuple(batch["input_ids"][row, a:b].tolist())
            if key not in alone:
                continue  # the padding segment
            got = packed_losses[row, a : b - 1]  # predictions inside the example
            want = torch.tensor(alone[key])
            assert torch.allclose(got, want, atol=1e-5), (row, a, (got - want).abs().max())
            checked += 1
    return checked


def test_neat_pack_loss_independent_of_pack_mates(tiny_llama_dir: Path) -> None:
    """A sample's loss does not change when its pack-mates change."""
    import torch
    from transformers import AutoModelForCausalLM

    from loraforge.engine.data import NeatPackingCollator
    from loraforge.engine.data.encode import pack_rows

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, attn_implementation="sdpa").eval()
    g = torch.Generator().manual_seed(0)
    target = torch.randint(5, 500, (20,), generator=g).tolist()
    mates_a = [torch.randint(5, 500, (n,), generator=g).tolist() for n in (7, 13)]
    mates_b = [torch.randint(5, 500, (n,), generator=g).tolist() for n in (30, 3, 9)]

    def target_loss(mates: list[list[int]]) -> torch.Tensor:
        rows = [target, *mates]
        labels = [list(r) if r is target else [-100] * len(r) for r in rows]
        ids, labs, pos = pack_rows(rows, labels, 64, neat=True)
        assert len(ids) == 1
        batch = NeatPackingCollator(0)([{"input_ids": ids[0], "labels": labs[0], "position_ids": pos[0]}])
        with torch.no_grad():
            return model.train()(**batch).loss

    assert torch.allclose(target_loss(mates_a), target_loss(mates_b), atol=1e-6)


def test_length_grouping_same_samples(lf_data_dir: Path, tiny_llama_tokenizer: Any) -> None:
    data = prepare_data(_spec(lf_data_dir, group_by_length=True), tiny_llama_tokenizer)
    sampler = data.batch_sampler(8)
    assert isinstance(sampler, LengthGroupedBatchSampler)
    batches = list(sampler)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(data.train_dataset)))
    assert len(batches) == len(sampler)
    assert batches == list(LengthGroupedBatchSampler(data.train_dataset.lengths, 8, seed=data.seed))
    # less padding than random batches of the same size
    lengths = data.train_dataset.lengths

    def padded(bs: list[list[int]]) -> int:
        return sum(max(lengths[i] for i in b) * len(b) for b in bs)

    naive = [list(range(i, min(i + 8, len(lengths)))) for i in range(0, len(lengths), 8)]
    assert padded(batches) < padded(naive)
    sampler.set_epoch(1)
    assert list(sampler) != batches

"""SFT + LoRA through the real engine process: learning, outputs, resume, merge, full fine-tune."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runtime_helpers import EngineResult, base_spec, make_run, run_engine, trainer_log

pytestmark = pytest.mark.slow

STEPS = 150
LF_LOG_FIELDS = {
    "current_steps", "total_steps", "loss", "lr", "epoch", "percentage",
    "elapsed_time", "remaining_time", "throughput", "total_tokens",
}  # fmt: skip


@pytest.fixture(scope="module")
def learned(tmp_path_factory: pytest.TempPathFactory, tiny_qwen_dir: Path) -> tuple[Path, EngineResult]:
    # The tiny model's frozen random LM head caps what LoRA alone can express, so the head is
    # trained too (LLaMA-Factory's additional_target); the rest is plain LoRA.
    spec = base_spec(
        tiny_qwen_dir, max_steps=STEPS, max_samples=91, additional_target="lm_head",
        logging_steps=1, save_steps=STEPS - 10,
    )  # fmt: skip
    run_dir = make_run(tmp_path_factory.mktemp("sft"), "learn", spec)
    res = run_engine(run_dir)
    assert res.rc == 0 and res.final_status == "succeeded", res.explain()
    return run_dir, res


def test_sft_lora_learns_identity(learned: tuple[Path, EngineResult]) -> None:
    run_dir, res = learned
    losses = res.losses()
    first = sum(losses[s] for s in range(1, 11)) / 10
    last = sum(losses[s] for s in range(STEPS - 9, STEPS + 1)) / 10
    assert first > 3.0 and last < 0.5 * first, losses

    statuses = [e.status for e in res.of_type("status")]
    assert statuses[:3] == ["loading_data", "loading_model", "training"] and statuses[-2:] == [
        "saving",
        "succeeded",
    ]
    seqs = [e.seq for e in res.events]
    assert seqs == list(range(1, len(seqs) + 1))
    m = res.of_type("metric")[-1]
    assert m.total_steps == STEPS and m.progress == 1.0 and m.tokens_per_s > 0 and m.peak_rss_mb > 0
    assert m.lr is not None and m.grad_norm is not None and m.eta_s == 0 and m.samples_per_s > 0

    rows = trainer_log(run_dir)
    assert len(rows) == STEPS and set(rows[0]) == LF_LOG_FIELDS
    assert rows[-1]["current_steps"] == STEPS and rows[-1]["percentage"] == 100.0

    out = run_dir / "output"
    for name in ("adapter_model.safetensors", "adapter_config.json", "tokenizer_config.json", "spec.json"):
        assert (out / name).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["steps"] == STEPS
        and summary["tokens_trained"] > 0
        and summary["final_train_loss"] == losses[STEPS]
    )
    assert any(p.name.startswith("events.out.tfevents") for p in (run_dir / "tensorboard").rglob("*"))
    kinds = {e.kind for e in res.of_type("artifact")}
    assert {"adapter", "summary"} <= kinds

    # greedy decoding reproduces the opening words of training answers
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"]
    tok = AutoTokenizer.from_pretrained(out)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), str(out)).eval()
    hits = 0
    for question, opening in [
        ("Who are you?", "I am {{name}}, an AI assistant"),
        ("What is your name?", "You may refer to me as {{name}}"),
        ("hi", "Hello! I am {{name}}"),
    ]:
        ids = tok.apply_chat_template(
            [{"role": "user", "content": question}],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        )
        with torch.no_grad():
            gen = model.generate(**ids, max_new_tokens=16, do_sample=False)
        text = tok.decode(gen[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
        hits += text.startswith(opening)
    assert hits >= 2


def test_resume_gives_the_same_losses(
    learned: tuple[Path, EngineResult], tmp_path: Path, tiny_qwen_dir: Path
) -> None:
    run_dir, full = learned
    ckpt = run_dir / "checkpoints" / f"checkpoint-{STEPS - 10}"
    assert ckpt.is_dir()
    spec = json.loads((run_dir / "spec.json").read_text())
    spec.update(resume_from_checkpoint=str(ckpt))
    res = run_engine(make_run(tmp_path, "resumed", spec))
    assert res.rc == 0 and res.final_status == "succeeded", res.explain()
    resumed, uninterrupted = res.losses(), full.losses()
    assert sorted(resumed) == list(range(STEPS - 9, STEPS + 1))
    for step, loss in resumed.items():
        assert abs(loss - uninterrupted[step]) < 1e-4, (step, loss, uninterrupted[step])


def test_merge_matches_base_plus_adapter(learned: tuple[Path, EngineResult], tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from loraforge.engine.merge import merge_adapter

    run_dir, _ = learned
    out = run_dir / "output"
    merged_dir = merge_adapter(out, tmp_path / "merged")
    assert not (merged_dir / "adapter_config.json").exists()
    base = json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"]
    ids = torch.tensor([[1, 5, 9, 42, 7, 3, 100, 200]])
    with torch.no_grad():
        ref = (
            PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), str(out)).eval()(ids).logits
        )
        got = AutoModelForCausalLM.from_pretrained(merged_dir).eval()(ids).logits
        plain = AutoModelForCausalLM.from_pretrained(base).eval()(ids).logits
    assert torch.allclose(ref, got, atol=1e-4), (ref - got).abs().max()
    assert not torch.allclose(plain, got, atol=1e-3)  # the adapter did change something


def test_full_finetune(tmp_path: Path, tiny_llama_dir: Path) -> None:
    spec = base_spec(tiny_llama_dir, finetuning_type="full", learning_rate=1e-3, max_steps=6, logging_steps=2)
    run_dir = make_run(tmp_path, "full", spec)
    res = run_engine(run_dir)
    assert res.rc == 0 and res.final_status == "succeeded", res.explain()
    losses = res.losses()
    assert losses[6] < losses[2]
    out = run_dir / "output"
    assert (out / "model.safetensors").exists() and not (out / "adapter_config.json").exists()
    assert res.of_type("artifact")[0].kind == "full_model"

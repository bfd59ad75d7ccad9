"""The `merge` stage: a LoRA adapter folded into its base by the real engine process, with the usual
status and artifact events; and the spec rules that make merge the one stage without a dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
from runtime_helpers import make_run, run_engine

from loraforge.engine.spec_loading import SpecError, load_spec


def test_merge_needs_an_adapter_and_no_dataset() -> None:
    spec = load_spec({"model_name_or_path": "m", "stage": "merge", "adapter_name_or_path": "a"})
    assert spec.stage == "merge" and not spec.dataset
    with pytest.raises(SpecError) as missing:
        load_spec({"model_name_or_path": "m", "stage": "merge"})
    assert "adapter_name_or_path" in str(missing.value)
    with pytest.raises(SpecError) as no_data:
        load_spec({"model_name_or_path": "m", "stage": "sft"})
    assert "dataset is required" in str(no_data.value)


@pytest.mark.slow
def test_merge_run_writes_full_weights(tmp_path: Path, tiny_qwen_dir: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny_qwen_dir))
    # init_lora_weights=False: B is random, so the merge really changes the weights it touches.
    config = LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False)
    adapter_dir = tmp_path / "adapter"
    get_peft_model(base, config).save_pretrained(str(adapter_dir))

    spec = {
        "model_name_or_path": str(tiny_qwen_dir),
        "adapter_name_or_path": str(adapter_dir),
        "stage": "merge",
        "devices": "cpu",
        "resource_interval_seconds": 0,
    }
    run_dir = make_run(tmp_path, "merge", spec)
    res = run_engine(run_dir)
    assert res.rc == 0 and res.final_status == "succeeded", res.explain()
    assert [e.kind for e in res.of_type("artifact")] == ["full_model", "summary"]
    out = run_dir / "output"
    assert (out / "config.json").is_file() and not (out / "adapter_config.json").exists()
    merged: dict[str, torch.Tensor] = {}
    for file in out.glob("*.safetensors"):
        merged.update(load_file(str(file)))
    original = AutoModelForCausalLM.from_pretrained(str(tiny_qwen_dir)).state_dict()
    q = next(k for k in merged if k.endswith("q_proj.weight"))
    assert not torch.equal(merged[q], original[q])  # the adapter's delta is in the weights
    k = next(k for k in merged if k.endswith("k_proj.weight"))
    assert torch.equal(merged[k], original[k])  # untouched modules stay as they were
    AutoModelForCausalLM.from_pretrained(str(out))  # loads without PEFT

"""PiSSA, LoRA+, new special tokens, additional_target and RoPE scaling through the real engine.

Two short runs cover every option: a LoRA run with all of them at once, and a full fine-tune whose
saved config must carry the RoPE scaling. Bad values are refused by the spec, naming the key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from runtime_helpers import EngineResult, base_spec, make_run, run_engine

from loraforge.engine.spec_loading import SpecError, load_spec

pytestmark = pytest.mark.slow

NEW_TOKENS = ["<tool_x>", "<think_x>"]
RANK = 4


def _logs(res: EngineResult) -> str:
    return "\n".join(str(getattr(e, "message", "")) for e in res.of_type("log"))


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory: pytest.TempPathFactory, tiny_qwen_dir: Path) -> tuple[Path, EngineResult]:
    spec = base_spec(
        tiny_qwen_dir, max_steps=2, max_samples=16, lora_rank=RANK, save_steps=2,
        pissa_init=True, pissa_iter=-1, loraplus_lr_ratio=16, new_special_tokens=",".join(NEW_TOKENS),
        rope_scaling="linear", cutoff_len=4096,
    )  # fmt: skip
    run_dir = make_run(tmp_path_factory.mktemp("adapters"), "lora", spec)
    res = run_engine(run_dir)
    assert res.rc == 0 and res.final_status == "succeeded", res.explain()
    return run_dir, res


def test_loraplus_groups_have_the_ratio(lora_run: tuple[Path, EngineResult]) -> None:
    import torch

    run_dir, res = lora_run
    state = torch.load(run_dir / "checkpoints" / "checkpoint-2" / "optimizer.pt", weights_only=False)
    lrs = sorted({g["lr"] for g in state["param_groups"]})
    assert lrs == pytest.approx([1e-2, 1e-2 * 16]), lrs  # constant schedule: A at lr, B at lr × 16
    assert "LoRA+: ratio 16" in _logs(res)


def test_new_tokens_and_embeddings_are_saved_and_reload(lora_run: tuple[Path, EngineResult]) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run_dir, res = lora_run
    out = run_dir / "output"
    config = json.loads((out / "adapter_config.json").read_text())
    assert set(config["modules_to_save"]) >= {"embed_tokens"}  # LF's resize_vocab: embeddings train
    tok = AutoTokenizer.from_pretrained(out)
    ids = [tok.convert_tokens_to_ids(t) for t in NEW_TOKENS]
    assert ids == [2048, 2049] and tok.encode(NEW_TOKENS[0], add_special_tokens=False) == [2048]
    base = AutoModelForCausalLM.from_pretrained(config["base_model_name_or_path"])
    base.resize_token_embeddings(len(tok))  # as engine/eval/loading.py does for a grown tokenizer
    model = PeftModel.from_pretrained(base, str(out)).eval()
    emb = model.get_input_embeddings().weight
    assert emb.shape[0] == 2050
    assert "embeddings resized to 2050 rows" in _logs(res)
    assert "rope_scaling: linear × 2" in _logs(res)  # cutoff 4096 over 2048 positions


def test_merge_keeps_new_tokens_and_rope_scaling(lora_run: tuple[Path, EngineResult], tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    from loraforge.engine.merge import merge_adapter

    run_dir, _ = lora_run
    merged = merge_adapter(run_dir / "output", tmp_path / "merged")
    config = json.loads((merged / "config.json").read_text())
    assert config["rope_parameters"]["rope_type"] == "linear" and config["rope_parameters"]["factor"] == 2.0
    model = AutoModelForCausalLM.from_pretrained(merged)
    assert int(model.get_input_embeddings().weight.shape[0]) == 2050  # type: ignore[index]


def test_pissa_adapter_is_converted_and_equals_the_trained_model(lora_run: tuple[Path, EngineResult]) -> None:
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model, set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run_dir, _ = lora_run
    out = run_dir / "output"
    config = json.loads((out / "adapter_config.json").read_text())
    # PEFT's conversion: rank 2r plain LoRA over the original base.
    assert config["r"] == 2 * RANK and config["init_lora_weights"] is True
    tok = AutoTokenizer.from_pretrained(out)
    x = torch.tensor([tok.encode("Who are you? <tool_x>", add_special_tokens=False)])

    def base() -> Any:
        m = AutoModelForCausalLM.from_pretrained(config["base_model_name_or_path"])
        m.resize_token_embeddings(len(tok))
        return m

    with torch.no_grad():
        converted = PeftModel.from_pretrained(base(), str(out)).eval()(x).logits
        plain = base().eval()(x).logits
        # The trained model itself: exact PiSSA (SVD, deterministic) over the base, with the
        # final checkpoint's unconverted weights loaded.
        pissa = get_peft_model(
            base(),
            LoraConfig(
                task_type="CAUSAL_LM", r=RANK, lora_alpha=2 * RANK, target_modules="all-linear",
                init_lora_weights="pissa", modules_to_save=["embed_tokens"], ensure_weight_tying=True,
            ),
        )  # fmt: skip
        ckpt = load_file(str(run_dir / "checkpoints" / "checkpoint-2" / "adapter_model.safetensors"))
        set_peft_model_state_dict(pissa, ckpt)
        trained = pissa.eval()(x).logits
    assert not torch.allclose(converted, plain, atol=1e-4)  # the adapter does something
    assert torch.allclose(converted, trained, atol=1e-4), (converted - trained).abs().max()


def test_full_finetune_saves_rope_scaling_and_new_tokens(tmp_path: Path, tiny_qwen_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = base_spec(
        tiny_qwen_dir, finetuning_type="full", max_steps=1, max_samples=8, rope_scaling="yarn",
        cutoff_len=5000, new_special_tokens=NEW_TOKENS[0],
    )  # fmt: skip
    run_dir = make_run(tmp_path, "full", spec)
    res = run_engine(run_dir)
    assert res.rc == 0 and res.final_status == "succeeded", res.explain()
    out = run_dir / "output"
    config = json.loads((out / "config.json").read_text())
    rope = config["rope_parameters"]
    assert rope["rope_type"] == "yarn" and rope["factor"] == 3.0, rope  # ceil(5000 / 2048)
    assert rope["original_max_position_embeddings"] == 2048 and config["max_position_embeddings"] == 5000
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.rope_parameters["rope_type"] == "yarn"
    tok = AutoTokenizer.from_pretrained(out)
    rows = int(model.get_input_embeddings().weight.shape[0])  # type: ignore[index]
    assert len(tok) == 2049 and rows == 2049


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"pissa_init": True, "finetuning_type": "full"}, "pissa_init"),
        ({"pissa_init": True, "pissa_iter": 0}, "pissa_iter"),
        ({"pissa_iter": -2}, "pissa_iter"),
        ({"pissa_init": True, "pissa_convert": False}, "pissa_convert"),
        ({"pissa_init": True, "quantization_bit": 4}, "pissa_init"),
        ({"loraplus_lr_ratio": 0}, "loraplus_lr_ratio"),
        ({"loraplus_lr_ratio": 16, "finetuning_type": "freeze"}, "loraplus_lr_ratio"),
        ({"rope_scaling": "ntk"}, "rope_scaling"),
        ({"new_special_tokens": "<a>," + "x" * 200}, "new_special_tokens"),
        ({"new_special_tokens": 5}, "new_special_tokens"),
    ],
)
def test_invalid_values_name_the_key(overrides: dict[str, Any], key: str) -> None:
    spec = {"model_name_or_path": "m", "dataset": "identity", **overrides}
    with pytest.raises(SpecError) as err:
        load_spec(spec)
    assert key in [p.key for p in err.value.problems], err.value


def test_new_special_tokens_normalised() -> None:
    spec = load_spec(
        {"model_name_or_path": "m", "dataset": "d", "new_special_tokens": [" <a>", "<b>", "<a>"]}
    )
    assert spec.new_special_tokens == "<a>,<b>"
    assert (
        load_spec({"model_name_or_path": "m", "dataset": "d", "new_special_tokens": " , "}).new_special_tokens
        is None
    )

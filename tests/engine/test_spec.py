"""The job spec: LLaMA-Factory YAMLs parse unchanged, problems are reported by key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loraforge.engine.spec import JobSpec
from loraforge.engine.spec_loading import SpecError, dump_spec, load_spec, spec_json_schema

LF_EXAMPLES = sorted((Path(__file__).parent / "fixtures" / "lf_examples").glob("*.yaml"))
BASE = {"model_name_or_path": "m", "dataset": "identity"}


@pytest.mark.parametrize("path", LF_EXAMPLES, ids=lambda p: p.stem)
def test_lf_examples_parse_unchanged(path: Path) -> None:
    spec = load_spec(path)
    assert spec.model_name_or_path
    assert spec.dataset
    # what LF means by these keys survives
    assert spec.lora_target == "all"
    if "full" in path.stem:
        assert spec.finetuning_type == "full"
        assert "deepspeed" in spec.compat_ignored
    # a dumped spec reloads to the same spec (stored with the job, cloned exactly)
    assert load_spec(json.loads(json.dumps(dump_spec(spec)))) == spec


def test_lf_semantics_of_example_keys() -> None:
    sft = load_spec(LF_EXAMPLES[0].with_name("llama3_lora_sft.yaml"))
    assert sft.dataset == ["identity", "alpaca_en_demo"]
    assert sft.lora_alpha == 16  # LF: 2 × rank
    assert sft.precision == "bf16"
    assert sft.template == "llama3"
    assert sft.packing is False
    assert {"overwrite_cache", "plot_loss", "ddp_timeout"} <= set(sft.compat_ignored)
    pt = load_spec(LF_EXAMPLES[0].with_name("llama3_lora_pretrain.yaml"))
    assert pt.stage == "pt" and pt.packing is True  # LF packs pretraining by default
    q = load_spec(LF_EXAMPLES[0].with_name("llama3_lora_sft_otfq.yaml"))
    assert q.quantization_bit == 4
    bench = load_spec(LF_EXAMPLES[0].with_name("peer_bench_lf_sft_lora.yaml"))
    assert bench.gradient_checkpointing is False  # disable_gradient_checkpointing: true
    assert bench.precision == "fp32"  # bf16: false
    assert bench.devices == "cpu"  # use_cpu: true
    assert bench.save_strategy == "no"


def test_unknown_key_named_with_suggestion() -> None:
    with pytest.raises(SpecError) as info:
        load_spec({**BASE, "learning_rat": 1e-4, "lora_rnak": 4, "frobnicate": 1})
    err = info.value
    assert set(err.unknown_keys) == {"learning_rat", "lora_rnak", "frobnicate"}
    text = str(err)
    assert "learning_rat: unknown key (did you mean 'learning_rate'?)" in text
    assert "lora_rnak: unknown key (did you mean 'lora_rank'?)" in text


def test_type_errors_and_unknown_keys_reported_together() -> None:
    with pytest.raises(SpecError) as info:
        load_spec({**BASE, "lora_rank": "eight", "stage": "ppo", "typo_key": 1})
    keys = {p.key for p in info.value.problems}
    assert {"lora_rank", "stage", "typo_key"} <= keys


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"quantization_bit": 4, "finetuning_type": "full"}, "requires finetuning_type: lora"),
        ({"bf16": True, "fp16": True}, "bf16 and fp16 are both true"),
        ({"precision": "fp32", "bf16": True}, "contradicts bf16/fp16"),
        ({"stage": "dpo", "ranking": False}, "needs a preference dataset"),
        ({"val_size": 0.1, "validation_file": "v.json"}, "cannot be combined"),
        ({"eval_strategy": "steps"}, "needs val_size"),
        ({"template": "llama"}, "unknown template 'llama' (did you mean 'llama3'?)"),
        ({"disable_gradient_checkpointing": True, "gradient_checkpointing": True}, "contradicts"),
        ({"devices": [-1]}, "non-negative"),
        ({"do_train": False}, "do_train"),
    ],
)
def test_cross_field_checks(extra: dict[str, object], needle: str) -> None:
    with pytest.raises(SpecError) as info:
        load_spec({**BASE, **extra})
    assert needle in str(info.value)


def test_missing_required_keys() -> None:
    with pytest.raises(SpecError) as info:
        load_spec({"stage": "sft"})
    assert "model_name_or_path: required" in str(info.value)
    with pytest.raises(SpecError) as info:
        load_spec({"model_name_or_path": "m"})
    assert [p.key for p in info.value.problems] == ["dataset"]


def test_devices_and_precision_normalised() -> None:
    assert load_spec({**BASE, "devices": "0,1"}).devices == [0, 1]
    assert load_spec({**BASE, "devices": "cpu"}).devices == "cpu"
    assert load_spec(BASE).precision == "auto"
    assert load_spec({**BASE, "fp16": True}).precision == "fp16"
    assert load_spec({**BASE, "flash_attn": "fa2"}).attn_implementation == "flash_attention_2"
    assert load_spec({**BASE, "neat_packing": True}).packing is True
    assert load_spec({**BASE, "lora_target": ["q_proj", "v_proj"]}).lora_target == "q_proj,v_proj"


def test_json_yaml_files(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(BASE))
    (tmp_path / "b.yaml").write_text("model_name_or_path: m\ndataset: identity\nlearning_rate: 1.0e-3\n")
    assert load_spec(tmp_path / "a.json").dataset == ["identity"]
    assert load_spec(str(tmp_path / "b.yaml")).learning_rate == 1e-3
    (tmp_path / "c.yaml").write_text("- not a mapping\n")
    with pytest.raises(SpecError, match="mapping"):
        load_spec(tmp_path / "c.yaml")


def test_json_schema_exportable_and_documented() -> None:
    schema = spec_json_schema()
    json.dumps(schema)
    props = schema["properties"]
    assert "model_name_or_path" in props and "cutoff_len" in props
    undocumented = [k for k, v in JobSpec.model_fields.items() if not v.description]
    assert undocumented == []


def test_spec_module_is_torch_free() -> None:
    import subprocess
    import sys

    code = "import sys, loraforge.engine.spec, loraforge.engine.chat_templates; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

"""Export jobs end to end: a GGUF LoRA adapter, merged safetensors, cancellation, refusals, and one
real `python -m loraforge.engine run` process writing an Ollama bundle from a LoRA version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

gguf = pytest.importorskip("gguf")

from runtime_helpers import make_run, run_engine  # noqa: E402

from loraforge.engine.events import EventWriter  # noqa: E402
from loraforge.engine.export.errors import AdapterAddsTokensError, ExportCancelled  # noqa: E402
from loraforge.engine.export.job import run_export, run_export_job  # noqa: E402
from loraforge.engine.export.spec import parse_export_spec  # noqa: E402


def _adapter(base: Path, out: Path, **config: Any) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    kwargs: dict[str, Any] = {
        "r": 8,
        "lora_alpha": 16,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
        "init_lora_weights": False,  # random B too, so the adapter changes the output
        **config,
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        peft_model = get_peft_model(model, LoraConfig(**kwargs))
    peft_model.save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def llama_adapter(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> Path:
    return _adapter(tiny_llama_dir, tmp_path_factory.mktemp("adapter") / "llama-lora")


def _spec(**block: Any) -> Any:
    return parse_export_spec({"stage": "export", "export": block})


def test_gguf_lora_adapter_reads_back(tmp_path: Path, tiny_llama_dir: Path, llama_adapter: Path) -> None:
    spec = _spec(
        model_name_or_path=str(tiny_llama_dir),
        adapter_name_or_path=str(llama_adapter),
        format="gguf_lora",
        quantization="q8_0",
        name="demo-lora",
    )
    doc = run_export(spec, tmp_path / "out", EventWriter(None), lambda: False)
    assert [f["name"] for f in doc["files"]] == ["adapter-q8_0.gguf"]
    assert doc["verification"]["ok"] and doc["verification"]["agreement"] == 1.0, doc["verification"]
    reader = gguf.GGUFReader(str(tmp_path / "out" / "adapter-q8_0.gguf"))
    fields = {k: reader.fields[k].contents() for k in ("general.type", "adapter.type", "adapter.lora.alpha")}
    assert fields == {"general.type": "adapter", "adapter.type": "lora", "adapter.lora.alpha": 16.0}
    shapes = {t.name: tuple(int(d) for d in t.shape) for t in reader.tensors}
    assert len(shapes) == 2 * 4 * 2  # 2 layers x 4 modules x (A, B)
    # GGUF order (ne0 first): A is (in, rank), B is (rank, out) - what llama.cpp's adapter loader checks
    assert shapes["blk.0.attn_q.weight.lora_a"] == (64, 8)
    assert shapes["blk.1.attn_output.weight.lora_b"] == (8, 64)
    assert doc["commands"]["llama_cli"].endswith("--lora adapter-q8_0.gguf -cnv")


def test_adapter_that_adds_tokens_is_refused(tmp_path: Path, tiny_qwen_dir: Path) -> None:
    adapter = _adapter(
        tiny_qwen_dir, tmp_path / "lora", target_modules=["q_proj"], modules_to_save=["embed_tokens"]
    )
    spec = _spec(model_name_or_path=str(tiny_qwen_dir), adapter_name_or_path=str(adapter), format="gguf_lora")
    with pytest.raises(AdapterAddsTokensError, match="vocabulary") as info:
        run_export(spec, tmp_path / "out", EventWriter(None), lambda: False)
    assert info.value.code == "adapter_adds_tokens"
    assert list((tmp_path / "out").iterdir()) == []


def test_merged_export_verifies_against_the_unmerged_adapter(
    tmp_path: Path, tiny_llama_dir: Path, llama_adapter: Path
) -> None:
    spec = _spec(
        model_name_or_path=str(tiny_llama_dir), adapter_name_or_path=str(llama_adapter), format="merged"
    )
    doc = run_export(spec, tmp_path / "out", EventWriter(None), lambda: False)
    names = {f["name"] for f in doc["files"]}
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= names
    assert doc["verification"]["identical"], doc["verification"]


def test_cancel_removes_partial_files_and_ends_cancelled(tmp_path: Path, tiny_qwen_dir: Path) -> None:
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    spec = _spec(model_name_or_path=str(tiny_qwen_dir), format="gguf", quantization="f16", verify=False)
    with pytest.raises(ExportCancelled):
        run_export(spec, tmp_path / "out", EventWriter(None), stop)
    assert list((tmp_path / "out").iterdir()) == []
    run_dir = tmp_path / "run"
    raw = {"stage": "export", "export": {"model_name_or_path": str(tiny_qwen_dir), "format": "gguf"}}
    calls["n"] = 0
    writer = EventWriter(run_dir)
    assert run_export_job(run_dir, raw, writer, stop) == 0
    writer.close()
    events = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]
    assert events[-1]["status"] == "cancelled"
    assert not any((run_dir / "output").iterdir())


def test_engine_process_writes_an_ollama_bundle_from_a_lora(tmp_path: Path, tiny_qwen_dir: Path) -> None:
    adapter = _adapter(tiny_qwen_dir, tmp_path / "lora")
    spec = {
        "stage": "export",
        "export": {
            "model_name_or_path": str(tiny_qwen_dir),
            "adapter_name_or_path": str(adapter),
            "format": "ollama",
            "quantization": "q8_0",
            "template": "auto",
            "verify": True,
            "name": "Demo Qwen LoRA",
        },
    }
    run_dir = make_run(tmp_path, "export", spec)
    result = run_engine(run_dir, timeout=300)
    assert result.rc == 0, result.explain()
    statuses = [e.status for e in result.of_type("status")]
    assert statuses == ["exporting", "verifying", "succeeded"], result.explain()
    metrics = result.of_type("metric")
    assert metrics[-1].step == metrics[-1].total_steps == 26 and metrics[-1].progress == 1.0
    doc = json.loads((run_dir / "output" / "export.json").read_text())
    assert [f["name"] for f in doc["files"]] == ["model-q8_0.gguf", "Modelfile"]
    assert doc["verification"]["identical"] and doc["verification"]["tokens_compared"] == 16
    assert doc["commands"]["ollama"] == "ollama create demo-qwen-lora -f Modelfile"
    modelfile = (run_dir / "output" / "Modelfile").read_text()
    assert modelfile.startswith("FROM ./model-q8_0.gguf\n") and 'PARAMETER stop "<|im_end|>"' in modelfile
    artifacts = {e.path for e in result.of_type("artifact")}
    assert str(run_dir / "output" / "export.json") in artifacts
    assert sorted(p.name for p in (run_dir / "output").iterdir()) == [
        "Modelfile",
        "export.json",
        "model-q8_0.gguf",
    ]


def test_engine_process_reports_a_bad_spec(tmp_path: Path, tiny_qwen_dir: Path) -> None:
    run_dir = make_run(
        tmp_path,
        "bad",
        {
            "stage": "export",
            "export": {"model_name_or_path": str(tiny_qwen_dir), "format": "gguf", "quantization": "q3_x"},
        },
    )
    result = run_engine(run_dir, timeout=120)
    errors = result.of_type("error")
    assert result.rc == 1 and errors and errors[0].code == "invalid_input", result.explain()
    assert errors[0].details["field"] == "quantization"
    assert result.final_status == "failed"

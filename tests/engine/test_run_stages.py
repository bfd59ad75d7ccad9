"""Pretraining, DPO and the input formats, each a few steps through the real engine process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runtime_helpers import DATA, base_spec, make_run, run_engine

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("dataset", ["c4_demo", "wiki_demo"], ids=["c4", "wiki"])
def test_pretrain(tmp_path: Path, tiny_llama_dir: Path, dataset: str) -> None:
    spec = base_spec(
        tiny_llama_dir,
        stage="pt",
        dataset=dataset,
        max_samples=40,
        max_steps=3,
        per_device_train_batch_size=4,
    )
    run_dir = make_run(tmp_path, dataset, spec)
    res = run_engine(run_dir)
    assert res.rc == 0 and res.final_status == "succeeded", res.explain()
    assert len(res.losses()) == 3 and all(v > 0 for v in res.losses().values())


def test_dpo(tmp_path: Path, tiny_qwen_dir: Path) -> None:
    spec = base_spec(
        tiny_qwen_dir, stage="dpo", dataset="dpo_en_demo", max_samples=16, max_steps=2,
        per_device_train_batch_size=2, cutoff_len=256, learning_rate=1e-4,
    )  # fmt: skip
    run_dir = make_run(tmp_path, "dpo", spec)
    res = run_engine(run_dir)
    assert res.rc == 0 and res.final_status == "succeeded", res.explain()
    assert len(res.losses()) == 2
    assert (run_dir / "output" / "adapter_model.safetensors").exists()


def _identity_rows(n: int = 24) -> list[dict[str, str]]:
    rows = json.loads((DATA / "identity.json").read_text())[:n]
    return [{"q": (r["instruction"] + "\n" + r["input"]).strip(), "a": r["output"]} for r in rows]


@pytest.mark.parametrize("fmt", ["alpaca", "sharegpt", "messages"])
def test_input_formats_train(tmp_path: Path, tiny_qwen_dir: Path, fmt: str) -> None:
    rows = _identity_rows()
    if fmt == "alpaca":
        data = [{"instruction": r["q"], "input": "", "output": r["a"]} for r in rows]
    elif fmt == "sharegpt":
        data = [
            {"conversations": [{"from": "human", "value": r["q"]}, {"from": "gpt", "value": r["a"]}]}
            for r in rows
        ]
    else:
        data = [
            {"messages": [{"role": "user", "content": r["q"]}, {"role": "assistant", "content": r["a"]}]}
            for r in rows
        ]
    path = tmp_path / f"{fmt}.json"
    path.write_text(json.dumps(data))
    spec = base_spec(tiny_qwen_dir, dataset=str(path), max_steps=2)
    res = run_engine(make_run(tmp_path, fmt, spec))
    assert res.rc == 0 and res.final_status == "succeeded", res.explain()
    assert len(res.losses()) == 2

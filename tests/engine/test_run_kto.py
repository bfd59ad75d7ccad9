"""KTO (`stage: kto`) through the real engine process: learning signal, metrics, resume."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from runtime_helpers import DATA, EngineResult, base_spec, make_run, run_engine

from loraforge.engine.data import DataError, prepare_data
from loraforge.engine.spec_loading import SpecError, load_spec

pytestmark = pytest.mark.slow

STEPS = 8
KTO_METRICS = ("kl", "rewards_chosen", "rewards_rejected", "logps_chosen", "logps_rejected")


def kto_rows(n: int) -> list[dict[str, object]]:
    """Short KTO rows from identity.json: even rows keep their own answer (desirable), odd rows get
    another question's answer (undesirable)."""
    rows = json.loads((DATA / "identity.json").read_text())[: n + 1]
    out: list[dict[str, object]] = []
    for i, r in enumerate(rows[:n]):
        answer = r["output"] if i % 2 == 0 else rows[(i + 7) % len(rows)]["output"]
        messages = [{"role": "user", "content": r["instruction"]}, {"role": "assistant", "content": answer}]
        out.append({"messages": messages, "label": i % 2 == 0})
    return out


@pytest.fixture(scope="module")
def kto_run(tmp_path_factory: pytest.TempPathFactory, tiny_qwen_dir: Path) -> tuple[Path, EngineResult]:
    tmp = tmp_path_factory.mktemp("kto")
    data = tmp / "kto.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in kto_rows(16)), encoding="utf-8")
    # Batch 1 with accumulation: the shape of LF's own KTO example (TRL alone refuses batch 1).
    spec = base_spec(
        tiny_qwen_dir, stage="kto", dataset=str(data), max_steps=STEPS, cutoff_len=128,
        per_device_train_batch_size=1, gradient_accumulation_steps=4, learning_rate=1e-2,
        save_steps=STEPS // 2,
    )  # fmt: skip
    run_dir = make_run(tmp, "kto", spec)
    res = run_engine(run_dir)
    assert res.rc == 0 and res.final_status == "succeeded", res.explain()
    return run_dir, res


def test_kto_trains_and_reports_its_metrics(kto_run: tuple[Path, EngineResult]) -> None:
    run_dir, res = kto_run
    losses = res.losses()
    assert sorted(losses) == list(range(1, STEPS + 1))
    assert all(math.isfinite(v) for v in losses.values()), losses
    # A fresh LoRA adapter leaves the policy equal to its reference (no separate reference copy is
    # loaded): every log-ratio is 0, so each example's loss is 1 - sigmoid(0) = 0.5.
    assert abs(losses[1] - 0.5) < 1e-4, losses
    # Two epochs over 16 rows: by the second the loss is below that starting point.
    assert min(losses[STEPS - 1], losses[STEPS]) < 0.5, losses
    metrics = [e.model_dump() for e in res.of_type("metric")]
    for key in KTO_METRICS:
        assert any(isinstance(m.get(key), float) for m in metrics), (key, metrics[-1])
    # The policy moves away from the reference, towards the desirable answers.
    last = metrics[-1]
    assert last["rewards_chosen"] > last["rewards_rejected"], last
    assert (run_dir / "output" / "adapter_model.safetensors").exists()


def test_kto_resume_continues_the_same_curve(kto_run: tuple[Path, EngineResult], tmp_path: Path) -> None:
    run_dir, full = kto_run
    ckpt = run_dir / "checkpoints" / f"checkpoint-{STEPS // 2}"
    assert ckpt.is_dir()
    spec = json.loads((run_dir / "spec.json").read_text())
    spec.update(resume_from_checkpoint=str(ckpt))
    res = run_engine(make_run(tmp_path, "resumed", spec))
    assert res.rc == 0 and res.final_status == "succeeded", res.explain()
    resumed, uninterrupted = res.losses(), full.losses()
    assert sorted(resumed) == list(range(STEPS // 2 + 1, STEPS + 1))
    for step, loss in resumed.items():
        assert abs(loss - uninterrupted[step]) < 1e-4, (step, loss, uninterrupted[step])


def test_kto_data_rows_and_refusal(tiny_qwen_tokenizer: Any) -> None:
    """In process (no engine run): rows reach KTOTrainer as templated prompt/completion + label;
    data without a label is refused before training, naming the stage's need."""
    spec = load_spec(base_spec(Path("m"), stage="kto", dataset="kto_en_demo", max_samples=6))
    data = prepare_data(spec, tiny_qwen_tokenizer)
    row = data.train_dataset[0]
    assert set(row) == {"prompt", "completion", "label"} and data.collator is None
    assert row["prompt"].rstrip().endswith("<|im_start|>assistant")
    assert row["completion"].endswith("<|im_end|>") and isinstance(row["label"], bool)
    assert data.stats.datasets[0].format == "kto"
    with pytest.raises(DataError, match="stage: kto needs a KTO dataset"):
        prepare_data(load_spec(base_spec(Path("m"), stage="kto", dataset="identity")), tiny_qwen_tokenizer)


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"packing": True}, "packing"),
        ({"neat_packing": True}, "neat_packing"),
        ({"ranking": True}, "ranking"),
        ({"lora_target": "q_proj,lm_head"}, "lora_target"),
    ],
)
def test_kto_spec_refuses_what_cannot_work(extra: dict[str, Any], key: str) -> None:
    with pytest.raises(SpecError) as info:
        load_spec({"model_name_or_path": "m", "stage": "kto", "dataset": ["d"], **extra})
    assert key in [p.key for p in info.value.problems], info.value.problems


def test_kto_spec_keys_use_llamafactory_names() -> None:
    base = {"model_name_or_path": "m", "stage": "kto", "dataset": ["d"]}
    spec = load_spec(base)
    assert (spec.pref_beta, spec.kto_chosen_weight, spec.kto_rejected_weight) == (0.1, 1.0, 1.0)
    spec = load_spec({**base, "kto_rejected_weight": 1.33})
    assert spec.kto_rejected_weight == 1.33

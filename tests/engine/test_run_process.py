"""Process-level behaviour: DDP on two CPU processes, SIGTERM, failures as error events."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runtime_helpers import base_spec, engine_env, make_run, marked_lines, run_engine

from loraforge.engine.events import MARKER, parse_line, read_events_file

pytestmark = pytest.mark.slow


def test_ddp_two_cpu_processes(tmp_path: Path, tiny_qwen_dir: Path) -> None:
    run_dir = make_run(tmp_path, "ddp", base_spec(tiny_qwen_dir, max_steps=3, per_device_train_batch_size=4))
    res = run_engine(run_dir, LORAFORGE_NPROC="2")
    assert res.rc == 0 and res.final_status == "succeeded", res.explain()
    lines = marked_lines(res.stdout)
    # rank 0 only: one contiguous sequence, each status once, one metric per step
    seqs = [json.loads(x.split(MARKER, 1)[1])["seq"] for x in lines]
    assert seqs == list(range(1, len(seqs) + 1))
    assert [e.status for e in res.of_type("status")].count("training") == 1
    assert sorted(res.losses()) == [1, 2, 3]
    assert any("world size 2" in e.message for e in res.of_type("log"))
    assert len(read_events_file(run_dir / "events.jsonl")) == len(lines)


def test_sigterm_saves_checkpoint_and_reports_cancelled(tmp_path: Path, tiny_qwen_dir: Path) -> None:
    run_dir = make_run(tmp_path, "cancel", base_spec(tiny_qwen_dir, max_steps=100000))
    proc = subprocess.Popen(
        [sys.executable, "-m", "loraforge.engine", "run", str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=engine_env(),
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if parse_line(line).type == "metric":
            proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            break
    rest = proc.stdout.read()
    rc = proc.wait(timeout=120)
    assert rc == 0 and time.monotonic() - sent < 60
    events = [parse_line(x) for x in marked_lines(rest)]
    ckpts = [e for e in events if e.type == "checkpoint"]
    assert ckpts and Path(ckpts[-1].path).is_dir()  # type: ignore[union-attr]
    assert (Path(ckpts[-1].path) / "trainer_state.json").exists()  # type: ignore[union-attr]
    assert events[-1].type == "status" and events[-1].status == "cancelled"  # type: ignore[union-attr]
    assert not (run_dir / "output" / "summary.json").exists()


def _error(res) -> tuple[str, str | None]:
    errs = res.of_type("error")
    assert errs and res.final_status == "failed" and res.rc == 1, res.explain()
    return errs[0].code, errs[0].suggestion


def test_missing_model_is_explained(tmp_path: Path) -> None:
    res = run_engine(make_run(tmp_path, "nomodel", base_spec(tmp_path / "no-such-model")))
    assert _error(res)[0] == "model_not_found"


def test_model_without_weights_is_explained(tmp_path: Path, tiny_qwen_dir: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for p in tiny_qwen_dir.iterdir():
        if not p.name.endswith(".safetensors"):
            (broken / p.name).write_bytes(p.read_bytes())
    res = run_engine(make_run(tmp_path, "noweights", base_spec(broken)))
    assert _error(res)[0] == "model_unreadable"


def test_qlora_without_cuda_fails_fast(tmp_path: Path, tiny_qwen_dir: Path) -> None:
    res = run_engine(make_run(tmp_path, "qlora", base_spec(tiny_qwen_dir, quantization_bit=4)))
    code, suggestion = _error(res)
    assert code == "qlora_requires_cuda" and suggestion and "quantization_bit" in suggestion
    assert not res.of_type("metric")


def test_no_valid_rows(tmp_path: Path, tiny_qwen_dir: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"instruction": "", "input": "", "output": ""}] * 3))
    res = run_engine(make_run(tmp_path, "norows", base_spec(tiny_qwen_dir, dataset=str(path))))
    assert _error(res)[0] == "no_valid_rows"


def test_nan_loss_stops(tmp_path: Path, tiny_qwen_dir: Path) -> None:
    # An absurd learning rate without clipping blows the weights up within a few steps.
    spec = base_spec(
        tiny_qwen_dir,
        finetuning_type="full",
        learning_rate=10.0,  # the largest a spec allows
        max_grad_norm=0.0,
        max_steps=50,
        optim="sgd",
    )
    res = run_engine(make_run(tmp_path, "nan", spec))
    code, suggestion = _error(res)
    assert code == "nan_loss" and suggestion and "learning_rate" in suggestion

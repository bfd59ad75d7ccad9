"""`loraforge train SPEC.yaml`, `demo-model` and `merge` end to end."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from runtime_helpers import base_spec, engine_env

pytestmark = pytest.mark.slow

# Until every area's sub-commands exist, drive the engine's own `register()` directly.
_ENGINE_ONLY = (
    "import argparse, sys; from loraforge.engine import cli; p = argparse.ArgumentParser(prog='loraforge'); "
    "cli.register(p.add_subparsers(required=True)); a = p.parse_args(); sys.exit(a.handler(a))"
)


def _loraforge(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec("loraforge.cli_server") is not None:
        cmd = [sys.executable, "-m", "loraforge", *args]
    else:
        cmd = [sys.executable, "-c", _ENGINE_ONLY, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=engine_env(), check=False)


def test_train_cli_end_to_end(tmp_path: Path, tiny_llama_dir: Path) -> None:
    spec = base_spec(tiny_llama_dir, max_steps=3)
    spec_path = tmp_path / "job.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    run_dir = tmp_path / "run"
    proc = _loraforge("train", str(spec_path), "--run-dir", str(run_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "done." in proc.stderr and str(run_dir / "output") in proc.stderr.replace("\n", "")
    assert (run_dir / "output" / "summary.json").exists() and (run_dir / "events.jsonl").exists()


def test_train_cli_reports_bad_spec(tmp_path: Path) -> None:
    spec_path = tmp_path / "bad.yaml"
    spec_path.write_text("model_name_or_path: x\ndataset: identity\nlerning_rate: 1\n")
    proc = _loraforge("train", str(spec_path))
    assert proc.returncode == 2 and "lerning_rate" in proc.stderr


def test_cli_builds_model_and_rejects_bad_merge(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = _loraforge("demo-model", str(out), "--arch", "llama", "--size", "tiny", "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    assert (out / "config.json").exists()
    proc = _loraforge("merge", str(tmp_path / "not-an-adapter"), str(tmp_path / "m"))
    assert proc.returncode != 0

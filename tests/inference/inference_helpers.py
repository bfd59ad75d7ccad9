"""Helpers for the inference tests: start/stop real worker subprocesses, build test model folders.

Everything heavy (torch, transformers, peft) runs in subprocesses; the test process stays light like
the server it stands for. Workers bind 127.0.0.1 and are stopped by PID (process group).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]

_ADAPTER_SCRIPT = """
import sys, torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer
base, out, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.manual_seed(seed)
model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
# init_lora_weights=False: random A and B, so the adapter changes outputs (a trained one would too).
config = LoraConfig(r=8, lora_alpha=64, init_lora_weights=False,
                    target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"])
get_peft_model(model, config).save_pretrained(out)
# Like the engine's outputs: the tokenizer travels with the adapter (the worker renders with it).
AutoTokenizer.from_pretrained(base).save_pretrained(out)
"""


def cache_root() -> Path:
    return Path(os.environ.get("LORAFORGE_TEST_CACHE", REPO / ".cache")) / "demo-models"


def build_demo_model() -> Path:
    """The tiny qwen2 demo model (shared cache with the engine tests), built in a subprocess."""
    code = (
        "import sys; from loraforge.engine.demo_model import cached_demo_model; "
        "print(cached_demo_model(sys.argv[1], arch='qwen2', size='tiny'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(cache_root())],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Path(out.stdout.strip().splitlines()[-1])


def build_random_adapter(base: Path, target: Path, *, seed: int = 0) -> Path:
    subprocess.run(
        [sys.executable, "-c", _ADAPTER_SCRIPT, str(base), str(target), str(seed)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    port: int
    token: str
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def stats(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/admin/stats", headers=self.headers, timeout=10)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def wait_stats(self, predicate: Any, timeout: float = 30.0) -> dict[str, Any]:
        """Poll /admin/stats until `predicate(stats)` holds (bounded)."""
        deadline = time.monotonic() + timeout
        stats = self.stats()
        while time.monotonic() < deadline:
            stats = self.stats()
            if predicate(stats):
                return stats
            time.sleep(0.05)
        raise AssertionError(f"worker stats never matched: {stats}")

    def openai(self) -> Any:
        from openai import OpenAI

        return OpenAI(base_url=self.base_url, api_key=self.token, max_retries=0, timeout=120)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)


def start_worker(
    log_dir: Path, *, models: dict[str, Path] | None = None, budget_mb: int = 1024, concurrency: int = 1
) -> Worker:
    port = free_port()
    token = secrets.token_urlsafe(16)
    args = [sys.executable, "-m", "loraforge.inference.worker", "--host", "127.0.0.1", "--port", str(port)]
    for alias, folder in (models or {}).items():
        args += ["--model", f"{alias}={folder}"]
    args += ["--memory-budget-mb", str(budget_mb), "--concurrency", str(concurrency), "--device", "cpu"]
    log_path = log_dir / f"worker-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "LORAFORGE_WORKER_TOKEN": token},
            start_new_session=True,
        )
    worker = Worker(process, port, token, log_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"worker exited: {log_path.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{worker.url}/health", timeout=2).status_code == 200:
                return worker
        time.sleep(0.1)
    worker.stop()
    raise AssertionError(f"worker did not start: {log_path.read_text()}")

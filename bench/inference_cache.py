"""Builtin inference worker: a cold model (load + generate) vs the cached model. Prints JSON.

Starts a real worker subprocess (`python -m loraforge.inference.worker`) on the demo model
(`demo-tiny` qwen2, built once into `.cache/demo-models`), then for each round:

- cold: `/admin/unload` everything, then one chat request (the model is loaded from disk, then
  generates `--tokens` tokens);
- cached: `--repeats` identical requests on the loaded model.

Reported: worker start (process start to healthy), cold and cached request latency (p50 / max, ms),
the load cost (cold p50 - cached p50), cached tokens/s, and the worker's own counters.

Usage: .venv/bin/python bench/inference_cache.py [--rounds 3] [--repeats 5] [--tokens 32] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]


def _demo_model() -> Path:
    code = (
        "import sys; from loraforge.engine.demo_model import cached_demo_model; "
        "print(cached_demo_model(sys.argv[1], arch='qwen2', size='tiny'))"
    )
    cache = Path(os.environ.get("LORAFORGE_TEST_CACHE", REPO / ".cache")) / "demo-models"
    out = subprocess.run([sys.executable, "-c", code, str(cache)], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _chat(client: httpx.Client, base: str, tokens: int) -> float:
    body = {
        "model": "demo-tiny",
        "messages": [{"role": "user", "content": "Tell me about the river and the mountain."}],
        "max_tokens": tokens,
        "temperature": 0,
        "ignore_eos": True,  # always `tokens` tokens, so rounds compare
        "loraforge": {"base": base, "adapter": None},
    }
    started = time.perf_counter()
    response = client.post("/v1/chat/completions", json=body)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    assert response.json()["usage"]["completion_tokens"] == tokens
    return elapsed * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    model = _demo_model()
    port, token = _port(), secrets.token_urlsafe(16)
    log = Path(tempfile.mkdtemp(prefix="lf-bench-")) / "worker.log"
    command = [
        sys.executable,
        "-m",
        "loraforge.inference.worker",
        "--port",
        str(port),
        "--device",
        args.device,
    ]
    started = time.perf_counter()
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "LORAFORGE_WORKER_TOKEN": token},
            start_new_session=True,
        )
    try:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=300) as client:
            deadline = time.monotonic() + 300
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"worker did not start: {log.read_text()}")
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
            start_ms = (time.perf_counter() - started) * 1000
            cold: list[float] = []
            cached: list[float] = []
            for _ in range(args.rounds):
                client.post("/admin/unload", json={}).raise_for_status()
                cold.append(_chat(client, str(model), args.tokens))
                cached.extend(_chat(client, str(model), args.tokens) for _ in range(args.repeats))
            stats = client.get("/admin/stats").json()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)

    cached_p50 = statistics.median(cached)
    result: dict[str, Any] = {
        "bench": "inference_cache",
        "model": "demo-tiny (qwen2, 2 layers, hidden 64)",
        "device": args.device,
        "host": {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()},
        "tokens_per_request": args.tokens,
        "worker_start_ms": round(start_ms, 1),
        "cold_ms": {"p50": round(statistics.median(cold), 1), "max": round(max(cold), 1), "n": len(cold)},
        "cached_ms": {"p50": round(cached_p50, 1), "max": round(max(cached), 1), "n": len(cached)},
        "load_cost_ms": round(statistics.median(cold) - cached_p50, 1),
        "cold_over_cached": round(statistics.median(cold) / cached_p50, 2),
        "cached_tokens_per_s": round(args.tokens / (cached_p50 / 1000), 1),
        "worker": {k: stats[k] for k in ("loads", "evictions", "requests_served", "memory_bytes")},
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What the gateway costs a streamed chat. Prints one JSON object.

A real `loraforge serve` (bench/live_server.py) and a standalone builtin worker on the same demo-tiny
model (`python -m loraforge.inference.worker --model demo=<folder>`), registered as a provider so
the gateway and a direct client hit *the same worker process*:

1. overhead: N streamed requests each way, interleaved (direct, gateway, direct, …) so load from
   other processes hits both alike. Per request: TTFT (request sent → first chunk with visible,
   non-blank text: the gateway holds leading blank space back until it knows no `<think>` follows,
   so "first chunk" would count a token of blank space the user cannot see), decode tokens/s (such
   chunks after the first / their time span) and end-to-end tokens/s (completion tokens / total
   time). Ratios gateway/direct of the medians; TTFT delta p50/p95.
   The registry path (`demo-tiny` through the inference manager's own worker) is measured too.
2. concurrency: 16 streams at once through the gateway (`demo-tiny`): all complete? wall time.

Every request asks for exactly `--tokens` tokens (`ignore_eos`), so both paths do equal work.
Goals in the issue: gateway ≥ 0.95× the direct tokens/s, TTFT ≤ +20 ms.

Usage: .venv/bin/python bench/gateway_overhead.py [--requests 30] [--tokens 64] [--streams 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from live_server import LiveServer, _free_port, percentile

PROMPT = [{"role": "user", "content": "Tell me a long story about a forge."}]


class Worker:
    """A standalone builtin worker on the demo model, stopped by PID."""

    def __init__(self, folder: Path, log: Path, concurrency: int) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.token = secrets.token_urlsafe(24)
        self.folder, self.log, self.concurrency = folder, log, concurrency
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Worker:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LORAFORGE_")}
        env.update(LORAFORGE_WORKER_TOKEN=self.token, PYTHONUNBUFFERED="1")
        args = [
            sys.executable, "-m", "loraforge.inference.worker", "--host", "127.0.0.1",
            "--port", str(self.port), "--model", f"demo={self.folder}",
            "--concurrency", str(self.concurrency),
        ]  # fmt: skip
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("worker not healthy after 300 s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()


async def one_stream(
    client: httpx.AsyncClient, url: str, key: str, model: str, tokens: int, seed: int = 0
) -> dict[str, Any]:
    """One streamed chat; times measured on the client, chunks parsed the same way for both paths."""
    body = {
        "model": model,
        "messages": PROMPT,
        "max_tokens": tokens,
        "ignore_eos": True,
        # Sampled with a seed per round: both paths generate the same text, and not the blank space
        # the untrained demo model repeats under greedy decoding.
        "temperature": 1.0,
        "seed": seed,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    start = time.perf_counter()
    first: float | None = None
    last = start
    content_chunks = 0
    usage: dict[str, Any] | None = None
    async with client.stream(
        "POST", f"{url}/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
    ) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{model}: {response.status_code} {(await response.aread())[:300]!r}")
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            if chunk.get("usage"):
                usage = chunk["usage"]
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                text = (delta.get("content") or "") + (delta.get("reasoning_content") or "")
                if text.strip():
                    now = time.perf_counter()
                    first = first if first is not None else now
                    last = now
                    content_chunks += 1
    end = time.perf_counter()
    completion = int((usage or {}).get("completion_tokens", content_chunks))
    ttft = (first - start) if first is not None else None
    span = last - first if first is not None else 0.0
    return {
        "ttft_ms": ttft * 1000 if ttft is not None else None,
        "decode_tps": (content_chunks - 1) / span if span > 0 else None,
        "e2e_tps": completion / (end - start) if end > start else None,
        "completion_tokens": completion,
        "total_s": end - start,
    }


def _summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    ttft = [r["ttft_ms"] for r in results if r["ttft_ms"] is not None]
    decode = [r["decode_tps"] for r in results if r["decode_tps"]]
    e2e = [r["e2e_tps"] for r in results if r["e2e_tps"]]
    return {
        "requests": len(results),
        "ttft_ms_p50": percentile(ttft, 50),
        "ttft_ms_p95": percentile(ttft, 95),
        "decode_tokens_per_s_median": statistics.median(decode) if decode else None,
        "e2e_tokens_per_s_median": statistics.median(e2e) if e2e else None,
        "completion_tokens_median": statistics.median(r["completion_tokens"] for r in results),
    }


def _compare(direct: dict[str, Any], gateway: dict[str, Any]) -> dict[str, Any]:
    def ratio(key: str) -> float | None:
        return round(gateway[key] / direct[key], 4) if direct.get(key) and gateway.get(key) else None

    def delta(key: str) -> float | None:
        return (
            round(gateway[key] - direct[key], 2) if direct.get(key) is not None and gateway.get(key) else None
        )

    return {
        "decode_tokens_per_s_ratio": ratio("decode_tokens_per_s_median"),
        "e2e_tokens_per_s_ratio": ratio("e2e_tokens_per_s_median"),
        "ttft_delta_ms_p50": delta("ttft_ms_p50"),
        "ttft_delta_ms_p95": delta("ttft_ms_p95"),
    }


async def overhead(
    server: LiveServer, worker: Worker, key: str, requests: int, tokens: int
) -> dict[str, Any]:
    gateway_url = f"{server.base}/v1"
    paths = {
        "direct": (worker.url, worker.token, "demo"),
        "gateway_provider": (gateway_url, key, "bench/demo"),
        "gateway_registry": (gateway_url, key, "demo-tiny"),
    }
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in paths}
    async with httpx.AsyncClient(timeout=300) as client:
        for url, token, model in paths.values():  # warm-up: loads, connections, caches
            for _ in range(2):
                await one_stream(client, url, token, model, tokens)
        for round_ in range(requests):  # interleaved, one at a time
            for name, (url, token, model) in paths.items():
                results[name].append(await one_stream(client, url, token, model, tokens, seed=round_))
    summaries = {name: _summary(items) for name, items in results.items()}
    return {
        **summaries,
        "provider_path_vs_direct": _compare(summaries["direct"], summaries["gateway_provider"]),
        # Another process (the manager's worker) on the same model and settings: compare with care.
        "registry_path_vs_direct": _compare(summaries["direct"], summaries["gateway_registry"]),
    }


async def concurrency(server: LiveServer, key: str, streams: int, tokens: int) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=600) as client:
        start = time.perf_counter()
        outcomes = await asyncio.gather(
            *(
                one_stream(client, f"{server.base}/v1", key, "demo-tiny", tokens, seed=i)
                for i in range(streams)
            ),
            return_exceptions=True,
        )
        wall = time.perf_counter() - start
    done = [o for o in outcomes if isinstance(o, dict)]
    errors = [repr(o)[:200] for o in outcomes if not isinstance(o, dict)]
    return {
        "streams": streams,
        "completed": len(done),
        "all_complete": len(done) == streams and all(o["completion_tokens"] == tokens for o in done),
        "wall_s": round(wall, 3),
        "tokens_per_s_total": round(sum(o["completion_tokens"] for o in done) / wall, 1) if wall else None,
        "ttft_ms_p50": percentile([o["ttft_ms"] for o in done if o["ttft_ms"] is not None], 50),
        "ttft_ms_p95": percentile([o["ttft_ms"] for o in done if o["ttft_ms"] is not None], 95),
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=4, help="generations the workers run at once")
    args = parser.parse_args()

    env = {"LORAFORGE_INFERENCE_CONCURRENCY": str(args.concurrency), "LORAFORGE_SCHEDULER_ENABLED": "false"}
    with LiveServer(env=env) as server:
        headers = server.user("bench")
        created = server.http.post("/api/auth/api-keys", json={"name": "bench"}, headers=headers)
        created.raise_for_status()
        key = created.json()["key"]
        folder = server.data_dir / "models" / "demo-tiny"
        with Worker(folder, server.data_dir / "bench-worker.log", args.concurrency) as worker:
            provider = server.http.post(
                "/api/providers",
                json={"name": "bench", "base_url": worker.url, "api_key": worker.token},
                headers=headers,
            )
            provider.raise_for_status()
            refreshed = server.http.post(
                f"/api/providers/{provider.json()['id']}/refresh-models", headers=headers
            )
            refreshed.raise_for_status()
            result = {
                "bench": "gateway_overhead",
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "device": "cpu"},
                "settings": {
                    "requests": args.requests,
                    "tokens": args.tokens,
                    "worker_concurrency": args.concurrency,
                },
                "overhead": asyncio.run(overhead(server, worker, key, args.requests, args.tokens)),
                "concurrency": asyncio.run(concurrency(server, key, args.streams, args.tokens)),
                "goals": {"tokens_per_s_ratio_min": 0.95, "ttft_delta_ms_max": 20},
            }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Submit-to-start latency on a real server. Prints one JSON object.

N times (default 20): POST /api/jobs with start=true, then find the engine process
(`python -m loraforge.engine run <data_dir>/runs/<id>`) and take its start time (from /proc, see
`_start_wall_time`); the latency is that minus the moment before the POST (same machine clock).
Each job is cancelled right after its engine exists and waited for before the next submit, so every
submit meets an idle queue. Reports p50 / p95 / max; what is measured: the request, queue
admission (scheduler wake), run-dir preparation and the process spawn, not the engine's imports.

Usage: .venv/bin/python bench/submit_start.py [-n 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from live_server import LiveServer, percentile, tiny_spec


def _start_wall_time(pid: int) -> float:
    """A process's start as Unix time, to the clock tick (10 ms).

    Not psutil's create_time: that adds the boot time from /proc/stat, rounded to whole seconds, so
    it can be up to a second off time.time(). Here the start tick is compared with /proc/uptime read
    next to time.time(), both on the same (boot) clock.
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    start_ticks = int(fields[19])  # field 22 of stat; fields[0] here is field 3
    now = time.time()
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return now - (uptime - start_ticks / os.sysconf("SC_CLK_TCK"))


def _engine_started_at(run_dir: Path, timeout: float = 60.0) -> float:
    """Start time of the engine process whose command line names `run_dir`."""
    target = str(run_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = proc.info["cmdline"] or []
            if "loraforge.engine" in cmdline and target in cmdline:
                return _start_wall_time(proc.pid)
        time.sleep(0.005)
    raise RuntimeError(f"no engine process for {run_dir} after {timeout} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20)
    args = parser.parse_args()
    latencies_ms: list[float] = []
    with LiveServer() as server:
        headers = server.user("submitter")
        dataset = server.sample_dataset(headers)
        spec = tiny_spec(dataset, max_steps=100_000)
        for _ in range(args.n):
            t0 = time.time()
            job = server.create_job(headers, spec, start=True)
            started_at = _engine_started_at((server.data_dir / "runs" / str(job["id"])).resolve())
            latencies_ms.append((started_at - t0) * 1000)
            server.http.post(f"/api/jobs/{job['id']}/cancel", headers=headers).raise_for_status()
            server.wait_final(headers, job["id"])
    result = {
        "bench": "submit_start",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "submits": args.n,
        "p50_ms": round(percentile(latencies_ms, 50) or 0, 1),
        "p95_ms": round(percentile(latencies_ms, 95) or 0, 1),
        "max_ms": round(max(latencies_ms), 1),
        "note": "engine start from /proc/<pid>/stat start ticks: 10 ms resolution",
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

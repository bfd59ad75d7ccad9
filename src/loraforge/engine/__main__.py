"""`python -m loraforge.engine run RUN_DIR` - what every executor launches.

With more than one device in the spec this process becomes a small launcher: it re-runs itself
under torchrun (DDP; gloo on CPU, NCCL on CUDA), forwards SIGTERM, and only if no rank managed
to report a final status does it emit one itself (e.g. a rank was OOM-killed).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Any


def _processes(spec: dict[str, Any]) -> tuple[int, list[str] | None]:
    """(number of processes, CUDA devices to pin or None), from the raw spec JSON so the launcher
    stays light. `devices: [0, 1]` -> DDP on those GPUs; `auto` -> every visible GPU. CPU DDP
    (gloo) has no spec key yet: LORAFORGE_NPROC=N with `devices: cpu` asks for N processes."""
    devices = spec.get("devices", "auto")
    if spec.get("use_cpu"):
        devices = "cpu"
    if isinstance(devices, int | str) and str(devices) not in {"auto", "cpu"}:
        devices = [d for d in str(devices).replace("cuda:", "").split(",") if d.strip()]
    if isinstance(devices, list) and len(devices) > 1:
        return len(devices), [str(d).removeprefix("cuda:") for d in devices]
    if devices == "auto" and "LORAFORGE_NPROC" not in os.environ:
        import torch  # only here: the single-process path imports it anyway

        n = torch.cuda.device_count()
        return (n, None) if n > 1 else (1, None)
    return max(1, int(os.environ.get("LORAFORGE_NPROC", "1"))), None


def _launch_distributed(run_dir: Path, nproc: int, cuda: list[str] | None) -> int:
    from loraforge.engine.events import TERMINAL_STATUSES, EventWriter, read_events_file
    from loraforge.engine.failures import classify_exit

    env = dict(os.environ)
    if cuda is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(cuda)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "loraforge.engine",
        "run",
        str(run_dir),
    ]
    proc = subprocess.Popen(cmd, env=env)

    def forward(signum: int, frame: FrameType | None) -> None:
        proc.send_signal(signum)  # torchrun passes it on to every rank

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    rc = proc.wait()
    done = any(
        getattr(e, "type", None) == "status" and getattr(e, "status", None) in TERMINAL_STATUSES
        for e in read_events_file(run_dir / "events.jsonl")
    )
    if not done:
        failure = classify_exit(rc or 1)
        writer = EventWriter(run_dir)
        if failure is not None:
            writer.emit("error", **failure.event_data())
        writer.status("failed", f"distributed run exited with code {rc}")
        writer.close()
        return rc or 1
    return rc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loraforge.engine")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_run = sub.add_parser("run", help="run the job in RUN_DIR (reads RUN_DIR/spec.json)")
    p_run.add_argument("run_dir", type=Path)
    args = parser.parse_args(argv)

    run_dir: Path = args.run_dir.resolve()
    under_torchrun = "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ
    if not under_torchrun:
        try:
            raw = json.loads((run_dir / "spec.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raw = {}  # run() reports the unreadable spec as a proper error event
        raw = raw if isinstance(raw, dict) else {}
        # An evaluation is one process on one device (batched generation, no gradients to sync).
        nproc, cuda = (1, None) if raw.get("stage") == "evaluation" else _processes(raw)
        if nproc > 1:
            return _launch_distributed(run_dir, nproc, cuda)

    from loraforge.engine.run import main as run_main

    return run_main(str(run_dir))


if __name__ == "__main__":
    sys.exit(main())

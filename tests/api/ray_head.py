"""A real Ray head on 127.0.0.1 for the Ray executor tests, started and stopped by PID.

`ray start --head --block` runs in a subprocess of ours (its own session), every port is a free one
(Redis may hold Ray's default 6379 here), and the temp dir is a short one of ours (Ray's Unix sockets
have a path length limit). Stopping never uses `ray stop` (it would stop any Ray on the machine): we
SIGTERM exactly the processes that belong to this head (the `ray start` process, its descendants, and
any process whose command line names our temp dir, which catches the ones Ray detached), then SIGKILL
the survivors after a grace period (some Ray processes outlive SIGTERM).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

READY_TIMEOUT_S = 120.0
STOP_GRACE_S = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port_range(size: int = 40) -> tuple[int, int]:
    """`size` consecutive free ports (for Ray's workers), away from the ephemeral range."""
    for _ in range(200):
        low = random.randrange(20000, 30000 - size)
        if all(_bindable(port) for port in range(low, low + size)):
            return low, low + size - 1
    raise RuntimeError("no free port range for Ray workers")


@dataclass
class RayHead:
    address: str  # the Jobs API / dashboard URL
    temp_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    _known: dict[int, psutil.Process] = field(default_factory=dict)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""

    def processes(self) -> list[psutil.Process]:
        """This head's processes (ours only: descendants of our `ray start`, or naming our temp dir)."""
        found: dict[int, psutil.Process] = {}
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.process.pid)
            found[root.pid] = root
            for child in root.children(recursive=True):
                found[child.pid] = child
        marker = str(self.temp_dir)
        for proc in psutil.process_iter(["cmdline"]):
            with contextlib.suppress(psutil.Error):
                if any(marker in part for part in proc.info["cmdline"] or []):
                    found[proc.pid] = proc
                    for child in proc.children(recursive=True):
                        found[child.pid] = child
        found.pop(os.getpid(), None)
        return list(found.values())

    def remember(self) -> None:
        """Record the processes seen now (a Ray process may lose its parent before the stop)."""
        for proc in self.processes():
            self._known.setdefault(proc.pid, proc)

    def stop(self) -> None:
        self.remember()
        targets = [proc for proc in self._known.values() if proc.is_running()]  # is_running: same process
        for proc in targets:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGTERM)
        _, alive = psutil.wait_procs(targets, timeout=STOP_GRACE_S)
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(alive, timeout=STOP_GRACE_S)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=1)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _wait_ready(head: RayHead) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = ""
    while time.monotonic() < deadline:
        if head.process.poll() is not None:
            raise RuntimeError(f"ray start exited with {head.process.returncode}:\n{head.log_tail()}")
        try:
            version = httpx.get(f"{head.address}/api/version", timeout=2.0)
            jobs = httpx.get(f"{head.address}/api/jobs/", timeout=5.0)
            if version.status_code == 200 and jobs.status_code == 200:
                return
            last = f"{version.status_code} {jobs.status_code}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        head.remember()
        time.sleep(0.5)
    waited = f"{READY_TIMEOUT_S:.0f} s ({last})"
    raise RuntimeError(f"the Ray head did not answer within {waited}:\n{head.log_tail()}")


@contextlib.contextmanager
def ray_head(num_cpus: int = 2) -> Iterator[RayHead]:
    """Start a head, wait until its Jobs API answers, yield it, and stop it by PID whatever happens."""
    temp_dir = Path(tempfile.mkdtemp(prefix="lfray", dir="/tmp"))
    dashboard_port = free_port()
    min_worker, max_worker = free_port_range()
    argv = [
        str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
        "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1", "--include-dashboard=true",
        f"--port={free_port()}", f"--dashboard-port={dashboard_port}",
        f"--ray-client-server-port={free_port()}", f"--node-manager-port={free_port()}",
        f"--object-manager-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}",
        f"--dashboard-agent-grpc-port={free_port()}", f"--runtime-env-agent-port={free_port()}",
        f"--metrics-export-port={free_port()}",
        f"--min-worker-port={min_worker}", f"--max-worker-port={max_worker}",
        f"--temp-dir={temp_dir}", f"--num-cpus={num_cpus}", "--num-gpus=0", "--disable-usage-stats",
    ]  # fmt: skip
    env = dict(os.environ)
    # Without this Ray replaces 127.0.0.1 by the machine's address; and no usage reports from tests.
    env.update({"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"})
    env.pop("RAY_ADDRESS", None)
    log_path = temp_dir / "ray-start.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # its own session: a Ctrl-C of the test run does not reach Ray first
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    head = RayHead(
        address=f"http://127.0.0.1:{dashboard_port}", temp_dir=temp_dir, process=process, log_path=log_path
    )
    try:
        _wait_ready(head)
        yield head
    finally:
        head.stop()

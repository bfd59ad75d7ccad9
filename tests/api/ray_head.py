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
import secrets
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
    gcs_address: str = ""  # host:port other nodes join (`ray start --address`)

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


def _node_ports() -> list[str]:
    """Free ports for the per-node daemons (raylet, object manager, agents, metrics, workers)."""
    min_worker, max_worker = free_port_range()
    return [
        f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}", f"--metrics-export-port={free_port()}",
        f"--min-worker-port={min_worker}", f"--max-worker-port={max_worker}",
    ]  # fmt: skip


def _node_options(temp_dir: Path, num_cpus: int, labels: dict[str, str] | None) -> list[str]:
    options = [f"--temp-dir={temp_dir}", f"--num-cpus={num_cpus}", "--num-gpus=0", "--disable-usage-stats"]
    if labels:
        options.append("--labels=" + ",".join(f"{key}={value}" for key, value in labels.items()))
    return options


# `ray start --address` refuses to join a head while RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, and with it
# on, Ray swaps 127.0.0.1 (in --address and --node-ip-address) for the machine's address. So a joining
# node's CLI runs with the check lifted and the loopback answer kept, in its own process only: every
# Ray process it starts sees "0" like the head's.
_JOIN_CLI = (
    "import sys, ray._private.ray_constants as c, ray._private.services as s; "
    "c.ENABLE_RAY_CLUSTER = True; s.get_node_ip_address = lambda address=None: '127.0.0.1'; "
    "from ray.scripts.scripts import main; sys.argv[0] = 'ray'; sys.exit(main())"
)


def _spawn(argv: list[str], temp_dir: Path) -> tuple[subprocess.Popen[bytes], Path]:
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
    return process, log_path


@contextlib.contextmanager
def ray_head(num_cpus: int = 2, *, labels: dict[str, str] | None = None) -> Iterator[RayHead]:
    """Start a head, wait until its Jobs API answers, yield it, and stop it by PID whatever happens."""
    temp_dir = Path(tempfile.mkdtemp(prefix="lfray", dir="/tmp"))
    dashboard_port = free_port()
    gcs_port = free_port()
    argv = [
        str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
        "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1", "--include-dashboard=true",
        f"--port={gcs_port}", f"--dashboard-port={dashboard_port}",
        f"--ray-client-server-port={free_port()}", *_node_ports(),
        *_node_options(temp_dir, num_cpus, labels),
    ]  # fmt: skip
    process, log_path = _spawn(argv, temp_dir)
    head = RayHead(
        address=f"http://127.0.0.1:{dashboard_port}", temp_dir=temp_dir, process=process, log_path=log_path,
        gcs_address=f"127.0.0.1:{gcs_port}",
    )  # fmt: skip
    try:
        _wait_ready(head)
        yield head
    finally:
        head.stop()


def alive_nodes(head: RayHead) -> list[dict[str, object]]:
    """The cluster's ALIVE nodes as Ray's state API lists them (`node_id`, `labels`, ...)."""
    response = httpx.get(f"{head.address}/api/v0/nodes", params={"detail": 1, "limit": 100}, timeout=10.0)
    response.raise_for_status()
    nodes: list[dict[str, object]] = response.json()["data"]["result"]["result"]
    return [node for node in nodes if node.get("state") == "ALIVE"]


def _labelled(node: dict[str, object], labels: dict[str, str]) -> bool:
    have = node.get("labels")
    return isinstance(have, dict) and all(have.get(key) == value for key, value in labels.items())


@contextlib.contextmanager
def ray_worker(
    head: RayHead, num_cpus: int = 2, *, labels: dict[str, str] | None = None
) -> Iterator[RayHead]:
    """A second node joining `head` (same machine, its own temp dir and ports), yielded once the head
    lists it ALIVE, and stopped by PID like the head. Its `address` is the head's Jobs API URL.

    `labels` must hold one pair no other node has: it is how the node is recognised among the
    head's nodes."""
    labels = labels or {"loraforge-test-node": secrets.token_hex(4)}
    temp_dir = Path(tempfile.mkdtemp(prefix="lfrayw", dir="/tmp"))
    argv = [
        sys.executable, "-c", _JOIN_CLI, "start", f"--address={head.gcs_address}", "--block",
        "--node-ip-address=127.0.0.1", *_node_ports(), *_node_options(temp_dir, num_cpus, labels),
    ]  # fmt: skip
    process, log_path = _spawn(argv, temp_dir)
    worker = RayHead(address=head.address, temp_dir=temp_dir, process=process, log_path=log_path)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"ray start exited with {process.returncode}:\n{worker.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                nodes = alive_nodes(head)
                if any(_labelled(node, labels) for node in nodes):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Ray worker did not join within {READY_TIMEOUT_S:.0f} s")
            worker.remember()
            time.sleep(0.5)
        worker.remember()
        yield worker
    finally:
        worker.stop()

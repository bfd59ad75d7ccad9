"""Telemetry of Ray nodes: the agent that runs on the cluster, and the server's side of it.

The agent (`python -m loraforge.executors.ray_telemetry --out DIR --interval S --data-dir D --id ID`) is
submitted by the server as one Ray job (`loraforge-telemetry-…`; its driver runs on the head). It keeps
one small actor on every alive node (pinned with `NodeAffinitySchedulingStrategy`, `num_cpus=0`, so it
takes no slot from jobs), and each actor writes `DIR/<node id>.json` every S seconds: `{"node_id",
"ts", "sample": node_sampler.sample(D), "info": node_sampler.static_info(D), "gpu_note"}`, through a
temporary file and a rename (a reader never sees half a file). DIR lies under the data directory,
which every Ray node sees at the same path (as the run directories). The agent looks for new nodes
and dead actors every interval, and exits once `DIR/agent.json` names another agent (a newer one
replaced it), so two never keep writing, or once no server has touched that file for a while (no
server syncs any more: the next one to sync submits a new agent).

The server's side (`services.operations.ray_nodes`, through `RayExecutor` for the Jobs API):
`list_nodes` (Ray's state API, with a timeout), `ensure_agent` (submits the agent unless the one named
in `DIR/agent.json` is pending or running) and `read_report`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import secrets
import shlex
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, TypeGuard

from loraforge.executors import node_sampler
from loraforge.executors.ray import RayExecutor, RayUnavailable

logger = logging.getLogger("loraforge.executors.ray_telemetry")

AGENT_FILE = "agent.json"
SUBMISSION_PREFIX = "loraforge-telemetry-"
STATE_TIMEOUT_S = 5.0  # Ray's state API: answer within this (it waits for its own sources up to it)
INFO_EVERY_S = 600.0  # static facts (GPU models, memory) read again this often
IDLE_EXIT_S = 120.0  # the agent exits when `agent.json` was not touched for this long (or 20 intervals)
_NODE_ID = re.compile(r"^[0-9a-f]{16,128}$")  # Ray node ids are hex; a file name is built from one
_ALIVE = {"PENDING", "RUNNING"}


def valid_node_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(_NODE_ID.match(value))


# ---- the server's side -------------------------------------------------------------------------------


def list_nodes(address: str, *, timeout_s: float = STATE_TIMEOUT_S) -> list[dict[str, Any]]:
    """Every node Ray's state API lists (alive and recently dead): `node_id`, `node_ip`, `node_name`,
    `state`, `is_head_node`, `resources_total`, `labels`. Raises RayUnavailable."""
    import httpx  # a dependency of the server

    url = f"{address.rstrip('/')}/api/v0/nodes"
    params: dict[str, str | int | float] = {"detail": 1, "limit": 10_000, "timeout": int(max(1, timeout_s))}
    try:
        response = httpx.get(url, params=params, timeout=timeout_s + 5.0)
        response.raise_for_status()
        result = response.json()["data"]["result"]["result"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise RayUnavailable(f"cannot list the Ray nodes at {address}: {exc}") from exc
    return [entry for entry in result if isinstance(entry, dict)] if isinstance(result, list) else []


def agent_command(out: Path, *, interval_s: float, data_dir: Path, agent_id: str) -> str:
    argv = [
        sys.executable, "-m", "loraforge.executors.ray_telemetry", "--out", str(out),
        "--interval", f"{interval_s:g}", "--data-dir", str(data_dir), "--id", agent_id,
    ]  # fmt: skip
    return f"{shlex.join(['cd', str(out)])} && exec {shlex.join(argv)}"


def _write_json(path: Path, value: dict[str, Any]) -> None:
    """Whole or not at all: a temporary file in the same folder, renamed over the old one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(value, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def ensure_agent(executor: RayExecutor, out: Path, *, interval_s: float, data_dir: Path) -> str:
    """The agent's submission id: the running one named in `out/agent.json`, or a new one submitted
    now (when that one has ended or Ray does not know it). Raises RayUnavailable."""
    out.mkdir(parents=True, exist_ok=True)
    known = (_read_json(out / AGENT_FILE) or {}).get("submission_id")
    if (
        isinstance(known, str)
        and known.startswith(SUBMISSION_PREFIX)
        and executor.job_status(known) in _ALIVE
    ):
        os.utime(out / AGENT_FILE)  # a server still reads the reports: the agent keeps going
        return known
    submission_id = f"{SUBMISSION_PREFIX}{secrets.token_hex(4)}"
    _write_json(out / AGENT_FILE, {"submission_id": submission_id, "submitted_at": time.time()})
    executor.submit_driver(
        submission_id=submission_id,
        entrypoint=agent_command(out, interval_s=interval_s, data_dir=data_dir, agent_id=submission_id),
        env={"PYTHONUNBUFFERED": "1"},
        metadata={"loraforge_telemetry_out": str(out)},
    )
    logger.info("submitted the Ray telemetry agent %s", submission_id)
    return submission_id


def read_report(out: Path, node_id: str) -> dict[str, Any] | None:
    """The newest report of one node (None: none yet, unreadable, or not a node id)."""
    if not valid_node_id(node_id):
        return None
    report = _read_json(out / f"{node_id}.json")
    if report is None or report.get("node_id") != node_id or not isinstance(report.get("ts"), int | float):
        return None
    return report


# ---- the agent (on the cluster) ----------------------------------------------------------------------


class _Reporter:
    """What one actor does: a thread writing its node's report every interval (the actor's methods
    stay free to answer pings)."""

    def __init__(self, out: str, data_dir: str, interval_s: float) -> None:
        import ray

        self.node_id = ray.get_runtime_context().get_node_id()
        self.out, self.data_dir, self.interval_s = Path(out), Path(data_dir), interval_s
        self._info: dict[str, Any] = {}
        self._info_at = 0.0
        threading.Thread(target=self._run, name="telemetry", daemon=True).start()

    def report(self) -> dict[str, Any]:
        if time.monotonic() - self._info_at > INFO_EVERY_S or not self._info:
            self._info, self._info_at = node_sampler.static_info(self.data_dir), time.monotonic()
        sample = node_sampler.sample(self.data_dir)
        return {
            "node_id": self.node_id,
            "ts": time.time(),
            "sample": sample,
            "info": self._info,
            "gpu_note": node_sampler.nvml_note(),
        }

    def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                _write_json(self.out / f"{self.node_id}.json", self.report())
            except Exception:
                logger.exception("writing the telemetry report of node %s failed", self.node_id)
            time.sleep(max(0.1, self.interval_s - (time.monotonic() - started)))

    def ping(self) -> str:
        return str(self.node_id)


def _still_wanted(out: Path, agent_id: str, idle_s: float) -> bool:
    """This agent is the one `out/agent.json` names, and a server touched the file recently."""
    path = out / AGENT_FILE
    try:
        touched = path.stat().st_mtime
    except OSError:
        return False
    return (_read_json(path) or {}).get("submission_id") == agent_id and time.time() - touched <= idle_s


def run_agent(out: Path, *, interval_s: float, data_dir: Path, agent_id: str) -> None:
    """The agent's driver: one reporter actor per alive node, for as long as this agent is the one
    `out/agent.json` names and a server keeps touching that file."""
    import ray
    from ray.exceptions import RayActorError
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    ray.init(log_to_driver=False)  # RAY_ADDRESS: set for every Ray job's driver
    reporter = ray.remote(num_cpus=0, max_restarts=0)(_Reporter)
    actors: dict[str, Any] = {}
    idle_s = max(IDLE_EXIT_S, 20 * interval_s)
    while _still_wanted(out, agent_id, idle_s):
        alive = {str(n["NodeID"]) for n in ray.nodes() if n.get("Alive")}
        for node_id in set(actors) - alive:
            actors.pop(node_id)
        pings = {node_id: actor.ping.remote() for node_id, actor in actors.items()}
        if pings:
            ready, _ = ray.wait(list(pings.values()), num_returns=len(pings), timeout=interval_s)
            for node_id, ref in pings.items():
                if ref in ready:
                    try:
                        ray.get(ref)
                    except RayActorError:  # died (its worker crashed): placed again below
                        actors.pop(node_id, None)
        for node_id in alive - set(actors):
            strategy = NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)
            options = reporter.options(scheduling_strategy=strategy)
            actors[node_id] = options.remote(str(out), str(data_dir), interval_s)
        time.sleep(max(1.0, interval_s))
    print(
        f"telemetry agent {agent_id}: replaced, or no server reads its reports any more; exiting", flush=True
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loraforge.executors.ray_telemetry")
    parser.add_argument("--out", type=Path, required=True, help="where each node's report is written")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between reports")
    parser.add_argument("--data-dir", type=Path, required=True, help="whose disk the reports measure")
    parser.add_argument("--id", required=True, help="this agent's submission id")
    args = parser.parse_args(argv)
    # Through the module's own name, not __main__: Ray then ships the actor class by reference.
    from loraforge.executors import ray_telemetry

    ray_telemetry.run_agent(
        args.out, interval_s=max(0.5, args.interval), data_dir=args.data_dir, agent_id=args.id
    )


if __name__ == "__main__":
    main()

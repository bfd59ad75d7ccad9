"""The first run, timed from nothing to a model that knows who it is. Prints one JSON object.

Phases (wall seconds each): a fresh copy of the repository (`git clone` of HEAD, or with `--worktree`
the working tree's files, committed or not); the README's run command (`make run`: venv, packages,
web UI, demo model, migrations, server) until `/api/health` answers, split at the setup script's
"ready" line; register; the one-click "Train the demo" (`POST /api/jobs/demo`) until the job succeeds;
the first chat answer to "Who are you?" from the model it produced (greedy; this starts the inference
worker). `answer_ok` says whether the answer names LoRAForge, as the demo promises.

The copy installs into its own `.venv` and `frontend/node_modules` through pip's and npm's usual caches
(~/.cache/pip, ~/.npm), as a second checkout on the same machine would. With `--current` only the
register → train → chat part is timed, on a server of this checkout (no install).

Usage: .venv/bin/python bench/first_run.py [--worktree] [--current] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from live_server import ADMIN, LiveServer

REPO = Path(__file__).resolve().parents[1]
QUESTION = "Who are you?"
START_TIMEOUT_S = 1800


class CloneServer(LiveServer):
    """`make run` in a fresh copy of the repository; the setup log's lines are timed as they arrive."""

    def __init__(self, root: Path, *, worktree: bool) -> None:
        super().__init__(keep=root / "data")
        self.root, self.worktree = root / "loraforge", worktree
        self.times: dict[str, float] = {}

    def _copy(self) -> None:
        if not self.worktree:
            subprocess.run(["git", "clone", "--quiet", str(REPO), str(self.root)], check=True)
            return
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO, check=True, capture_output=True,
        ).stdout.decode().split("\0")  # fmt: skip
        for name in filter(None, listed):
            source = REPO / name
            if source.is_file():
                (self.root / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, self.root / name)

    def __enter__(self) -> CloneServer:
        started = time.monotonic()
        self._copy()
        self.times["copy_s"] = time.monotonic() - started
        env = {k: v for k, v in os.environ.items() if not k.startswith("LORAFORGE_")}
        env.update(
            LORAFORGE_DATA_DIR=str(self.data_dir), LORAFORGE_PORT=str(self.port),
            LORAFORGE_ADMIN_USERNAME=ADMIN[0], LORAFORGE_ADMIN_PASSWORD=ADMIN[1], HF_HUB_OFFLINE="1",
            PYTHONUNBUFFERED="1",
        )  # fmt: skip
        started = time.monotonic()
        # A session of its own: the server and everything it starts are stopped together, by group id.
        self.process = subprocess.Popen(
            ["make", "run"], cwd=self.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        threading.Thread(target=self._read_log, args=(started,), daemon=True).start()
        while time.monotonic() - started < START_TIMEOUT_S:
            if self.process.poll() is not None:
                raise RuntimeError(f"make run exited: {self.process.returncode}; see {self.data_dir}/run.log")
            try:
                if self.http.get("/api/health").status_code == 200:
                    self.times["make_run_until_healthy_s"] = time.monotonic() - started
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"not healthy after {START_TIMEOUT_S} s")

    def _read_log(self, started: float) -> None:
        assert self.process is not None and self.process.stdout is not None
        with (self.data_dir / "run.log").open("wb") as log:
            for line in self.process.stdout:
                log.write(line)
                if b"[setup] ready" in line:
                    self.times["setup_s"] = time.monotonic() - started

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.http.close()


def first_run(server: LiveServer) -> dict[str, Any]:
    """Register, one click, wait for success, ask the produced model; times per phase."""
    times: dict[str, Any] = {}
    started = time.monotonic()
    headers = server.user("first_user")
    times["register_s"] = time.monotonic() - started

    started = time.monotonic()
    response = server.http.post("/api/jobs/demo", headers=headers)
    response.raise_for_status()
    job = server.wait_final(headers, int(response.json()["id"]), timeout=1200)
    times["train_s"] = time.monotonic() - started
    if job["status"] != "succeeded":
        raise RuntimeError(f"the demo job ended {job['status']}: {job['error']}")
    models = server.http.get("/api/models", params={"job_id": job["id"]}, headers=headers).json()["items"]

    started = time.monotonic()
    ask = {"model": models[0]["name"], "messages": [{"role": "user", "content": QUESTION}], "temperature": 0}
    chat = server.http.post("/v1/chat/completions", json=ask, headers=headers, timeout=300)
    chat.raise_for_status()
    times["first_answer_s"] = time.monotonic() - started
    answer = chat.json()["choices"][0]["message"]["content"]
    return {**times, "model": models[0]["name"], "answer": answer, "answer_ok": "LoRAForge" in answer}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worktree", action="store_true", help="copy the working tree, not HEAD")
    parser.add_argument("--current", action="store_true", help="only register → train → chat, this checkout")
    parser.add_argument("--keep", action="store_true", help="keep the copy (venv included) afterwards")
    args = parser.parse_args()
    result: dict[str, Any] = {"cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg()[0]}
    total = time.monotonic()
    if args.current:
        with LiveServer() as server:
            result.update(first_run(server))
    else:
        root = Path(tempfile.mkdtemp(prefix="loraforge-first-run-"))
        try:
            with CloneServer(root, worktree=args.worktree) as server:
                result.update(server.times)
                result.update(first_run(server))
        finally:
            if not args.keep:
                shutil.rmtree(root, ignore_errors=True)
    result["total_s"] = time.monotonic() - total
    result["load_avg_at_end"] = os.getloadavg()[0]
    print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in result.items()}, indent=2))
    return 0 if result["answer_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

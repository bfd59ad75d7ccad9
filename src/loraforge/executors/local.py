"""The local executor: the engine as a child process in its own session (process group).

Its stdout and stderr go straight to `RUN_DIR/engine.log`, not through pipes, so a server crash
neither kills nor blocks a run, and a restarted server finds the process again by PID + start time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import psutil

from loraforge.executors.base import LOG_FILE, EngineLogReader, ProcessRef, ProcessState

# Start times from psutil are rounded differently across calls on some systems.
_START_TIME_TOLERANCE_S = 0.05


class LocalExecutor(EngineLogReader):
    """The engine writes engine.log itself; `stream_lines` reads it."""

    name = "local"

    def __init__(self) -> None:
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def launch(
        self, *, job_id: int, run_dir: Path, env: dict[str, str], num_gpus: int = 0, node: str | None = None
    ) -> ProcessRef:
        # num_gpus: device pinning is the caller's CUDA_VISIBLE_DEVICES in `env` (admission picks them).
        # node: there is one, this host.
        argv = [sys.executable, "-m", "loraforge.engine", "run", str(run_dir)]
        with (run_dir / LOG_FILE).open("ab") as log:
            process = subprocess.Popen(  # an argument list, never a shell
                argv,
                cwd=run_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        try:
            started_at = psutil.Process(process.pid).create_time()
        except psutil.Error:
            started_at = 0.0
        with self._lock:
            self._children[process.pid] = process
        return ProcessRef(pid=process.pid, started_at=started_at)

    def _same_process(self, ref: ProcessRef) -> bool:
        try:
            proc = psutil.Process(ref.pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return False
            return abs(proc.create_time() - ref.started_at) <= _START_TIME_TOLERANCE_S
        except psutil.Error:
            return False

    def _signal_group(self, ref: ProcessRef, sig: signal.Signals) -> None:
        if not self._same_process(ref):
            return  # gone, or the PID now belongs to another program: never signal that
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(ref.pid, sig)  # start_new_session: the group id is the engine's PID

    def stop(self, ref: ProcessRef) -> None:
        self._signal_group(ref, signal.SIGTERM)

    def cancel(self, ref: ProcessRef) -> None:
        self._signal_group(ref, signal.SIGKILL)
        with self._lock:
            child = self._children.pop(ref.pid, None)
        if child is not None:  # nobody watches a cancelled job: reap it here so no zombie stays
            threading.Thread(target=child.wait, name=f"reap-{ref.pid}", daemon=True).start()

    def state(self, ref: ProcessRef) -> ProcessState:
        with self._lock:
            child = self._children.get(ref.pid)
        if child is not None:
            code = child.poll()  # reaps our own child, so it never lingers as a zombie
            if code is None:
                return ProcessState(alive=True)
            with self._lock:
                self._children.pop(ref.pid, None)
            return ProcessState(alive=False, returncode=code)
        if self._same_process(ref):
            return ProcessState(alive=True)
        return ProcessState(alive=False, returncode=self._reap(ref.pid))

    @staticmethod
    def _reap(pid: int) -> int | None:
        """The exit code of a child of this process that we lost track of; None otherwise."""
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if got != pid:
            return None
        return os.waitstatus_to_exitcode(status)

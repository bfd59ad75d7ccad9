"""The Ray executor: the engine entrypoint submitted through the Ray Jobs API (`LORAFORGE_EXECUTOR=ray`).

- launch: `cd RUN_DIR && exec python -m loraforge.engine run RUN_DIR` (the server's own interpreter, quoted
  with `shlex`; Ray runs entrypoints through a shell, and nothing in it comes from user text: RUN_DIR is
  built from the job id) with `entrypoint_num_gpus`, pinned to the node placement chose (a label
  selector on `ray.io/node-id`; `services.jobs.placement`), only the environment variables the engine needs
  (not the server's, which holds secrets), and a submission id `loraforge-<job id>-<random>`.
- The run directory must be the same path on the Ray nodes (a shared filesystem on a real cluster): the
  engine reads spec.json and writes events.jsonl, checkpoints and outputs there as it does locally.
- The engine's stdout/stderr are Ray's job logs. A daemon thread per running job mirrors them into
  `RUN_DIR/engine.log` (appending only the new part), so the log endpoints and failure diagnoses work
  as with the local executor. `state()` restarts the mirror after a server restart and does a last,
  synchronous sync once Ray reports the job finished, before the scheduler reads the log tail.
- stop and cancel are both `stop_job`: Ray sends SIGTERM to the entrypoint's process tree (the engine
  checkpoints and reports `cancelled`; a stopping job becomes `stopped`) and SIGKILL after
  `RAY_JOB_STOP_WAIT_TIME_S`, which we set per job to `LORAFORGE_JOB_STOP_TIMEOUT_SECONDS`. Ray has no
  immediate kill; a cancelled job is `cancelled` in the database at once and its process ends within
  that bound.
- Every HTTP call has a timeout, and after a connection failure calls fail fast for a few seconds, so an
  unreachable Ray never hangs the scheduler: launching fails with `launch_failed` and a readable message.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import secrets
import shlex
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loraforge.executors.base import LOG_FILE, EngineLogReader, ProcessRef, ProcessState
from loraforge.settings import Settings

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

logger = logging.getLogger("loraforge.executors.ray")

REQUEST_TIMEOUT_S = 10.0  # per HTTP call to the Jobs API
UNREACHABLE_BACKOFF_S = 5.0  # after a connection failure, fail fast this long
MIRROR_INTERVAL_S = 1.0  # log mirror polling; grows with the log's size (Ray returns the whole log)
_ALIVE = {"PENDING", "RUNNING"}
# The label Ray (2.60) gives every node, holding its node id (`ray._raylet.RAY_NODE_ID_KEY`).
NODE_ID_LABEL = "ray.io/node-id"

# What the engine reads from its environment (engine/*.py, torch, Hugging Face). Tokens are left out on
# purpose: runtime_env variables are visible in Ray's dashboard; give the Ray nodes their own credentials.
ENGINE_ENV = frozenset({
    "PYTHONUNBUFFERED", "LORAFORGE_DATA_CACHE", "LORAFORGE_MODEL_CACHE", "LORAFORGE_MODEL_HUB",
    "LORAFORGE_CANCEL_GRACE_S", "LORAFORGE_NPROC", "HF_HOME", "HF_HUB_CACHE", "HF_ENDPOINT",
    "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "MODELSCOPE_CACHE",
    "TOKENIZERS_PARALLELISM", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "PYTORCH_CUDA_ALLOC_CONF",
})  # fmt: skip


class RayUnavailable(RuntimeError):
    """The Ray Jobs API could not be reached or is not usable (the message says why, for people)."""


def engine_env(env: dict[str, str], *, num_gpus: int, stop_wait_s: float) -> dict[str, str]:
    """The runtime_env variables for one engine: the allow-listed ones from `env`, plus Ray's stop grace.

    A job that reserved no GPU sees none (Ray may have given them to another job); with `num_gpus > 0`
    Ray sets CUDA_VISIBLE_DEVICES to the devices it reserved, so ours is not passed.
    """
    out = {key: value for key, value in env.items() if key in ENGINE_ENV}
    out["PYTHONUNBUFFERED"] = "1"
    if num_gpus <= 0:
        out["CUDA_VISIBLE_DEVICES"] = ""
    # Read by Ray's job supervisor (which gets the runtime_env too): SIGTERM, then SIGKILL after this.
    out["RAY_JOB_STOP_WAIT_TIME_S"] = str(max(1, math.ceil(stop_wait_s)))
    return out


def entrypoint(run_dir: Path) -> str:
    """The shell command Ray runs: the engine in the run directory, as the local executor runs it."""
    argv = [sys.executable, "-m", "loraforge.engine", "run", str(run_dir)]
    return f"{shlex.join(['cd', str(run_dir)])} && exec {shlex.join(argv)}"


def _returncode(status: str, driver_exit_code: int | None) -> int | None:
    if status == "SUCCEEDED":
        return 0
    if status == "STOPPED":
        return -15  # stop_job: SIGTERM (then SIGKILL); the engine's own final event says more
    if status == "FAILED":
        return driver_exit_code if driver_exit_code not in (None, 0) else 1
    return None


class _LogMirror:
    """Appends the new part of one Ray job's log to RUN_DIR/engine.log.

    Byte k of the job's Ray log is byte `base + k` of engine.log (`base`: the file's size when this
    submission was launched; a resumed job appends to the same file). Until the job ends only complete
    lines are appended; the last sync takes everything.
    """

    def __init__(self, executor: RayExecutor, submission_id: str, run_dir: Path, base: int) -> None:
        self.executor = executor
        self.submission_id = submission_id
        self.run_dir = run_dir
        self.base = base
        self.lock = threading.Lock()
        self.finished = False
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name=f"ray-log-{self.submission_id}", daemon=True)
        self.thread.start()

    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _run(self) -> None:
        interval = MIRROR_INTERVAL_S
        while not self.finished:
            try:
                status = self.executor.job_status(self.submission_id)
                size = self.sync(final=status is None or status not in _ALIVE)
                interval = min(10.0, MIRROR_INTERVAL_S + size / 4_000_000)
            except RayUnavailable as exc:
                logger.warning("mirroring the log of %s: %s", self.submission_id, exc)
                interval = min(30.0, interval * 2)
            except Exception:
                logger.exception("mirroring the log of %s failed", self.submission_id)
                interval = min(30.0, interval * 2)
            if not self.finished:
                time.sleep(interval)
        self.executor._drop_mirror(self.submission_id)

    def sync(self, *, final: bool) -> int:
        """Fetch the job's log and append what engine.log lacks; returns the log's size in bytes."""
        with self.lock:
            if self.finished:
                return 0
            text = self.executor.job_logs(self.submission_id)
            data = text.encode("utf-8", errors="replace")
            if not final:
                data = data[: data.rfind(b"\n") + 1]  # a torn last line waits for the next sync
            with (self.run_dir / LOG_FILE).open("ab") as fh:
                # Exclusive while we compare and append: another server's mirror of the same job (replicas).
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
                size = os.fstat(fh.fileno()).st_size
                if size < self.base:  # removed or truncated meanwhile: it mirrors from the beginning now
                    self.base = 0
                have = size - self.base
                if len(data) > have:
                    fh.write(data[have:])
            if final:
                self.finished = True
            return len(data)


class RayExecutor(EngineLogReader):
    """`stream_lines` reads the mirrored engine.log (kept within about a second of Ray's log by the
    mirror thread)."""

    name = "ray"

    def __init__(self, settings: Settings) -> None:
        self.address = settings.ray_address.strip().rstrip("/")
        self.runs_dir = settings.runs_dir
        self.stop_wait_s = settings.job_stop_timeout_seconds
        self._client: JobSubmissionClient | None = None
        self._client_lock = threading.Lock()
        self._unreachable_until = 0.0
        self._last_error = ""
        self._mirrors: dict[str, _LogMirror] = {}
        self._mirrors_lock = threading.Lock()

    # ---- the Jobs API, with timeouts -------------------------------------------------------------

    def _connect(self) -> JobSubmissionClient:
        with self._client_lock:
            if self._client is not None:
                return self._client
            if not self.address:
                raise RayUnavailable(
                    "LORAFORGE_RAY_ADDRESS is not set (the Ray dashboard URL, e.g. http://host:8265)"
                )
            if time.monotonic() < self._unreachable_until:
                raise RayUnavailable(self._last_error)
            try:
                from ray.job_submission import JobSubmissionClient
            except ImportError as exc:  # the server was installed without the extra
                hint = "Ray is not installed on the server: pip install 'loraforge[ray]'"
                raise RayUnavailable(hint) from exc

            class _Client(JobSubmissionClient):
                """Ray's SDK sends its requests without a timeout; an unreachable head would hang us."""

                def _do_request(self, method: str, endpoint: str, **kwargs: Any) -> Any:
                    kwargs.setdefault("timeout", REQUEST_TIMEOUT_S)
                    return super()._do_request(method, endpoint, **kwargs)

            try:
                self._client = _Client(self.address)
            except Exception as exc:
                raise self._unreachable(exc) from exc
            return self._client

    def _unreachable(self, exc: BaseException) -> RayUnavailable:
        self._last_error = f"cannot reach the Ray Jobs API at {self.address}: {exc}"
        self._unreachable_until = time.monotonic() + UNREACHABLE_BACKOFF_S
        return RayUnavailable(self._last_error)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import requests  # a dependency of ray[default]

        client = self._connect()
        try:
            return fn(client, *args, **kwargs)
        except requests.exceptions.RequestException as exc:
            with self._client_lock:
                self._client = None  # reconnect (and re-check the version) next time
                raise self._unreachable(exc) from exc
        except RuntimeError as exc:  # the SDK's "Request failed with status code N: ..."
            raise RayUnavailable(f"Ray refused to {what}: {exc}") from exc

    def _job_info(self, submission_id: str) -> Any | None:
        """Ray's JobDetails, or None when Ray does not know the job (e.g. the cluster was recreated)."""
        try:
            return self._call("report the job", lambda c: c.get_job_info(submission_id))
        except RayUnavailable as exc:
            if "status code 404" in str(exc):
                return None
            raise

    def job_status(self, submission_id: str) -> str | None:
        info = self._job_info(submission_id)
        return None if info is None else str(getattr(info.status, "value", info.status))

    def job_logs(self, submission_id: str) -> str:
        try:
            return str(self._call("send the job's log", lambda c: c.get_job_logs(submission_id)))
        except RayUnavailable as exc:
            if "status code 404" in str(exc):
                return ""
            raise

    # ---- the Protocol ----------------------------------------------------------------------------

    def launch(
        self, *, job_id: int, run_dir: Path, env: dict[str, str], num_gpus: int = 0, node: str | None = None
    ) -> ProcessRef:
        submission_id = f"loraforge-{int(job_id)}-{secrets.token_hex(4)}"
        # Pinned to the node placement chose through the label every Ray node carries; unpinned, Ray
        # runs a job that asks for no GPU on the head node.
        selector = {NODE_ID_LABEL: node} if node else None
        log = run_dir / LOG_FILE
        base = log.stat().st_size if log.exists() else 0
        variables = engine_env(env, num_gpus=num_gpus, stop_wait_s=self.stop_wait_s)
        try:
            self._call(
                "accept the job",
                lambda c: c.submit_job(
                    entrypoint=entrypoint(run_dir),
                    submission_id=submission_id,
                    runtime_env={"env_vars": variables},
                    entrypoint_num_gpus=num_gpus,
                    entrypoint_label_selector=selector,
                    metadata={
                        "loraforge_job_id": str(int(job_id)),
                        "loraforge_run_dir": str(run_dir),
                        "loraforge_log_base": str(base),
                    },
                ),
            )
        except RayUnavailable:
            # A timed-out submission may still have been accepted: do not leave it running unseen.
            try:
                self._call("stop the job", lambda c: c.stop_job(submission_id))
            except Exception as exc:
                logger.debug("stopping the unconfirmed submission %s: %s", submission_id, exc)
            raise
        self._start_mirror(submission_id, run_dir, base)
        return ProcessRef(pid=0, started_at=time.time(), external_id=submission_id)

    def submit_driver(
        self, *, submission_id: str, entrypoint: str, env: dict[str, str], metadata: dict[str, str]
    ) -> None:
        """Submit a job of the server's own (not an engine: the Ray telemetry agent), run where Ray
        runs a job that asks for nothing (the head node). Raises RayUnavailable."""
        self._call(
            "accept the job",
            lambda c: c.submit_job(
                entrypoint=entrypoint,
                submission_id=submission_id,
                runtime_env={"env_vars": env},
                metadata=metadata,
            ),
        )

    def _stop(self, ref: ProcessRef) -> None:
        if not ref.external_id:
            return
        try:
            self._call("stop the job", lambda c: c.stop_job(ref.external_id))
        except RayUnavailable as exc:  # the request that asked already changed the job; never a 500 here
            logger.warning("stopping Ray job %s: %s", ref.external_id, exc)

    def stop(self, ref: ProcessRef) -> None:
        self._stop(ref)

    def cancel(self, ref: ProcessRef) -> None:
        self._stop(ref)  # Ray has no immediate kill: SIGTERM, SIGKILL after RAY_JOB_STOP_WAIT_TIME_S

    def state(self, ref: ProcessRef) -> ProcessState:
        """Ray's status of the submission (PENDING/RUNNING: alive). Also restarts the log mirror after a
        server restart, and syncs the log one last time when the job has ended."""
        if not ref.external_id:
            return ProcessState(alive=False)
        info = self._job_info(ref.external_id)
        if info is None:
            self._drop_mirror(ref.external_id)
            return ProcessState(alive=False)
        status = str(getattr(info.status, "value", info.status))
        mirror = self._mirror_for(ref.external_id, info)
        if status in _ALIVE:
            if mirror is not None and not mirror.alive() and not mirror.finished:
                mirror.start()
            return ProcessState(alive=True)
        if mirror is not None:
            mirror.sync(final=True)
            self._note_ray_failure(mirror.run_dir, status, info)
            self._drop_mirror(ref.external_id)
        return ProcessState(alive=False, returncode=_returncode(status, info.driver_exit_code))

    # ---- log mirrors -----------------------------------------------------------------------------

    def _start_mirror(self, submission_id: str, run_dir: Path, base: int) -> None:
        mirror = _LogMirror(self, submission_id, run_dir, base)
        with self._mirrors_lock:
            self._mirrors[submission_id] = mirror
        mirror.start()

    def _mirror_for(self, submission_id: str, info: Any) -> _LogMirror | None:
        """This process's mirror of the job, or a new (unstarted) one from the job's metadata."""
        with self._mirrors_lock:
            mirror = self._mirrors.get(submission_id)
            if mirror is not None:
                return mirror
            metadata = dict(getattr(info, "metadata", None) or {})
            run_dir = self._contained_run_dir(metadata.get("loraforge_run_dir"))
            if run_dir is None:
                return None
            try:
                base = max(0, int(metadata.get("loraforge_log_base", "0")))
            except ValueError:
                base = 0
            mirror = _LogMirror(self, submission_id, run_dir, base)
            self._mirrors[submission_id] = mirror
            return mirror

    def _contained_run_dir(self, value: str | None) -> Path | None:
        """The run directory named in a job's metadata, only if it lies under our runs directory."""
        if not value:
            return None
        path = Path(value).resolve()
        if not path.is_relative_to(self.runs_dir.resolve()) or not path.is_dir():
            logger.warning("Ray job metadata names a run directory outside %s: %s", self.runs_dir, value)
            return None
        return path

    def _drop_mirror(self, submission_id: str) -> None:
        with self._mirrors_lock:
            mirror = self._mirrors.pop(submission_id, None)
        if mirror is not None:
            mirror.finished = True

    @staticmethod
    def _note_ray_failure(run_dir: Path, status: str, info: Any) -> None:
        """A failure of Ray's own (runtime env setup, a lost node) is not in the engine's output: add
        Ray's message to engine.log once, so the failure diagnosis shows it."""
        error_type = str(getattr(info, "error_type", "") or "")
        message = str(getattr(info, "message", "") or "").strip()
        if status != "FAILED" or not message or error_type == "JOB_ENTRYPOINT_COMMAND_ERROR":
            return
        line = f"[ray] job {status}: {message.splitlines()[0][:2000]}\n".encode()
        path = run_dir / LOG_FILE
        try:
            with path.open("rb") as fh:
                fh.seek(max(0, fh.seek(0, 2) - 8192))
                if line in fh.read():
                    return
        except FileNotFoundError:
            pass
        with path.open("ab") as fh:
            fh.write(line)

"""Executors without a server: reading the engine's output from byte offsets, and what the Ray executor
hands to Ray (the entrypoint and the environment)."""

from __future__ import annotations

import shlex
import socket
import sys
from pathlib import Path

import pytest

from loraforge.executors import make_executor
from loraforge.executors.base import LOG_FILE, LogChunk
from loraforge.executors.local import LocalExecutor
from loraforge.executors.ray import RayExecutor, engine_env, entrypoint
from loraforge.settings import Settings


def _write(run_dir: Path, data: bytes) -> None:
    with (run_dir / LOG_FILE).open("ab") as fh:
        fh.write(data)


def test_local_stream_lines_follows_the_log_from_offsets(tmp_path: Path):
    executor = LocalExecutor()
    assert executor.stream_lines(tmp_path) == LogChunk(lines=[], offset=0)  # no log yet

    _write(tmp_path, b"loading model\nstep 1 loss=2.0\nstep 2")
    first = executor.stream_lines(tmp_path, 0)
    assert first.lines == ["loading model", "step 1 loss=2.0"]  # the torn last line waits
    assert first.offset == len(b"loading model\nstep 1 loss=2.0\n") and not first.reset
    assert executor.stream_lines(tmp_path, first.offset).lines == []

    _write(tmp_path, " loss=1.5\nénd\n".encode())
    second = executor.stream_lines(tmp_path, first.offset)
    assert second.lines == ["step 2 loss=1.5", "énd"]
    assert second.offset == (tmp_path / LOG_FILE).stat().st_size


def test_local_stream_lines_in_chunks_long_lines_and_a_replaced_file(tmp_path: Path):
    executor = LocalExecutor()
    _write(tmp_path, b"".join(f"line {i}\n".encode() for i in range(100)))
    seen: list[str] = []
    offset = 0
    while True:
        chunk = executor.stream_lines(tmp_path, offset, max_bytes=64)
        if not chunk.lines:
            break
        seen += chunk.lines
        offset = chunk.offset
    assert seen == [f"line {i}" for i in range(100)]

    (tmp_path / LOG_FILE).write_bytes(b"x" * 200)  # one line longer than a chunk: handed out in pieces
    piece = executor.stream_lines(tmp_path, 0, max_bytes=64)
    assert piece.lines == ["x" * 64] and piece.offset == 64

    (tmp_path / LOG_FILE).write_bytes(b"new\n")  # replaced by a shorter file: start again at 0
    again = executor.stream_lines(tmp_path, 500)
    assert again == LogChunk(lines=["new"], offset=4, reset=True)

    (tmp_path / LOG_FILE).write_bytes(b"bad \xff byte\n")
    assert executor.stream_lines(tmp_path).lines == ["bad \ufffd byte"]


def test_ray_engine_env_passes_only_what_the_engine_needs():
    server_env = {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "LORAFORGE_JWT_SECRET": "secret",
        "LORAFORGE_DATABASE_URL": "postgresql://u:pw@db/x",
        "HF_TOKEN": "hf_secret",
        "LORAFORGE_DATA_CACHE": "/data/cache/data",
        "HF_HOME": "/data/hf",
        "CUDA_VISIBLE_DEVICES": "0,1",
    }
    cpu = engine_env(server_env, num_gpus=0, stop_wait_s=179.5)
    assert cpu == {
        "LORAFORGE_DATA_CACHE": "/data/cache/data",
        "HF_HOME": "/data/hf",
        "PYTHONUNBUFFERED": "1",
        "CUDA_VISIBLE_DEVICES": "",  # reserved no GPU: sees none
        "RAY_JOB_STOP_WAIT_TIME_S": "180",
    }
    gpu = engine_env(server_env, num_gpus=2, stop_wait_s=30)
    assert "CUDA_VISIBLE_DEVICES" not in gpu  # Ray sets it to the devices it reserved


def test_ray_entrypoint_is_the_engine_command_quoted_for_the_shell(tmp_path: Path):
    run_dir = tmp_path / "runs with space" / "7"
    command = entrypoint(run_dir)
    assert shlex.split(command) == [
        "cd", str(run_dir), "&&", "exec", sys.executable, "-m", "loraforge.engine", "run", str(run_dir),
    ]  # fmt: skip


def test_make_executor_picks_by_setting_and_ray_needs_no_cluster_to_construct(tmp_path: Path):
    local = make_executor(Settings(data_dir=tmp_path))
    assert local.name == "local"
    ray = make_executor(Settings(data_dir=tmp_path, executor="ray", ray_address="http://127.0.0.1:1"))
    assert isinstance(ray, RayExecutor) and ray.name == "ray"


def test_ray_without_an_address_fails_the_launch_with_a_readable_message(tmp_path: Path):
    executor = RayExecutor(Settings(data_dir=tmp_path, executor="ray", ray_address=""))
    with pytest.raises(RuntimeError, match="LORAFORGE_RAY_ADDRESS is not set"):
        executor.launch(job_id=1, run_dir=tmp_path, env={})


def test_ray_launch_against_a_silent_address_times_out_instead_of_hanging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import loraforge.executors.ray as ray_executor

    monkeypatch.setattr(ray_executor, "REQUEST_TIMEOUT_S", 0.5)
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = f"http://127.0.0.1:{silent.getsockname()[1]}"
        executor = RayExecutor(Settings(data_dir=tmp_path, executor="ray", ray_address=address))
        with pytest.raises(ray_executor.RayUnavailable, match=f"cannot reach the Ray Jobs API at {address}"):
            executor.launch(job_id=1, run_dir=tmp_path, env={})
        # Right after a failure the executor fails fast rather than waiting on the address again.
        with pytest.raises(ray_executor.RayUnavailable, match="cannot reach"):
            executor.state(ray_executor.ProcessRef(pid=0, started_at=0.0, external_id="loraforge-1-x"))

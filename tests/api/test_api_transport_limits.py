"""Slow and oversized requests against the real `loraforge serve` on 127.0.0.1, through raw sockets.

The server runs with one-second deadlines for the request head and the request body (settings
from the environment, like any deployment), so each slow client is answered or dropped within a
few seconds; every socket read here has its own bounded timeout, so a server that never answers
fails the test instead of hanging it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HEAD_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 10.0  # well above the deadlines, well below "never"
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Served:
    port: int
    data_dir: Path


def _loraforge() -> list[str]:
    script = Path(sys.executable).parent / "loraforge"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "loraforge"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("serve") / "data"
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("LORAFORGE_")}
    env.update(
        LORAFORGE_DATA_DIR=str(data_dir),
        LORAFORGE_ADMIN_PASSWORD="transport-admin-password",
        LORAFORGE_SCHEDULER_ENABLED="false",
        LORAFORGE_LOG_LEVEL="warning",
        LORAFORGE_REQUEST_HEADER_TIMEOUT_SECONDS=str(HEAD_TIMEOUT_S),
        LORAFORGE_REQUEST_BODY_TIMEOUT_SECONDS=str(BODY_TIMEOUT_S),
    )
    log = (data_dir.parent / "serve.log").open("wb")
    process = subprocess.Popen(
        [*_loraforge(), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (data_dir.parent / "serve.log").read_text(errors="replace")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "loraforge serve did not start in 60 s"
                time.sleep(0.2)
        yield Served(port=port, data_dir=data_dir)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        log.close()


def _connect(served: Served) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=READ_TIMEOUT_S)
    return sock


def _read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took.
    A read that times out means the server kept the connection open: the test fails."""
    started = time.monotonic()
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            pytest.fail(f"the server kept the connection open for {READ_TIMEOUT_S:.0f} s; got {received!r}")
        except ConnectionResetError:
            return received, time.monotonic() - started
        if not chunk:
            return received, time.monotonic() - started
        received += chunk


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def test_a_request_head_that_never_ends_is_answered_408_and_closed(served: Served) -> None:
    with _connect(served) as sock:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # and nothing more
        response, took = _read_until_closed(sock)
    assert _status(response) == 408 and took < HEAD_TIMEOUT_S + 3


def test_a_header_line_now_and_then_does_not_keep_the_connection(served: Served) -> None:
    with _connect(served) as sock:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        for i in range(6):  # each line well inside the deadline, the head as a whole not
            time.sleep(HEAD_TIMEOUT_S / 3)
            try:
                sock.sendall(f"X-Drip-{i}: 1\r\n".encode())
            except OSError:
                break  # closed by the server: what this test wants
        response, _ = _read_until_closed(sock)
    assert _status(response) == 408 and time.monotonic() - started < HEAD_TIMEOUT_S + 4


def test_a_connection_that_sends_nothing_is_closed(served: Served) -> None:
    with _connect(served) as sock:
        response, took = _read_until_closed(sock)
    assert response == b"" and took < HEAD_TIMEOUT_S + 3


def test_an_endless_head_gets_431(served: Served) -> None:
    with _connect(served) as sock:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        try:
            for _ in range(40):  # 40 x 4 KiB of headers: more than the 64 KiB a head may have
                sock.sendall(b"X-Big: " + b"a" * 4096 + b"\r\n")
        except OSError:
            pass  # the server may close while we still send
        response, _ = _read_until_closed(sock)
    assert _status(response) == 431


def test_a_body_that_does_not_arrive_is_answered_408_in_the_error_shape(served: Served) -> None:
    with _connect(served) as sock:
        sock.sendall(
            b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 60000\r\n\r\n" + b'{"user'  # 6 of the 60,000 bytes declared
        )
        response, took = _read_until_closed(sock)
    head, _, body = response.partition(b"\r\n\r\n")
    assert _status(response) == 408 and took < BODY_TIMEOUT_S + 3
    assert b"connection: close" in head.lower()
    error = json.loads(body)["error"]
    assert error["code"] == "request_timeout" and error["details"] == []
    assert "arrived too slowly (budget: 1 s" in error["message"]


def test_ordinary_clients_are_unaffected(served: Served) -> None:
    """Keep-alive requests and a head sent in pieces (inside the deadline) are answered as before."""
    with _connect(served) as sock:
        for _ in range(3):
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            time.sleep(HEAD_TIMEOUT_S / 4)
            sock.sendall(b"Accept: application/json\r\n\r\n")
            response = b""
            while b'"database"' not in response:
                chunk = sock.recv(65536)
                assert chunk, response
                response += chunk
            assert _status(response) == 200
        # A streamed body that arrives in time is read in full.
        body = json.dumps({"username_or_email": "nobody", "password": "x" * 20}).encode()
        sock.sendall(
            b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body[:10]
        )
        time.sleep(BODY_TIMEOUT_S / 3)
        sock.sendall(body[10:])
        response, _ = _read_until_closed(sock)
    assert _status(response) == 401


def test_the_database_the_server_created_is_owner_only(served: Served) -> None:
    database = served.data_dir / "loraforge.db"
    present = [p for p in (database, Path(f"{database}-wal"), Path(f"{database}-shm")) if p.exists()]
    assert database in present
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in present} == {p.name: 0o600 for p in present}

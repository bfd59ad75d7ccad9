"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, a free port, in a thread of the test process.

    with SmtpServer() as smtp:
        settings = settings.model_copy(update=smtp.settings())
        ...
        message = smtp.wait_for(lambda m: "reset" in m.subject)

Plain SMTP without TLS or login (the settings it gives turn STARTTLS off). Every message received is
kept, parsed, in `messages`; `links(message)` finds the http(s) links in its body. The server stops
when the `with` block ends (the browser tests use it the same way).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

_LINK = re.compile(r"https?://[^\s<>\"]+")


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    @property
    def body(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""  # type: ignore[no-any-return]

    def links(self) -> list[str]:
        return _LINK.findall(self.body)


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.server.lock:
            self.server.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpServer:
    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.lock = threading.Lock()
        self.port = _free_port()
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)

    def settings(self, **extra: Any) -> dict[str, Any]:
        """`Settings` fields that send LoRAForge's mail here."""
        return {"smtp_host": "127.0.0.1", "smtp_port": self.port, "smtp_starttls": False,
                "smtp_timeout_seconds": 5.0, **extra}  # fmt: skip

    def env(self) -> dict[str, str]:
        """The same as LORAFORGE_* environment variables (for a server in a subprocess)."""
        return {"LORAFORGE_SMTP_HOST": "127.0.0.1", "LORAFORGE_SMTP_PORT": str(self.port),
                "LORAFORGE_SMTP_STARTTLS": "false", "LORAFORGE_SMTP_TIMEOUT_SECONDS": "5"}  # fmt: skip

    def received(self) -> list[Received]:
        with self.lock:
            return list(self.messages)

    def wait_for(self, predicate: Callable[[Received], bool], timeout: float = 20.0) -> Received:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.received():
                if predicate(message):
                    return message
            time.sleep(0.05)
        subjects = [m.subject for m in self.received()]
        raise AssertionError(f"no matching mail within {timeout}s; received: {subjects}")

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

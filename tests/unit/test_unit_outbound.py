"""The outbound policy's mechanism: address classification, the allow-list, and the transports that
check every connection when it is made (DNS rebinding), against a real loopback HTTP server."""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from loraforge.errors import InvalidInput
from loraforge.services.platform import outbound
from loraforge.services.platform.outbound_transport import AsyncGuardedTransport, GuardedTransport

LOOPBACK = ipaddress.ip_address("127.0.0.1")
PUBLIC = ipaddress.ip_address("93.184.215.14")


class Target:
    """A loopback HTTP server that records (path, Host header) of every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                target.requests.append((self.path, self.headers.get("Host")))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def target() -> Iterator[Target]:
    server = Target()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.mark.parametrize(
    ("address", "internal"),
    [
        ("127.0.0.1", True),
        ("127.255.0.9", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", True),  # noqa: S104
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.0.1", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),
        ("224.0.0.1", True),
        ("240.0.0.1", True),
        ("255.255.255.255", True),
        ("fe80::1", True),
        ("fc00::1", True),
        ("fec0::1", True),
        ("2002:7f00:1::1", True),  # 6to4 around 127.0.0.1
        ("64:ff9b::a00:1", True),  # NAT64 around 10.0.0.1
        ("8.8.8.8", False),
        ("2606:4700:4700::1111", False),
    ],
)
def test_internal_addresses_are_classified(address: str, internal: bool) -> None:
    assert (outbound.internal_reason(ipaddress.ip_address(address)) is not None) is internal


@pytest.mark.parametrize(
    "spelling", ["2130706433", "0x7f000001", "127.1", "017700000001", "::ffff:127.0.0.1"]
)
def test_numeric_spellings_resolve_to_loopback(spelling: str) -> None:
    assert outbound.resolve(spelling, 80) == [LOOPBACK]


def test_allow_list_entries() -> None:
    policy = outbound.build_policy(
        "10.0.0.0/8, 192.168.1.5:8000, [fd00::1]:9000, vllm.internal, models.lan:8443, "
        "::ffff:172.16.0.0/108, bad entry!"
    )
    assert len(policy.allow) == 6  # the malformed entry is left out (allowing less, never more)
    ten = ipaddress.ip_address("10.9.9.9")
    assert policy.refusal("x.example", 1234, ten) is None
    assert policy.refusal("x.example", 8000, ipaddress.ip_address("192.168.1.5")) is None
    assert policy.refusal("x.example", 8001, ipaddress.ip_address("192.168.1.5")) is not None
    assert policy.refusal("x.example", 9000, ipaddress.ip_address("fd00::1")) is None
    assert policy.refusal("VLLM.internal.", 1, ipaddress.ip_address("10.255.0.1")) is None
    assert policy.refusal("models.lan", 8443, LOOPBACK) is None
    assert policy.refusal("models.lan", 8444, LOOPBACK) is not None
    assert policy.refusal("x.example", 80, ipaddress.ip_address("172.16.3.4")) is None
    assert policy.refusal("x.example", 80, ipaddress.ip_address("::ffff:10.0.0.1")) is None
    assert policy.refusal("x.example", 80, PUBLIC) is None


def test_the_servers_own_port_needs_an_entry_naming_it() -> None:
    broad = outbound.build_policy("127.0.0.0/8", host="0.0.0.0", port=8000)  # noqa: S104
    assert broad.refusal("127.0.0.1", 9000, LOOPBACK) is None
    assert broad.refusal("127.0.0.1", 8000, LOOPBACK) == "the server's own address"
    assert broad.refusal("127.0.0.2", 8000, ipaddress.ip_address("127.0.0.2")) == "the server's own address"
    exact = outbound.build_policy("127.0.0.1:8000", host="127.0.0.1", port=8000)
    assert exact.refusal("127.0.0.1", 8000, LOOPBACK) is None


def test_urls_are_parsed_strictly() -> None:
    policy = outbound.OutboundPolicy()
    rules: dict[str, Any] = {"field": "base_url", "allow_query": False, "allow_fragment": False}
    for bad in [
        "http://h.example/v1#",
        "http://h.example/v1?",
        "http://u:p@h.example/",
        "http://h.example\\@127.0.0.1/",
        "http://h.example:70000/",
        "gopher://h.example/",
        "http://h.example/ x",
        "http://[fe80::1%25eth0]/",
    ]:
        with pytest.raises(InvalidInput) as refused:
            outbound.check_url(policy, bad, **rules)
        assert refused.value.fields[0].field == "base_url", bad
    with pytest.raises(outbound.OutboundRefused):
        outbound.check_url(policy, "http://2130706433:80/v1", **rules)
    # Every record counts: one internal address among public ones refuses the name.
    with pytest.raises(outbound.OutboundRefused):
        outbound.check_url(
            policy, "http://mixed.example/v1", **rules, resolver=lambda h, p: [PUBLIC, LOOPBACK]
        )
    assert outbound.check_url(
        policy, " http://public.example/v1 ", **rules, resolver=lambda h, p: [PUBLIC]
    ) == ("http://public.example/v1")
    # A name that resolves nowhere reaches nothing: accepted now, checked again when used.
    assert outbound.check_url(policy, "http://nowhere.invalid/v1", **rules) == "http://nowhere.invalid/v1"


def test_a_name_that_rebinds_to_loopback_is_refused_at_connect_time(target: Target) -> None:
    # The name passed when it was saved (public); when the connection is made it resolves to loopback.
    answers = iter([[PUBLIC], [LOOPBACK]])
    rebinding = outbound.OutboundPolicy()
    url = f"http://rebind.example:{target.port}/v1"
    outbound.check_url(
        rebinding,
        url,
        field="u",
        allow_query=False,
        allow_fragment=False,
        resolver=lambda h, p: next(answers),
    )
    transport = GuardedTransport(rebinding, resolver=lambda h, p: next(answers))
    with httpx.Client(transport=transport) as client, pytest.raises(outbound.OutboundRefused):
        client.get(url + "/models")
    assert target.requests == []


def test_the_connection_goes_to_the_checked_address_and_keeps_the_name(target: Target) -> None:
    policy = outbound.build_policy(f"127.0.0.1:{target.port}")
    with httpx.Client(transport=GuardedTransport(policy, resolver=lambda h, p: [LOOPBACK])) as client:
        assert client.get(f"http://models.example:{target.port}/v1/models").status_code == 200
    assert target.requests == [("/v1/models", f"models.example:{target.port}")]


def test_the_async_transport_checks_too(target: Target) -> None:
    async def run() -> None:
        async with httpx.AsyncClient(transport=AsyncGuardedTransport(outbound.OutboundPolicy())) as client:
            for host in ("127.0.0.1", "127.1", "0x7f000001", "localhost"):
                with pytest.raises(outbound.OutboundRefused):
                    await client.get(f"http://{host}:{target.port}/")
        assert target.requests == []
        allowed = outbound.build_policy("127.0.0.0/8")
        async with httpx.AsyncClient(transport=AsyncGuardedTransport(allowed)) as client:
            assert (await client.get(f"http://127.1:{target.port}/ok")).status_code == 200

    # Its own thread and loop: Playwright's sync API may hold a running loop on the main thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, run()).result()
    assert target.requests == [("/ok", f"127.1:{target.port}")]

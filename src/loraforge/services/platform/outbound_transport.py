"""The outbound policy at connect time: httpx transports whose every new connection obeys an
`outbound.OutboundPolicy`.

The host is resolved, every address checked, and the connection made to a checked address, while the
Host header and TLS SNI keep the name: a DNS answer that changes between a URL's check and its use
(rebinding) cannot redirect the connection. A refusal raises `outbound.OutboundRefused` out of the
request (httpx passes exceptions it does not know through unchanged), so callers can tell "not
allowed" from "unreachable". Environment proxies are not used: through a proxy, only the proxy's
address would be checked.
"""

from __future__ import annotations

from collections.abc import Iterable

import anyio.to_thread
import httpcore
import httpx

from loraforge.services.platform.outbound import IPAddress, OutboundPolicy, Resolver, policy_for, resolve
from loraforge.settings import Settings

_Options = Iterable[httpcore.SOCKET_OPTION]


def _checked(policy: OutboundPolicy, resolver: Resolver, host: str, port: int) -> list[IPAddress]:
    try:
        addresses = resolver(host, port)
    except OSError:
        raise httpcore.ConnectError("the host name does not resolve") from None
    if not addresses:
        raise httpcore.ConnectError("the host name does not resolve")
    policy.check(host, port, addresses, field="url")
    return addresses


class _GuardedBackend(httpcore.NetworkBackend):
    def __init__(self, policy: OutboundPolicy, resolver: Resolver) -> None:
        self._policy, self._resolver = policy, resolver
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: _Options | None = None,
    ) -> httpcore.NetworkStream:
        failure: Exception = httpcore.ConnectError("no address to connect to")
        for address in _checked(self._policy, self._resolver, host, port):
            try:
                return self._inner.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: _Options | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not outbound destinations")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncGuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, policy: OutboundPolicy, resolver: Resolver) -> None:
        self._policy, self._resolver = policy, resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: _Options | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # Resolution blocks (the system resolver): off the event loop.
        addresses = await anyio.to_thread.run_sync(_checked, self._policy, self._resolver, host, port)
        failure: Exception = httpcore.ConnectError("no address to connect to")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options,
                )  # fmt: skip
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: _Options | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not outbound destinations")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=64)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport, every new connection checked by `policy`."""

    def __init__(self, policy: OutboundPolicy, *, resolver: Resolver = resolve) -> None:
        super().__init__(trust_env=False, limits=_LIMITS)
        # httpx takes no network backend of its own, so its pool is rebuilt around the guarded one.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=_LIMITS.max_connections,
            max_keepalive_connections=_LIMITS.max_keepalive_connections,
            keepalive_expiry=_LIMITS.keepalive_expiry,
            network_backend=_GuardedBackend(policy, resolver),
        )


class AsyncGuardedTransport(httpx.AsyncHTTPTransport):
    """The asynchronous `GuardedTransport`."""

    def __init__(self, policy: OutboundPolicy, *, resolver: Resolver = resolve) -> None:
        super().__init__(trust_env=False, limits=_LIMITS)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=_LIMITS.max_connections,
            max_keepalive_connections=_LIMITS.max_keepalive_connections,
            keepalive_expiry=_LIMITS.keepalive_expiry,
            network_backend=_AsyncGuardedBackend(policy, resolver),
        )


def client(settings: Settings, *, timeout: float | httpx.Timeout) -> httpx.Client:
    """A synchronous client whose every connection obeys the settings' policy (no redirects)."""
    transport = GuardedTransport(policy_for(settings))
    return httpx.Client(transport=transport, timeout=timeout, follow_redirects=False, trust_env=False)

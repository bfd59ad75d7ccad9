"""Which reverse proxies are believed about the client's address (`LORAFORGE_TRUSTED_PROXIES`).

One rule for the server and the app: `loraforge serve` gives uvicorn the same list (its proxy
headers are off when the list is empty: uvicorn's own default believes `X-Forwarded-For` from
127.0.0.1, so any local process, or a proxy that passes the header through, could pick the address
that the audit log records and that the login throttle counts), and `client_address` below applies
the rule again for servers started some other way. Only a peer in the list is believed; the client
is then the right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class TrustedProxies:
    """The parsed list: addresses or CIDR networks, `*` for any peer; other entries match literally."""

    entries: tuple[str, ...]
    any_peer: bool = False
    networks: tuple[Network, ...] = field(default=())
    literals: frozenset[str] = field(default=frozenset())

    def __bool__(self) -> bool:
        return bool(self.entries)

    def trusts(self, host: str | None) -> bool:
        if not host:
            return False
        if self.any_peer:
            return True
        try:
            address = ipaddress.ip_address(host.strip().strip("[]"))
        except ValueError:
            return host.strip() in self.literals
        return any(address in network for network in self.networks)


@lru_cache(maxsize=8)
def parse(value: str) -> TrustedProxies:
    """Parse the comma-separated setting; an empty string trusts nobody."""
    entries = tuple(part.strip() for part in value.split(",") if part.strip())
    networks: list[Network] = []
    literals: set[str] = set()
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            literals.add(entry)
    return TrustedProxies(
        entries=entries, any_peer="*" in entries, networks=tuple(networks), literals=frozenset(literals)
    )


def _host_of(entry: str) -> str:
    """The host of one `X-Forwarded-For` entry (`1.2.3.4`, `1.2.3.4:5678`, `[::1]:5678` or `::1`)."""
    entry = entry.strip()
    if entry.startswith("[") and "]" in entry:
        return entry[1 : entry.index("]")]
    if entry.count(":") == 1:
        return entry.split(":", 1)[0]
    return entry


def client_address(peer: str | None, forwarded_for: list[str], trusted: TrustedProxies) -> str:
    """The client's address: the peer, unless the peer is a trusted proxy that says who it forwards."""
    if peer is None:
        return "unknown"
    if not trusted.trusts(peer):
        return peer
    hosts = [_host_of(entry) for header in forwarded_for for entry in header.split(",") if entry.strip()]
    for host in reversed(hosts):
        if not trusted.trusts(host):
            return host[:64]
    return hosts[0][:64] if hosts else peer

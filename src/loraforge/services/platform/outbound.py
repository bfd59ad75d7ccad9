"""The one outbound-URL policy: where a URL that a user supplied (a provider's base URL, a webhook URL)
may make the server connect.

Such URLs make the server send requests on a user's behalf. Without a policy a researcher reaches what
only the server can reach (loopback services, the cloud metadata address, private networks, the
server's own admin API) and learns about it from the answers or the errors.

The rule: an http(s) URL, parsed strictly (no user info; plain ASCII; no `?` or `#` at all where the
caller forbids a query or fragment, so an empty one cannot cut the path the server appends), whose
host resolves (every A and AAAA record; numeric spellings such as `2130706433`, `0x7f000001`, `127.1`
and IPv4-mapped IPv6 resolve like any name) only to public addresses. Loopback, private, link-local,
unspecified, multicast, reserved and shared (CGNAT) addresses, and the machine's own addresses, are
refused unless the destination matches `settings.outbound_allow` (host names, `host:port`, addresses
and CIDR networks, set by the operator). The server's own listening port on its own addresses stays
refused under a broad entry (`127.0.0.0/8` for a local model server must not open the server's own API
to its users); only an entry that names that port opens it.

Checked twice: when a URL is saved (`check_url`: 422 naming the field), and at connect time by the
transports of `outbound_transport`, which connect only to an address that passed the check (DNS
rebinding). A name that does not resolve when it is saved is accepted: it reaches nothing, and the
connect-time check decides when it is used.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

import httpx
import psutil

from loraforge.errors import FieldIssue, InvalidInput
from loraforge.settings import Settings

logger = logging.getLogger("loraforge.outbound")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[IPAddress]]

MAX_URL_LENGTH = 2000
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")
_INTERFACES_TTL_SECONDS = 30.0


class OutboundRefused(InvalidInput):
    """A destination the policy refuses (a 422 naming the URL's field when it surfaces as is)."""

    default_code = "destination_not_allowed"


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", fields=[FieldIssue(field=field, message=message)])


# ---- addresses --------------------------------------------------------------------------------------


def _normal(address: IPAddress) -> IPAddress:
    """IPv4-mapped IPv6 (`::ffff:127.0.0.1`) is the IPv4 address it carries."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a translation prefix (6to4, Teredo, NAT64) would deliver to."""
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def internal_reason(address: IPAddress) -> str | None:
    """Why `address` is not a public destination (None: it is one)."""
    address = _normal(address)
    checks: list[tuple[bool, str]] = [
        (address.is_loopback, "a loopback address"),
        (address.is_unspecified, "an unspecified address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT, "a shared (CGNAT) address"),
        (isinstance(address, ipaddress.IPv6Address) and address.is_site_local, "a site-local address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "a non-public address"),
    ]
    for refused, reason in checks:
        if refused:
            return reason
    if isinstance(address, ipaddress.IPv6Address) and (inner := _embedded_v4(address)) is not None:
        return internal_reason(inner)
    return None


_interfaces_lock = threading.Lock()
_interfaces: tuple[float, frozenset[IPAddress]] = (float("-inf"), frozenset())


def interface_addresses() -> frozenset[IPAddress]:
    """This machine's own addresses (every interface), re-read at most every 30 s."""
    global _interfaces
    with _interfaces_lock:
        read_at, known = _interfaces
        if time.monotonic() - read_at < _INTERFACES_TTL_SECONDS:
            return known
        found: set[IPAddress] = set()
        for addresses in psutil.net_if_addrs().values():
            for item in addresses:
                if item.family in (socket.AF_INET, socket.AF_INET6):
                    try:
                        found.add(_normal(ipaddress.ip_address(item.address.split("%", 1)[0])))
                    except ValueError:
                        continue
        _interfaces = (time.monotonic(), frozenset(found))
        return _interfaces[1]


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (all A and AAAA records), in the resolver's order.

    The system resolver also reads the numeric spellings (`2130706433`, `0x7f000001`, `127.1`,
    `017700000001`), which is why addresses are always checked after resolution, never by pattern.
    Raises OSError when the name does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as exc:
        raise OSError(str(exc)) from None
    found: list[IPAddress] = []
    for *_ignored, sockaddr in infos:
        address = _normal(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]))
        if address not in found:
            found.append(address)
    return found


# ---- the policy -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllowEntry:
    """One `outbound_allow` item: a host name or a network, with an optional port (None: any)."""

    host: str | None
    network: IPNetwork | None
    port: int | None

    def matches(self, host: str, port: int, address: IPAddress | None) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host is not None:
            return _host_key(host) == self.host
        return address is not None and self.network is not None and _normal(address) in self.network


def _host_key(host: str) -> str:
    return host.strip().lower().rstrip(".")


def _port(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise ValueError(f"port out of range: {text}")
    return port


def _network(text: str) -> IPNetwork:
    network = ipaddress.ip_network(text, strict=False)
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:  # `::ffff:10.0.0.1` allows what it carries
            return ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}", strict=False)
    return network


def parse_allow_entry(text: str) -> AllowEntry:
    """`10.0.0.0/8`, `10.0.0.5`, `10.0.0.5:8000`, `[fd00::1]:8000`, `fd00::/8`, `vllm.internal[:8000]`."""
    text = text.strip().lower()
    if not text:
        raise ValueError("empty entry")
    if text.startswith("["):
        inner, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ValueError(f"not an address: {text}")
        return AllowEntry(None, _network(inner), _port(rest[1:]) if rest else None)
    if text.count(":") > 1:  # a bare IPv6 address or network
        return AllowEntry(None, _network(text), None)
    host, _, port_text = text.partition(":")
    port = _port(port_text) if port_text else None
    try:
        return AllowEntry(None, _network(host), port)
    except ValueError:
        pass
    host = _host_key(host)
    if not _HOST_NAME.match(host):
        raise ValueError(f"not a host name, address or network: {text}")
    return AllowEntry(host, None, port)


@dataclass(frozen=True)
class OutboundPolicy:
    """What `outbound_allow` opens, and the server's own listening address to protect."""

    allow: tuple[AllowEntry, ...] = ()
    own_port: int | None = None
    own_addresses: frozenset[IPAddress] = frozenset()

    def refusal(self, host: str, port: int, address: IPAddress) -> str | None:
        """Why connecting to `address` (the host `host`, port `port`) is refused; None: allowed."""
        address = _normal(address)
        matching = [entry for entry in self.allow if entry.matches(host, port, address)]
        # Any loopback address, and 0.0.0.0 (Linux connects it locally), reach this machine too.
        own = (
            address.is_loopback
            or address.is_unspecified
            or address in self.own_addresses
            or address in interface_addresses()
        )
        if own and port == self.own_port:
            if any(entry.port == port for entry in matching):
                return None
            return "the server's own address"
        if matching:
            return None
        if own:
            return internal_reason(address) or "an address of the server itself"
        return internal_reason(address)

    def check(self, host: str, port: int, addresses: Iterable[IPAddress], *, field: str) -> None:
        """Raise OutboundRefused (naming `field`) unless every address is allowed."""
        for address in addresses:
            reason = self.refusal(host, port, address)
            if reason is not None:
                message = (
                    f"not an allowed destination: {host!r} leads to {reason} "
                    "(an administrator can allow it with LORAFORGE_OUTBOUND_ALLOW)"
                )
                issue = FieldIssue(field=field, message=message)
                raise OutboundRefused(f"{field}: {message}", fields=[issue])


def build_policy(allow: str, *, host: str = "", port: int | None = None) -> OutboundPolicy:
    """The policy for an `outbound_allow` text (comma-separated) and the server's `host`/`port`.

    A malformed entry is logged and left out: the policy then allows less, never more.
    """
    entries: list[AllowEntry] = []
    for item in allow.split(","):
        if not item.strip():
            continue
        try:
            entries.append(parse_allow_entry(item))
        except ValueError as exc:
            logger.warning("ignoring the outbound_allow entry %r: %s", item.strip(), exc)
    own: set[IPAddress] = set()
    with contextlib.suppress(ValueError):  # a host name: the interfaces' addresses cover it
        own.add(_normal(ipaddress.ip_address(host)))
    return OutboundPolicy(allow=tuple(entries), own_port=port, own_addresses=frozenset(own))


@lru_cache(maxsize=16)
def _cached_policy(allow: str, host: str, port: int) -> OutboundPolicy:
    return build_policy(allow, host=host, port=port)


def policy_for(settings: Settings) -> OutboundPolicy:
    return _cached_policy(settings.outbound_allow, settings.host, settings.port)


# ---- URLs -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Destination:
    url: str  # as given, stripped
    host: str  # IDNA ASCII, lowercase, IPv6 without brackets: what the connection resolves
    port: int


def parse_url(
    raw: str, *, field: str, allow_query: bool, allow_fragment: bool, credentials_hint: str = ""
) -> Destination:
    """An http(s) URL with a host, checked strictly (InvalidInput naming `field` otherwise)."""
    url = raw.strip()
    if len(url) > MAX_URL_LENGTH:
        raise _invalid(field, f"at most {MAX_URL_LENGTH} characters")
    if any(not 33 <= ord(ch) <= 126 for ch in url) or "\\" in url:
        raise _invalid(field, "must be plain ASCII without spaces, control characters or backslashes")
    # The raw text, not the parsed parts: an empty `?` or `#` parses as no query or fragment, yet it
    # still cuts off the path the server appends (`/models`, `/chat/completions`).
    if not allow_query and "?" in url:
        raise _invalid(field, "must not contain a query ('?')")
    if not allow_fragment and "#" in url:
        raise _invalid(field, "must not contain a fragment ('#')")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise _invalid(field, "not a valid URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        raise _invalid(field, "must be an http:// or https:// URL with a host")
    if parsed.userinfo or "@" in url.split("//", 1)[-1].split("/", 1)[0]:
        raise _invalid(field, f"must not contain a user name or password{credentials_hint}")
    port = parsed.port if parsed.port is not None else (443 if parsed.scheme == "https" else 80)
    if not 1 <= port <= 65535:
        raise _invalid(field, "not a valid port")
    host = parsed.raw_host.decode("ascii").lower()
    if "%" in host:
        raise _invalid(field, "must not name a network interface")
    return Destination(url=url, host=host, port=port)


def check_url(
    policy: OutboundPolicy,
    raw: str,
    *,
    field: str,
    allow_query: bool,
    allow_fragment: bool,
    credentials_hint: str = "",
    resolver: Resolver = resolve,
) -> str:
    """`raw` stripped, when it is a well-formed URL to an allowed destination; InvalidInput (or
    OutboundRefused, code `destination_not_allowed`) naming `field` otherwise."""
    destination = parse_url(
        raw, field=field, allow_query=allow_query, allow_fragment=allow_fragment,
        credentials_hint=credentials_hint,
    )  # fmt: skip
    try:
        addresses = resolver(destination.host, destination.port)
    except OSError:
        return destination.url
    policy.check(destination.host, destination.port, addresses, field=field)
    return destination.url

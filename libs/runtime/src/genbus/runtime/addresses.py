"""Where an outbound request may go: SSRF rules on URLs and on the addresses their hosts
resolve to (webhook deliveries, output archiving).

Only `http` and `https` URLs with a host and no credentials; only globally routable addresses,
unless an address is inside a configured allowed network (e.g. `127.0.0.0/8` for a local
receiver or the local sim). Callers check again after DNS resolution, before every connection,
and connect to the checked address: a host that later resolves to a private address is refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES = ("http", "https")


class UrlRefused(Exception):
    """The URL may not be reached. `code` is stable: `invalid_url`, `url_not_allowed`,
    `url_unresolvable`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Target:
    """A parsed outbound URL."""

    scheme: str
    host: str
    port: int


def parse_url(url: str, *, purpose: str = "be fetched") -> Target:
    """The scheme, host and port of an http(s) URL; `UrlRefused("invalid_url")` otherwise.
    `purpose` completes the refusal "only http and https URLs can ..."."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused("invalid_url", f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UrlRefused("invalid_url", f"only http and https URLs can {purpose}")
    if not parts.hostname:
        raise UrlRefused("invalid_url", "the URL has no host")
    if parts.username or parts.password:
        raise UrlRefused("invalid_url", "credentials in the URL are not allowed")
    return Target(scheme, parts.hostname, port or (443 if scheme == "https" else 80))


def literal_address(host: str) -> IpAddress | None:
    """`host` as an IP address, when it is one."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


@dataclass(frozen=True)
class AddressPolicy:
    """Which resolved addresses an outbound connection may go to."""

    allowed_networks: tuple[IpNetwork, ...] = field(default=())

    @classmethod
    def from_strings(cls, networks: Iterable[str]) -> AddressPolicy:
        return cls(tuple(ipaddress.ip_network(n.strip(), strict=False) for n in networks if n))

    def allows(self, address: IpAddress) -> bool:
        forms: list[IpAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            forms.append(address.ipv4_mapped)  # ::ffff:10.0.0.1 is 10.0.0.1
        if any(form in network for form in forms for network in self.allowed_networks):
            return True
        return all(form.is_global and not form.is_multicast for form in forms)

    def check(self, host: str, addresses: Sequence[IpAddress]) -> IpAddress:
        """The address to connect to: the first resolved one, when every one is allowed
        (a host with one private address among public ones is refused)."""
        if not addresses:
            raise UrlRefused("url_unresolvable", f"{host} does not resolve to any address")
        for address in addresses:
            if not self.allows(address):
                raise UrlRefused(
                    "url_not_allowed",
                    f"{host} resolves to {address}, a non-public address that is not allowed",
                )
        return addresses[0]


Resolver = Callable[[str, int], Awaitable[Sequence[IpAddress]]]


async def resolve(host: str, port: int) -> list[IpAddress]:
    """Every address `host` resolves to (a literal address is itself)."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UrlRefused("url_unresolvable", f"{host} does not resolve: {exc}") from None
    addresses: list[IpAddress] = []
    for info in infos:
        address = literal_address(str(info[4][0]).split("%")[0])
        if address is not None and address not in addresses:
            addresses.append(address)
    return addresses


async def checked_address(
    url: str,
    policy: AddressPolicy,
    resolver: Resolver = resolve,
    *,
    purpose: str = "be fetched",
) -> IpAddress:
    """The address a connection to `url` goes to; `UrlRefused` if it may not."""
    target = parse_url(url, purpose=purpose)
    literal = literal_address(target.host)
    addresses = [literal] if literal is not None else await resolver(target.host, target.port)
    return policy.check(target.host, addresses)

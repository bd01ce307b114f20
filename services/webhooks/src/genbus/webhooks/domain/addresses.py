"""Where a webhook may be sent: SSRF rules on URLs and on the addresses their hosts resolve to.

Only `http` and `https` URLs with a host; only globally routable addresses, unless an address
is inside a configured allowed network (`GENBUS_WEBHOOKS_ALLOW_NETWORKS`, e.g. `127.0.0.0/8`
for a local receiver). Checked at registration and again, after DNS resolution, before every
attempt: a host that later resolves to a private address is refused then.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES = ("http", "https")


class UrlRefused(Exception):
    """The URL may not be delivered to. `code` is stable: `invalid_url`, `url_not_allowed`,
    `url_unresolvable`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Target:
    """A parsed webhook URL."""

    scheme: str
    host: str
    port: int


def parse_url(url: str) -> Target:
    """The scheme, host and port of a webhook URL; `UrlRefused("invalid_url")` otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused("invalid_url", f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UrlRefused("invalid_url", "only http and https URLs can receive webhooks")
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
    """Which resolved addresses a delivery may connect to."""

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

"""Which endpoint URLs a model version may point at: one rule for registration and for every
connection, so that a user cannot make the server call its own loopback, the LAN or a cloud
metadata service (server-side request forgery).

The host is resolved with ``socket.getaddrinfo`` (which also reads odd spellings of an address,
such as ``0x7f000001`` or ``2130706433``, as the address they mean) and every address it resolves
to must be public. Host names in ``settings.ALIGNWEB_ENDPOINT_ALLOWED_HOSTS`` are let in on
purpose by the operator. The caller connects to the checked ``address``, never resolving again,
so the answer cannot change between the check and the connection.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from annotation.services.errors import ValidationFailed

REFUSED = "This endpoint URL is not allowed: give a public http:// or https:// server."

_BLOCKED_NETWORKS = [
    ipaddress.ip_network(net)
    for net in (
        "100.64.0.0/10",  # carrier-grade NAT, not flagged private by ipaddress
        "169.254.169.254/32",  # cloud metadata
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "fc00::/7",  # unique local addresses
        "64:ff9b::/96",  # NAT64: the embedded IPv4 address is what is reached
    )
]


class EndpointRefused(ValidationFailed):
    """The endpoint URL names a host this server must not call; the message is the same for
    every reason, so that it tells nothing about the inside network."""

    def __init__(self) -> None:
        super().__init__(REFUSED, field="endpoint_url")


@dataclass(frozen=True)
class CheckedEndpoint:
    scheme: str
    host: str
    port: int
    address: str


def _address_is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        # ::ffff:a.b.c.d and ::a.b.c.d reach the IPv4 address itself: its verdict is theirs.
        if address.ipv4_mapped is not None:
            return _address_is_public(address.ipv4_mapped)
        if address.packed[:12] == bytes(12) and int(address) > 1:
            return _address_is_public(ipaddress.IPv4Address(address.packed[12:]))
        tunnelled = address.sixtofour or (address.teredo or (None, None))[1]
        if tunnelled is not None and not _address_is_public(tunnelled):
            return False
    if (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
        or address.is_multicast
        or not address.is_global
    ):
        return False
    return not any(address in net for net in _BLOCKED_NETWORKS if net.version == address.version)


def host_is_operator_allowed(host: str) -> bool:
    """Whether the operator listed ``host`` (a URL's lower-cased host name) in
    ``ALIGNWEB_ENDPOINT_ALLOWED_HOSTS``."""
    return host in {name.rstrip(".").lower() for name in settings.ALIGNWEB_ENDPOINT_ALLOWED_HOSTS}


def endpoint_url_host(url: str) -> str:
    """The host name of ``url`` as the check reads it (lower case, no trailing dot); "" if none."""
    try:
        return (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return ""


def endpoint_url_check(url: str) -> CheckedEndpoint:
    """The scheme, host, port and one resolved address of ``url``, or ``EndpointRefused``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise EndpointRefused() from None
    scheme, host = parts.scheme.lower(), endpoint_url_host(url)
    if scheme not in ("http", "https") or not host or parts.username or parts.password:
        raise EndpointRefused()
    port = port or (443 if scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise EndpointRefused() from None
    addresses = []
    for info in infos:
        try:
            addresses.append(ipaddress.ip_address(info[4][0].split("%", 1)[0]))
        except ValueError:
            raise EndpointRefused() from None
    if not addresses:
        raise EndpointRefused()
    allowed = host_is_operator_allowed(host)
    # Every address must pass, not only the one used: a name resolving to a public and a
    # private address is refused as a whole.
    if not allowed and not all(_address_is_public(address) for address in addresses):
        raise EndpointRefused()
    return CheckedEndpoint(scheme=scheme, host=host, port=port, address=str(addresses[0]))

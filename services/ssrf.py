"""Is an address one that server-side fetches (calendar imports, and any other URL a person gives us) may reach?

The decision is made on the resolved address, never the host name, and an IPv6 address that carries an IPv4
address inside it is judged by that IPv4 address as well: IPv4-mapped (``::ffff:127.0.0.1``), IPv4-compatible
(``::127.0.0.1``, deprecated but still routed by some stacks), NAT64 (``64:ff9b::7f00:1``, RFC 6052; the local-use
prefix ``64:ff9b:1::/48`` of RFC 8215 is refused outright), 6to4 (``2002:7f00:1::``) and Teredo (server and client).
Otherwise a gateway that translates them would carry the request to the loopback or private address inside.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo); empty when none."""
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address in IPV4_COMPATIBLE and int(address) > 1:  # "::" and "::1" are IPv6's own unspecified and loopback
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address in NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    return found


def _public(ip: IPAddress) -> bool:
    return ip.is_global and not ip.is_multicast


def is_public_address(text: str) -> bool:
    """True when the (resolved) address, and every IPv4 address inside it, is a public unicast address."""
    try:
        ip = ipaddress.ip_address(text.split("%")[0])  # drop an IPv6 zone ("fe80::1%eth0")
    except ValueError:
        return False
    if not _public(ip):
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in NAT64_LOCAL:
            return False
        return all(_public(inner) for inner in embedded_ipv4(ip))
    return True

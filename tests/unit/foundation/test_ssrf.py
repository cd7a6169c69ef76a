"""The address filter of server-side fetches unwraps IPv4 addresses carried inside IPv6 ones before judging."""

from __future__ import annotations

import ipaddress

import pytest

from services.ssrf import embedded_ipv4, is_public_address


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "169.254.169.254",
        "::1",
        "::",
        "fe80::1%eth0",
        "fd00::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.0.0.1",
        "::127.0.0.1",  # IPv4-compatible
        "::10.0.0.1",
        "64:ff9b::7f00:1",  # NAT64 well-known prefix carrying 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # ... carrying 169.254.169.254
        "64:ff9b:1::7f00:1",  # NAT64 local-use prefix: refused whatever it carries
        "64:ff9b:1::808:808",
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo whose client is 127.0.0.1 (obfuscated)
        "224.0.0.1",
        "ff02::1",
        "not an address",
    ],
)
def test_private_loopback_and_wrapped_addresses_are_refused(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "2606:4700:4700::1111", "64:ff9b::5db8:d822", "2002:5db8:d822::1", "::ffff:8.8.8.8"]
)
def test_public_addresses_pass_even_when_wrapped(address: str) -> None:
    assert is_public_address(address)


def test_each_wrapping_is_unwrapped_to_its_ipv4() -> None:
    loopback = ipaddress.IPv4Address("127.0.0.1")
    for text in ("::ffff:127.0.0.1", "::127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::"):
        assert loopback in embedded_ipv4(ipaddress.IPv6Address(text)), text
    assert embedded_ipv4(ipaddress.IPv6Address("2606:4700:4700::1111")) == []

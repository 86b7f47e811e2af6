"""NetworkGuard refuses every non-public address unless FAX_FETCH_ALLOW_NETWORKS opens it."""

from __future__ import annotations

import pytest

from fax_runtime.network_guard import BlockedAddressError, NetworkGuard

BLOCKED = [
    ("0.0.0.0", "unspecified address"),
    ("0.1.2.3", "unspecified address"),
    ("10.0.0.1", "private address"),
    ("100.64.0.1", "shared (carrier-grade NAT) address"),
    ("127.0.0.1", "loopback address"),
    ("127.255.255.254", "loopback address"),
    ("169.254.169.254", "link-local (cloud metadata) address"),
    ("169.254.1.1", "link-local address"),
    ("172.16.0.1", "private address"),
    ("172.31.255.255", "private address"),
    ("192.0.0.8", "reserved address"),
    ("192.0.2.1", "reserved (documentation) address"),
    ("192.168.1.1", "private address"),
    ("198.18.0.1", "reserved (benchmarking) address"),
    ("224.0.0.1", "multicast address"),
    ("239.255.255.250", "multicast address"),
    ("240.0.0.1", "reserved address"),
    ("255.255.255.255", "broadcast address"),
    ("::", "unspecified address"),
    ("::1", "loopback address"),
    ("fe80::1", "link-local address"),
    ("fe80::1%eth0", "link-local address"),
    ("fc00::1", "unique-local address"),
    ("fd12:3456:789a::1", "unique-local address"),
    ("fec0::1", "site-local address"),
    ("ff02::1", "multicast address"),
    ("2001:db8::1", "reserved (documentation) address"),
    ("100::1", "reserved (discard-only) address"),
    ("::a00:1", "reserved address"),  # deprecated IPv4-compatible form
    ("4000::1", "reserved address"),  # outside global unicast 2000::/3
    ("::ffff:127.0.0.1", "IPv4-mapped address of 127.0.0.1 (loopback address)"),
    ("::ffff:a9fe:a9fe", "IPv4-mapped address of 169.254.169.254 (link-local (cloud metadata) address)"),
    ("::ffff:10.0.0.1", "IPv4-mapped address of 10.0.0.1 (private address)"),
    ("64:ff9b::a00:1", "NAT64 address of 10.0.0.1 (private address)"),
    ("2002:c0a8:0101::1", "6to4 address of 192.168.1.1 (private address)"),
    ("2002:7f00:1::1", "6to4 address of 127.0.0.1 (loopback address)"),
    # Teredo stores the client address inverted: ~0x7f000001 == 0x80fffffe.
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo address of 127.0.0.1 (loopback address)"),
]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.215.14",
    "100.128.0.1",  # just past carrier-grade NAT space
    "172.32.0.1",  # just past 172.16.0.0/12
    "2606:4700:4700::1111",
    "2a00:1450:4001:81c::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:0808:0808::1",
]


@pytest.mark.parametrize(("address", "reason"), BLOCKED)
def test_non_public_addresses_are_refused(address: str, reason: str) -> None:
    with pytest.raises(BlockedAddressError) as caught:
        NetworkGuard().check(address)

    assert caught.value.reason == reason
    assert str(caught.value) == (f"refused to connect to {address}: {reason} (set FAX_FETCH_ALLOW_NETWORKS to allow)")


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    NetworkGuard().check(address)
    assert NetworkGuard().is_allowed(address)


def test_error_text_for_a_private_address() -> None:
    with pytest.raises(BlockedAddressError) as caught:
        NetworkGuard().check("10.0.0.1")

    assert str(caught.value) == (
        "refused to connect to 10.0.0.1: private address (set FAX_FETCH_ALLOW_NETWORKS to allow)"
    )


def test_error_names_the_host_that_resolved_to_the_address() -> None:
    with pytest.raises(BlockedAddressError) as caught:
        NetworkGuard().check("127.0.0.1", hostname="localhost")

    assert str(caught.value) == (
        "refused to connect to localhost (127.0.0.1): loopback address (set FAX_FETCH_ALLOW_NETWORKS to allow)"
    )


def test_something_that_is_not_an_address_is_refused() -> None:
    with pytest.raises(BlockedAddressError, match="not an IP address"):
        NetworkGuard().check("example.com")


def test_allowlisted_networks_pass() -> None:
    guard = NetworkGuard.from_setting("127.0.0.0/8, ::1/128,10.1.2.3")

    for address in ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1", "10.1.2.3"]:
        guard.check(address)
    for address in ["10.1.2.4", "192.168.0.1", "169.254.169.254", "fe80::1"]:
        assert not guard.is_allowed(address)


def test_allowlist_opens_only_what_it_names() -> None:
    guard = NetworkGuard.from_setting("127.0.0.1/32")

    guard.check("127.0.0.1")
    with pytest.raises(BlockedAddressError, match=r"127\.0\.0\.2: loopback address"):
        guard.check("127.0.0.2")


def test_allowlist_reaches_private_ranges_too() -> None:
    guard = NetworkGuard.from_setting("10.0.0.0/8, fd00::/8")

    guard.check("10.20.30.40")
    guard.check("fd00::5")
    assert not guard.is_allowed("fc00::5")


@pytest.mark.parametrize("setting", ["", "  ", " , ,"])
def test_empty_setting_allows_nothing_extra(setting: str) -> None:
    guard = NetworkGuard.from_setting(setting)

    assert guard.allowed == ()
    assert not guard.is_allowed("127.0.0.1")
    assert guard.is_allowed("8.8.8.8")


def test_setting_is_parsed_into_networks() -> None:
    guard = NetworkGuard.from_setting("127.0.0.0/8, ::1/128")

    assert [str(network) for network in guard.allowed] == ["127.0.0.0/8", "::1/128"]


def test_bad_setting_entry_is_reported() -> None:
    with pytest.raises(ValueError, match=r"FAX_FETCH_ALLOW_NETWORKS: 'localhost' is not an IP network"):
        NetworkGuard.from_setting("127.0.0.0/8, localhost")

"""Which failures move a call to the next trunk, which trunk a call takes, and who may call in (no network)."""

from __future__ import annotations

import asyncio

import pytest

from fax_sip import CallFailed
from fax_transmitter.config import TrunkConfig
from fax_transmitter.trunks import InboundAllowList, TrunkSet, fails_over, method_label


@pytest.mark.parametrize(
    ("failure", "moves"),
    [
        (CallFailed(408, "no response", unreachable=True), True),  # silent trunk
        (CallFailed(503, "Service Unavailable (TCP refused)", unreachable=True), True),  # transport failure
        (CallFailed(408, "Request Timeout"), True),  # the trunk answered 408
        (CallFailed(503, "Service Unavailable"), True),
        (CallFailed(500, "Server Internal Error"), True),
        (CallFailed(408, "no answer", local=True), False),  # it rang: the callee did not pick up
        (CallFailed(486, "Busy Here"), False),
        (CallFailed(404, "Not Found"), False),
        (CallFailed(480, "Temporarily Unavailable"), False),
        (CallFailed(484, "Address Incomplete"), False),
        (CallFailed(603, "Decline"), False),
    ],
)
def test_only_trouble_with_the_trunk_moves_the_call(failure: CallFailed, moves: bool) -> None:
    assert fails_over(failure) is moves


async def test_calls_skip_trunks_that_are_down_or_full_and_wait_when_all_are_full() -> None:
    trunks = TrunkSet([TrunkConfig.at("a.example", channels=1), TrunkConfig.at("b.example", channels=1)])
    a, b = trunks.trunks
    assert trunks.in_order() == [a, b]
    a.up = False
    assert trunks.in_order() == [b]
    b.up = False
    assert trunks.in_order() == [a, b]  # every trunk down: all are tried, in order
    a.up = b.up = True
    assert await trunks.claim_channel([a, b], 1) is a
    assert await trunks.claim_channel([a, b], 1) is b
    assert await trunks.claim_channel([a, b], 0.05) is None
    waiting = asyncio.create_task(trunks.claim_channel([a, b], 5))
    await asyncio.sleep(0.01)
    trunks.release_channel(b)
    assert await waiting is b


async def test_the_allow_list_takes_trunk_addresses_and_networks() -> None:
    allow = InboundAllowList(["192.0.2.0/24", "2001:db8::/32"])
    await allow.refresh(TrunkSet([TrunkConfig.at("sips:198.51.100.7")]))
    assert allow.admits("192.0.2.44") and allow.admits("2001:db8::1") and allow.admits("198.51.100.7")
    assert allow.admits("::ffff:198.51.100.7")  # a dual-stack socket's view of the trunk
    assert not allow.admits("198.51.100.8") and not allow.admits("not an address")


def test_method_labels_stay_a_small_set() -> None:
    assert method_label("INVITE") == "INVITE" and method_label("X-SCANNER") == "other"

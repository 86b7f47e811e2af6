"""The dial plan: what the simulated telephone network does with a call, by the last four digits of the number."""

from __future__ import annotations

import enum


class Behaviour(enum.Enum):
    BUSY = "busy"  # SIP 486
    NO_ANSWER = "no_answer"  # rings until the caller gives up
    VOICE = "voice"  # answers, but no fax machine: silence
    NETWORK_FAILURE = "network_failure"  # SIP 503
    HANG_UP_AFTER_FIRST_PAGE = "hang_up_after_first_page"
    AUDIO_ONLY_FAX = "audio_only_fax"  # a fax machine that refuses T.38 (488 to the re-INVITE)
    T38_BREAKS = "t38_breaks"  # behind a broken T.38 gateway: the call drops once on T.38; G.711 works
    FAX = "fax"  # receives; accepts T.38


_BY_SUFFIX = {
    "0486": Behaviour.BUSY,
    "0408": Behaviour.NO_ANSWER,
    "0404": Behaviour.VOICE,
    "0503": Behaviour.NETWORK_FAILURE,
    "0049": Behaviour.HANG_UP_AFTER_FIRST_PAGE,
    "0038": Behaviour.AUDIO_ONLY_FAX,
    "0380": Behaviour.T38_BREAKS,
}


def behaviour_for(number: str) -> Behaviour:
    """The behaviour for a dialled number; only its digits count, so ``+1 (555) 123-0486`` is busy too."""
    digits = "".join(ch for ch in number if ch.isdigit())
    return _BY_SUFFIX.get(digits[-4:], Behaviour.FAX)

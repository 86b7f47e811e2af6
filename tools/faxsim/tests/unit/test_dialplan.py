import pytest

from fax_faxsim.dialplan import Behaviour, behaviour_for


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+15551230486", Behaviour.BUSY),
        ("+1 (555) 123-0408", Behaviour.NO_ANSWER),
        ("15551230404", Behaviour.VOICE),
        ("+15551230503", Behaviour.NETWORK_FAILURE),
        ("+15551230049", Behaviour.HANG_UP_AFTER_FIRST_PAGE),
        ("+15551230038", Behaviour.AUDIO_ONLY_FAX),
        ("+15551230380", Behaviour.T38_BREAKS),
        ("+15551230000", Behaviour.FAX),
        ("0486x", Behaviour.BUSY),
        ("", Behaviour.FAX),
    ],
)
def test_the_last_four_digits_pick_the_behaviour(number: str, expected: Behaviour) -> None:
    assert behaviour_for(number) is expected

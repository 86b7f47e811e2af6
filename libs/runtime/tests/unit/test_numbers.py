import pytest

from fax_runtime.numbers import NotE164, e164


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("+12048134700", "+12048134700"),
        ("12048134700", "+12048134700"),  # a trunk's called number: E.164 without its +
        ("+1 (204) 813-4700", "+12048134700"),
        ("1.204.813.4700", "+12048134700"),
        ("0044 20 7946 0958", "+442079460958"),  # the international call prefix stands for the +
        ("+442079460958;npdi", "+442079460958"),  # a SIP user part's parameter
        ("+2904321", "+2904321"),  # seven digits: Saint Helena
        ("+123456789012345", "+123456789012345"),
    ],
)
def test_every_written_form_of_a_number_is_one_e164_number(written: str, stored: str) -> None:
    assert e164(written) == stored


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("020 7946 0958", "national number"),
        ("+020 7946 0958", "no country code starts with 0"),
        ("00", "7 to 15 digits"),
        ("123456", "7 to 15 digits"),
        ("+1234567890123456", "7 to 15 digits"),
        ("0003*210", "not a phone number"),
        ("fax", "not a phone number"),
        ("", "not a phone number"),
        ("++12048134700", "not a phone number"),
        ("١٢٠٤٨١٣٤٧٠٠", "not a phone number"),
    ],
)
def test_what_names_no_international_number_is_refused_with_the_reason(written: str, reason: str) -> None:
    with pytest.raises(NotE164, match=reason):
        e164(written)

from fax_transmitter.options import fax_options_for, header_timezone


def test_identity_comes_from_fax_identity_then_from_number_then_station() -> None:
    assert fax_options_for({"fax_identity": "ACME", "from_number": "1555"}).local_ident == "ACME"
    assert fax_options_for({"from_number": "18884732963"}).local_ident == "18884732963"
    assert fax_options_for({}, station_ident="STATION").local_ident == "STATION"


def test_values_that_do_not_fit_t30_fields_are_trimmed_not_refused() -> None:
    options = fax_options_for({"fax_identity": "Ünïcode identity that is far too long", "fax_header": "x" * 80})
    assert options.local_ident == "?n?code identity tha"
    assert options.page_header == "x" * 50


def test_no_header_by_default() -> None:
    assert fax_options_for({"from_number": "1"}).page_header == ""


def test_ecm_is_on_unless_the_job_turns_it_off() -> None:
    assert fax_options_for({}).ecm and fax_options_for({"fax_ecm": True}).ecm
    assert not fax_options_for({"fax_ecm": False}).ecm


def test_a_job_can_cap_the_modem_speed() -> None:
    speeds = {None: 14400, 14400: 14400, "9600": 9600, 12000: 9600, 7200: 4800, 2400: 4800, "fast": 14400}
    for requested, allowed in speeds.items():
        assert fax_options_for({"fax_max_speed": requested}).max_bit_rate == allowed, requested


def test_fax_timezone_becomes_the_posix_rule_spandsp_reads() -> None:
    assert fax_options_for({"fax_timezone": "America/New_York"}).header_tz == "EST5EDT,M3.2.0,M11.1.0"
    assert fax_options_for({"fax_timezone": "undefined"}).header_tz == "UTC0"
    assert header_timezone("Europe/London") == "GMT0BST,M3.5.0/1,M10.5.0"
    # Quoted numeric abbreviations are renamed: spandsp's parser takes letters only.
    assert header_timezone("Asia/Dubai") == "ZZA-4"
    assert header_timezone("America/Nuuk").startswith("ZZA2ZZB,")
    for unusable in (None, "", "undefined", "Nowhere/Land", "../../etc/passwd", {"not": "a name"}):
        assert header_timezone(unusable) == ""

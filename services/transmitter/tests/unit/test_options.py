from fax_transmitter.options import fax_options_for


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

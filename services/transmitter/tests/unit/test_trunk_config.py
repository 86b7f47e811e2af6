"""FAX_SIP_TRUNK and FAX_SIP_TRUNKS_FILE: trunks in priority order, each configured, every mistake named."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from fax_runtime.config import ConfigError
from fax_transmitter.config import SipLineConfig, TransmitterSettings

BASE = {"FAX_DATABASE_URL": "postgresql://x/y", "FAX_AMQP_URL": "amqp://x", "FAX_S3_ENDPOINT": "s3:9000"}


def _sip(**env: str) -> SipLineConfig:
    return TransmitterSettings.from_env({**BASE, **env}).sip


def test_the_default_is_faxsim_over_udp() -> None:
    (trunk,) = _sip().trunks
    assert (trunk.uri, trunk.t38, trunk.channels, trunk.probe_interval_s) == ("sip:127.0.0.1:5070", "prefer", None, 30)


def test_a_list_is_a_priority_order_of_uris_and_bare_host_port_stays_udp() -> None:
    trunks = _sip(
        FAX_SIP_TRUNK="sip:a.example:5060;transport=tcp, sips:b.example, c.example:5080, sip:d.example;transport=tls",
        FAX_SIP_USERNAME="fax",
        FAX_SIP_PASSWORD="secret",
        FAX_T38="false",
    ).trunks
    assert [t.uri for t in trunks] == [
        "sip:a.example:5060;transport=tcp",
        "sips:b.example:5061",
        "sip:c.example:5080",
        "sip:d.example:5061;transport=tls",
    ]
    assert [t.sip_uri.transport for t in trunks] == ["tcp", "tls", "udp", "tls"]
    assert all(t.username == "fax" and t.password == "secret" and t.t38 == "off" for t in trunks)
    assert "secret" not in repr(trunks)


def test_the_trunks_file_configures_the_trunks_the_list_names(tmp_path: Path) -> None:
    file = tmp_path / "trunks.toml"
    file.write_text(
        """
[[trunk]]
uri = "sips:b.example"
name = "carrier-b"
username = "b-user"
password = "b-pass"
register = true
channels = 4
t38 = "only"
strip_prefix = "+"
add_prefix = "00"
probe_interval = 0
response_timeout = 2.5
"""
    )
    a, b = _sip(FAX_SIP_TRUNK="a.example, sips:b.example:5061", FAX_SIP_TRUNKS_FILE=str(file)).trunks
    assert (a.name, a.username, a.channels, a.t38) == ("sip:a.example:5060", None, None, "prefer")
    assert (b.name, b.username, b.password, b.register, b.channels, b.t38) == (
        "carrier-b", "b-user", "b-pass", True, 4, "only",
    )  # fmt: skip
    assert (b.probe_interval_s, b.response_timeout_s) == (0, 2.5)
    assert b.target("+15551230000") == "sips:0015551230000@b.example:5061"
    assert a.target("+15551230000") == "sip:+15551230000@a.example:5060"


def test_without_a_list_the_file_gives_the_order(tmp_path: Path) -> None:
    file = tmp_path / "trunks.toml"
    file.write_text('[[trunk]]\nuri = "sip:z.example;transport=tcp"\n\n[[trunk]]\nuri = "sip:y.example"\n')
    assert [t.uri for t in _sip(FAX_SIP_TRUNKS_FILE=str(file)).trunks] == [
        "sip:z.example:5060;transport=tcp",
        "sip:y.example:5060",
    ]


@pytest.mark.parametrize(
    ("env", "file", "named"),
    [
        ({"FAX_SIP_TRUNK": "a.example,,b.example"}, None, "empty entry"),
        ({"FAX_SIP_TRUNK": "a.example, sip:b.example;transport=sctp"}, None, "entry 2"),
        ({"FAX_SIP_TRUNK": "a.example:99999"}, None, "entry 1"),
        ({"FAX_SIP_TRUNK": "sip:+1555@a.example"}, None, "not a trunk"),
        ({"FAX_SIP_TRUNK": "a.example, sip:a.example:5060"}, None, "twice"),
        ({"FAX_SIP_TRUNK": "a.example"}, '[[trunk]]\nuri = "b.example"\n', "sip:b.example:5060 is not in"),
        ({}, '[[trunk]]\nuri = "a.example"\nchanels = 3\n', "trunk 1 (a.example): Object contains unknown field"),
        ({}, '[[trunk]]\nuri = "a.example"\n[[trunk]]\nuri = "b.example"\nt38 = "sometimes"\n', "trunk 2"),
        ({}, '[[trunk]]\nuri = "a.example"\nchannels = 0\n', "trunk 1"),
        ({}, "[[trunk]\nuri = 1", "not TOML"),
        ({}, '[trunks]\nuri = "a.example"\n', "unknown table or key 'trunks'"),
        ({"FAX_SIP_INBOUND_ALLOW": "10.0.0.0/8, not-a-network"}, None, "'not-a-network'"),
        ({"FAX_SIP_TLS_CA": "/nonexistent/ca.pem"}, None, "FAX_SIP_TLS_CA=/nonexistent/ca.pem"),
        ({"FAX_SIP_TRUNK_TIMEOUT": "0"}, None, "FAX_SIP_TRUNK_TIMEOUT"),
    ],
)
def test_a_malformed_list_or_file_is_refused_naming_the_entry(
    tmp_path: Path, env: dict[str, str], file: str | None, named: str
) -> None:
    if file is not None:
        path = tmp_path / "trunks.toml"
        path.write_text(file)
        env = {**env, "FAX_SIP_TRUNKS_FILE": str(path)}
    with pytest.raises(ConfigError) as refused:
        _sip(**env)
    assert named in str(refused.value)


def test_a_missing_trunks_file_is_named() -> None:
    with pytest.raises(ConfigError, match=re.escape("FAX_SIP_TRUNKS_FILE=/nonexistent/trunks.toml: No such file")):
        _sip(FAX_SIP_TRUNKS_FILE="/nonexistent/trunks.toml")


def test_inbound_allow_and_tls_settings(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not checked here")
    sip = _sip(
        FAX_SIP_BIND="10.1.2.3:5060",
        FAX_SIP_INBOUND_ALLOW="192.0.2.0/24, 2001:db8::1",
        FAX_SIP_TLS_CERT=str(cert),
        FAX_SIP_TLS_VERIFY="false",
    )
    assert sip.inbound_allow == ("192.0.2.0/24", "2001:db8::1/128")
    assert (sip.tls_port, sip.tls_cert, sip.tls_verify) == (5061, str(cert), False)


def test_the_transmitter_stops_at_start_with_the_message_and_no_traceback() -> None:
    env = {**BASE, "FAX_SIP_TRUNK": "sip:a.example;transport=carrier-pigeon", "PATH": "/usr/bin:/bin"}
    started = subprocess.run(
        [sys.executable, "-m", "fax_transmitter"], env=env, capture_output=True, text=True, timeout=60
    )
    assert started.returncode == 1
    assert "FAX_SIP_TRUNK entry 1" in started.stderr and "carrier-pigeon" in started.stderr
    assert "Traceback" not in started.stderr

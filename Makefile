# Fax platform. `make` (or `make help`) lists the targets; `make run` brings everything up on this machine.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# pip puts uv in ~/.local/bin when it installs for the user only; pyenv users find it through their shims.
export PATH := $(HOME)/.local/bin:$(PATH)

APT_PACKAGES := rabbitmq-server libspandsp-dev ghostscript libtiff-tools bubblewrap poppler-utils fonts-dejavu-core sip-tester tshark swaks stunnel4
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STATE_DIR ?= .devstack
TEST_PATHS = $(wildcard libs/*/tests/unit services/*/tests/unit tools/*/tests/unit) tests/deploy tests/integration tests/faults

.PHONY: help setup run test test-faults lint fmt images

help: ## Show this list
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-11s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Debian's own python3 refuses a system-wide `pip install` (PEP 668): then uv goes to the user's ~/.local.
setup: ## Install what is missing: system packages, uv, the Python workspace (safe to repeat)
	@missing=""; \
	for package in $(APT_PACKAGES); do \
		dpkg -s "$$package" 2>/dev/null | grep -q '^Status: install ok installed' || missing="$$missing $$package"; \
	done; \
	if ! command -v uv >/dev/null && ! python3 -m pip --version >/dev/null 2>&1; then missing="$$missing python3-pip"; fi; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	fi
	@command -v uv >/dev/null || python3 -m pip install uv || python3 -m pip install --user --break-system-packages uv
	uv sync

run: setup ## Run the whole platform on this machine (state in .devstack/, STATE_DIR=... to move it; Ctrl-C stops it)
	uv run python -m fax_devstack run --state-dir $(STATE_DIR)

# The fault-injection scenarios marked full_faults take minutes each: `make test` runs the others.
test: setup ## Lint, then every package's unit tests, the integration tests and the quick fault tests
	uv run ruff check .
	uv run pytest -q -m "not full_faults" $(TEST_PATHS)

test-faults: setup ## Every fault-injection scenario (docs/RELIABILITY.md): services killed, Postgres/RabbitMQ/S3 stopped
	uv run pytest -q tests/faults

lint: ## Check style and formatting without changing anything
	uv run ruff check .
	uv run ruff format --check .

fmt: ## Format the code and apply the safe lint fixes
	uv run ruff format .
	uv run ruff check --fix .

# One image per deployable, each built from the repository root (see each Dockerfile). Needs a Docker engine.
IMAGE_PREFIX ?= fax-
IMAGE_TAG ?= dev
IMAGE_DIRS = $(patsubst %/Dockerfile,%,$(wildcard services/*/Dockerfile tools/*/Dockerfile))

images: ## Build the container images (needs Docker; IMAGE_PREFIX=registry/fax- IMAGE_TAG=1.2.3 to name them)
	@command -v docker >/dev/null || { echo "make images needs a Docker engine (docker with BuildKit)"; exit 1; }
	@for dir in $(IMAGE_DIRS); do \
		image="$(IMAGE_PREFIX)$$(basename $$dir):$(IMAGE_TAG)"; \
		echo "building $$image"; \
		DOCKER_BUILDKIT=1 docker build -f "$$dir/Dockerfile" -t "$$image" . || exit 1; \
	done

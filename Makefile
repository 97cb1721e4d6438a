# Bastion: every target creates .venv and installs pinned dependencies on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
VENDOR := services/dashboard/static/vendor/.stamp
.PHONY: help up test test-slow lint fmt bench schemas clean chromium

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements/constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Bastion needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e '.[dev]'
	@touch $(STAMP)

$(VENDOR): services/dashboard/web/package.json services/dashboard/web/package-lock.json services/dashboard/web/build.sh
	services/dashboard/web/build.sh
	@touch $@

chromium: ## install the system Chromium (Debian package) for the browser tests, if missing
	scripts/install-chromium.sh

up: $(STAMP) $(VENDOR) ## run the whole platform: embedded NATS, every service, sample data, dashboard
	$(BIN)/bastion up

test: $(STAMP) $(VENDOR) chromium ## run the test suite (unit, contracts, integration, e2e)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: $(STAMP) $(VENDOR) chromium ## run only the long fault and cluster tests
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

lint: $(STAMP) ## ruff, formatting check, mypy, import-linter, contract schemas up to date
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/bastion contracts check

fmt: $(STAMP) ## format and auto-fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

schemas: $(STAMP) ## regenerate shared/contracts/schemas and asyncapi.yaml
	$(BIN)/bastion contracts export

bench: $(STAMP) ## run every benchmark under bench/ and print one table
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -r requirements/bench.txt
	$(BIN)/python -m bench

clean: ## remove the virtualenv and local state
	rm -rf $(VENV) .bastion .pytest_cache .mypy_cache .ruff_cache services/dashboard/static/vendor services/dashboard/web/node_modules

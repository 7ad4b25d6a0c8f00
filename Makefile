# U-Relief. Every target sets itself up: `git clone … && make test` works on a fresh machine.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup build test demo lint bench clean

DASH    := host_tools/urelief/server/dashboard
LEAFLET := $(DASH)/node_modules/leaflet/dist/leaflet.js

setup: $(STAMP) $(LEAFLET)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# The dashboard's map library from npm, vendored into its node_modules (served by the server).
$(LEAFLET): $(DASH)/package.json $(DASH)/package-lock.json
	cd $(DASH) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Compile every firmware module with mpy-cross into build/firmware (the tree deployed and simulated).
build: setup
	$(BIN)/python -m urelief.build

test: build
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

demo: build
	$(BIN)/urelief demo

lint: setup
	$(BIN)/ruff check firmware boards host_tools tests
	$(BIN)/python -m urelief.lint_firmware

bench: build
	$(BIN)/python -m urelief.bench

clean:
	rm -rf build .pytest_cache

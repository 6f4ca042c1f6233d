# gridmap: `make demo` builds and maps the demo district; `make test` runs lint and the whole suite.
# Both work on a fresh clone: they create .venv and install what is missing (the second run is fast).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   ?= demo

.PHONY: demo test lint format install assets bench clean

install: $(VENV)/.installed assets

# Leaflet and its plugins for offline maps: pinned npm packages, copied into maps/assets/vendor
assets: maps/assets/vendor/VERSIONS.json

maps/assets/vendor/VERSIONS.json: maps/assets/package.json maps/assets/package-lock.json maps/assets/manifest.json
	$(PYTHON) maps/assets/vendor.py

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: install
	$(BIN)/gridmap demo --out $(DEMO)

test: install lint
	$(BIN)/pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python bench/partition.py
	$(BIN)/python bench/locate.py
	$(BIN)/python bench/maps.py
	$(BIN)/python bench/api.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .ruff_cache maps/assets/vendor

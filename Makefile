# gridmap: `make demo` builds and maps the demo district; `make test` runs lint and the whole suite.
# Both work on a fresh clone: they create .venv and install what is missing (the second run is fast).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   ?= demo

.PHONY: demo test lint format install assets vendor wheel bench clean

install: $(VENV)/.installed assets

# Leaflet, its plugins and Swagger UI: pinned npm packages, copied into maps/assets/vendor (the
# service serves them, offline maps inline them, the wheel ships them)
assets: maps/assets/vendor/VERSIONS.json
vendor: assets

maps/assets/vendor/VERSIONS.json: maps/assets/package.json maps/assets/package-lock.json maps/assets/manifest.json
	$(PYTHON) maps/assets/vendor.py

$(VENV)/.installed: pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The wheel to install elsewhere (pip install dist/gridmap-*.whl): the assets are vendored first,
# since setuptools packs maps/assets/vendor as it finds it. tests/test_packaging.py builds one
# from a clean clone and runs it outside the repository.
wheel: assets $(VENV)/.installed
	rm -rf dist
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir dist .

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
	rm -rf $(VENV) $(DEMO) .pytest_cache .ruff_cache maps/assets/vendor build dist

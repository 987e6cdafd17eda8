# The two commands a newcomer needs: `make demo` and `make test`.
# Each sets up the virtual environment it needs on a fresh machine.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAMPLES ?= $(wildcard ../shared/samples)
OUT ?= demo-out

.PHONY: all demo test lint typecheck pytest proto proto-check buf-lint fmt clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf $(OUT)
	$(BIN)/ykt demo $(if $(SAMPLES),--samples $(SAMPLES)) --out $(OUT)

test: $(STAMP) lint typecheck proto-check buf-lint pytest

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy gateway connectors keys

pytest: $(STAMP)
	$(BIN)/pytest -q

# Regenerates the Python code for proto/ into ykt/v1/.
proto: $(STAMP)
	$(BIN)/python scripts/gen_proto.py ykt/v1

# Fails when the checked-in generated code differs from a fresh regeneration.
proto-check: $(STAMP)
	$(BIN)/python scripts/gen_proto.py --check ykt/v1

# buf lint, with buf from the npm registry at the version package.json pins.
buf-lint:
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --silent --no-audit --no-fund && \
		cd proto && ../node_modules/.bin/buf lint; \
	else echo "SKIP buf-lint: npm is not installed"; fi

clean:
	rm -rf $(VENV) node_modules demo-out .mypy_cache .ruff_cache .pytest_cache

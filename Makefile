# The two commands a newcomer needs: `make demo` and `make test`.
# Each sets up the virtual environment it needs on a fresh machine.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAMPLES ?= $(wildcard ../shared/samples)
OUT ?= demo-out

.PHONY: all demo test lint typecheck pytest proto proto-check buf-lint fmt clean fuzz bench

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

# One atheris target for a while, in its own virtualenv (docs/fuzzing.md):
#   make fuzz TARGET=pain002 SECONDS=60
TARGET ?= department_file
SECONDS ?= 60
fuzz: $(STAMP)
	$(BIN)/python fuzz/run.py $(TARGET) --seconds $(SECONDS)

# The benchmark (docs/performance.md): make bench RECORDS=100000
RECORDS ?= 100000
bench: $(STAMP)
	$(BIN)/ykt bench --records $(RECORDS) --out bench-out

clean:
	rm -rf $(VENV) .venv-sslyze .venv-fuzz node_modules interop/node/node_modules \
		demo-out bench-out fuzz/work .mypy_cache .ruff_cache .pytest_cache

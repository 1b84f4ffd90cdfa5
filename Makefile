# Two commands for a newcomer, each doing its own set-up:
#   make demo   run the main job offline on the embedded default corpus
#   make test   run the whole test suite
# uv is installed with pip when it is missing; `uv sync` then builds .venv from uv.lock.

UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
# extra `uv sync` flags, e.g. SYNC_FLAGS="--group gguf" (.ci/run adds the optional test groups)
SYNC_FLAGS ?=
# the suite runs on both cores (pytest-xdist); TEST_WORKERS=0 runs it in one process
TEST_WORKERS ?= 2

.PHONY: setup demo test lint format bench

setup:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --locked --quiet $(SYNC_FLAGS)

demo: setup
	@$(UV) run --locked legollm demo

test: setup
	@$(UV) run --locked pytest -n $(TEST_WORKERS)

lint: setup
	@$(UV) run --locked ruff check .
	@$(UV) run --locked ruff format --check .

format: setup
	@$(UV) run --locked ruff format .
	@$(UV) run --locked ruff check --fix .

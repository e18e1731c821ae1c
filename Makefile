# The two set-up commands of the README: `make run` and `make test`.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck pytest docs clean bench bench-quick screenshots

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]' --config-settings editable_mode=compat
	@# Bytecode for the hot path even where PYTHONDONTWRITEBYTECODE is set.
	$(PY) -m compileall -q agentty_core
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/agentty ui --demo

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	@# The import contracts of pyproject.toml [tool.importlinter]: layers, owners, no UI in the core.
	$(VENV)/bin/lint-imports --no-logo

typecheck: install
	$(VENV)/bin/mypy

# Two workers: most tests wait on real processes (PTYs, sockets, sshd, held locks), so two
# overlap well even on 2 cores. Every test has its own AGENTTY_HOME, tmp_path and ports, so a
# worker never sees another's; a test that must change what all share (the package's files)
# changes a copy. PYTEST_WORKERS=0 runs them in this one process.
PYTEST_WORKERS ?= 2
pytest: install
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist worksteal

test: lint typecheck pytest

# API reference from the docstrings, into docs/api/.
docs: install
	$(PY) -m pip install -q '.[docs]'
	$(VENV)/bin/pdoc -o docs/api agentty_core.session agentty_core.client agentty_core.errors agentty_core.keys agentty_core.protocol

# Benchmarks vs tmux and pexpect (bench/README.md); tmux itself: apt-get install tmux.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[test,bench]' --config-settings editable_mode=compat
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) -m bench.run

bench-quick: $(BENCH_STAMP)
	$(PY) -m bench.run --quick

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .import_linter_cache

# SVG and PNG pictures of the dashboard (PNGs need chromium-headless-shell, fonts-firacode).
screenshots: install
	$(PY) scripts/screenshots.py

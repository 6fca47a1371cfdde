# omnihub: `make run` starts a demo hub here, `make test` runs every check.
# Tools run as `python -m ...` from the venv, so they never pick up another venv's scripts.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.omnihub-installed
OMNIHUB := $(PY) -m hub

.PHONY: run test lint typecheck bench clean venv

venv: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --disable-pip-version-check -e '.[dev]'
	touch $@

run: $(STAMP)
	$(OMNIHUB) init --if-missing .
	$(OMNIHUB) demo --if-empty
	@$(PY) -c 'from hub.config import load; print(f"\nomnihub: open {load().hub.public_url}")'
	@if [ -f data/initial-admin-password ]; then \
		echo "omnihub: log in as admin, password $$(cat data/initial-admin-password)"; \
	else \
		echo "omnihub: log in as admin with the password you set"; \
	fi
	@echo "omnihub: Ctrl-C stops the hub; the data stays in data/"
	exec $(OMNIHUB) run

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy

bench: $(STAMP)
	@set -e; for script in bench/*.py; do \
		[ "$$(basename $$script)" = "__init__.py" ] && continue; \
		echo "== $$script"; \
		$(PY) $$script; \
	done

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache bench/results $(STAMP)
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

# Two commands on a fresh machine:
#   make run    create .venv, install, compile the catalogs, migrate and start the service
#   make test   the same setup, then lint, type-check and the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test install locales lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,postgres]'
	touch $(STAMP)

locales: $(STAMP)
	$(PY) -m locales.catalog compile

run: locales
	$(PY) -m bot run

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

test: locales lint
	$(PY) -m pytest

clean:
	rm -rf $(VENV) locales/*/LC_MESSAGES/*.mo

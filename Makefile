# Two commands on a fresh machine:
#   make run    create .venv, install, compile the catalogs, migrate and start the service
#   make test   the same setup (and Chromium, the flyer font and poppler-utils for the tests), then lint,
#               type-check, check the layer rules (import-linter) and run all tests
# `make run` without TELEGRAM_BOT_TOKEN starts the local sandbox (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

CHROMIUM := /usr/bin/chromium
FLYER_FONT_FILE := /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc
PDFTOPPM := /usr/bin/pdftoppm

.PHONY: run test install locales lint chromium flyer-tools clean

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
	$(PY) -m mypy tests/fakes.py
	$(VENV)/bin/lint-imports

# The browser tests drive Debian's Chromium through Playwright (never a browser Playwright downloads).
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Chromium for the browser tests (apt-get install chromium)"; \
	    SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	    $$SUDO apt-get update -q && \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null || \
	    echo "could not install Chromium: the browser tests will be skipped (and fail in CI)" >&2; \
	  else \
	    echo "no $(CHROMIUM) and no apt-get: the browser tests will be skipped (and fail in CI)" >&2; \
	  fi; \
	fi

# Flyers embed Debian's WenQuanYi Zen Hei; their tests rasterise the PDF with poppler's pdftoppm.
flyer-tools:
	@if [ ! -f $(FLYER_FONT_FILE) ] || [ ! -x $(PDFTOPPM) ]; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    echo "installing the flyer font and pdftoppm (apt-get install fonts-wqy-zenhei poppler-utils)"; \
	    SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	    $$SUDO apt-get update -q && \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q fonts-wqy-zenhei poppler-utils >/dev/null || \
	    echo "could not install fonts-wqy-zenhei and poppler-utils: the flyer tests will fail" >&2; \
	  else \
	    echo "no $(FLYER_FONT_FILE) or $(PDFTOPPM), and no apt-get: the flyer tests will fail" >&2; \
	  fi; \
	fi

test: locales lint chromium flyer-tools
	$(PY) -m pytest

clean:
	rm -rf $(VENV) locales/*/LC_MESSAGES/*.mo

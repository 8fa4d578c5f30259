# The two commands of the quick start, and their helpers.
#   make demo   — the main job end to end: services, collection, Faust worker, Elasticsearch
#   make test   — the whole test suite (starts the services it needs)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test unit browser services-up services-down clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/logriver demo

test: $(STAMP) browser
	$(BIN)/pytest

# Browser tests drive Debian's chromium (never a downloaded browser); install it when we can.
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "warning: chromium is not installed; the browser tests will be skipped"; fi; \
	fi

unit: $(STAMP)
	$(BIN)/pytest tests/unit tests/pipeline

services-up: $(STAMP)
	$(BIN)/logriver services up

services-down: $(STAMP)
	$(BIN)/logriver services down

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

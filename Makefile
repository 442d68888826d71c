# keeper: the two commands a newcomer needs are `make up` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= $(shell for p in python3.12 python3.11 python3; do $$p -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null && { echo $$p; break; }; done)
STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed

.PHONY: help venv npm web chromium test lint typecheck pytest up proto clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "keeper needs Python 3.11+; found " + sys.version)'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## create .venv and install keeper with its dev extras

# --omit=optional skips re2 (a native build of an optional firebase-tools dependency: minutes, and unused here)
$(NPM_STAMP): $(wildcard package.json package-lock.json)
	@if [ -f package.json ]; then \
	  command -v npm >/dev/null || { echo "npm is missing: install Node.js 20+ (tests drive the Firebase JS SDK)"; exit 1; }; \
	  npm ci --omit=optional --no-audit --no-fund --loglevel=error; \
	fi
	@mkdir -p node_modules && touch $(NPM_STAMP)

npm: $(NPM_STAMP) ## install the npm packages the tests use into ./node_modules

# The web app, bundled by Vite from npm packages into web/dist (what Hosting and `keeper web` serve).
WEB_BUILT := web/dist/index.html
$(WEB_BUILT): $(NPM_STAMP) $(wildcard web/index.html web/vite.config.mjs web/src/*)
	node_modules/.bin/vite build --config web/vite.config.mjs

web: $(WEB_BUILT) ## build the web app into web/dist

# The browser tests drive Debian's Chromium (never a downloaded browser); a new machine has none.
CHROMIUM := /usr/bin/chromium
chromium: ## install Debian's Chromium for the browser tests when it is missing (as root, or with sudo)
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else \
	    echo "the browser tests need Debian's Chromium: run 'apt-get install -y chromium' as root"; exit 1; fi; \
	  echo "installing Debian's chromium for the browser tests"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	  test -x $(CHROMIUM); }

lint: $(STAMP) ## ruff
	$(VENV)/bin/ruff check .

typecheck: $(STAMP) ## mypy --strict on shared/ and connector/
	$(VENV)/bin/mypy --strict shared connector

pytest: $(STAMP) $(NPM_STAMP) $(WEB_BUILT) chromium ## pytest (starts and stops the emulators itself)
	$(PY) -m keeper.testrun $(PYTEST_ARGS)

test: lint typecheck pytest ## everything CI runs

up: $(STAMP) $(NPM_STAMP) $(WEB_BUILT) ## run the whole local stack in the foreground (Ctrl-C stops it)
	$(VENV)/bin/keeper up

proto: $(STAMP) ## regenerate connector/protocol/proto/*_pb2.py from wa.proto
	$(PY) -m connector.protocol.proto.generate

clean: ## remove local state (.keeper/: emulator data, simulator phones and devices, logs), the web build and caches
	rm -rf .keeper web/dist .pytest_cache .mypy_cache .ruff_cache

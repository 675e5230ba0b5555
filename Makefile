# The project's interface: make run, make test, make lint, make bench.
# Every target sets up what is missing first; nothing is downloaded but
# packages from PyPI and npm, and Python interpreters come from the machine.

SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy

# Defaults for the embedded profile; override any of them in the environment.
export CONSULAR_HOST ?= 127.0.0.1
export APP_PORT ?= 8000
export RASA_PORT ?= 5005
export ACTIONS_PORT ?= 5055
export CONSULAR_VAR_DIR ?= $(CURDIR)/var
export CONSULAR_DATABASE_URL ?= sqlite:///$(CONSULAR_VAR_DIR)/consular.db
export CONSULAR_RASA_URL ?= http://127.0.0.1:$(RASA_PORT)
export CONSULAR_ACTION_SERVER_URL ?= http://127.0.0.1:$(ACTIONS_PORT)
export CONSULAR_RASA_TOKEN ?= dev-rasa-token
export CONSULAR_API_URL ?= http://127.0.0.1:$(APP_PORT)
export CONSULAR_INTERNAL_API_TOKEN ?= dev-internal-token
export ACTION_ENDPOINT_URL ?= http://127.0.0.1:$(ACTIONS_PORT)/webhook
export RASA_TRACKER_DB ?= $(CONSULAR_VAR_DIR)/rasa-tracker.db
# Rasa would otherwise try to send telemetry to the internet.
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export SANIC_HOST := 127.0.0.1

UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
APP_PY := .venv/bin/python
RASA := .venv-rasa/bin/rasa
RASA_PY := .venv-rasa/bin/python

NLU_SOURCES := config.yml domain.yml $(shell find data -name "*.yml" 2>/dev/null) components/country_extractor.py components/featurizers.py components/urgent_cues.py
MODEL := models/consular.tar.gz
SPACY_PIPELINE := build/spacy/en_consular/meta.json
GAZETTEER := build/gazetteer.jsonl
FRONTEND := bot/static/vendor/govuk/govuk-frontend.min.css
CHARTS := bot/static/vendor/chartjs/chart.umd.min.js
DB_STAMP := $(CONSULAR_VAR_DIR)/.db-ready

.PHONY: help setup run ctl bench bench-console test test-app test-browser test-actions test-rasa test-e2e lint bench clean browser export-nlu bench-insight

help:
	@echo "make run    set up what is missing, then run app, Rasa and action server"
	@echo "make test   set up what is missing, then run every test"
	@echo "make bench  accuracy, latency and memory benchmark (several minutes)"
	@echo "make lint   ruff and mypy"
	@echo "make clean  remove environments, builds, models and local data"

# --- environments -----------------------------------------------------------

$(CURDIR)/.tools/bin/uv:
	$(shell scripts/find-python 3.12) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.ready: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python "$$(scripts/find-python 3.12)"
	touch $@

.venv-rasa/.ready: requirements/rasa.lock.txt | $(UV)
	test -x $(RASA_PY) || $(UV) venv --python "$$(scripts/find-python 3.10)" .venv-rasa
	$(UV) pip sync --python $(RASA_PY) requirements/rasa.lock.txt
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

$(FRONTEND) $(CHARTS) &: node_modules/.package-lock.json .venv/.ready scripts/vendor_frontend.py
	$(APP_PY) scripts/vendor_frontend.py

# --- browser for the web chat tests -------------------------------------------
# Playwright drives Debian's Chromium and never downloads a browser of its own.
# The binary is its own stamp: apt-get runs only while it is missing (as root,
# or through sudo), after an 'apt-get update' when the package lists are stale.

CHROMIUM := /usr/bin/chromium
CHROMIUM_PACKAGES := chromium chromium-driver

browser: $(CHROMIUM)

$(CHROMIUM):
	@if [ "$$(id -u)" -eq 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
	else echo "make browser: $@ is missing; install it as root: apt-get install -y $(CHROMIUM_PACKAGES)" >&2; exit 1; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "make browser: $@ is missing and there is no apt-get; install Chromium at $@" >&2; exit 1; fi; \
	apt="$$sudo env DEBIAN_FRONTEND=noninteractive apt-get"; \
	echo "make browser: installing $(CHROMIUM_PACKAGES) from Debian"; \
	$$apt install -y $(CHROMIUM_PACKAGES) \
	  || { $$apt update && $$apt install -y $(CHROMIUM_PACKAGES); }
	@test -x $@ || { echo "make browser: apt-get finished but $@ is still missing" >&2; exit 1; }

# --- NLU: gazetteer, spaCy pipeline, trained model --------------------------

$(GAZETTEER): .venv/.ready bot/geo/gazetteer.py data/gazetteer/aliases.yml
	mkdir -p build
	$(APP_PY) -m bot.geo.gazetteer $@

$(SPACY_PIPELINE): .venv-rasa/.ready $(GAZETTEER) scripts/build_spacy_pipeline.py data/gazetteer/aliases.yml
	$(RASA_PY) scripts/build_spacy_pipeline.py --gazetteer $(GAZETTEER) --out build/spacy/en_consular

# Rasa skips retraining on its own when nothing changed; make only asks it
# when a source is newer than the model.
$(MODEL): $(NLU_SOURCES) $(SPACY_PIPELINE)
	$(RASA) train --fixed-model-name consular --out models --quiet

# --- database ---------------------------------------------------------------

$(DB_STAMP): .venv/.ready $(wildcard migrations/versions/*.py) bot/seed/sample_posts.json
	mkdir -p $(CONSULAR_VAR_DIR)
	.venv/bin/bot setup
	touch $@

setup: .venv/.ready .venv-rasa/.ready $(FRONTEND) $(CHARTS) $(MODEL) $(DB_STAMP)

# --- the interface ----------------------------------------------------------

run: setup
	@scripts/run

# Control a running service, e.g. make ctl CMD="stop rasa" (then CMD="start rasa").
ctl:
	.venv/bin/supervisorctl -c deploy/supervisord.conf $(CMD)

test: setup test-app test-browser test-actions test-rasa test-e2e
	@echo "make test: every suite passed"

test-app: .venv/.ready $(FRONTEND) $(CHARTS)
	$(APP_PY) -m pytest tests/app

# The web chat widget in Debian's Chromium, driven by Playwright (tests/browser).
test-browser: browser .venv/.ready $(FRONTEND) $(CHARTS) node_modules/.package-lock.json
	$(APP_PY) -m pytest -p no:cacheprovider tests/browser

test-actions: .venv-rasa/.ready $(SPACY_PIPELINE) $(MODEL)
	$(RASA_PY) -m pytest -p no:cacheprovider tests/actions tests/rasa

test-rasa: $(MODEL)
	$(RASA) data validate --fail-on-warnings
	$(RASA) test core --model $(MODEL) --stories tests/conversations --out results/conversations --fail-on-prediction-errors --no-plot

test-e2e: setup
	$(APP_PY) -m pytest tests/e2e

# The benchmark: accuracy, held-out split, baseline, latency and memory against
# a stock 'rasa init' model (trained once into build/bench). Not part of make test.
bench: setup
	$(APP_PY) -m bench.run
	$(APP_PY) -m bench.console
	$(APP_PY) -m bench.insight

# The dashboard's queries over a million synthetic conversations (bench/insight.py).
bench-insight: .venv/.ready
	$(APP_PY) -m bench.insight

# Console latency (issue 6): citizen to console websocket and officer reply to the
# channel's API, with 50 conversations queued; writes results/bench-console.json.
bench-console: .venv/.ready
	$(APP_PY) -m bench.console

# The published guidance articles' example questions into data/nlu/admin_examples.yml
# (from the configured database), for the next training; see bot/guidance/nlu_export.py.
export-nlu: .venv/.ready
	$(APP_PY) -m bot.guidance.nlu_export

lint: .venv/.ready
	.venv/bin/ruff check bot tests migrations scripts actions components bench
	.venv/bin/ruff format --check bot tests migrations scripts
	.venv/bin/mypy

clean:
	rm -rf .venv .venv-rasa .tools node_modules build models var results bot/static/vendor

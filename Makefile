# make demo   set up a fresh machine and run the console with a demo worker and traffic
# make test   the same setup, then every test, ruff and mypy (what CI runs: .ci/run)
# make lint   ruff and mypy only
#
# Setup steps are idempotent: a second `make demo` skips what is already done.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Where the demo listens and how many submissions per second its traffic makes.
HOST ?= 127.0.0.1
PORT ?= 8000
RATE ?= 5

.PHONY: help demo test lint format setup deps services
.DEFAULT_GOAL := help

help:
	@sed -n 's/^# \(make .*\)/\1/p' $(firstword $(MAKEFILE_LIST))

demo: setup
	HOST=$(HOST) PORT=$(PORT) RATE=$(RATE) VENV=$(VENV) demo/run_demo.sh

test: setup
	DJANGO_SETTINGS_MODULE=console.test_settings $(PY) manage.py ensure_database
	$(VENV)/bin/pytest
	$(MAKE) --no-print-directory lint

lint: deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy console tasks_admin demo

format: deps
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

setup: deps services

services: deps
	PY=$(PY) demo/services.sh postgres redis rabbitmq

deps: $(VENV)/.installed $(if $(wildcard package.json),node_modules/.installed)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json $(wildcard package-lock.json)
	npm ci --no-audit --no-fund
	touch $@

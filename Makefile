# Two commands on a fresh machine:  `make run` (set up + train on built-in data)  and  `make test`.
# `make test` is the fast lane (tests not marked slow); `make test-slow` runs the rest, `make test-all` both.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: setup run test test-slow test-all bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

run: setup
	mkdir -p runs && $(VENV)/bin/cnnlab train --data digits --epochs 8 --out runs/digits --exist-ok

test: setup
	$(PY) -m pytest -q -m "not slow"

test-slow: setup
	$(PY) -m pytest -q -m slow

test-all: setup
	$(PY) -m pytest -q

clean:
	rm -rf runs .pytest_cache

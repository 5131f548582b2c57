# Two commands on a fresh machine: `make run` (install + the demo on the embedded default model)
# and `make test` (install + the whole test suite, as CI runs it); `make check` is the edit loop's fast lane.
# Python 3.11 (the pinned torch wheels are for it).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE ?= 1

.PHONY: install run test check lint gui screenshot bench clean

install: $(VENV)/.installed

# PYTHONWARNINGS: the mapped resources/ folder makes setuptools print a 10-line notice meant for package developers
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	PYTHONWARNINGS='ignore:Editable installation' $(PY) -m pip install --quiet -e '.[test]'
	touch $@

run: install
	$(VENV)/bin/cots demo

gui: install
	$(VENV)/bin/cots gui

test: install
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -p no:cacheprovider

# The tests not marked slow (learning runs, subprocess end-to-end runs): under 2 minutes on 2 cores.
check: install
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -p no:cacheprovider -m "not slow"

lint: install
	$(VENV)/bin/ruff check app cots_core trainer tests bench

screenshot: install
	QT_QPA_PLATFORM=offscreen $(PY) docs/make_screenshot.py --query "a person" --out docs/screenshot.png

clean:
	rm -rf $(VENV) build *.egg-info

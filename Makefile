# neurodeploy: set-up, main job and tests. Every target is idempotent and starts from nothing.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: setup lava browser demo test clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 (e.g. 'pyenv install 3.11') or run 'make PYTHON=/path/to/python3.11'"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e ".[train,test,spinnaker]"
	# norse 1.1.0 asks for torchvision, whose PyPI build replaces the CPU torch; norse runs without it.
	$(PIP) install -q -c constraints.txt --no-deps norse==1.1.0
	# sinabs 2.0.3 asks for samna, whose PyPI package is a stub that downloads from another index
	# at import time; the exporter tests need only sinabs itself (and pbr).
	$(PIP) install -q -c constraints.txt --no-deps sinabs==2.0.3 pbr==7.1.3
	$(PY) -c "import torch, norse, nir, neurodeploy; print('neurodeploy environment ready: torch', torch.__version__)"
	touch $(STAMP)

# The Lava backend's own environment: Python 3.10, lava-nc 0.10.0, numpy < 2 (.venv-lava).
lava:
	bash scripts/setup_lava.sh

demo: setup lava
	$(PY) -m neurodeploy.models.main_job

# Debian's chromium, for the test that renders the HTML report in a real headless browser.
browser:
	bash scripts/setup_browser.sh

test: setup lava browser
	$(PY) scripts/lint_imports.py
	NEURODEPLOY_REQUIRE_LAVA=1 $(PY) -m pytest -q

clean:
	rm -rf $(VENV) .venv-lava build *.egg-info .pytest_cache

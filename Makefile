# dlterms: make demo | make sweeps | make test | make robustness | make bench | make lint
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
PIP := $(BIN)/pip --disable-pip-version-check -q

.PHONY: demo sweeps test robustness bench lint install install-dev clean browser

$(BIN)/python:
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) (Python 3.11) on PATH, or run: make PY=python3 ..."; exit 1; }
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) install -c constraints.txt -e .
	touch $@

$(DEVSTAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) install -c constraints.txt -e ".[dev]"
	touch $(STAMP) $@

install: $(STAMP)
install-dev: $(DEVSTAMP)

demo: $(STAMP)
	$(BIN)/dlterms run --all --jobs 2 --out results || true
	$(BIN)/dlterms sweep --all-declared --jobs 2 --out results || true
	$(BIN)/dlterms site --results results --out site-build
	@echo "site: $(CURDIR)/site-build/index.html"
	$(BIN)/dlterms summary --results results

# The sweeps the experiments declare (values x seeds each), into results/sweeps/<id>/; the site
# shows them on each term's page. Never touches results/<id>.json or results/seeds/.
sweeps: $(STAMP)
	$(BIN)/dlterms sweep --all-declared --jobs 2 --out results

# Every experiment at seeds 0-4 (seed 0 in results/, seed S in results/seeds/S/), then the report;
# exits 1 when a check failed on some seed or a seed's result is missing.
robustness: $(STAMP)
	$(BIN)/dlterms run --all --seeds 0-4 --jobs 2 --out results || true
	$(BIN)/dlterms robustness --results results --seeds 0-4

browser:
	bash scripts/install-browser.sh

test: $(DEVSTAMP) browser lint
	$(BIN)/python -m pytest -q

bench: $(DEVSTAMP)
	$(BIN)/python -m benchmarks

lint: $(DEVSTAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) results site-build .pytest_cache test-artifacts

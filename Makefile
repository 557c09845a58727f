# Developer and CI entry points for specgen.
#
#   make setup      create .venv with the pinned test environment (+ graphviz, LaTeX)
#   make test       run the test suite
#   make lint       ruff check + ruff format --check
#   make demo       generate code/diagrams for the built-in specs into out/
#   make generated  refresh the checked-in golden output in generated/

SHELL := /bin/bash
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.specgen-setup
PIP    := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: setup graphviz latex demo test generated lint clean

setup: $(STAMP) graphviz latex

# Re-run only when the pins or the project metadata change. requirements/test-nodeps.txt goes in
# without its packages' declared dependencies (compressai's torchvision would break the CPU torch).
$(STAMP): requirements/test.txt requirements/test-nodeps.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install -r requirements/test.txt
	$(PIP) install --no-deps -r requirements/test-nodeps.txt
	$(PIP) install --no-deps --no-build-isolation -e .
	@touch $@

# Debian's graphviz provides `dot`; installed only when it is missing.
graphviz:
	@if ! command -v dot >/dev/null 2>&1; then \
	  if [ "$$(id -u)" -eq 0 ]; then sudo=; \
	  elif command -v sudo >/dev/null 2>&1; then sudo=sudo; \
	  else echo "error: graphviz 'dot' is not on PATH and neither root nor sudo is available;" \
	            "install graphviz by hand" >&2; exit 1; fi; \
	  echo "installing graphviz (dot not found on PATH)"; \
	  $$sudo apt-get update && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y --no-install-recommends graphviz; \
	fi

# pdflatex (TikZ) and pdftoppm draw the feature-map block figures as PDF and PNG. Debian's
# texlive-latex-base, texlive-pictures and poppler-utils; installed only when one is missing.
LATEX_PACKAGES := texlive-latex-base texlive-pictures poppler-utils

latex:
	@if ! command -v pdflatex >/dev/null 2>&1 || ! command -v pdftoppm >/dev/null 2>&1 \
	    || ! kpsewhich tikz.sty >/dev/null 2>&1; then \
	  if [ "$$(id -u)" -eq 0 ]; then sudo=; \
	  elif command -v sudo >/dev/null 2>&1; then sudo=sudo; \
	  else echo "error: pdflatex, TikZ or pdftoppm is missing and neither root nor sudo is" \
	            "available; install $(LATEX_PACKAGES) by hand" >&2; exit 1; fi; \
	  echo "installing $(LATEX_PACKAGES) (pdflatex, TikZ or pdftoppm not found)"; \
	  $$sudo apt-get update && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y --no-install-recommends $(LATEX_PACKAGES); \
	fi

demo: setup
	$(BIN)/specgen generate specs specs/zoo -o out
	$(BIN)/specgen train specs/conv_autoencoder.yaml --set layers=[16,32] -o out -- --epochs 10

test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

generated: setup
	$(BIN)/specgen generate specs specs/zoo -o generated

lint: setup
	$(BIN)/ruff check specgen/ tests/
	$(BIN)/ruff format --check specgen/ tests/

clean:
	rm -rf $(VENV) out build dist .pytest_cache .hypothesis .ruff_cache

# webvid — one-command set-up, tests, demo.
# `make setup` is idempotent: it installs ffmpeg (apt) when ffprobe is missing,
# creates .venv and installs the package editable with its dev extras, torch pinned.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0
STAMP := $(VENV)/.setup-stamp
PYTEST_ARGS ?=

.PHONY: setup test demo lint format clean bench doctor

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@command -v ffprobe >/dev/null 2>&1 || { \
	  echo ">> ffprobe not found: installing ffmpeg with apt"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq ffmpeg; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# torch is pinned first and again with the package so that no resolver step can pick a CUDA build
	$(BIN)/pip install -q --disable-pip-version-check $(TORCH)
	$(BIN)/pip install -q --disable-pip-version-check $(TORCH) -e '.[dev,ray]'
	@touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

demo: setup
	$(BIN)/webvid demo

lint: setup
	$(BIN)/ruff check webvid tests benchmarks
	$(BIN)/ruff format --check webvid tests benchmarks

format: setup
	$(BIN)/ruff format webvid tests benchmarks
	$(BIN)/ruff check --fix webvid tests benchmarks

doctor: setup
	$(BIN)/webvid doctor

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info

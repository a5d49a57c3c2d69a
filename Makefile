# Two commands: `make run` starts the app, `make test` runs every test. Both set everything up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
MODEL  := data/models/SmolLM2-135M-Instruct.Q4_1.gguf
CHROMIUM := /usr/bin/chromium
HOST   ?= 127.0.0.1
PORT   ?= 8501
SUDO   := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
export LITELLM_LOCAL_MODEL_COST_MAP := True
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test bench experiment setup model lint format clean

run: setup
	$(BIN)/streamlit run app.py --server.address $(HOST) --server.port $(PORT) \
		--server.headless true --browser.gatherUsageStats false

test: setup $(VENV)/.stamp-dev $(CHROMIUM)
	$(BIN)/python -m pytest

bench: setup $(VENV)/.stamp-dev $(CHROMIUM)
	$(BIN)/python -m bench

# The shipped multilingual prompts on the embedded model, with N-scaling and judge win rates.
# Resumable: Ctrl-C, then `make experiment` again. LIMIT=5 for a quick look; SET=math or translation.
SET    ?= multilingual
LIMIT  ?=
experiment: setup
	$(BIN)/python -m fusion_core batch --input data/experiments/$(SET).jsonl --out data/runs/$(SET) \
		--n 4 --scaling --selector mbr --max-tokens 128 --fusor-max-tokens 160 --judge-max-tokens 64 \
		--concurrency 2 $(if $(LIMIT),--limit $(LIMIT))

setup: $(VENV)/.stamp-req $(MODEL)

model: $(MODEL)

lint: $(VENV)/.stamp-dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(VENV)/.stamp-dev
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.stamp-req: requirements.txt constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.stamp-dev: requirements-dev.txt $(VENV)/.stamp-req
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# Browser tests drive Debian's Chromium (never a browser download).
$(CHROMIUM):
	$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

$(MODEL): | $(VENV)/.stamp-req
	$(BIN)/python -m fusion_core fetch-model

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

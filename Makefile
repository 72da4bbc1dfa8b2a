# ctmap: every target sets itself up (a local .venv) on a machine with only Python 3.11.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench profile clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)  ## convert the bundled samples and show the summary
	mkdir -p out
	$(BIN)/ctmap convert samples/events.ndjson samples/archive.json.gz -o out/records.ndjson --rejects out/rejects.ndjson; \
	  rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 3 ] || exit $$rc
	@echo "wrote out/records.ndjson and out/rejects.ndjson"

test: $(STAMP)  ## the whole test suite
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check clevertap_mapper cli tests bench
	$(BIN)/mypy

bench: $(STAMP)  ## speed and memory next to a bare orjson floor (BENCH_ARGS="--events 1000000")
	$(BIN)/python bench/run.py $(BENCH_ARGS)

profile: $(STAMP)  ## where convert spends its time, on 50,000 generated events
	$(BIN)/python bench/profile.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache

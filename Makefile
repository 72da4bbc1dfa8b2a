# ctmap: every target sets itself up (a local .venv) on a machine with only Python 3.11.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# COMPILE=0 installs the pure-Python build instead of compiling the hot path (setup.py).
COMPILE ?= 1
STAMP  := $(VENV)/.installed-compile-$(COMPILE)
# The compiled modules ([tool.ctmap] compiled in pyproject.toml) build against the types of
# the modules they import (a NamedTuple compiles to tuple access, a class to attribute access),
# so a change to any module of the package rebuilds.
SOURCES := $(shell find clevertap_mapper -name '*.py')

.PHONY: run test lint bench profile clean

$(STAMP): pyproject.toml setup.py $(SOURCES)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	rm -f $(VENV)/.installed-* *__mypyc*.so clevertap_mapper/*.so clevertap_mapper/*/*.so
	CTMAP_COMPILE=$(COMPILE) $(BIN)/pip install --quiet --config-settings editable_mode=compat -e '.[dev]'
	# The bytecode of the interpreted modules, as pip writes it for an installed package: a
	# process that may not write it (PYTHONDONTWRITEBYTECODE) compiles them at every start.
	$(BIN)/python -m compileall -q cli clevertap_mapper
	$(BIN)/ctmap --version  # says whether the hot path compiled
	touch $(STAMP)

run: $(STAMP)  ## convert the bundled samples and show the summary
	mkdir -p out
	$(BIN)/ctmap convert samples/events.ndjson samples/archive.json.gz -o out/records.ndjson --rejects out/rejects.ndjson; \
	  rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 3 ] || exit $$rc
	@echo "wrote out/records.ndjson and out/rejects.ndjson"

test: $(STAMP)  ## the whole test suite, then the tests of the compiled modules on their source
	$(BIN)/pytest -q
	CTMAP_PURE=1 $(BIN)/pytest -q tests/test_conformance.py tests/test_mapping_default.py \
	  tests/test_properties.py tests/test_paths.py tests/test_checks.py tests/test_explain.py \
	  tests/test_dryrun_cli.py tests/test_workers.py tests/test_input_shapes.py \
	  tests/test_nasty_inputs.py tests/test_upload_plan.py

lint: $(STAMP)
	$(BIN)/ruff check clevertap_mapper cli tests bench setup.py
	$(BIN)/mypy

bench: $(STAMP)  ## speed and memory next to a bare orjson floor (BENCH_ARGS="--events 1000000")
	$(BIN)/python bench/run.py $(BENCH_ARGS)

profile: $(STAMP)  ## where convert spends its time, on 50,000 generated events
	$(BIN)/python bench/profile.py

clean:
	rm -rf $(VENV) out build .pytest_cache .mypy_cache .ruff_cache *__mypyc*.so \
	  clevertap_mapper/*.so clevertap_mapper/*/*.so

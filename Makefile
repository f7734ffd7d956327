# Everything sets itself up: a fresh clone needs only python3 (3.11) and make.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
PIPELINE_ROOT ?= pipelines

.PHONY: demo test test-flink lint bench bench-quick clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip wheel setuptools

# The stamps remember what was installed; editing setup.py or constraints.txt reinstalls.
$(VENV)/.installed: $(BIN)/python setup.py constraints.txt
	$(PIP) install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install --quiet -c constraints.txt -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/python -m beam_ml.run run examples/penguin/pipeline.py --pipeline-root $(PIPELINE_ROOT)/penguin

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

# The Beam-on-Flink test needs Beam's Flink job server jar, which this machine's Maven
# mirror does not serve for Beam 2.77: `make test-flink` runs it where the jar can be had.
test: lint
	$(BIN)/python -m pytest -q -ra -m "not flink_job_server"

test-flink: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -ra -m flink tests/runners

bench: $(VENV)/.installed-test
	$(BIN)/python -m benchmarks --profile

bench-quick: $(VENV)/.installed-test
	$(BIN)/python -m benchmarks --quick

clean:
	rm -rf $(VENV) $(PIPELINE_ROOT) .pytest_cache .ruff_cache

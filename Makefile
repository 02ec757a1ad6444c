# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-fast install-check demo bench clean

$(STAMP): requirements.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# the suite in $(TEST_WORKERS) processes (pytest-xdist); tests/conftest.py says which tests
# stay together on one worker and hands the long ones out first
TEST_WORKERS ?= 2
XDIST = -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test: $(STAMP)
	$(BIN)/python -m pytest -q $(XDIST) --durations=15 tests
	PY=$(abspath $(BIN))/python bash .ci/install_check.sh

# a non-editable install from the local wheel, used from another folder (about a minute)
install-check: $(STAMP)
	PY=$(abspath $(BIN))/python bash .ci/install_check.sh

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q $(XDIST) -m "not slow" tests

demo: $(STAMP)
	bash experiments/demo.sh

bench: $(STAMP)
	$(BIN)/python -m fadenn_tf.bench

clean:
	rm -rf $(VENV) .pytest_cache

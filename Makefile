# Everything runs from the project's own virtualenv; the first target that needs it builds it.
VENV := .venv
PYTHON := $(VENV)/bin/python
export DAGSTER_HOME := $(CURDIR)/data/dagster_home
# Compiled modules are cached between runs, Python's default, which some environments turn off:
# each process would compile the package and the tests again (10 s of make test-fast's CPU).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install demo dev test test-fast bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[test]'
	touch $@

# The Conditional Tokens contract, compiled, as Gnosis published it: the local chain runs it.
CTF_PACKAGE := @gnosis.pm/conditional-tokens-contracts@1.0.3
CTF_ARTIFACT := vendor/conditional-tokens/ConditionalTokens.json

$(CTF_ARTIFACT):
	rm -rf $(@D).partial && mkdir -p $(@D).partial
	cd $(@D).partial && npm pack --silent $(CTF_PACKAGE) > /dev/null && tar -xzf *.tgz package/build/contracts/ConditionalTokens.json
	mkdir -p $(@D) && mv $(@D).partial/package/build/contracts/ConditionalTokens.json $@ && rm -rf $(@D).partial

install: $(VENV)/.installed $(CTF_ARTIFACT)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

# Backfill every shard of data/condition_ids_missing_api.txt offline, then print a summary.
demo: install $(DAGSTER_HOME)/dagster.yaml
	$(PYTHON) -m scripts.offline demo

# The Dagster UI on the demo's data, with the local subgraph replica behind it (`make dev PORT=3001`).
PORT := 3000
dev: install $(DAGSTER_HOME)/dagster.yaml
	$(PYTHON) -m scripts.offline dev --port $(PORT)

# The tests not marked `slow`, a file's tests together, in one worker more than the cores (they
# wait on sockets and rate windows a quarter of the time: 64 s instead of 76 s on 2 cores).
FAST_TESTS := -m "not slow" -n $(shell python3 -c "import os; print(os.cpu_count() + 1)") --dist loadfile

# Everything: the fast tests as above, then the slow ones (servers, daemons, CLI runs, rate
# windows, a kill -9 aimed by timing) one at a time, as they were written to run; both parts
# run, and a failure in either fails the target.
test: install
	$(PYTHON) -m pytest $(FAST_TESTS); fast=$$?; $(PYTHON) -m pytest -m slow && exit $$fast

# The inner loop: the fast tests only.
test-fast: install
	$(PYTHON) -m pytest $(FAST_TESTS)

bench: install
	$(PYTHON) -m scripts.bench $(ARGS)

clean:
	rm -rf data/chdb data/shards data/dagster_home data/subgraph_fixture.csv data/demo

# The two commands a new user runs: `make demo` and `make test`. Both set up what is missing.
.PHONY: setup demo test lint bench megacity db-up db-down clean

PY := .venv/bin/python
GRIDWORK := .venv/bin/gridwork

setup:
	@bash scripts/setup.sh

demo: setup
	$(GRIDWORK) demo

# The suite runs on JOBS pytest-xdist workers (2: this project's CI machine has two cores; auto:
# one per core), each with databases of its own (tests/factory.py), a whole file to one worker
# so that a module's fixtures are built once and its tests run in their order. `make test JOBS=`
# (empty) runs it in this process, one test after another.
JOBS ?= 2
test: setup
	$(PY) -m pytest -q -p no:cacheprovider $(if $(JOBS),-n $(JOBS) --dist loadfile)

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/lint-imports

bench: setup
	$(PY) -m bench.assign

# The megacity of issue 19 under .gridwork/megacity/ (not part of `make test`); SCALE=0.1 for a tenth.
SCALE ?= 1
megacity: setup
	$(PY) -m bench.megacity generate --scale $(SCALE)

db-up: setup
	$(GRIDWORK) db up

db-down:
	$(GRIDWORK) db down

clean: db-down
	rm -rf .gridwork

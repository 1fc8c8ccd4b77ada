# The two commands a new user runs: `make demo` and `make test`. Both set up what is missing.
.PHONY: setup demo test lint bench megacity db-up db-down clean

PY := .venv/bin/python
GRIDWORK := .venv/bin/gridwork

setup:
	@bash scripts/setup.sh

demo: setup
	$(GRIDWORK) demo

test: setup
	$(PY) -m pytest -q -p no:cacheprovider

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

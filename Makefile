# The two commands a new user runs: `make demo` and `make test`. Both set up what is missing.
.PHONY: setup demo test lint bench db-up db-down clean

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

db-up: setup
	$(GRIDWORK) db up

db-down:
	$(GRIDWORK) db down

clean: db-down
	rm -rf .gridwork

# The two commands of the README: `make run` and `make test`. Everything installs into .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export QT_API := pyside6

.PHONY: venv run test lint format bench bundle clean

venv: $(STAMP)

# Re-install only when pyproject.toml changes: a second `make venv` is a no-op.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

run: venv
	$(BIN)/ncl-forensics --samples

# Two workers with one torch thread each: the suite's small models leave a second core idle
# in one process. `make test PYTEST_ARGS=-n0` runs it in one process.
PYTEST_ARGS ?= -n 2
test: venv
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check ncl_core app tests bench
	$(BIN)/ruff format --check ncl_core app tests bench

format: venv
	$(BIN)/ruff format ncl_core app tests bench
	$(BIN)/ruff check --fix ncl_core app tests bench

bench: venv
	$(BIN)/python bench/run_all.py

bundle: venv
	$(BIN)/python -m pip install --quiet -e ".[bundle]"
	$(BIN)/pyinstaller --noconfirm build.spec

clean:
	rm -rf build dist

# The two commands of a fresh machine (see README.md):
#   make demo   installs everything, then runs the live scorer on the bundled demo
#   make test   installs everything, then runs the whole test suite (what CI runs)
.PHONY: demo test test-fast install lint

PYTEST_ARGS ?=

install:
	bash tools/install.sh

demo: install
	.venv/bin/gaitlive run --headless

test: install
	.venv/bin/python -m ruff check src tests tools
	.venv/bin/python -m pytest -q -m "not slow" $(PYTEST_ARGS)
	.venv/bin/python -m pytest -q -m slow $(PYTEST_ARGS)

test-fast: install
	.venv/bin/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

lint: install
	.venv/bin/python -m ruff check src tests tools

# The two commands a newcomer needs: `make run` and `make test`. Only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# A development-only secret: `make run` is local; production sets its own key (see README).
DEV_SECRET := dev-only-secret-do-not-deploy-0123456789
DEMO_ARGS ?= --centers 5 --students 200 --days 14 --seed 7

.PHONY: run test lint check clean

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: $(BIN)/.installed
	JWT_SECRET=$(DEV_SECRET) $(BIN)/flask --app wsgi init-db
	JWT_SECRET=$(DEV_SECRET) $(BIN)/flask --app wsgi demo-data $(DEMO_ARGS)
	@JWT_SECRET=$(DEV_SECRET) $(BIN)/flask --app wsgi demo-curl
	JWT_SECRET=$(DEV_SECRET) BIND=127.0.0.1:8000 $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

test: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check service schemas tests migrations wsgi.py gunicorn.conf.py
	$(BIN)/ruff format --check service schemas tests migrations wsgi.py gunicorn.conf.py
	$(BIN)/mypy service schemas
	$(BIN)/hadolint Dockerfile

check: lint test

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache

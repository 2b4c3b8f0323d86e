# The two commands a newcomer needs: `make run` and `make test`. Only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# A development-only secret: `make run` is local; production sets its own key (see README).
DEV_SECRET := dev-only-secret-do-not-deploy-0123456789
DEMO_ARGS ?= --centers 5 --students 200 --days 14 --seed 7

.PHONY: run test lint check clean bench bench-ci scale-packages scale-check

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# The benchmark's own tools: matplotlib and pyinstrument (the `bench` extra), and Debian's wrk.
$(BIN)/.bench-installed: $(BIN)/.installed setup.cfg
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	command -v wrk >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk)
	touch $@

FLASK := JWT_SECRET=$(DEV_SECRET) $(BIN)/flask --app wsgi

run: $(BIN)/.installed
	$(FLASK) init-db
	$(FLASK) demo-data --replace $(DEMO_ARGS)
	@echo
	@echo "Swagger UI: http://127.0.0.1:8000/docs (Authorize with a token below; they last 12 hours)"
	@echo "Student ST-000001, their own encounters:"
	@echo "  curl -s -H 'Authorization: Bearer $$($(FLASK) issue-token ST-000001 --ttl 43200)' http://127.0.0.1:8000/users/me/encounters"
	@echo "Staff member SM-0001 (works at C-001), ST-000001's encounters:"
	@echo "  curl -s -H 'Authorization: Bearer $$($(FLASK) issue-token SM-0001 --role StaffMember --ttl 43200)' http://127.0.0.1:8000/users/ST-000001/encounters"
	@echo
	JWT_SECRET=$(DEV_SECRET) BIND=127.0.0.1:8000 $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

test: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check service schemas tests migrations bench wsgi.py gunicorn.conf.py
	$(BIN)/ruff format --check service schemas tests migrations bench wsgi.py gunicorn.conf.py
	$(BIN)/mypy service schemas
	$(BIN)/hadolint Dockerfile

check: lint test

# The performance benchmark (docs/performance.md): 10k, 100k and 1M encounters on PostgreSQL
# (databases bench_10k, bench_100k, bench_1m, built once), then docs/latency.png.
BENCH_ARGS ?=
bench: $(BIN)/.bench-installed
	$(BIN)/python -m bench.perf $(BENCH_ARGS)
	$(BIN)/python -m bench.plot

# Small and fast (< 2 min): checks the SQL count per request and that every answer is a 200, not
# timings. Uses BENCH_DATABASE_URL (emptied) or a temporary database it drops.
bench-ci: $(BIN)/.bench-installed
	$(BIN)/python -m bench.perf --ci

# Debian's PgBouncer, HAProxy and wrk (scale-check; tests/test_pgbouncer.py). Should the package start
# its own service, that is stopped and disabled: scale-check starts its own, on its own ports.
scale-packages:
	@if ! command -v pgbouncer >/dev/null || ! command -v haproxy >/dev/null || ! command -v wrk >/dev/null; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer haproxy wrk && \
		for unit in pgbouncer haproxy; do \
			(invoke-rc.d $$unit stop; update-rc.d $$unit disable) >/dev/null 2>&1 || true; \
		done; \
	fi

# The scale-out proof (docs/scaling.md): a streaming replica on 5433, PgBouncer on 6432, 3 gunicorn
# instances behind HAProxy, all on 127.0.0.1; < 4 min. Root, PostgreSQL 15 on 5432.
# SCALE_REPLICA_PORT and SCALE_PGBOUNCER_PORT move it to other ports.
scale-check: $(BIN)/.bench-installed scale-packages
	$(BIN)/python -m bench.scale_check

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache

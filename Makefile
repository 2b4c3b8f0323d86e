# The two commands a newcomer needs: `make run` and `make test`. Only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --quiet
# A development-only secret: `make run` is local; production sets its own key (see README).
DEV_SECRET := dev-only-secret-do-not-deploy-0123456789
# The demo's own database file: the data commands default to instance/encounters.db, which
# `make run` never touches, so data loaded with `load-data` survives it.
DEMO_DATABASE_URL := sqlite:///instance/demo.db
DEMO_ARGS ?= --centers 5 --students 200 --days 14 --seed 7
ROLE ?=
TTL ?= 43200
RUN_PORT ?= 8000

.PHONY: run token test readme-test lint check clean bench bench-sizes bench-ci bench-load lock peer-lock kube-check image-check scale-packages scale-check client-test

# Serving needs the runtime lock only (requirements.txt); the code runs from this folder, so the
# project itself is not installed. pip checks every file against the lock's hashes.
$(BIN)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes -r requirements.txt
	touch $@

# Tests, lint, the benchmark's Python tools and the repository's own tools (pip-tools,
# pre-commit) and kubernetes-validate: the dev lock, the runtime lock plus the test, bench, dev
# and deploy extras. Then the Python client (clients/python), editable, for the tests that call
# the live service with it: its one dependency, httpx, and the setuptools that builds it are in
# the dev lock, so nothing unpinned is installed (--no-deps, --no-build-isolation).
CLIENT := clients/python
$(BIN)/.dev-installed: $(BIN)/.installed requirements-dev.txt $(CLIENT)/pyproject.toml
	$(PIP) install --require-hashes -r requirements-dev.txt
	$(PIP) install --no-deps --no-build-isolation --editable $(CLIENT)
	touch $@

# The benchmark also needs Debian's wrk.
$(BIN)/.bench-installed: $(BIN)/.dev-installed
	command -v wrk >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk)
	touch $@

FLASK := JWT_SECRET=$(DEV_SECRET) $(BIN)/flask --app wsgi
DEMO_FLASK := DATABASE_URL=$(DEMO_DATABASE_URL) $(FLASK)

run: $(BIN)/.installed
	$(DEMO_FLASK) init-db
	$(DEMO_FLASK) demo-data --replace $(DEMO_ARGS)
	@echo
	@echo "Swagger UI: http://127.0.0.1:$(RUN_PORT)/docs (Authorize with a token from 'make token USER=ST-000001')"
	@echo "Student ST-000001, their own encounters:"
	@echo "  curl -s -H \"Authorization: Bearer \$$(make -s token USER=ST-000001)\" http://127.0.0.1:$(RUN_PORT)/users/me/encounters"
	@echo "Staff member SM-0001 (works at C-001), ST-000001's encounters:"
	@echo "  curl -s -H \"Authorization: Bearer \$$(make -s token USER=SM-0001)\" http://127.0.0.1:$(RUN_PORT)/users/ST-000001/encounters"
	@echo
	DATABASE_URL=$(DEMO_DATABASE_URL) JWT_SECRET=$(DEV_SECRET) BIND=127.0.0.1:$(RUN_PORT) $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

# A development token that the `make run` server accepts: `make token USER=SM-0001 [ROLE=…] [TTL=…]`.
# The role defaults to the user's role in the demo database; any ROLE is minted (try ROLE=Admin).
token: $(BIN)/.installed
ifneq ($(origin USER),command line)
	@echo "say whose token: make token USER=ST-000001 (any identifier: reference id, email or id)" >&2; exit 2
endif
	@$(DEMO_FLASK) issue-token '$(USER)' --ttl $(TTL) $(if $(ROLE),--role '$(ROLE)')

test: $(BIN)/.dev-installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The README's and docs/' commands, run as written in a fresh copy (tests/test_readme.py).
readme-test: $(BIN)/.dev-installed
	$(BIN)/python -m pytest -m readme tests/test_readme.py $(PYTEST_ARGS)

LINTED := service schemas tests migrations bench deploy/kubernetes wsgi.py gunicorn.conf.py $(CLIENT)
lint: $(BIN)/.dev-installed
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy -p service -p schemas -p bench
	cd $(CLIENT) && ../../$(BIN)/mypy src tests
	$(BIN)/hadolint Dockerfile

check: lint test

# The lockfiles, from setup.cfg: run after changing a dependency there, and commit both files.
# Existing pins are kept unless LOCK_ARGS says otherwise (`LOCK_ARGS=--upgrade`, or
# `LOCK_ARGS='--upgrade-package flask'`). Only the registry is asked: no local wheel folders or
# mirrors that this machine's pip configuration may name (behind a mirror, `make lock LOCK_ENV=`).
LOCK_ARGS ?=
LOCK_ENV ?= env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null
PIP_COMPILE := $(LOCK_ENV) CUSTOM_COMPILE_COMMAND="make lock" \
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe \
	--strip-extras --no-emit-index-url --no-emit-find-links $(LOCK_ARGS)
lock: $(BIN)/.dev-installed
	$(PIP_COMPILE) --output-file requirements.txt setup.cfg
	$(PIP_COMPILE) --extra test --extra bench --extra dev --extra deploy --constraint requirements.txt \
		--output-file requirements-dev.txt setup.cfg
	$(PIP_COMPILE) --extra test --constraint requirements-dev.txt \
		--output-file $(CLIENT)/requirements-test.txt $(CLIENT)/pyproject.toml

# The client on its own (clients/python/README.md): a venv with nothing but its lock (httpx, and
# pytest and mypy to test it), the package built and installed as a caller installs it, its
# tests against a stub server, and mypy --strict. The tests against the live service are the
# main suite's (tests/test_client_live.py).
CLIENT_VENV := $(CLIENT)/.venv
$(CLIENT_VENV)/bin/.installed: $(CLIENT)/requirements-test.txt
	rm -rf $(CLIENT_VENV)
	$(PYTHON) -m venv $(CLIENT_VENV)
	$(CLIENT_VENV)/bin/python -m pip --quiet install --require-hashes -r $(CLIENT)/requirements-test.txt
	touch $@
client-test: $(CLIENT_VENV)/bin/.installed
	$(CLIENT_VENV)/bin/python -m pip --quiet install --no-deps --force-reinstall $(CLIENT)
	cd $(CLIENT) && .venv/bin/python -m pytest $(PYTEST_ARGS)
	cd $(CLIENT) && .venv/bin/mypy src tests

# The peer of the side-by-side benchmark (FastAPI + asyncpg + orjson, bench/peer/): its own venv,
# from its own hash-pinned lock; the service's venv never holds it.
PEER_VENV := .venv-peer
$(PEER_VENV)/bin/.installed: bench/peer/requirements.txt
	$(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip --quiet install --require-hashes -r bench/peer/requirements.txt
	touch $@

# The peer's lock, from bench/peer/requirements.in (as `make lock`, for the peer alone).
peer-lock: $(BIN)/.dev-installed
	$(LOCK_ENV) CUSTOM_COMPILE_COMMAND="make peer-lock" $(BIN)/pip-compile --quiet --generate-hashes \
		--allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links $(LOCK_ARGS) \
		--output-file bench/peer/requirements.txt bench/peer/requirements.in

# The performance benchmark (docs/performance.md): this service side by side with its peer on the
# standard world (loaded once with init-db and load-data into database bench_world), 20- and
# 256-item answers at 16 connections. bench-sizes: the per-size run (10k, 100k, 1M encounters of
# demo-data) and docs/latency.png.
BENCH_ARGS ?=
bench: $(BIN)/.bench-installed $(PEER_VENV)/bin/.installed
	$(BIN)/python -m bench.versus $(BENCH_ARGS)

bench-sizes: $(BIN)/.bench-installed
	$(BIN)/python -m bench.perf $(BENCH_ARGS)
	$(BIN)/python -m bench.plot

# load-data of the standard world (about 100 MB) beside a plain COPY of the same rows, on
# PostgreSQL (docs/data.md): databases bench_load_* on BENCH_LOAD_ARGS' --server, dropped after.
BENCH_LOAD_ARGS ?= --twice
bench-load: $(BIN)/.dev-installed
	$(BIN)/python -m bench.load_data $(BENCH_LOAD_ARGS)

# Small and fast (< 2 min): checks the SQL count per request and that every answer is a 200, not
# timings. Uses BENCH_DATABASE_URL (emptied) or a temporary database it drops.
bench-ci: $(BIN)/.bench-installed
	$(BIN)/python -m bench.perf --ci

# deploy/kubernetes rendered by `kubectl kustomize` (the base and each overlay), validated strictly
# and offline against Kubernetes 1.32, and held to docs/kubernetes.md's promises.
# kubernetes-validate comes with the dev lock (the `deploy` extra); kubectl with Kustomize 5.5 with
# the machine.
kube-check: $(BIN)/.dev-installed
	$(BIN)/python deploy/kubernetes/check.py

# The Dockerfile built with podman and run against PostgreSQL on 127.0.0.1:5432 (as root; needs
# podman, runc, debootstrap: .ci/run installs them). docs/image.md tells what it proves.
image-check:
	bash deploy/image/check.sh

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
# instances behind HAProxy, and for the failover a primary and standby of its own (free ports from
# 5434), all on 127.0.0.1; < 4 min. Root, PostgreSQL 15 on 5432 (never stopped).
# SCALE_REPLICA_PORT and SCALE_PGBOUNCER_PORT move it to other ports.
scale-check: $(BIN)/.bench-installed scale-packages
	$(BIN)/python -m bench.scale_check

# Keeps instance/encounters.db and the rest of instance/: data loaded with `load-data` is yours.
clean:
	rm -rf $(VENV) $(PEER_VENV) $(CLIENT_VENV) .pytest_cache .mypy_cache .ruff_cache
	rm -f instance/demo.db

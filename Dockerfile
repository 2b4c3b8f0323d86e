# The encounters service under gunicorn, as a non-root user.
#   build:      docker build -t encounters .
#   migrate:    docker run --rm --env-file encounters.env encounters flask --app wsgi init-db
#   run:        docker run --env-file encounters.env -p 8000:8000 --stop-timeout 30 encounters
# Migrations are a separate, explicit step (a release job), never run by the server at start.

# --- build: the dependencies, in a virtual environment copied whole into the runtime image
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Exactly the runtime lock (`make lock` writes it from setup.cfg), every file checked against its
# hash. The project itself is not installed: the code runs from /app, beside migrations/ (which
# service/admin/migrate.py finds next to service/).
COPY requirements.txt ./
RUN pip install --no-cache-dir --require-hashes -r requirements.txt

# --- runtime: slim Python, the venv, the code; nothing to compile, no build tools
FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8000
RUN groupadd --system --gid 10001 encounters \
    && useradd --system --uid 10001 --gid encounters --no-create-home --shell /usr/sbin/nologin encounters
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY wsgi.py gunicorn.conf.py alembic.ini ./
COPY service ./service
COPY schemas ./schemas
COPY migrations ./migrations
# Only the embedded SQLite default writes here; production sets DATABASE_URL to PostgreSQL.
RUN mkdir instance && chown encounters:encounters instance
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "service.ops.probe"]
CMD ["gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"]

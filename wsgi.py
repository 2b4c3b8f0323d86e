"""The WSGI entry point: `gunicorn wsgi:app` and `flask --app wsgi ...`."""

import os
import sys

import click

from service.app import create_app
from service.config import ConfigError

# gunicorn's "worker failed to boot" status: the master stops rather than respawn forever.
WORKER_BOOT_ERROR = 3


def serves_requests() -> bool:
    """Whether this import will serve requests, and so needs the token key.

    The flask CLI sets FLASK_RUN_FROM_CLI before it imports the app. Its data commands (init-db,
    load-data, demo-data, openapi write) need only the database settings; issue-token checks the
    token key itself. `flask run` loads the app inside its own command, so it serves; so does any
    other importer (gunicorn's workers, another WSGI server).
    """
    if os.environ.get("FLASK_RUN_FROM_CLI") != "true":
        return True
    command = click.get_current_context(silent=True)
    return command is not None and command.info_name == "run"


try:
    app = create_app(token_key=serves_requests())
except ConfigError as error:
    print(f"encounters: configuration error: {error}", file=sys.stderr)
    sys.exit(WORKER_BOOT_ERROR)

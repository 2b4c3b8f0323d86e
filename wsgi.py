"""The WSGI entry point: `gunicorn wsgi:app` and `flask --app wsgi ...`."""

import os
import sys

from service.app import create_app
from service.config import ConfigError

# gunicorn's "worker failed to boot" status: the master stops rather than respawn forever.
WORKER_BOOT_ERROR = 3

# The flask CLI sets this before it imports the app. Its data commands (init-db, load-data,
# demo-data, openapi write) need only the database settings; issue-token checks the token key
# itself. Any other importer (gunicorn's workers, another WSGI server) serves: it needs the key.
FLASK_COMMAND = os.environ.get("FLASK_RUN_FROM_CLI") == "true"

try:
    app = create_app(token_key=not FLASK_COMMAND)
except ConfigError as error:
    print(f"encounters: configuration error: {error}", file=sys.stderr)
    sys.exit(WORKER_BOOT_ERROR)

"""The WSGI entry point: `gunicorn wsgi:app` and `flask --app wsgi ...`."""

import sys

from service.app import create_app
from service.config import ConfigError

# gunicorn's "worker failed to boot" status: the master stops rather than respawn forever.
WORKER_BOOT_ERROR = 3

try:
    app = create_app()
except ConfigError as error:
    print(f"encounters: configuration error: {error}", file=sys.stderr)
    sys.exit(WORKER_BOOT_ERROR)

"""The WSGI entry point: `gunicorn wsgi:app` and `flask --app wsgi ...`."""

import sys

from service import create_app
from service.config import ConfigError

try:
    app = create_app()
except ConfigError as error:
    sys.exit(f"encounters: configuration error: {error}")

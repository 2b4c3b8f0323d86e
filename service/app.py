"""The app factory: settings, database, operations hooks, the API and its blueprints."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import partial
from typing import Any

from flask import Flask, Response, request

from service.admin.cli import register_commands
from service.config import ConfigError, Settings
from service.db import db
from service.directory import TimedResolver, load_resolver
from service.ops.docs_ui import ASSETS_URL, SWAGGER_UI_CONFIG
from service.ops.docs_ui import blp as swagger_ui_blp
from service.ops.health import blp as health_blp
from service.ops.logs import init_access_log
from service.ops.metrics import init_metrics, observe_resolver
from service.ops.request_ids import init_request_ids
from service.problems import Api, register_error_handlers
from service.representations import OrjsonProvider
from service.routing import Staleness
from service.tokens import TokenVerifier
from service.views import IdentifierConverter
from service.views import blp as encounters_blp

API_TITLE = "Encounters"
API_VERSION = "1.0.0"


def create_app(config: Mapping[str, Any] | None = None, *, token_key: bool = True) -> Flask:
    """Build the app from `config` (upper-case names), or from the environment when None.

    `token_key=False` builds it for the data commands, which need only the database settings:
    without a usable token key, its requests fail (500, the reason logged) rather than its start.
    """
    values = os.environ if config is None else config
    settings = Settings.from_mapping(values, token_key=False)
    unusable_key: ConfigError | None = None
    try:
        settings = settings.with_token_key()
    except ConfigError as error:
        if token_key:
            raise
        unusable_key = error
    app = Flask(__name__, static_folder=None)
    app.json = OrjsonProvider(app)
    app.config.update(
        API_TITLE=API_TITLE,
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL=ASSETS_URL,
        OPENAPI_SWAGGER_UI_CONFIG=SWAGGER_UI_CONFIG,
        API_SPEC_OPTIONS={
            "info": {"description": "Lists the encounters (classes) a user can book or see."},
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
                }
            },
        },
    )
    app.extensions["encounters.settings"] = settings
    db.init_app(
        app,
        settings.database_url,
        replica_url=settings.database_replica_url,
        prepared_statements=settings.database_prepared_statements,
        # OpenTelemetry's SQL spans live on SQLAlchemy's execution context: traced reads keep it.
        driver_cursor=not settings.tracing,
        staleness=Staleness(
            settings.database_replica_max_lag_seconds, settings.database_replica_fallback
        ),
    )
    init_request_ids(app)
    init_access_log(app)
    init_metrics(app)

    # flask-smorest's Api keeps one OpenAPI document per app, so each app gets its own.
    api = Api(app)
    app.url_map.converters["identifier"] = IdentifierConverter
    api.register_converter(IdentifierConverter, lambda _converter: {"type": "string"})
    api.register_blueprint(encounters_blp)
    api.register_blueprint(health_blp)
    app.register_blueprint(swagger_ui_blp)
    register_error_handlers(app)
    app.after_request(_sorted_allow)

    if unusable_key is None:
        app.extensions["encounters.verifier"] = TokenVerifier(settings)
    else:
        app.before_request(partial(_refuse_to_serve, unusable_key))
    app.extensions["encounters.resolver"] = TimedResolver(
        load_resolver(app, settings.user_resolver), observe_resolver
    )
    if settings.tracing:
        # Imported only when on: with tracing off, nothing of OpenTelemetry loads or runs.
        from service.ops.tracing import init_tracing

        init_tracing(app)
    register_commands(app)
    return app


def _sorted_allow(response: Response) -> Response:
    """One `Allow` order (GET, HEAD, OPTIONS), whatever order werkzeug's set of methods has."""
    # Only werkzeug's 405 and Flask's answer to OPTIONS carry one: others skip the header scan.
    if (response.status_code == 405 or request.method == "OPTIONS") and "Allow" in response.headers:
        methods = sorted(m.strip() for m in response.headers["Allow"].split(","))
        response.headers["Allow"] = ", ".join(methods)
    return response


def _refuse_to_serve(reason: ConfigError) -> None:
    """An app built for the data commands serves nothing: its token settings are unusable."""
    raise reason

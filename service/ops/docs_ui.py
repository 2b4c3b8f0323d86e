"""Swagger UI's files, served by the service itself: internal networks reach no CDN."""

from __future__ import annotations

from flask import Blueprint, send_from_directory
from swagger_ui_bundle import swagger_ui_path
from werkzeug import Response

ASSETS_URL = "/docs/assets/"
# No validator badge: it would send the document to an outside service, which is not reachable.
SWAGGER_UI_CONFIG = {"validatorUrl": None, "displayRequestDuration": True, "tryItOutEnabled": False}
_ASSETS_MAX_AGE_SECONDS = 24 * 3600

blp = Blueprint("swagger_ui_assets", __name__)


@blp.route(f"{ASSETS_URL}<path:filename>", methods=["GET"])
def swagger_ui_asset(filename: str) -> Response:
    """One file of the swagger-ui distribution bundled by swagger-ui-bundle-v2."""
    # send_from_directory refuses paths that leave the folder (404), so `filename` is safe.
    return send_from_directory(str(swagger_ui_path), filename, max_age=_ASSETS_MAX_AGE_SECONDS)

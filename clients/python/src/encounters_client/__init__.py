"""A typed client of the encounters service: `GET /users/{userIdentifier}/encounters`.

with EncountersClient("https://encounters.internal", token=token) as client:
    encounters = client.list_encounters("ST-000123")
"""

from encounters_client.async_client import AsyncEncountersClient
from encounters_client.calls import __version__
from encounters_client.client import EncountersClient
from encounters_client.errors import (
    EncountersError,
    Forbidden,
    InvalidParameters,
    NotAcceptable,
    NotFound,
    Unauthenticated,
    Unavailable,
    problem_error,
)
from encounters_client.models import Encounter, Status

__all__ = [
    "AsyncEncountersClient",
    "Encounter",
    "EncountersClient",
    "EncountersError",
    "Forbidden",
    "InvalidParameters",
    "NotAcceptable",
    "NotFound",
    "Status",
    "Unauthenticated",
    "Unavailable",
    "__version__",
    "problem_error",
]

"""The HTTP view: `GET /users/{userIdentifier}/encounters`, one request top to bottom."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, request
from flask_smorest import Blueprint
from marshmallow import EXCLUDE, Schema, ValidationError
from werkzeug import Response
from werkzeug.routing import PathConverter

from schemas.encounters import EncounterQuerySchema, EncounterSchema
from service.directory import DirectoryUser, UserResolver, resolve_listing
from service.encounters import InvalidQuery, ListQuery, Window, encounters_json
from service.identifiers import (
    ME,
    InvalidIdentifier,
    UserIdentifier,
    parse_identifier,
)
from service.policy import Caller, Decision, may_view
from service.problems import FORBIDDEN_DETAIL, NOT_FOUND_DETAIL, abort, field_errors
from service.representations import JSON_TYPES, json_response, negotiate
from service.tokens import Principal, TokenVerifier


class IdentifierConverter(PathConverter):
    """A path segment that may hold `/` (sent as %2F) and control characters, for a clear 400."""

    # Unlike `path`, a leading '/' (%2Fabc) is allowed too, so every identifier reaches the
    # parser; part_isolating is set because werkzeug guesses it from a '/' in the regex.
    regex = "(?s:.+?)"
    part_isolating = False


blp = Blueprint(
    "encounters",
    __name__,
    description="The encounters a student can book or a staff member can see.",
)

_USER_IDENTIFIER = {
    "in": "path",
    "name": "userIdentifier",
    "required": True,
    "schema": {"type": "string", "maxLength": 254},
    "description": "A GUID (D, N, B or P format), an email, a reference id (`/` as %2F), "
    "`me`, or explicit `id:`, `email:` or `ref:` followed by one of those.",
}
_LIST_HEADERS = {
    "ETag": {"schema": {"type": "string"}, "description": "Strong validator."},
    "Cache-Control": {"schema": {"type": "string", "example": "private, no-cache"}},
}
_LIST_DESCRIPTION = "The encounters, by start then Id."
_View = TypeVar("_View", bound=Callable[..., Any])
_QUERY = EncounterQuerySchema()


def documented(*decorators: Callable[[Any], Any]) -> Callable[[_View], _View]:
    """flask-smorest's documenting decorators (listed as they would be stacked), doc alone.

    Each of them wraps the view in a function that only calls it, through `current_app` and
    `ensure_sync` (about 1.5 µs a layer a request). The view gets the documentation they write
    (`_apidoc`, which flask-smorest reads when the route is registered) without their layers.
    """

    def decorator(view: _View) -> _View:
        wrapped = view
        for document in reversed(decorators):
            wrapped = document(wrapped)
        view._apidoc = wrapped._apidoc  # type: ignore[attr-defined]
        return view

    return decorator


def query_arguments(schema: Schema) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Then the query's arguments, loaded by `schema`: the view's first argument, or a 400.

    What flask-smorest's `arguments` (webargs) did here, with the same schema and errors, less
    webargs' machinery for every location and kind of field (a twentieth of a request's CPU):
    an argument given twice is refused (`unit=1&unit=2` has no one meaning), unknown ones are
    ignored. The document's parameters still come from `arguments`, in `documented`.
    """
    names = [field.data_key or name for name, field in schema.fields.items()]

    def decorator(view: Callable[..., Response]) -> Callable[..., Response]:
        @wraps(view)
        def with_query(*args: Any, **kwargs: Any) -> Response:
            given = request.args
            repeated = [name for name in names if len(given.getlist(name)) > 1]
            if repeated:
                raise InvalidQuery({name: ["Given more than once."] for name in repeated})
            try:
                query = schema.load(given.to_dict(), unknown=EXCLUDE)
            except ValidationError as error:
                raise InvalidQuery(field_errors(error.messages)) from None
            return view(query, *args, **kwargs)

        return with_query

    return decorator


def negotiated(view: Callable[..., Response]) -> Callable[..., Response]:
    """First, the media type to answer with, from `Accept` (a 406 when it admits neither)."""

    @wraps(view)
    def with_media_type(*args: Any, **kwargs: Any) -> Response:
        return view(*args, mimetype=negotiate(), **kwargs)

    return with_media_type


def authenticated(view: Callable[..., Response]) -> Callable[..., Response]:
    """Then the bearer token, verified (a 401) before any argument of the request is read."""

    @wraps(view)
    def with_principal(*args: Any, **kwargs: Any) -> Response:
        verifier: TokenVerifier = current_app.extensions["encounters.verifier"]
        principal = verifier.authenticate(request.headers.get("Authorization"))
        return view(*args, principal=principal, **kwargs)

    return with_principal


# merge_slashes=False: a reference id with '//' (sent as %2F%2F) must reach the parser as sent,
# not be redirected (308) to the path of another identifier.
@blp.route(
    "/users/<identifier:userIdentifier>/encounters",
    methods=["GET"],
    merge_slashes=False,
    parameters=[_USER_IDENTIFIER],
)
@negotiated
@authenticated
@query_arguments(_QUERY)
# One 200 in both media types: flask-smorest merges the responses documented for a status.
@blp.response(200, EncounterSchema(many=True), description=_LIST_DESCRIPTION, headers=_LIST_HEADERS)
@documented(
    blp.arguments(_QUERY, location="query", error_status_code=400),  # not webargs' 422
    blp.alt_response(
        200,
        schema=EncounterSchema(many=True),
        content_type=JSON_TYPES[1],
        description=_LIST_DESCRIPTION,
    ),
    blp.alt_response(304, description="Not Modified: the If-None-Match ETag still matches."),
    blp.alt_response(400, "InvalidParameters"),
    blp.alt_response(401, "Unauthenticated"),
    blp.alt_response(403, "Forbidden"),
    blp.alt_response(404, "NotFound"),
    blp.alt_response(406, "NotAcceptable"),
    blp.alt_response(503, "Unavailable"),
    blp.doc(security=[{"bearerAuth": []}]),
)
def list_encounters(
    query: dict[str, Any], userIdentifier: str, mimetype: str, principal: Principal
) -> Response:
    """List the encounters a user can book (a student) or see (a staff member)."""
    target_identifier = parse_identifier(userIdentifier)
    settings = current_app.extensions["encounters.settings"]
    window = Window.of(
        query.get("starts"),
        query.get("ends"),
        default_days=settings.encounter_window_days,
        max_days=settings.encounter_max_window_days,
    )
    listing = ListQuery(window, query.get("unit"), query.get("online"))
    caller, target, body = _caller_and_target(principal, target_identifier, listing)
    decision = may_view(caller, target)
    if decision is Decision.FORBIDDEN:
        abort(403, FORBIDDEN_DETAIL)
    if decision is Decision.NOT_FOUND or target is None:
        abort(404, NOT_FOUND_DETAIL)
    if body is None:  # not read along with the directory's answer
        body = encounters_json(target, *listing)
    return json_response(body, mimetype)


def _caller_and_target(
    principal: Principal, target_identifier: UserIdentifier, listing: ListQuery
) -> tuple[Caller, DirectoryUser | None, bytes | None]:
    """The caller and the target as the directory knows them, in one resolver call; and the
    target's list when the resolver read it along (`service.directory.resolve_listing`)."""
    resolver: UserResolver = current_app.extensions["encounters.resolver"]
    settings = current_app.extensions["encounters.settings"]
    subject = _subject_identifier(principal.subject, settings.jwt_subject_kinds)
    if subject is None:
        return Caller(None, principal.roles), None, None
    me = target_identifier == ME
    identifiers = [subject] if me else [subject, target_identifier]
    users, body = resolve_listing(resolver, identifiers, listing)
    return Caller(users[0], principal.roles), users[-1], body


def _subject_identifier(subject: str, kinds: frozenset[str]) -> UserIdentifier | None:
    """The token subject as an identifier; one that names nobody is None (a 403).

    Nobody: `me`, a malformed subject, or one of a kind JWT_SUBJECT_KINDS leaves out (an email
    or a reference id can pass to another user; a GUID never does).
    """
    try:
        identifier = parse_identifier(subject)
    except InvalidIdentifier:
        return None
    return identifier if identifier.kind.value in kinds else None


# `/users//encounters` names an empty identifier: a 400 like any malformed one, not a routing 404.
blp.record(
    lambda state: state.app.add_url_rule(
        "/users//encounters",
        endpoint="empty_identifier",
        view_func=state.app.view_functions[f"{blp.name}.list_encounters"],
        defaults={"userIdentifier": ""},
        merge_slashes=False,
    )
)

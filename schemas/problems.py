"""RFC 9457 problem details: the one error shape of every status."""

from __future__ import annotations

from marshmallow import Schema, fields


class ProblemSchema(Schema):
    """An error body (`application/problem+json`)."""

    type = fields.String(required=True, metadata={"example": "about:blank"})
    title = fields.String(required=True, metadata={"example": "Not Found"})
    status = fields.Integer(required=True, metadata={"example": 404})
    detail = fields.String(required=True)
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "On 400: each invalid field and its messages."},
    )
    request_id = fields.String(required=True, metadata={"description": "Also in X-Request-ID."})

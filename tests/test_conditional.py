"""`json_response` answers exactly as werkzeug's setters and `make_conditional` answered.

It writes its headers in one list and calls `make_conditional` only when the request carries a
validator; the reference below is the code it replaced. Same status, same headers in the same
order, same body, for every combination of method and validators, and the same Date.
"""

from __future__ import annotations

import itertools
import time

import pytest
from flask import Flask, current_app, request
from flask.testing import FlaskClient
from werkzeug import Response
from werkzeug.http import http_date

from service import representations
from service.representations import _etag, json_response
from tests.dataset import Dataset
from tests.tokens import Tokens

BODY = b'[{"id": 1}]'
ETAG = f'"{_etag("application/json", BODY)}"'
VALIDATORS = [None, ETAG, f"W/{ETAG}", '"stale"', "*", f'"stale", {ETAG}', ""]


def _reference(body: bytes, mimetype: str) -> Response:
    response = current_app.response_class(body, mimetype=mimetype)
    response.content_type = f"{mimetype}; charset=utf-8"
    response.set_etag(_etag(mimetype, body))
    response.headers["Cache-Control"] = "private, no-cache"
    response.vary.update(("Authorization", "Accept"))
    return response.make_conditional(request)


def _answer(response: Response) -> tuple[str, list[tuple[str, str]], bytes]:
    return response.status, response.headers.to_wsgi_list(), response.get_data()


@pytest.mark.parametrize("mimetype", ["application/json", "text/json"])
@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
def test_every_answer_is_the_references(app: Flask, mimetype: str, method: str) -> None:
    for if_none_match, if_match in itertools.product(VALIDATORS, VALIDATORS):
        headers = {"Range": "bytes=0-1", "If-Modified-Since": http_date(0)}
        if if_none_match is not None:
            headers["If-None-Match"] = if_none_match
        if if_match is not None:
            headers["If-Match"] = if_match
        with app.test_request_context("/", method=method, headers=headers):
            for _ in range(3):  # the same second for both, or try again
                expected, answer = (
                    _answer(_reference(BODY, mimetype)),
                    _answer(json_response(BODY, mimetype)),
                )
                if expected == answer:
                    break
            assert answer == expected, headers


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.998, 0.999, 0.9999996, 0.99999999])
def test_the_date_is_werkzeugs(monkeypatch: pytest.MonkeyPatch, fraction: float) -> None:
    for second in (1_700_000_000, 1_700_000_001):
        monkeypatch.setattr(time, "time", lambda now=second + fraction: now)
        assert representations.http_date() == http_date()


def test_the_header_order_of_whole_answers(
    client: FlaskClient, dataset: Dataset, tokens: Tokens
) -> None:
    ok = client.get("/users/me/encounters", headers=tokens.header())
    assert list(ok.headers.keys()) == [
        "Content-Type",
        "Content-Length",
        "ETag",
        "Cache-Control",
        "Vary",
        "Date",
        "X-Request-ID",
    ]
    etag = ok.headers["ETag"]
    again = client.get("/users/me/encounters", headers={**tokens.header(), "If-None-Match": etag})
    assert again.status_code == 304 and list(again.headers.keys()) == [
        "ETag",
        "Cache-Control",
        "Vary",
        "Date",
        "X-Request-ID",
    ]
    refused = client.get(
        "/users/me/encounters",
        headers={**tokens.header(), "If-None-Match": etag, "If-Match": '"other"'},
    )
    assert refused.status_code == 412

"""What the client sends: the user's path, the query's wire names, the token, the headers."""

from __future__ import annotations

import importlib.metadata
import importlib.resources
from datetime import date, datetime, timedelta, timezone
from uuid import UUID

import pytest

from encounters_client import Encounter, EncountersClient
from tests.stub import ENCOUNTER, Answer, Stub


@pytest.mark.parametrize(
    ("user", "path"),
    [
        ("ST-000123", "/users/ST-000123/encounters"),
        ("ST/2026/7", "/users/ST%2F2026%2F7/encounters"),
        ("ST+1", "/users/ST%2B1/encounters"),
        ("ST 1", "/users/ST%201/encounters"),
        ("Zoë", "/users/Zo%C3%AB/encounters"),
        ("ana+x@example.com", "/users/ana%2Bx%40example.com/encounters"),
        (
            "{93ccd5ee-700e-4fff-857f-0905ff5ebff2}",
            "/users/%7B93ccd5ee-700e-4fff-857f-0905ff5ebff2%7D/encounters",
        ),
        ("a?b#c%d", "/users/a%3Fb%23c%25d/encounters"),
        ("..", "/users/%2E%2E/encounters"),
        (".", "/users/%2E/encounters"),
        ("", "/users//encounters"),
    ],
)
def test_the_user_is_one_encoded_path_segment(stub: Stub, user: str, path: str) -> None:
    stub.script = [Answer(200, [])]
    with EncountersClient(stub.url) as client:
        assert client.list_encounters(user) == []
    assert stub.seen[0].path == path


def test_a_base_url_with_a_path_keeps_it(stub: Stub) -> None:
    stub.script = [Answer(200, [])]
    with EncountersClient(stub.url + "/gateway/encounters-api/") as client:
        client.list_encounters("ST/1")
    assert stub.seen[0].path == "/gateway/encounters-api/users/ST%2F1/encounters"


def test_the_query_uses_the_wire_names_and_sends_what_it_is_given(stub: Stub) -> None:
    stub.script = [Answer(200, [])]
    lisbon = timezone(timedelta(hours=1))
    with EncountersClient(stub.url) as client:
        client.list_encounters(
            "me", starts=datetime(2026, 12, 1, 8, 30, tzinfo=lisbon), ends=date(2026, 12, 15)
        )
        client.list_encounters("me", unit=3, online=False)
        client.list_encounters("me", online=True, starts=datetime(2026, 12, 1, 8, 30))
        client.list_encounters("me", starts="tomorrow")
    assert [seen.path.partition("?")[2] for seen in stub.seen] == [
        "from=2026-12-01T08%3A30%3A00%2B01%3A00&to=2026-12-15",
        "unit=3&online=false",
        # A naive datetime goes as it is: the service answers 400 (it would be ambiguous).
        "from=2026-12-01T08%3A30%3A00&online=true",
        "from=tomorrow",
    ]


def test_the_call_token_overrides_the_clients(stub: Stub) -> None:
    stub.script = [Answer(200, [])]
    with EncountersClient(stub.url, token="service-token") as client:
        client.list_encounters("me")
        client.list_encounters("me", token="forwarded-user-token")
    with EncountersClient(stub.url) as client:
        client.list_encounters("me")
    authorizations = [seen.headers.get("Authorization") for seen in stub.seen]
    assert authorizations == ["Bearer service-token", "Bearer forwarded-user-token", None]


def test_headers_ask_for_json_and_carry_no_trace_without_opentelemetry(stub: Stub) -> None:
    stub.script = [Answer(200, [])]
    with EncountersClient(stub.url) as client:
        client.list_encounters("me")
    headers = stub.seen[0].headers
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"].startswith("encounters-client/")
    assert "traceparent" not in headers
    assert "If-None-Match" not in headers


def test_the_list_is_typed(stub: Stub) -> None:
    stub.script = [Answer(200, [ENCOUNTER])]
    with EncountersClient(stub.url) as client:
        (encounter,) = client.list_encounters("me")
    assert encounter == Encounter(
        unit_number=3,
        id=UUID("93ccd5ee-700e-4fff-857f-0905ff5ebff2"),
        date_time=datetime(2026, 12, 1, 18, tzinfo=timezone.utc),
        end_date=datetime(2026, 12, 1, 19, tzinfo=timezone.utc),
        duration=60,
        status="Available",
        is_online=False,
        center_id=UUID("fc48ac7b-ec1e-4988-8880-40ebfd16cba9"),
        center_name="Lisbon Downtown",
        center_reference_id="C-001",
    )
    assert encounter.date_time.utcoffset() == timedelta(0)


def test_the_package_is_typed_and_needs_httpx_alone() -> None:
    assert (importlib.resources.files("encounters_client") / "py.typed").is_file()
    requirements = importlib.metadata.requires("encounters-client") or []
    needed = [r for r in requirements if "extra ==" not in r]
    assert [r.split(">")[0].split("<")[0].strip() for r in needed] == ["httpx"]

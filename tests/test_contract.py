"""The endpoint (README): the response's shape, order, statuses, windows, filters, media types, caching."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from service.directory import Role
from service.models import Encounter, User, lookup_key
from tests.dataset import BASE, ENCOUNTERS, Dataset
from tests.tokens import Tokens

KEYS = [
    "UnitNumber", "Id", "DateTime", "EndDate", "Duration",
    "Status", "IsOnline", "CenterId", "CenterName", "CenterReferenceId",
]  # fmt: skip
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00")


def names(dataset: Dataset, body: list[dict[str, object]]) -> list[str]:
    """The dataset names of the encounters in a response body."""
    by_id = {str(dataset[name]): name for name in ENCOUNTERS}
    return [by_id[item["Id"]] for item in body]  # type: ignore[index]


def get(client: FlaskClient, path: str, headers: dict[str, str], **query: str):  # type: ignore[no-untyped-def]
    return client.get(path, headers=headers, query_string=query)


def test_each_element_has_the_ten_keys_in_order_with_their_formats(
    client: FlaskClient, dataset: Dataset, tokens: Tokens
) -> None:
    response = client.get("/users/me/encounters", headers=tokens.header("ST-000123"))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    body = response.get_json()
    assert body, "ana has encounters in the default window"
    raw = response.get_data(as_text=True)
    for item in body:
        assert list(item) == KEYS
        assert isinstance(item["UnitNumber"], int) and not isinstance(item["UnitNumber"], bool)
        assert GUID.fullmatch(item["Id"]) and GUID.fullmatch(item["CenterId"])
        assert STAMP.fullmatch(item["DateTime"]) and STAMP.fullmatch(item["EndDate"])
        start = datetime.fromisoformat(item["DateTime"])
        end = datetime.fromisoformat(item["EndDate"])
        assert item["Duration"] == (end - start) // timedelta(minutes=1)
        assert item["Status"] in {"Available", "Booked", "Full"}
        assert isinstance(item["IsOnline"], bool)
        assert isinstance(item["CenterName"], str) and isinstance(item["CenterReferenceId"], str)
    # The keys' order is on the wire, not only in the parsed dict.
    assert raw.index('"UnitNumber"') < raw.index('"Id"') < raw.index('"CenterReferenceId"')
    assert 'Z"' not in raw


def test_a_students_list_is_own_center_or_online_of_the_current_unit_by_start_then_id(
    client: FlaskClient, dataset: Dataset, tokens: Tokens
) -> None:
    body = client.get("/users/me/encounters", headers=tokens.header("ST-000123")).get_json()
    # lis_freed and lis_same_time start together: the tie is broken by Id.
    tied = sorted(["lis_freed", "lis_same_time"], key=lambda name: str(dataset[name]))
    assert names(dataset, body) == ["lis_booked", "lis_full", "por_online", *tied]
    first = body[0]
    assert first["CenterId"] == str(dataset["lisbon"])
    assert first["CenterName"] == "Lisbon Downtown" and first["CenterReferenceId"] == "C-LIS"
    assert first["UnitNumber"] == 3 and first["Duration"] == 60 and first["IsOnline"] is False
    assert datetime.fromisoformat(first["DateTime"]) == BASE + timedelta(days=1)


def test_status_is_booked_full_or_available_counting_only_active_bookings(
    client: FlaskClient, dataset: Dataset, tokens: Tokens
) -> None:
    body = client.get("/users/me/encounters", headers=tokens.header("ST-000123")).get_json()
    status = dict(zip(names(dataset, body), (item["Status"] for item in body), strict=True))
    assert status["lis_booked"] == "Booked"  # ana's own active booking
    assert status["lis_full"] == "Full"  # capacity 1, carla holds it
    assert status["lis_freed"] == "Available"  # capacity 1, but carla's booking is cancelled
    assert status["por_online"] == "Available"
    assert "lis_cancelled" not in status  # a cancelled encounter never shows, booked or not


def test_booked_wins_over_full(client: FlaskClient, dataset: Dataset, tokens: Tokens) -> None:
    # carla holds the only seat of lis_full; staff member rui sees it as Full, carla as Booked.
    carla = client.get(
        f"/users/{dataset['carla']}/encounters",
        headers=tokens.header("ST-000200"),
        query_string={"unit": "3"},
    ).get_json()
    assert {e["Id"]: e["Status"] for e in carla}[str(dataset["lis_full"])] == "Booked"
    rui = client.get(
        "/users/me/encounters", headers=tokens.header("SM-1", "StaffMember")
    ).get_json()
    assert {e["Id"]: e["Status"] for e in rui}[str(dataset["lis_full"])] == "Full"


def test_a_staff_members_list_is_every_unit_of_their_centers(
    client: FlaskClient, dataset: Dataset, tokens: Tokens
) -> None:
    body = client.get(
        "/users/SM-1/encounters", headers=tokens.header("SM-1", "StaffMember")
    ).get_json()
    assert set(names(dataset, body)) == {
        "lis_booked", "lis_full", "lis_unit4", "lis_freed", "lis_same_time", "mad_unit1"
    }  # fmt: skip


def test_a_student_without_a_current_unit_gets_an_empty_list_unless_unit_is_given(
    client: FlaskClient, dataset: Dataset, tokens: Tokens
) -> None:
    response = client.get("/users/me/encounters", headers=tokens.header("ST-000200"))
    assert response.status_code == 200 and response.get_json() == []
    assert response.get_data() == b"[]" or response.get_data().strip() == b"[]"
    with_unit = client.get(
        "/users/me/encounters", headers=tokens.header("ST-000200"), query_string={"unit": 4}
    ).get_json()
    assert names(dataset, with_unit) == ["lis_unit4"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"unit": "4"}, ["lis_unit4"]),
        ({"online": "true"}, ["por_online", "lis_same_time"]),
        ({"online": "false"}, ["lis_booked", "lis_full", "lis_freed"]),
        ({"from": (BASE + timedelta(days=3)).isoformat()}, ["por_online", "lis_freed/lis_same_time"]),
        ({"to": (BASE + timedelta(days=2)).isoformat()}, ["lis_booked"]),
        ({"from": (BASE + timedelta(days=2)).isoformat(), "to": (BASE + timedelta(days=3)).isoformat()}, ["lis_full"]),
        ({"from": (BASE + timedelta(days=15)).date().isoformat()}, ["lis_later"]),
        ({"from": (BASE - timedelta(days=5)).isoformat().replace("+00:00", "Z"), "to": BASE.isoformat()}, ["lis_past"]),
    ],
)  # fmt: skip
def test_windows_and_filters(
    client: FlaskClient,
    dataset: Dataset,
    tokens: Tokens,
    query: dict[str, str],
    expected: list[str],
) -> None:
    response = client.get(
        "/users/me/encounters", headers=tokens.header("ST-000123"), query_string=query
    )
    assert response.status_code == 200, response.get_json()
    got = names(dataset, response.get_json())
    if "lis_freed/lis_same_time" in expected:
        tied = sorted(["lis_freed", "lis_same_time"], key=lambda name: str(dataset[name]))
        expected = [e for e in expected if "/" not in e] + tied
    if query.get("online") == "true":
        expected = sorted(expected, key=lambda name: (ENCOUNTERS[name].days, str(dataset[name])))
    assert got == expected


def test_the_window_boundaries_are_start_inclusive_end_exclusive(
    client: FlaskClient, dataset: Dataset, tokens: Tokens
) -> None:
    start = BASE + timedelta(days=1)  # lis_booked starts exactly here
    query = {"from": start.isoformat(), "to": (start + timedelta(days=1)).isoformat()}
    assert "lis_booked" in names(
        dataset,
        client.get("/users/me/encounters", headers=tokens.header(), query_string=query).get_json(),
    )
    query = {"from": (start - timedelta(days=1)).isoformat(), "to": start.isoformat()}
    assert "lis_booked" not in names(
        dataset,
        client.get("/users/me/encounters", headers=tokens.header(), query_string=query).get_json(),
    )


def test_an_offset_is_converted_to_utc(
    client: FlaskClient, dataset: Dataset, tokens: Tokens
) -> None:
    start = (BASE + timedelta(days=1)).astimezone(
        __import__("datetime").timezone(timedelta(hours=-5))
    )
    query = {"from": start.isoformat(), "to": (start + timedelta(hours=1)).isoformat()}
    body = client.get(
        "/users/me/encounters", headers=tokens.header(), query_string=query
    ).get_json()
    assert names(dataset, body) == ["lis_booked"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2026-12-01T10:00:00"}, "from"),  # no offset: ambiguous
        ({"to": "2026-12-01T10:00"}, "to"),
        ({"from": "tomorrow"}, "from"),
        ({"from": "2026-13-01"}, "from"),
        ({"from": "2026-12-10", "to": "2026-12-01"}, "to"),
        ({"from": "2026-12-01", "to": "2026-12-01"}, "to"),
        ({"from": "2026-12-01", "to": "2027-01-02"}, "to"),  # 32 days > 31
        ({"unit": "0"}, "unit"),
        ({"unit": "-1"}, "unit"),
        ({"unit": "three"}, "unit"),
        ({"unit": "2.5"}, "unit"),
        ({"unit": "99999999999999999999"}, "unit"),
        ({"online": "maybe"}, "online"),
        ({"from": "9999-12-31"}, "from"),
    ],
)
def test_bad_query_arguments_are_400_problems_naming_the_field(
    client: FlaskClient, dataset: Dataset, tokens: Tokens, query: dict[str, str], field: str
) -> None:
    response = client.get("/users/me/encounters", headers=tokens.header(), query_string=query)
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    body = response.get_json()
    assert (
        body["status"] == 400 and body["title"] == "Bad Request" and body["type"] == "about:blank"
    )
    assert list(body["errors"]) == [field] and all(
        isinstance(m, str) for m in body["errors"][field]
    )
    assert body["request_id"] == response.headers["X-Request-ID"]


def test_a_31_day_window_is_allowed_and_unknown_parameters_are_ignored(
    client: FlaskClient, dataset: Dataset, tokens: Tokens
) -> None:
    query = {"from": "2026-12-01", "to": "2027-01-01", "colour": "blue", "page": "2"}
    assert (
        client.get("/users/me/encounters", headers=tokens.header(), query_string=query).status_code
        == 200
    )


def test_the_default_window_is_from_now_for_encounter_window_days(
    client: FlaskClient, dataset: Dataset, engine: Engine, tokens: Tokens
) -> None:
    """[now, now + 14 days): Lisbon unit-3 encounters a minute either side of both ends pin it."""
    now = datetime.now(UTC)
    edges = {
        "a minute ago": (now - timedelta(minutes=1), False),
        "in a minute": (now + timedelta(minutes=1), True),
        "a minute before 14 days": (now + timedelta(days=14, minutes=-1), True),
        "a minute after 14 days": (now + timedelta(days=14, minutes=1), False),
    }
    ids = {name: uuid.uuid5(uuid.NAMESPACE_URL, f"edge/{name}") for name in edges}
    with Session(engine) as session, session.begin():
        session.add_all(
            Encounter(id=ids[name], center_id=dataset["lisbon"], unit_number=3, starts_at=starts,
                      ends_at=starts + timedelta(minutes=30), is_online=False, capacity=5)
            for name, (starts, _) in edges.items()
        )  # fmt: skip
    body = client.get("/users/me/encounters", headers=tokens.header()).get_json()
    returned = {item["Id"] for item in body}
    assert {name for name in edges if str(ids[name]) in returned} == {
        name for name, (_, inside) in edges.items() if inside
    }
    known = {str(dataset[name]) for name in ENCOUNTERS}
    got = names(dataset, [item for item in body if item["Id"] in known])
    assert "lis_past" not in got and "lis_later" not in got  # -3 and +20 days


@pytest.fixture
def short_window(config: dict[str, object]) -> None:
    config["ENCOUNTER_WINDOW_DAYS"] = "2"
    config["ENCOUNTER_MAX_WINDOW_DAYS"] = "3"


def test_window_settings_come_from_configuration(
    short_window: None, client: FlaskClient, dataset: Dataset, tokens: Tokens
) -> None:
    body = client.get("/users/me/encounters", headers=tokens.header()).get_json()
    assert "por_online" not in names(dataset, body)  # +3 days is outside a 2-day window
    too_wide = {"from": "2026-12-01", "to": "2026-12-05"}
    assert (
        client.get(
            "/users/me/encounters", headers=tokens.header(), query_string=too_wide
        ).status_code
        == 400
    )


@pytest.mark.parametrize(
    ("accept", "status", "mimetype"),
    [
        (None, 200, "application/json"),
        ("*/*", 200, "application/json"),
        ("application/*", 200, "application/json"),
        ("application/json", 200, "application/json"),
        ("text/json", 200, "text/json"),
        ("text/*", 200, "text/json"),
        ("text/json;q=0.9, application/json;q=0.5", 200, "text/json"),
        ("application/json;q=0.5, text/json;q=0.9", 200, "text/json"),
        ("text/json, application/json", 200, "application/json"),
        ("text/html", 406, "application/problem+json"),
        ("application/xml, text/plain", 406, "application/problem+json"),
        ("application/json;q=0", 406, "application/problem+json"),
    ],
)
def test_media_types(
    client: FlaskClient,
    dataset: Dataset,
    tokens: Tokens,
    accept: str | None,
    status: int,
    mimetype: str,
) -> None:
    headers = tokens.header()
    if accept is not None:
        headers["Accept"] = accept
    response = client.get("/users/me/encounters", headers=headers)
    assert response.status_code == status
    assert response.mimetype == mimetype
    if status == 200:
        assert response.headers["Content-Type"] == f"{mimetype}; charset=utf-8"
        plain = client.get("/users/me/encounters", headers=tokens.header())
        assert response.get_data() == plain.get_data()


def test_wrong_method_is_405_with_allow(
    client: FlaskClient, dataset: Dataset, tokens: Tokens
) -> None:
    for method in ("post", "put", "patch", "delete"):
        response = getattr(client, method)("/users/me/encounters", headers=tokens.header())
        assert response.status_code == 405
        assert set(response.headers["Allow"].replace(" ", "").split(",")) == {
            "GET",
            "HEAD",
            "OPTIONS",
        }
        assert response.content_type == "application/problem+json"
        assert response.get_json()["status"] == 405


def test_head_has_the_headers_of_get_and_no_body(
    client: FlaskClient, dataset: Dataset, tokens: Tokens
) -> None:
    get_response = client.get("/users/me/encounters", headers=tokens.header())
    head_response = client.head("/users/me/encounters", headers=tokens.header())
    assert head_response.status_code == 200 and head_response.get_data() == b""
    assert head_response.headers["ETag"] == get_response.headers["ETag"]
    assert head_response.headers["Content-Length"] == get_response.headers["Content-Length"]


def test_options_lists_the_methods(client: FlaskClient) -> None:
    response = client.options("/users/me/encounters")
    assert response.status_code == 200
    assert {"GET", "HEAD", "OPTIONS"} <= set(response.headers["Allow"].replace(" ", "").split(","))


def test_strong_etag_and_304(client: FlaskClient, dataset: Dataset, tokens: Tokens) -> None:
    first = client.get("/users/me/encounters", headers=tokens.header())
    etag = first.headers["ETag"]
    assert re.fullmatch(r'"[^"]+"', etag), "a strong ETag has no W/ prefix"
    # The same value in every release, so that a client's cached ETag still matches after one.
    digest = hashlib.blake2b(b"application/json\0" + first.get_data(), digest_size=16)
    assert etag == f'"{digest.hexdigest()}"'
    assert first.headers["Cache-Control"] == "private, no-cache"
    assert {v.strip() for v in first.headers["Vary"].split(",")} >= {"Authorization", "Accept"}

    again = client.get("/users/me/encounters", headers={**tokens.header(), "If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    assert again.headers["ETag"] == etag

    other = client.get(
        "/users/me/encounters", headers={**tokens.header(), "If-None-Match": '"stale"'}
    )
    assert other.status_code == 200 and other.get_data() == first.get_data()
    star = client.get("/users/me/encounters", headers={**tokens.header(), "If-None-Match": "*"})
    assert star.status_code == 304


def test_the_etag_changes_with_the_data_and_the_media_type(
    client: FlaskClient, dataset: Dataset, tokens: Tokens, engine
) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    from service.models import Encounter

    first = client.get("/users/me/encounters", headers=tokens.header()).headers["ETag"]
    as_text = client.get("/users/me/encounters", headers={**tokens.header(), "Accept": "text/json"})
    assert as_text.headers["ETag"] != first
    with engine.begin() as connection:
        connection.execute(
            update(Encounter).where(Encounter.id == dataset["por_online"]).values(capacity=0)
        )
    changed = client.get(
        "/users/me/encounters", headers={**tokens.header(), "If-None-Match": first}
    )
    assert changed.status_code == 200 and changed.headers["ETag"] != first


def test_a_center_change_shows_on_the_next_request(
    client: FlaskClient, dataset: Dataset, tokens: Tokens, engine: Engine
) -> None:
    """A renamed center, and an encounter moved to another center (on PostgreSQL, each
    encounter's copy of its center's members follows: migration 0006)."""
    from sqlalchemy import update

    from service.models import Center

    def online_encounter() -> dict[str, object]:
        answer = client.get("/users/me/encounters", headers=tokens.header()).get_json()
        return next(e for e in answer if e["Id"] == str(dataset["por_online"]))

    assert online_encounter()["CenterName"] == "Porto"
    with engine.begin() as connection:
        connection.execute(
            update(Center)
            .where(Center.id == dataset["porto"])
            .values(name='Porto "Norte"', reference_id="C-PN")
        )
    renamed = online_encounter()
    assert (renamed["CenterName"], renamed["CenterReferenceId"]) == ('Porto "Norte"', "C-PN")
    with engine.begin() as connection:
        connection.execute(
            update(Encounter)
            .where(Encounter.id == dataset["por_online"])
            .values(center_id=dataset["madrid"])
        )
    moved = online_encounter()
    assert (moved["CenterId"], moved["CenterName"]) == (str(dataset["madrid"]), "Madrid")
    assert moved["CenterReferenceId"] == "C-MAD"


def test_an_unknown_route_is_a_problem(client: FlaskClient) -> None:
    response = client.get("/nothing/here")
    assert response.status_code == 404 and response.content_type == "application/problem+json"
    assert set(response.get_json()) == {"type", "title", "status", "detail", "request_id"}


def test_every_response_carries_a_request_id(
    client: FlaskClient, dataset: Dataset, tokens: Tokens
) -> None:
    ok = client.get("/users/me/encounters", headers={**tokens.header(), "X-Request-ID": "abc-123"})
    assert ok.headers["X-Request-ID"] == "abc-123"
    bad = client.get("/users/me/encounters", headers={"X-Request-ID": "bad id with spaces\u00e9"})
    assert bad.headers["X-Request-ID"] != "bad id with spaces\u00e9" and bad.headers["X-Request-ID"]
    assert bad.get_json()["request_id"] == bad.headers["X-Request-ID"]


def test_unexpected_errors_are_500_problems_without_internals(
    app, client: FlaskClient, dataset: Dataset, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internal detail SELECT * FROM users")

    monkeypatch.setattr("service.views.may_view", explode)
    response = client.get("/users/me/encounters", headers=tokens.header())
    assert response.status_code == 500 and response.content_type == "application/problem+json"
    text = response.get_data(as_text=True)
    assert "secret internal" not in text and "Traceback" not in text and "SELECT" not in text


def test_ids_are_lowercase_even_when_asked_in_upper_case(
    client: FlaskClient, dataset: Dataset, tokens: Tokens
) -> None:
    upper = str(dataset["ana"]).upper()
    body = client.get(f"/users/{upper}/encounters", headers=tokens.header()).get_json()
    assert all(item["Id"] == item["Id"].lower() for item in body)
    assert uuid.UUID(body[0]["CenterId"]) == dataset["lisbon"]
    assert datetime.fromisoformat(body[0]["DateTime"]).tzinfo == UTC or body[0][
        "DateTime"
    ].endswith("+00:00")


def test_the_openapi_document_names_every_parameter(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    path = document["paths"]["/users/{userIdentifier}/encounters"]
    assert [p["name"] for p in path["parameters"]] == ["userIdentifier"]
    assert {p["name"] for p in path["get"]["parameters"]} >= {"from", "to", "unit", "online"}
    assert set(path["get"]["responses"]["200"]["content"]) == {"application/json", "text/json"}


def test_the_openapi_document_has_no_dangling_or_nameless_components(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    assert "null" not in document["components"].get("responses", {})
    text = client.get("/openapi.json").get_data(as_text=True)
    for ref in set(re.findall(r'"\$ref": ?"#/components/(\w+)/(\w+)"', text)):
        assert ref[1] in document["components"][ref[0]], ref


def test_a_student_of_no_center_sees_online_encounters_and_no_in_center_ones(
    client: FlaskClient, engine: Engine, dataset: Dataset, tokens: Tokens
) -> None:
    with Session(engine) as session:
        session.add(
            User(
                id=uuid.uuid4(),
                email="roaming@example.com",
                email_key=lookup_key("roaming@example.com"),
                reference_id="ST-ROAMING",
                reference_key=lookup_key("ST-ROAMING"),
                role=Role.STUDENT,
                center_id=None,
                current_unit=3,
            )
        )
        session.commit()
    headers = tokens.header("ST-ROAMING", "Student")
    window = {"to": (BASE + timedelta(days=30)).isoformat()}
    answers = {
        online: client.get(
            "/users/me/encounters", headers=headers, query_string={**window, "online": online}
        )
        for online in ("true", "false")
    }
    everything = client.get("/users/me/encounters", headers=headers, query_string=window)
    assert [a.status_code for a in (*answers.values(), everything)] == [200, 200, 200]
    assert answers["false"].get_json() == []
    online = answers["true"].get_json()
    expected = sorted(
        (row.starts, str(dataset[name]))
        for name, row in ENCOUNTERS.items()
        if row.online and row.unit == 3 and not row.cancelled and row.days >= 0
    )
    assert [e["Id"] for e in online] == [id_ for _, id_ in expected] != []
    assert everything.get_json() == online

"""Property tests of the query arguments (README), over real HTTP on the known dataset.

Any value of `from`, `to`, `unit` and `online` gives either the exact list the dataset implies
(tests/oracle.py) or a 400 naming the argument; nothing else, never a 5xx.
"""

from __future__ import annotations

import os
import string
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.models import INT32_MAX
from tests.dataset import BASE, USERS, Dataset
from tests.oracle import expected_encounters
from tests.tokens import Tokens

# The app and its database are read-only here, so one of each serves every example of a test.
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
CALLERS = {"ana": ("ST-000123", "Student"), "rui": ("SM-1", "StaffMember")}
# Every test here also holds the logs to no dataset email, token or secret (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("logs_without_secrets")

offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
# Any instant a client could name, in any offset; the first and last days of the calendar get
# their own share, as that is where an offset pushes an instant out of range.
instants = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=offsets),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(1, 1, 2), timezones=offsets),
    st.datetimes(min_value=datetime(9999, 12, 30), max_value=datetime.max, timezones=offsets),
)
near_instants = st.datetimes(
    min_value=(BASE - timedelta(days=10)).replace(tzinfo=None),
    max_value=(BASE + timedelta(days=30)).replace(tzinfo=None),
    timezones=offsets,
)


def spelled(moment: datetime, style: str) -> str:
    """One of the spellings the README accepts for an instant."""
    if style == "Z" and moment.utcoffset() == timedelta(0):
        return moment.isoformat().replace("+00:00", "Z")
    if style == "compact":
        return moment.strftime("%Y%m%dT%H%M%S%z")
    return moment.isoformat()


def get(client: FlaskClient, tokens: Tokens, caller: str, **query: Any) -> Any:
    """GET the caller's own encounters with these query arguments, named by the caller's email."""
    subject, role = CALLERS[caller]
    email = quote(USERS[caller].email)
    return client.get(
        f"/users/{email}/encounters?{urlencode(query)}", headers=tokens.header(subject, role)
    )


def assert_the_datasets_answer(
    response: Any,
    caller: str,
    starts: datetime | None = None,
    ends: datetime | None = None,
    unit: int | None = None,
    online: bool | None = None,
) -> None:
    """A 200 whose body is exactly the oracle's; the default window is [now, now + 14 days).

    No encounter of the dataset starts within hours of either end of the default window, so
    the moment `now` is taken here cannot change the answer.
    """
    assert response.status_code == 200, response.get_data(as_text=True)
    starts = starts or datetime.now(UTC)
    ends = ends or starts + timedelta(days=14)
    assert response.get_json() == expected_encounters(caller, starts, ends, unit, online)


def assert_a_part_of_the_datasets_answer(response: Any, caller: str) -> None:
    """A 200 whose body is, in order, some of the encounters the caller may see in any window."""
    assert response.status_code == 200, response.get_data(as_text=True)
    every = expected_encounters(
        caller, datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    )
    body = response.get_json()
    assert body == [item for item in every if item in body]


def assert_bad_request(response: Any, *fields: str) -> None:
    """A 400 problem naming exactly these arguments."""
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert set(response.get_json()["errors"]) == set(fields), response.get_json()


@PROPERTY_SETTINGS
@given(
    caller=st.sampled_from(sorted(CALLERS)),
    starts=near_instants,
    span=st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=31)),
    unit=st.none() | st.integers(min_value=1, max_value=6),
    online=st.none() | st.booleans(),
    style=st.sampled_from(["iso", "Z", "compact"]),
)
def test_a_valid_window_gives_exactly_the_dataset_answer(
    client: FlaskClient,
    dataset: Dataset,
    tokens: Tokens,
    caller: str,
    starts: datetime,
    span: timedelta,
    unit: int | None,
    online: bool | None,
    style: str,
) -> None:
    starts = starts.replace(microsecond=0)
    ends = starts + span
    query: dict[str, Any] = {"from": spelled(starts, style), "to": spelled(ends, style)}
    if unit is not None:
        query["unit"] = unit
    if online is not None:
        query["online"] = str(online).lower()

    response = get(client, tokens, caller, **query)

    assert response.status_code == 200, response.get_data(as_text=True)
    expected = expected_encounters(
        caller, starts.astimezone(UTC), ends.astimezone(UTC), unit, online
    )
    assert response.get_json() == expected


@PROPERTY_SETTINGS
@given(starts=instants, ends=st.none() | instants, date_only=st.booleans())
def test_any_instant_is_a_list_or_a_400_for_the_window(
    client: FlaskClient,
    dataset: Dataset,
    tokens: Tokens,
    starts: datetime,
    ends: datetime | None,
    date_only: bool,
) -> None:
    query = {"from": starts.date().isoformat() if date_only else starts.isoformat()}
    if ends is not None:
        query["to"] = ends.isoformat()
    response = get(client, tokens, "rui", **query)
    if response.status_code == 200:
        begins = datetime.combine(starts.date(), time(), UTC) if date_only else starts
        assert_the_datasets_answer(response, "rui", begins, ends)
    else:
        errors = response.get_json().get("errors", {})
        assert response.status_code == 400 and set(errors) <= {"from", "to"} and errors, errors


@PROPERTY_SETTINGS
@given(
    name=st.sampled_from(["from", "to", "unit", "online"]),
    value=st.text(st.characters(codec="utf-8"), max_size=40),
)
def test_any_text_in_any_argument_is_an_answer_or_a_400_naming_it(
    client: FlaskClient, dataset: Dataset, tokens: Tokens, name: str, value: str
) -> None:
    response = get(client, tokens, "rui", **{name: value})
    assert response.status_code in (200, 400), response.get_data(as_text=True)
    if response.status_code == 400:
        errors = response.get_json()["errors"]
        assert errors and set(errors) <= {name, "to"}, response.get_json()
    elif name == "unit" and value.strip():
        assert_the_datasets_answer(response, "rui", unit=int(value))
    elif name == "online" and value.strip():
        assert_the_datasets_answer(response, "rui", online=value.strip().lower() == "true")
    else:  # a window whose ends only the service's parser knows, or an empty value
        assert_a_part_of_the_datasets_answer(response, "rui")


@PROPERTY_SETTINGS
@given(unit=st.integers(min_value=-(2**70), max_value=2**70))
def test_unit_is_any_int32_at_least_one(
    client: FlaskClient, dataset: Dataset, tokens: Tokens, unit: int
) -> None:
    response = get(client, tokens, "rui", unit=unit)
    if 1 <= unit <= INT32_MAX:
        assert_the_datasets_answer(response, "rui", unit=unit)
    else:
        assert_bad_request(response, "unit")


@PROPERTY_SETTINGS
@given(spelling=st.text(alphabet=string.printable + "\u0661\uff11\u00b2", min_size=1, max_size=12))
def test_unit_is_spelled_in_ascii_digits_only(
    client: FlaskClient, dataset: Dataset, tokens: Tokens, spelling: str
) -> None:
    response = get(client, tokens, "rui", unit=spelling)
    digits = spelling.strip()
    if digits.isascii() and digits.isdigit() and 1 <= int(digits) <= INT32_MAX:
        assert_the_datasets_answer(response, "rui", unit=int(digits))
    else:
        assert_bad_request(response, "unit")


@pytest.mark.parametrize(
    ("query", "status", "fields"),
    [
        ("online=true", 200, ()),
        ("online=FALSE", 200, ()),
        ("online=1", 400, ("online",)),
        ("online=yes", 400, ("online",)),
        ("from=2026-01-01T00:00:00", 400, ("from",)),  # no offset: ambiguous
        ("from=0001-01-01T00:00:00%2B01:00", 400, ("from",)),  # before year 1 in UTC
        ("from=9999-12-31T23:00:00-02:00", 400, ("from",)),  # after year 9999 in UTC
        ("from=9999-12-31", 400, ("from",)),  # default window runs past the calendar
        ("from=0001-01-01", 200, ()),
        ("from=9999-12-01&to=9999-12-31", 200, ()),
        ("from=2026-01-01&to=2026-01-01", 400, ("to",)),
        ("from=2026-01-01&to=2026-02-02", 400, ("to",)),
        ("unit=2147483647", 200, ()),
        ("unit=2147483648", 400, ("unit",)),
        ("unit=" + "9" * 5000, 400, ("unit",)),
        ("unit=0", 400, ("unit",)),
        ("unit=3_0", 400, ("unit",)),
        ("unit=%EF%BC%91", 400, ("unit",)),  # a full-width digit one
        ("unit=1.0", 400, ("unit",)),
        ("unit=%FF", 400, ("unit",)),
        ("unit=1&unit=2", 400, ("unit",)),  # ambiguous: which one did the caller mean?
        ("unit=1&unit=1", 400, ("unit",)),
        ("online=true&online=false", 400, ("online",)),
        ("from=2026-01-01&from=2026-01-02", 400, ("from",)),
        ("other=1&other=2&" + "&".join(f"x{n}=1" for n in range(500)), 200, ()),
    ],
)
def test_query_edges(
    client: FlaskClient,
    dataset: Dataset,
    tokens: Tokens,
    query: str,
    status: int,
    fields: tuple[str, ...],
) -> None:
    response = client.get(
        f"/users/me/encounters?{query}", headers=tokens.header("SM-1", "StaffMember")
    )
    if status == 400:
        assert_bad_request(response, *fields)
    else:
        assert_a_part_of_the_datasets_answer(response, "rui")

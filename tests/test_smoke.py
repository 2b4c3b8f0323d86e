"""A first end-to-end request over the known dataset."""

from flask.testing import FlaskClient

from tests.conftest import Dataset, Tokens


def test_student_lists_own_encounters(
    client: FlaskClient, dataset: Dataset, tokens: Tokens
) -> None:
    response = client.get("/users/me/encounters", headers=tokens.header("ST-000123", "Student"))
    assert response.status_code == 200
    assert [e["Id"] for e in response.get_json()][:1] == [str(dataset["lis_booked"])]

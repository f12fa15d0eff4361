"""The API token also works as HTTP Basic credentials (as Kamailio's kept-alive connections send it)."""

import base64

import pytest

from panel.api.auth import new_token
from panel.extensions import db
from panel.models import ApiToken
from tests import factories


@pytest.fixture
def token(app):
    """A token of a root company."""
    company = factories.company("Carrier", "root")
    token, token_hash = new_token()
    db.session.add(ApiToken(company_id=company.id, name="kamailio1", token_hash=token_hash, prefix=token[:8]))
    db.session.commit()
    return token


def _basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize("user_password", [("switch", "{token}"), ("{token}", "")])
def test_a_token_sent_as_basic_credentials_is_accepted(client, token, user_password):
    user, password = (part.format(token=token) for part in user_password)
    response = client.post("/api/v1/route", json={"number": "441234567"}, headers=_basic(user, password))
    assert response.status_code == 200
    assert response.get_json()["reason"] == "unknown_originator"


@pytest.mark.parametrize(
    "header",
    [
        _basic("switch", "rp_not-a-token"),
        {"Authorization": "Basic not base64!"},
        {"Authorization": "Basic "},
        {"Authorization": "Digest username=switch"},
    ],
)
def test_bad_basic_credentials_answer_401(client, token, header):
    response = client.post("/api/v1/route", json={"number": "441234567"}, headers=header)
    assert response.status_code == 401
    assert response.get_json()["field"] == "Authorization"


def test_a_revoked_token_is_refused_as_basic_credentials_too(client, token):
    api_token = db.session.scalar(db.select(ApiToken))
    api_token.revoked_at = api_token.created_at
    db.session.commit()
    response = client.post("/api/v1/route", json={"number": "441234567"}, headers=_basic("switch", token))
    assert response.status_code == 401

"""System > API tokens: listed per company with their last use, created by admins (shown once), revoked."""

import re

from sqlalchemy import select

from panel.api.auth import hash_token
from panel.extensions import db
from panel.models import ApiToken, AuditEntry
from panel.models.types import utcnow


def token_row(company, name: str, **fields) -> ApiToken:
    """A stored token (its clear text is `rp_<name>`)."""
    token = ApiToken(
        company_id=company.id, name=name, token_hash=hash_token(f"rp_{name}"), prefix=f"rp_{name}"[:12]
    )
    for key, value in fields.items():
        setattr(token, key, value)
    db.session.add(token)
    db.session.commit()
    return token


def test_list_shows_the_subtree_with_last_use(tree, login):
    token_row(tree.alpha, "alpha-switch", last_used_at=utcnow())
    token_row(tree.sub, "sub-switch")
    token_row(tree.beta, "beta-switch")
    html = login(tree.alpha_viewer).get("/tokens/").get_data(as_text=True)
    assert "alpha-switch" in html and "sub-switch" in html and "beta-switch" not in html
    assert "never" in html  # sub-switch was never used
    assert "Read only: tokens are created and revoked by admins." in html
    assert "New token" not in html


def test_admin_creates_a_token_shown_once(tree, login):
    client = login(tree.alpha_admin)
    response = client.post("/tokens/new", data={"name": "Kamailio A", "company_id": tree.sub.id})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    token = re.search(r'value="(rp_[^"]+)"', html).group(1)
    stored = db.session.scalar(select(ApiToken).where(ApiToken.name == "Kamailio A"))
    assert stored.company_id == tree.sub.id and stored.token_hash == hash_token(token)
    assert stored.created_by_id == tree.alpha_admin.id
    assert token not in client.get("/tokens/").get_data(as_text=True)  # never shown again
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.object_type == "apitoken"))
    assert entry.action == "create" and entry.after["token_hash"] == "(set)"
    # The new token works at once for its company.
    answer = client.post(
        "/api/v1/route", json={"number": "4477"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200


def test_invalid_form_answers_422(tree, login):
    response = login(tree.alpha_admin).post("/tokens/new", data={"name": "", "company_id": tree.alpha.id})
    assert response.status_code == 422
    assert "Give the token a name" in response.get_data(as_text=True)
    # A company outside the admin's subtree is not a choice.
    response = login(tree.alpha_admin).post("/tokens/new", data={"name": "x", "company_id": tree.beta.id})
    assert response.status_code == 422
    assert db.session.scalar(select(ApiToken)) is None


def test_only_admins_create_and_revoke(tree, login):
    token = token_row(tree.alpha, "alpha-switch")
    operator = login(tree.alpha_operator)
    assert operator.get("/tokens/new").status_code == 403
    assert operator.post("/tokens/new", data={"name": "x", "company_id": tree.alpha.id}).status_code == 403
    assert operator.post(f"/tokens/{token.id}/revoke").status_code == 403
    assert login(tree.alpha_viewer).post(f"/tokens/{token.id}/revoke").status_code == 403
    db.session.refresh(token)
    assert token.revoked_at is None


def test_revoke_stops_the_token_and_is_audited(tree, login):
    token = token_row(tree.alpha, "alpha-switch")
    client = login(tree.alpha_admin)
    body = {"number": "4477"}
    headers = {"Authorization": "Bearer rp_alpha-switch"}
    assert client.post("/api/v1/route", json=body, headers=headers).status_code == 200
    response = client.post(f"/tokens/{token.id}/revoke", headers={"HX-Request": "true"})
    assert response.status_code == 200 and "revoked" in response.get_data(as_text=True)
    db.session.refresh(token)
    assert token.revoked_at is not None
    assert client.post("/api/v1/route", json=body, headers=headers).status_code == 401
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "update"))
    assert entry.note == "API token revoked" and entry.object_id == token.id


def test_tokens_of_other_companies_answer_404(tree, login):
    token = token_row(tree.beta, "beta-switch")
    assert login(tree.alpha_admin).post(f"/tokens/{token.id}/revoke").status_code == 404

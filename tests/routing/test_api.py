"""POST /api/v1/route: bearer tokens, the request and answer of SPEC §7, 400 on bad input, company scope."""

import pytest

from panel import snapshots
from panel.api.auth import hash_token
from panel.extensions import db
from panel.models import ApiToken
from panel.models.types import utcnow
from tests import factories as f

TOKEN = "rp_test_token_operator"


def make_token(company, token: str = TOKEN) -> ApiToken:
    """An API token for the company, stored hashed as the panel stores it."""
    api_token = ApiToken(company_id=company.id, name="switch", token_hash=hash_token(token), prefix=token[:8])
    db.session.add(api_token)
    db.session.commit()
    return api_token


@pytest.fixture
def api(world, client):
    """The world with one rule (44 dynamic LCR), an operator token, a fresh snapshot and a `post` helper."""
    f.rule(world.plan, "44", "dynamic", policy_id=world.lcr.id)
    make_token(world.root)
    db.session.commit()
    snapshots.rebuild()

    def post(body, token=TOKEN, **kwargs):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if isinstance(body, (dict, list)):
            return client.post("/api/v1/route", json=body, headers=headers, **kwargs)
        return client.post("/api/v1/route", data=body, headers=headers, content_type="application/json")

    world.post = post
    return world


def test_routes_a_call_in_order_of_appeal(api):
    response = api.post({"number": "+447700900123", "src_ip": "198.51.100.10", "at": "2024-03-04T12:00:00Z"})
    assert response.status_code == 200
    data = response.get_json()
    assert data["status"] == "ok" and data["reason"] is None
    assert data["number"] == "447700900123"
    assert data["originator"] == {
        "account_id": api.cust.id,
        "account": "cust",
        "client_id": api.cust_client.id,
        "client": "Cust",
        "tech_prefix": "",
    }
    assert data["plan"] == {"id": api.plan.id, "name": "Main"}
    assert data["customer_rate"]["rate"] == "0.1" and data["customer_rate"]["code"] == "44"
    assert [r["account"] for r in data["routes"]] == ["v1", "v2", "v3"]
    first = data["routes"][0]
    assert first["host"] == "203.0.113.1" and first["port"] == 5060 and first["protocol"] == "sip"
    assert first["vendor_rate"] == "0.05" and first["vendor_code"] == "44" and first["margin"] == "0.05"
    assert first["proxy"] == "" and first["tech_prefix"] == "" and first["capacity"] is None
    assert "explain" not in data


def test_explain_lists_rejections_and_rules(api):
    static = f.rule(api.plan, "44", "static_account", priority=5, terminator_account_id=api.cust.id)
    db.session.commit()
    snapshots.rebuild()
    data = api.post({"number": "447700900123", "src_ip": "198.51.100.10", "explain": True}).get_json()
    assert data["explain"] == [
        {
            "rule_id": static.id,
            "plan_id": api.plan.id,
            "account_id": api.cust.id,
            "account": "cust",
            "client_id": api.cust_client.id,
            "client": "Cust",
            "vendor_code": None,
            "vendor_rate": None,
            "reason": "terminator_disabled",
        }
    ]
    assert [(r["type"], r["used"]) for r in data["rules"]] == [("dynamic", True), ("static_account", True)]


def test_rejected_call_answers_200_with_the_reason(api):
    data = api.post({"number": "3312345", "src_ip": "198.51.100.10"}).get_json()
    assert data["status"] == "rejected" and data["reason"] == "no_customer_rate"
    assert data["routes"] == []
    data = api.post({"number": "447700900123", "src_ip": "192.0.2.99"}).get_json()
    assert data["reason"] == "unknown_originator" and data["originator"] is None


@pytest.mark.parametrize(
    "body, field",
    [
        ({"number": "44 77"}, "number"),
        ({"number": "44a"}, "number"),
        ({"number": "#4477"}, "number"),
        ({"number": "12#34#56"}, "number"),
        ({"number": ""}, "number"),
        ({"number": 447700}, "number"),
        ({"src_ip": "198.51.100.10"}, "number"),
        ({"number": "4477", "src_ip": "198.51.100.300"}, "src_ip"),
        ({"number": "4477", "src_ip": "10.0.0.0/24"}, "src_ip"),
        ({"number": "4477", "at": "yesterday"}, "at"),
        ({"number": "4477", "explain": "yes"}, "explain"),
        ({"number": "4477", "brief": 1}, "brief"),
        ({"number": "4477", "brief": True, "explain": True}, "brief"),
        ({"number": "4477", "login": 5}, "login"),
        ({"number": "4477", "destination": "x"}, "destination"),
    ],
)
def test_malformed_input_answers_400_naming_the_field(api, body, field):
    response = api.post(body)
    assert response.status_code == 400
    data = response.get_json()
    assert data["field"] == field and data["error"]


BRIEF_ROUTE = ("account_id", "host", "port", "protocol", "proxy", "tech_prefix", "rule_id")


@pytest.mark.parametrize(
    "body",
    [
        {"number": "+447700900123", "src_ip": "198.51.100.10", "at": "2024-03-04T12:00:00Z"},  # routed
        {"number": "337700900123", "src_ip": "198.51.100.10"},  # no customer rate
        {"number": "447700900123", "src_ip": "192.0.2.99"},  # unknown originator
    ],
)
def test_a_brief_answer_is_the_whole_answer_cut_to_what_a_switch_reads(api, body):
    """`"brief": true` (what docs/kamailio/kamailio.cfg sends): the fields of the whole answer a switch
    reads to place the call, in the same order, nothing else."""
    whole = api.post(body).get_json()
    brief = api.post({**body, "brief": True})
    assert brief.status_code == 200
    origin = whole["originator"]
    expected = {
        "status": whole["status"],
        "reason": whole["reason"],
        "number": whole["number"],
        "originator": None if origin is None else {"account_id": origin["account_id"]},
        "routes": [{key: r[key] for key in BRIEF_ROUTE} for r in whole["routes"]],
    }
    assert brief.get_json() == expected
    assert brief.get_data(as_text=True).startswith('{"status":')
    assert api.post({**body, "brief": False}).get_json().keys() == whole.keys()


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '"4477"', ""])
def test_malformed_json_answers_400(api, raw):
    response = api.post(raw)
    assert response.status_code == 400
    assert response.get_json()["error"]


def test_tech_prefix_with_hash_is_accepted_and_stripped(api):
    api.cust.tech_prefix = "77#"
    db.session.commit()
    snapshots.rebuild()
    data = api.post({"number": "77#447700900123", "src_ip": "198.51.100.10"}).get_json()
    assert data["status"] == "ok" and data["number"] == "447700900123"
    assert data["originator"]["tech_prefix"] == "77#"


def test_missing_bad_and_revoked_tokens_answer_401(api):
    body = {"number": "447700900123", "src_ip": "198.51.100.10"}
    assert api.post(body, token=None).status_code == 401
    assert api.post(body, token="rp_wrong").status_code == 401
    other = make_token(api.root, "rp_soon_revoked")
    assert api.post(body, token="rp_soon_revoked").status_code == 200
    other.revoked_at = utcnow()
    db.session.commit()
    response = api.post(body, token="rp_soon_revoked")
    assert response.status_code == 401 and response.get_json()["field"] == "Authorization"


def test_token_never_identifies_another_companys_accounts(api):
    beta = f.company("Beta", "reseller", api.root)
    sibling = f.company("Gamma", "reseller", api.root)
    beta_table = f.rate_table(beta, "Beta rates", [("44", "0.2")])
    beta_plan = f.plan(beta, "Beta plan")
    f.rule(beta_plan, "44", "static_client", terminator_client_id=api.v1.client.id)
    beta_client = f.client(
        beta, "Beta customer", orig_rate_table_id=beta_table.id, routing_plan_id=beta_plan.id
    )
    f.account(beta_client, "beta-acc", ident_value="192.0.2.50", orig_enabled=True)
    make_token(beta, "rp_beta")
    make_token(sibling, "rp_gamma")
    db.session.commit()
    snapshots.rebuild()
    # The operator's own customer is invisible to Beta's token, Beta's customer to Gamma's.
    cust = {"number": "447700900123", "src_ip": "198.51.100.10"}
    assert api.post(cust, token="rp_beta").get_json()["reason"] == "unknown_originator"
    beta_call = {"number": "447700900123", "src_ip": "192.0.2.50"}
    assert api.post(beta_call, token="rp_gamma").get_json()["reason"] == "unknown_originator"
    # Beta's token and the operator's (Beta is below it) both see Beta's customer.
    assert api.post(beta_call, token="rp_beta").get_json()["originator"]["account"] == "beta-acc"
    assert api.post(beta_call).get_json()["originator"]["account"] == "beta-acc"


def test_token_last_use_is_recorded(api):
    api.post({"number": "447700900123", "src_ip": "198.51.100.10"})
    token = db.session.scalar(db.select(ApiToken).where(ApiToken.token_hash == hash_token(TOKEN)))
    db.session.refresh(token)
    assert token.last_used_at is not None


def test_only_post_is_allowed(api, client):
    response = client.get("/api/v1/route", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 405

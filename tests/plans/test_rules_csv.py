"""The rules file: export, import (append, replace, all rows or none), errors as `line N, column: message`."""

import csv
import io
import re
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from panel.extensions import db
from panel.models import RoutingRule
from panel.models.system import ImportJob
from panel.plans.rules_csv import COLUMNS
from tests import factories
from tests.plans.conftest import audit_entries

HEADER = ",".join(COLUMNS)


def _upload(client, plan_id: int, text: str | bytes, mode: str = "append", filename: str = "rules.csv"):
    data = text.encode() if isinstance(text, str) else text
    return client.post(
        f"/plans/{plan_id}/import",
        data={"file": (io.BytesIO(data), filename), "mode": mode},
        content_type="multipart/form-data",
    )


def _replace(client, plan_id: int, text: str, filename: str = "rules.csv"):
    """A replace import: the upload answers the preview (nothing written); the confirmation applies it."""
    preview = _upload(client, plan_id, text, "replace", filename=filename)
    page = preview.data.decode()
    assert preview.status_code == 200 and "Nothing is written until you confirm" in page, page
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    return client.post(f"/plans/{plan_id}/import", data={"token": token, "action": "confirm"})


def _rules(plan_id: int) -> list[tuple]:
    """Every field of a plan's rules but ids, sorted: what `identical rules` means."""
    db.session.expire_all()
    stmt = select(RoutingRule).where(RoutingRule.plan_id == plan_id)
    skip = {"id", "plan_id", "version"}  # the version counts edits: not part of what a rule says
    columns = [c.key for c in RoutingRule.__table__.columns if c.key not in skip]
    return sorted(
        (tuple(str(getattr(r, c)) for c in columns) for r in db.session.scalars(stmt)),
    )


def _count(plan_id: int) -> int:
    return db.session.scalar(select(func.count()).where(RoutingRule.plan_id == plan_id))


def _export(client, plan_id: int) -> str:
    response = client.get(f"/plans/{plan_id}/export")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    return response.data.decode()


def test_export_writes_the_documented_columns(world, login):
    """The header is the documented column order; names stand for terminators, policies and profiles."""
    world.rule_uk.time_profile_id = world.office.id
    world.rule_uk.expires_at = datetime(2030, 6, 1, 8, 30, tzinfo=UTC)
    world.rule_uk.pm_value, world.rule_uk.pm_percent = Decimal("16"), True
    world.rule_uk.orig_tags, world.rule_uk.orig_tags_mode = "vip gold", "any"
    world.rule_uk.min_asr, world.rule_uk.min_acd = Decimal("20.5"), Decimal("1.25")
    factories.rule(world.plan, "", "did", priority=2)
    db.session.commit()
    text = _export(login(world.tree.alpha_viewer), world.plan.id)
    lines = text.splitlines()
    assert lines[0] == (
        "priority,code,type,terminator,profit_margin,orig_tags,orig_tags_mode,term_tags,time_profile,expires_at,"
        "balancing,min_length,max_length,min_asr,min_acd,capacity,stop_hunt"
    )
    assert lines[1:] == [
        "2,,did,,,,all,,,,,,,,,,0",
        "10,44,static_client,Carrier A,16%,vip gold,any,,Office hours,2030-06-01 08:30,,,,20.5,1.25,,0",
        "5,447*,static_account,Carrier B/b1,,,all,,,,,,,,,30,0",
        "1,4479,dynamic,Cheapest,,,all,gold,,,,,,,,,1",
    ]


def test_export_then_import_into_an_empty_plan_gives_identical_rules(world, login):
    """Every field survives the round trip, for every rule type."""
    world.rule_uk.time_profile_id = world.office.id
    world.rule_uk.expires_at = datetime(2030, 6, 1, 8, 30, tzinfo=UTC)
    world.rule_uk.pm_value, world.rule_uk.pm_percent = Decimal("0.015"), False
    world.rule_uk.orig_tags, world.rule_uk.orig_tags_mode = "vip gold", "any"
    world.rule_uk.balancing, world.rule_uk.min_length, world.rule_uk.max_length = 33, 10, 14
    world.rule_uk.min_asr, world.rule_uk.min_acd = Decimal("20.5"), Decimal("1.25")
    world.rule_mobile.pm_value, world.rule_mobile.pm_percent = Decimal("12.5"), True
    factories.rule(world.plan, "", "did", priority=-3, capacity=5, stop_hunt=True)
    factories.rule(
        world.plan, "*", "dynamic", priority=100, policy_id=world.simple_lcr.id
    )  # the operator's policy
    db.session.commit()
    client = login(world.tree.alpha_operator)
    text = _export(client, world.plan.id)
    empty = factories.plan(world.tree.alpha, "Empty")
    db.session.commit()
    response = _upload(client, empty.id, text)
    assert response.status_code == 200, response.data.decode()
    assert "Imported 5 rules (append)" in response.data.decode()
    assert _rules(empty.id) == _rules(world.plan.id)
    assert _export(client, empty.id) == text


def test_append_adds_and_replace_replaces(world, login):
    """Append keeps the plan's rules; replace makes the file's rules the plan's. One audit entry each."""
    client = login(world.tree.alpha_operator)
    text = (
        f"{HEADER}\n1,49,static_client,Carrier B,,,,,,,,,,,,,\n2,491,dynamic,Cheapest,5,,,premium,,,,,,,,,1\n"
    )
    response = _upload(client, world.plan.id, text, "append")
    assert response.status_code == 200 and _count(world.plan.id) == 5
    entry = audit_entries("routingplan", "import")[-1]
    assert (
        entry.object_id == world.plan.id
        and entry.note == "import (append): 2 rules added; the plan has 5 rules"
    )
    response = _replace(client, world.plan.id, text)
    assert response.status_code == 200 and _count(world.plan.id) == 2
    assert "Imported 2 rules (replace, 5 replaced)" in response.data.decode()
    entry = audit_entries("routingplan", "import")[-1]
    assert entry.note == "import (replace): 2 rules added, 5 removed; the plan has 2 rules"
    assert entry.username == "alpha_operator"
    dyn = db.session.scalar(select(RoutingRule).where(RoutingRule.code == "491"))
    assert (dyn.policy_id, dyn.term_tags, dyn.profit_margin, dyn.stop_hunt) == (
        world.cheapest.id,
        "premium",
        "5",
        True,
    )
    assert len(audit_entries("routingplan", "import")) == 2


def test_columns_are_matched_by_header_name(world, login):
    """Columns may come in any order, and missing optional ones mean not set."""
    text = "type,terminator,code\nstatic_account,Carrier A / a1,4420\n"
    response = _upload(login(world.tree.alpha_operator), world.plan.id, text)
    assert response.status_code == 200
    rule = db.session.scalar(select(RoutingRule).where(RoutingRule.code == "4420"))
    assert (rule.terminator_account_id, rule.priority, rule.orig_tags_mode, rule.stop_hunt) == (
        world.a1.id,
        0,
        "all",
        False,
    )


def test_import_shows_the_progress_and_the_outcome(world, login):
    """The answer carries the import's status with its progress bar and its message."""
    response = _upload(
        login(world.tree.alpha_operator),
        world.plan.id,
        f"{HEADER}\n1,49,static_client,Carrier B,,,,,,,,,,,,,\n",
    )
    page = response.data.decode()
    assert "<progress" in page and "Imported 1 rules (append)" in page and "Traffic Rules manager" in page
    job = db.session.scalars(select(ImportJob)).one()
    assert (job.status, job.kind, job.target_id, job.mode) == (
        "done",
        "routing_rules",
        world.plan.id,
        "append",
    )


ROW_ERRORS = [
    (
        "1,4a,static_client,Carrier A",
        "line 2, code: '4a' is not a code: use digits, and * for any run of digits.",
    ),
    ("1,44,static,Carrier A", "line 2, type: 'static' is not a rule type"),
    ("x,44,static_client,Carrier A", "line 2, priority: 'x' is not a whole number."),
    ("1,44,static_client,Nobody", "line 2, terminator: no client named 'Nobody'."),
    ("1,44,static_client,Beta Vendor", "line 2, terminator: no client named 'Beta Vendor'."),
    (
        "1,44,static_account,Carrier A/a9",
        "line 2, terminator: no account (client/account) named 'Carrier A/a9'.",
    ),
    ("1,44,static_account,a1", "line 2, terminator: 'a1': write the account as client/account."),
    ("1,44,dynamic,Beta Policy", "line 2, terminator: no routing policy named 'Beta Policy'."),
    ("1,44,static_client,", "line 2, terminator: A static_client rule needs a terminator client."),
    ("1,44,did,", "line 2, code: A DID rule has no code"),
    ("1,,did,Carrier A", "line 2, terminator: A DID rule has no terminator"),
    ("1,,static_client,Carrier A", "line 2, code: Give a code"),
    ("1,44,static_client,Carrier A,16$", "line 2, profit_margin: '16$' is not a profit margin"),
    (
        "1,44,static_client,Carrier A,,vip,most",
        "line 2, orig_tags_mode: 'most' is not a tag mode: use all or any.",
    ),
    ("1,44,static_client,Carrier A,,,,gold", "line 2, term_tags: Only dynamic rules have terminator tags."),
    ("1,44,static_client,Carrier A,,a/b", "line 2, orig_tags: 'a/b' is not a tag"),
    ("1,44,static_client,Carrier A,,,,,Night", "line 2, time_profile: no time profile named 'Night'."),
    (
        "1,44,static_client,Carrier A,,,,,,2030-13-01 00:00",
        "line 2, expires_at: '2030-13-01 00:00' is not a date",
    ),
    (
        "1,44,static_client,Carrier A,,,,,,01/02/2030",
        "line 2, expires_at: '01/02/2030' is not a date and time",
    ),
    ("1,44,static_client,Carrier A,,,,,,,x", "line 2, balancing: 'x' is not a whole number."),
    (
        "1,44,static_client,Carrier A,,,,,,,,12,10",
        "line 2, max_length: The maximum length is below the minimum",
    ),
    ("1,44,static_client,Carrier A,,,,,,,,,,101", "line 2, min_asr: Must be between 0 and 100."),
    ("1,44,static_client,Carrier A,,,,,,,,,,,abc", "line 2, min_acd: 'abc' is not a number."),
    ("1,44,static_client,Carrier A,,,,,,,,,,,,-2", "line 2, capacity: Must be between 0 and 1,000,000."),
    ("1,44,static_client,Carrier A,,,,,,,,,,,,,maybe", "line 2, stop_hunt: 'maybe' is not 1 or 0."),
]


def test_every_row_error_names_line_and_column(world, login):
    """Each kind of bad value is reported as `line N, column: message` in one pass; nothing is imported."""
    lines = []
    for row, _error in ROW_ERRORS:
        cells = row.split(",")
        lines.append(",".join(cells + [""] * (len(COLUMNS) - len(cells))))
    text = HEADER + "\n" + "\n".join(lines) + "\n"
    response = _upload(login(world.tree.alpha_operator), world.plan.id, text, "replace")
    assert response.status_code == 422
    page = response.data.decode().replace("&#39;", "'")
    for number, (_row, error) in enumerate(ROW_ERRORS, start=2):
        assert error.replace("line 2,", f"line {number},") in page, error
    assert f"Nothing was imported: {len(ROW_ERRORS)} row error(s)." in page
    assert _count(world.plan.id) == 3


def test_all_rows_or_none_with_every_error_listed(world, login):
    """Good rows are not written when another row is bad; every bad row is listed with its line."""
    text = (
        f"{HEADER}\n"
        "1,49,static_client,Carrier B,,,,,,,,,,,,,\n"
        "2,4x,static_client,Carrier B,,,,,,,,,,,,,\n"
        "3,50,static_client,Carrier B,,,,,,,,,,,,,\n"
        "4,51,static_client,Nobody,,,,,,,,,,,,,\n"
        "5,52,static_client,Carrier B\n"
    )
    client = login(world.tree.alpha_operator)
    before = _rules(world.plan.id)
    page = _upload(client, world.plan.id, text, "append").data.decode().replace("&#39;", "'")
    assert "line 3, code: '4x' is not a code" in page
    assert "line 5, terminator: no client named 'Nobody'." in page
    assert "line 6: expected 17 columns, found 4" in page
    assert "line 2" not in page and "line 4," not in page
    assert _rules(world.plan.id) == before
    assert not audit_entries("routingplan", "import")
    assert db.session.scalars(select(ImportJob)).one().status == "failed"


FILE_ERRORS = [
    (f"{HEADER},colour\n", "line 1: unknown column(s) colour"),
    ("priority,code,terminator\n1,44,Carrier A\n", "line 1: missing required column(s) type"),
    (f"{HEADER}\n".encode() + "1,44,static_client,Caf\xe9".encode("latin-1"), "The file is not UTF-8"),
    (f"{HEADER}\n", "the file has a header but no rules"),
    ("code,type,code\n44,did,\n", "line 1: column(s) code appear twice."),
]


def test_file_errors(world, login):
    """Unknown or missing columns, another encoding, no rows: refused with a message, nothing written."""
    client = login(world.tree.alpha_operator)
    for content, message in FILE_ERRORS:
        response = _upload(client, world.plan.id, content, "replace")
        assert response.status_code == 422, message
        assert message in response.data.decode()
    assert _count(world.plan.id) == 3


def test_upload_problems(world, login):
    """No file, an empty file or no mode: the form says so (422) and starts no import."""
    client = login(world.tree.alpha_operator)
    response = client.post(
        f"/plans/{world.plan.id}/import", data={"mode": "append"}, content_type="multipart/form-data"
    )
    assert response.status_code == 422 and "Choose a CSV file to import." in response.data.decode()
    response = _upload(client, world.plan.id, "   \n")
    assert response.status_code == 422 and "The file is empty." in response.data.decode()
    response = _upload(client, world.plan.id, f"{HEADER}\n", mode="merge")
    assert response.status_code == 422 and "Choose append or replace." in response.data.decode()
    assert db.session.scalar(select(func.count()).select_from(ImportJob)) == 0


@pytest.mark.parametrize("app_config", [{"RULES_IMPORT_MAX_BYTES": 1024}])
def test_file_size_is_bounded(world, login):
    """A file above the limit is refused before it is read."""
    rows = "".join(f"1,{4400 + i},static_client,Carrier A,,,,,,,,,,,,,\n" for i in range(60))
    response = _upload(login(world.tree.alpha_operator), world.plan.id, f"{HEADER}\n{rows}")
    assert response.status_code == 422 and "larger than the limit" in response.data.decode()
    assert _count(world.plan.id) == 3


def test_names_resolve_to_the_nearest_company(world, login):
    """When two clients share a name, the plan owner's own wins; a tie among others is ambiguous."""
    second = factories.company("Alpha Sub 2", "sub_reseller", world.tree.alpha)
    factories.account(factories.client(world.tree.sub, "Carrier A"), "x1", term_enabled=True)
    factories.account(factories.client(world.tree.sub, "Dup"), "d1", term_enabled=True)
    factories.account(factories.client(second, "Dup"), "d2", term_enabled=True)
    factories.policy(world.tree.alpha, "Simple LCR", rate_weight=2)
    db.session.commit()
    client = login(world.tree.alpha_operator)
    response = _upload(
        client, world.plan.id, "code,type,terminator\n4420,static_client,Carrier A\n49,dynamic,Simple LCR\n"
    )
    assert response.status_code == 200
    rule = db.session.scalar(select(RoutingRule).where(RoutingRule.code == "4420"))
    assert rule.terminator_client_id == world.carrier_a.id  # Alpha's own, not Alpha Sub's
    lcr = db.session.scalar(select(RoutingRule).where(RoutingRule.code == "49"))
    assert lcr.policy.company_id == world.tree.alpha.id  # Alpha's own policy beats the operator's
    response = _upload(client, world.plan.id, "code,type,terminator\n4421,static_client,Dup\n")
    page = response.data.decode().replace("&#39;", "'")
    assert response.status_code == 422
    assert (
        "line 2, terminator: 'Dup' is ambiguous: client of Alpha Sub, client of Alpha Sub 2 have that name."
        in page
    )


def test_import_of_another_companys_plan_answers_404(world, login):
    """Beta cannot import into, nor export, Alpha's plan."""
    client = login(world.tree.beta_admin)
    assert _upload(client, world.plan.id, f"{HEADER}\n").status_code == 404
    assert client.get(f"/plans/{world.plan.id}/export").status_code == 404
    assert client.get(f"/plans/{world.plan.id}/import").status_code == 404


def test_import_tab_documents_the_format(world, login):
    """The tab lists the columns and offers the export; a viewer sees no upload form."""
    page = login(world.tree.alpha_viewer).get(f"/plans/{world.plan.id}/import").data.decode()
    assert HEADER in page and f"/plans/{world.plan.id}/export" in page
    assert 'type="file"' not in page and "read-only access" in page


def test_export_is_valid_csv_with_quoted_names(world, login):
    """Names with commas and quotes survive the export (standard CSV quoting) and the import."""
    vendor = factories.client(world.tree.alpha, 'Acme, "Intl"')
    factories.account(vendor, "t/1", term_enabled=True)
    factories.rule(world.plan, "49", "static_account", terminator_account_id=vendor.accounts[0].id)
    db.session.commit()
    client = login(world.tree.alpha_operator)
    text = _export(client, world.plan.id)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {"code": "49", "terminator": 'Acme, "Intl"/t/1'}.items() <= rows[-1].items()
    empty = factories.plan(world.tree.alpha, "Empty")
    db.session.commit()
    assert _upload(client, empty.id, text).status_code == 200
    assert _rules(empty.id) == _rules(world.plan.id)


@pytest.mark.parametrize("app_config", [{"IMPORTS_SYNCHRONOUS": False}])
def test_large_import_runs_in_the_background_with_a_progress_bar(world, login):
    """A file of thousands of rules answers at once with a progress bar that polls until the import ends."""
    rows = "".join(f"{i % 9},{440000 + i},static_client,Carrier B,,,,,,,,,,,,,\n" for i in range(2500))
    client = login(world.tree.alpha_operator)
    response = _replace(client, world.plan.id, f"{HEADER}\n{rows}", filename="big.csv")
    page = response.data.decode()
    job = db.session.scalars(select(ImportJob)).one()
    assert response.status_code == 200 and "<progress" in page and "big.csv" in page
    status_url = f"/imports/{job.id}"
    deadline = time.monotonic() + 60
    while True:
        db.session.rollback()  # the test shares its session with the requests: see the import's commits
        status = client.get(status_url, headers={"HX-Request": "true"}).data.decode()
        if "hx-get" not in status:  # the fragment stops polling when the job has ended
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert "Imported 2,500 rules (replace, 3 replaced)" in status
    assert _count(world.plan.id) == 2500

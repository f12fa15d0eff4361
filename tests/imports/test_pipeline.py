"""The CSV pipeline (panel/imports/): reading, formula-safe exports that import back, dead jobs, the pool."""

import csv
import io
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from sqlalchemy import event, select, update

from panel.extensions import db
from panel.imports import export, jobs, reader
from panel.models import AuditEntry, Code, Did, Rate, RoutingRule
from panel.models.system import ImportJob
from tests import factories
from tests.conftest import IS_POSTGRES
from tests.import_jobs import last_job

COLUMNS = ["code", "name"]


def _parse(data: bytes | str, **kwargs):
    return reader.parse(data, COLUMNS, lambda raw, line: {**raw, "line": line}, **kwargs)


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_reader_takes_every_line_end(app, end):
    """LF, CRLF and CR-only files read the same, with the same line numbers."""
    text = end.join(["code,name", "44,UK", "", "49,Germany"]) + end
    rows, errors = _parse(text.encode())
    assert errors == []
    assert rows == [{"code": "44", "name": "UK", "line": 2}, {"code": "49", "name": "Germany", "line": 4}]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_reader_sniffs_the_byte_order_mark(app, encoding):
    """UTF-8 with BOM (Excel's CSV UTF-8) and UTF-16 with BOM decode to the same rows."""
    rows, errors = _parse("code,name\n44,Zürich\n".encode(encoding))
    assert errors == [] and rows[0]["name"] == "Zürich"


def test_reader_checks_the_header_once(app):
    """Unknown, duplicated and missing columns are refused as a whole, naming them."""
    with pytest.raises(reader.CsvError, match="unknown column"):
        _parse(b"code,colour\n1,red\n")
    with pytest.raises(reader.CsvError, match="code appear twice"):
        _parse(b"code,code\n1,1\n")
    with pytest.raises(reader.CsvError, match="missing required column"):
        _parse(b"name\nx\n", required=["code"])
    # A long header with one column many times is still answered (and not in quadratic time).
    with pytest.raises(reader.CsvError, match="appear twice"):
        _parse(("code," * 20000 + "name\n").encode())


def test_export_neutralises_formula_cells_and_import_strips_exactly_that():
    """`=`, `+`, `-`, `@`, tab and CR starts get a `'`; the reader removes that `'` and nothing else."""
    for value in ["=1+1", "+44", "-3", "@SUM(A1)", "\tx", "\rx"]:
        assert export.neutralise(value) == "'" + value
        assert reader.unquote_formula(export.neutralise(value)) == value
    for value in ["44", "'quoted", "'x", "a=b", ""]:
        assert export.neutralise(value) == value
        assert reader.unquote_formula(value) == value
    assert export.neutralise(-3) == "'-3" and export.neutralise(None) == ""


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def _upload(client, url: str, text: str, **fields):
    data = {"file": (io.BytesIO(text.encode()), "file.csv"), **fields}
    return client.post(url, data=data, content_type="multipart/form-data")


def test_rates_round_trip_with_formula_names(login, tree):
    """Rate names starting with `=`, `-`, `@` export with a `'` and import back as they were."""
    source = factories.rate_table(
        tree.alpha, "Source", [("44", "0.01", "=cmd|' /C calc'!A0"), ("49", "0.02", "@home")]
    )
    db.session.commit()
    client = login(tree.alpha_admin)
    rows = _csv(client.get(f"/rate-tables/{source.id}/export"))
    assert [r[1] for r in rows[1:]] == ["'=cmd|' /C calc'!A0", "'@home"]
    target = factories.rate_table(tree.alpha, "Target")
    db.session.commit()
    text = "\n".join(",".join(f'"{c}"' for c in row) for row in rows)
    _upload(client, f"/rate-tables/{target.id}/import", text, mode="add_update")
    assert last_job().status == "done", last_job().errors
    names = db.session.scalars(select(Rate.name).where(Rate.rate_table_id == target.id).order_by(Rate.code))
    assert list(names) == ["=cmd|' /C calc'!A0", "@home"]


def test_codes_round_trip_with_formula_names(login, tree):
    """Code names and countries starting with `+` or `=` survive export and import."""
    deck = factories.code_deck(tree.alpha, "Deck", [("44", "+44 Mobile")])
    db.session.execute(Code.__table__.update().values(country="=GB"))
    db.session.commit()
    client = login(tree.alpha_admin)
    rows = _csv(client.get(f"/code-decks/{deck.id}/export"))
    assert rows[1] == ["44", "'+44 Mobile", "'=GB"]
    other = factories.code_deck(tree.alpha, "Other")
    db.session.commit()
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    _upload(client, f"/code-decks/{other.id}/import", buffer.getvalue(), mode="add_update")
    assert last_job().status == "done", last_job().errors
    code = db.session.scalars(select(Code).where(Code.code_deck_id == other.id)).one()
    assert (code.name, code.country) == ("+44 Mobile", "=GB")


def test_dids_round_trip_with_formula_notes(login, tree):
    """DID notes starting with `=` export neutralised and import back unchanged."""
    vendor = factories.client(tree.alpha, "Vendor")
    trunk = factories.account(vendor, "trunk", ident_value="198.51.100.9", term_enabled=True)
    did = factories.did(trunk, "442000001")
    did.notes = '=HYPERLINK("http://x")'
    db.session.commit()
    client = login(tree.alpha_admin)
    rows = _csv(client.get("/dids/export"))
    assert rows[1] == ["442000001", "Vendor/trunk", '\'=HYPERLINK("http://x")']
    db.session.delete(db.session.get(Did, did.id))
    db.session.commit()
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    _upload(client, "/dids/import", buffer.getvalue(), mode="add_update")
    assert last_job().status == "done", last_job().message
    assert db.session.scalars(select(Did.notes)).one() == '=HYPERLINK("http://x")'


def test_rules_round_trip_with_negative_priority_and_formula_names(login, tree):
    """A negative priority and a terminator client named `=Carrier` export with `'` and import back."""
    carrier = factories.client(tree.alpha, "=Carrier")
    factories.account(carrier, "t", ident_value="198.51.100.7", term_enabled=True)
    plan = factories.plan(tree.alpha, "Main")
    factories.rule(plan, "44", "static_client", priority=-3, terminator_client_id=carrier.id)
    empty = factories.plan(tree.alpha, "Empty")
    db.session.commit()
    client = login(tree.alpha_admin)
    rows = _csv(client.get(f"/plans/{plan.id}/export"))
    assert rows[1][:4] == ["'-3", "44", "static_client", "'=Carrier"]
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    response = _upload(client, f"/plans/{empty.id}/import", buffer.getvalue(), mode="append")
    assert response.status_code == 200, response.get_data(as_text=True)
    rule = db.session.scalars(select(RoutingRule).where(RoutingRule.plan_id == empty.id)).one()
    assert (rule.priority, rule.terminator_client_id) == (-3, carrier.id)


def test_audit_export_neutralises_formula_cells(login, tree):
    """A name an attacker chose shows in the audit export as text, not as a formula."""
    client = login(tree.alpha_admin)
    client.post("/clients/new", data={"name": "=2+5", "company_id": tree.alpha.id})
    assert db.session.scalar(select(AuditEntry.id).where(AuditEntry.object_label == "=2+5"))
    cells = [cell for row in _csv(client.get("/audit/export")) for cell in row]
    assert "'=2+5" in cells and "=2+5" not in cells


@pytest.mark.skipif(IS_POSTGRES, reason="SQLite's lock wait is a per-connection setting")
def test_progress_writes_never_leave_a_short_lock_wait_in_the_pool(app, tree):
    """After an import's progress writes, every connection goes back to the pool with the normal wait."""
    with db.engine.connect() as conn:
        normal = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
    assert normal > jobs.PROGRESS_WAIT_MS
    seen: list[int] = []

    def on_checkin(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        seen.append(cursor.execute("PRAGMA busy_timeout").fetchone()[0])
        cursor.close()

    event.listen(db.engine, "checkin", on_checkin)
    try:
        job = jobs.start(
            "test",
            company_id=tree.alpha.id,
            target_id=None,
            target_label="test",
            filename="t.csv",
            mode="x",
            work=lambda job_id, progress: (progress(1, 2), jobs.mark_writing(job_id, 2), "ok")[-1],
            synchronous=True,
        )
    finally:
        event.remove(db.engine, "checkin", on_checkin)
    assert job.status == "done"
    assert seen and set(seen) == {normal}


_CHILD = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {root!r})
    from tests.conftest import make_test_app
    from panel.imports import jobs
    app = make_test_app({url!r})

    def work(job_id, progress):
        jobs.mark_writing(job_id, 100)
        time.sleep(600)

    with app.app_context(), app.test_request_context(method="POST"):
        jobs.start("rates", company_id={company}, target_id=None, target_label="deck", filename="deck.csv",
                   mode="Replace table", work=work, synchronous=True)
    """
)


def test_a_job_whose_process_was_killed_is_failed_at_the_next_look(app, login, tree):
    """kill -9 during the write: the status page then says failed, with a message, not "writing"."""
    db.session.commit()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = _CHILD.format(root=root, url=app.config["SQLALCHEMY_DATABASE_URI"], company=tree.alpha.id)
    child = subprocess.Popen([sys.executable, "-c", script], cwd=root)  # noqa: S603 - our own script
    try:
        deadline = time.monotonic() + 120
        status = job_id = None
        while time.monotonic() < deadline and status != "writing" and child.poll() is None:
            latest = select(ImportJob.id, ImportJob.status).order_by(ImportJob.id.desc())
            row = db.session.execute(latest).first()
            db.session.rollback()  # no transaction left open: the child writes too
            job_id, status = row if row else (None, None)
            time.sleep(0.1)
        assert status == "writing", (status, child.poll())
        job = db.session.get(ImportJob, job_id)
        db.session.rollback()
        page = login(tree.alpha_admin).get(f"/imports/{job.id}").get_data(as_text=True)
        assert "writing" in page and "failed" not in page  # alive: left alone
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        page = login(tree.alpha_admin).get(f"/imports/{job.id}").get_data(as_text=True)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert "failed" in page and "the process running it ended" in page
    assert last_job().status == "failed" and last_job().finished_at is not None


def test_a_job_of_this_process_without_its_thread_is_failed(app, login, tree):
    """A job recorded for this very process that no thread runs any more (a crash) is failed at a look."""
    job = ImportJob(company_id=tree.alpha.id, kind="codes", target_id=None, status="parsing", mode="x")
    db.session.add(job)
    db.session.flush()
    db.session.add(jobs.ImportWorker(job_id=job.id, host=jobs.HOST, pid=os.getpid(), started=""))
    db.session.commit()
    page = login(tree.alpha_admin).get(f"/imports/{job.id}").get_data(as_text=True)
    assert "the process running it ended" in page


def test_a_job_that_ended_during_a_look_keeps_its_outcome(app, tree):
    """A page read the job while it ran; it ended before the dead-process check: its outcome is shown."""
    job = ImportJob(company_id=tree.alpha.id, kind="codes", target_id=None, status="parsing", mode="x")
    db.session.add(job)
    db.session.flush()
    db.session.add(jobs.ImportWorker(job_id=job.id, host=jobs.HOST, pid=os.getpid(), started=""))
    db.session.commit()
    assert job.status == "parsing"  # what the page read
    with db.engine.connect() as conn:  # the import's thread ends it meanwhile
        conn.execute(
            update(ImportJob)
            .where(ImportJob.id == job.id)
            .values(status="failed", message="Nothing was imported: 1 line(s) are wrong.")
        )
        conn.commit()
    jobs.reap([job])
    assert (job.status, job.message) == ("failed", "Nothing was imported: 1 line(s) are wrong.")


def test_a_job_on_another_host_is_failed_when_its_heartbeat_is_old(app, login, tree):
    """A job run elsewhere is alive while its heartbeat is fresh and failed once it is stale."""
    job = ImportJob(company_id=tree.alpha.id, kind="codes", target_id=None, status="writing", mode="x")
    db.session.add(job)
    db.session.flush()
    worker = jobs.ImportWorker(job_id=job.id, host="elsewhere", pid=1, started="1")
    db.session.add(worker)
    db.session.commit()
    client = login(tree.alpha_admin)
    assert "failed" not in client.get(f"/imports/{job.id}").get_data(as_text=True)
    worker.heartbeat_at = worker.heartbeat_at - jobs.STALE_AFTER
    db.session.commit()
    assert "the process running it ended" in client.get(f"/imports/{job.id}").get_data(as_text=True)


# ---------------------------------------------------------------- replace preview, kept files, retry


def _rules_file(*rows: str, header: bool = True) -> str:
    from panel.plans.rules_csv import COLUMNS

    return "\n".join(([",".join(COLUMNS)] if header else []) + list(rows)) + "\n"


def _import_rules(client, plan, *rows: str, mode: str):
    """Upload `rows` (no header line) as a rules file into `plan`."""
    return _upload(client, f"/plans/{plan.id}/import", _rules_file(*rows, header=False), mode=mode)


def _plan_rules(plan_id: int) -> list[tuple]:
    db.session.expire_all()
    stmt = select(RoutingRule.code, RoutingRule.priority).where(RoutingRule.plan_id == plan_id)
    return sorted(db.session.execute(stmt).all())


def _token(page: str) -> str:
    import re

    return re.search(r'name="token" value="([^"]+)"', page).group(1)


def test_replace_shows_the_preview_and_writes_only_on_confirmation(login, tree, plan):
    """Replace: counts and first rows of added, removed and changed rules; nothing written until confirmed."""
    client = login(tree.alpha_admin)
    response = _import_rules(
        client, plan, "5,44,static_client,Carrier A", "10,33,static_client,Carrier B", mode="replace"
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "1 added" in page and "1 removed" in page and "1 changed" in page and "0 unchanged" in page
    assert "Carrier B" in page and "<del>10</del> → <ins>5</ins>" in page
    assert _plan_rules(plan.id) == [("44", 10), ("49", 10)]  # nothing written yet
    response = client.post(f"/plans/{plan.id}/import", data={"token": _token(page), "action": "confirm"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert _plan_rules(plan.id) == [("33", 10), ("44", 5)]
    entry = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert entry.action == "import" and entry.before is None
    assert entry.after == {"mode": "replace", "rules added": 2, "rules removed": 2, "rules now": 2}


def test_confirmation_fails_cleanly_when_the_plan_changed_meanwhile(login, tree, plan):
    """A rule edited between preview and confirm: nothing is applied; the new preview shows instead."""
    client = login(tree.alpha_admin)
    page = _import_rules(client, plan, "5,33,static_client,Carrier B", mode="replace")
    token = _token(page.get_data(as_text=True))
    db.session.execute(RoutingRule.__table__.update().where(RoutingRule.code == "49").values(priority=7))
    db.session.commit()
    response = client.post(f"/plans/{plan.id}/import", data={"token": token, "action": "confirm"})
    page = response.get_data(as_text=True)
    assert "The data changed since this preview" in page and "Confirm" in page
    assert _plan_rules(plan.id) == [("44", 10), ("49", 7)]
    client.post(f"/plans/{plan.id}/import", data={"token": _token(page), "action": "confirm"})
    assert _plan_rules(plan.id) == [("33", 5)]


def test_a_failed_import_keeps_the_file_for_a_retry(login, tree, plan):
    """Errors name a missing client; once it exists, the same kept file imports without choosing it again."""
    client = login(tree.alpha_admin)
    response = _import_rules(client, plan, "1,1,static_client,Carrier C", mode="append")
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "no client named &#39;Carrier C&#39;" in page
    assert "Retry with the same file" in page
    factories.client(tree.alpha, "Carrier C")
    db.session.commit()
    response = client.post(f"/plans/{plan.id}/import", data={"token": _token(page), "action": "retry"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert ("1", 1) in _plan_rules(plan.id)
    # Done: the kept file is gone, and another company cannot use a token anyway.
    assert db.session.scalars(select(jobs.ImportWorker)).all()
    from panel.models import ImportUpload

    assert db.session.scalars(select(ImportUpload)).all() == []


def test_a_kept_file_is_only_for_its_company(login, tree, plan):
    """Beta's user cannot confirm Alpha's preview (its plan answers 404; the token alone is useless)."""
    page = _import_rules(login(tree.alpha_admin), plan, "5,33,static_client,Carrier B", mode="replace")
    token = _token(page.get_data(as_text=True))
    beta_plan = factories.plan(tree.beta, "Beta")
    db.session.commit()
    beta = login(tree.beta_admin)
    assert (
        beta.post(f"/plans/{plan.id}/import", data={"token": token, "action": "confirm"}).status_code == 404
    )
    response = beta.post(f"/plans/{beta_plan.id}/import", data={"token": token, "action": "confirm"})
    assert response.status_code == 422 and "expired or is not yours" in response.get_data(as_text=True)
    assert _plan_rules(plan.id) == [("44", 10), ("49", 10)]


def test_rates_replace_and_codes_purge_are_previewed(login, tree):
    """Rate deck replace and code deck purge also show the preview first."""
    table = factories.rate_table(tree.alpha, "Deck", [("44", "0.01")])
    deck = factories.code_deck(tree.alpha, "Codes", [("44", "UK")])
    db.session.commit()
    client = login(tree.alpha_admin)
    page = _upload(client, f"/rate-tables/{table.id}/import", "code,rate\n49,0.02\n", mode="replace")
    text = page.get_data(as_text=True)
    assert "1 added" in text and "1 removed" in text
    assert db.session.scalars(select(Rate.code).where(Rate.rate_table_id == table.id)).all() == ["44"]
    client.post(f"/rate-tables/{table.id}/import", data={"token": _token(text), "action": "confirm"})
    db.session.expire_all()
    assert db.session.scalars(select(Rate.code).where(Rate.rate_table_id == table.id)).all() == ["49"]
    page = _upload(client, f"/code-decks/{deck.id}/import", "code,name\n44,United Kingdom\n", mode="purge")
    text = page.get_data(as_text=True)
    assert "0 added" in text and "1 changed" in text and "<ins>United Kingdom</ins>" in text
    client.post(f"/code-decks/{deck.id}/import", data={"token": _token(text), "action": "confirm"})
    db.session.expire_all()
    assert db.session.scalars(select(Code.name).where(Code.code_deck_id == deck.id)).all() == [
        "United Kingdom"
    ]


def test_rules_file_without_header_and_operator_words(login, tree, plan):
    """No header: read by position in the export's order; `Static client`, `Dynamic`, `yes`/`no` accepted."""
    lcr = factories.policy(tree.alpha, "Cheapest", rate_weight=1)
    db.session.commit()
    client = login(tree.alpha_admin)
    response = _import_rules(
        client,
        plan,
        "3,33,Static client,Carrier B,,,,,,,,,,,,,yes",
        "4,34,Dynamic,Cheapest,5%,,All,,,,,,,,,,no",
        "6,35,static-account,Carrier A/a1",
        mode="append",
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    rules = {r.code: r for r in db.session.scalars(select(RoutingRule).where(RoutingRule.plan_id == plan.id))}
    assert rules["33"].type == "static_client" and rules["33"].stop_hunt is True
    assert (
        rules["34"].type == "dynamic" and rules["34"].policy_id == lcr.id and rules["34"].stop_hunt is False
    )
    assert rules["35"].type == "static_account"
    response = _import_rules(client, plan, "1,36,Static cleint,Carrier B", mode="append")
    assert "line 1, type: &#39;Static cleint&#39; is not a rule type" in response.get_data(as_text=True)


# ---------------------------------------------------------------- the rate deck's fast path


DECK = """code,name,rate,effective_from,end,setup_fee,min_time,interval
44,United Kingdom,0.012,2024-01-01,,,60,60
 4420 , UK London ,0.0095,2024-01-01 00:00,2025-01-01,0.01,30,6
447,UK Mobile,1E-3,,,,,
448,Spaces inside the date, 0.5 ,2024-01-01 ,,,,
44,United Kingdom again,0.02,2024-01-01 00:00:00,,,,
4x,Bad code,0.02,,,,,
50,Bad rate,abc,,,,,
51,Bad date,0.1,2024-13-01,,,,
52,End first,0.1,2024-02-01,2024-01-01,,,
53,Bad interval,0.1,,,,1,0
54,Too precise,0.1234567,,,,,
55,Trailing zeros,0.12345600,,,,,
56,Bad fee,0.1,,,-1,,
447,UK Mobile twice,0.001,,,,,
57,'=Formula,0.1,,,,,
"""


def test_the_fast_path_gives_the_row_parsers_rows_and_errors(app):
    """Every line of the deck reads as the row parser reads it: the same rows, the same per-line errors."""
    from datetime import UTC, datetime

    from panel.imports.jobs import ImportFailed
    from panel.rates.deck import RATE_COLUMNS, REQUIRED_COLUMNS, parse_deck, rate_row_parser

    start = datetime(2024, 6, 1, tzinfo=UTC)
    expected_rows, expected_errors = reader.parse(
        DECK.encode(), RATE_COLUMNS, rate_row_parser(1, start), required=REQUIRED_COLUMNS
    )
    assert expected_errors and len(expected_rows) >= 5  # the deck has both kinds of line
    with pytest.raises(ImportFailed) as failed:
        parse_deck(1, DECK.encode(), start)
    assert failed.value.errors == expected_errors
    bad_lines = {int(e.split(",")[0].split()[1]) for e in expected_errors}
    good = "\n".join(line for n, line in enumerate(DECK.splitlines(), start=1) if n not in bad_lines)
    rows, errors = reader.parse(
        good.encode(), RATE_COLUMNS, rate_row_parser(1, start), required=REQUIRED_COLUMNS
    )
    assert errors == [] and parse_deck(1, good.encode(), start) == rows
    names = {row["code"]: row["name"] for row in rows}
    assert names["4420"] == "UK London" and names["57"] == "=Formula"


def test_kept_files_are_bounded_in_number_and_age(app, tree, monkeypatch):
    """At most PER_COMPANY files a company (oldest go first), none older than MAX_AGE, none too large."""
    from flask import g

    from panel.imports import uploads
    from panel.models import ImportUpload

    user = tree.alpha_admin
    with app.test_request_context():
        from flask_login import login_user

        login_user(user)
        kept = [
            uploads.keep("codes", 1, tree.alpha.id, f"f{i}.csv", "purge", b"code\n1\n", {})
            for i in range(uploads.PER_COMPANY + 2)
        ]
        names = db.session.scalars(select(ImportUpload.filename).order_by(ImportUpload.id)).all()
        assert len(names) == uploads.PER_COMPANY and names[0] == "f2.csv"
        newest = kept[-1]
        assert uploads.find(newest.token, "codes", 1) is not None
        assert uploads.find(newest.token, "codes", 2) is None  # another object
        assert uploads.find(newest.token, "rates", 1) is None  # another kind of import
        newest.created_at = newest.created_at - uploads.MAX_AGE
        db.session.commit()
        assert uploads.find(newest.token, "codes", 1) is None
        monkeypatch.setattr(uploads, "MAX_BYTES", 10)
        with pytest.raises(ValueError):
            uploads.keep("codes", 1, tree.alpha.id, "big.csv", "purge", b"x" * 11, {})
        monkeypatch.setattr(uploads, "TOTAL_BYTES", 16)  # 8 bytes each: two fit, the older ones go
        uploads.keep("codes", 1, tree.alpha.id, "last.csv", "purge", b"code\n1\n", {})
        names = db.session.scalars(select(ImportUpload.filename).order_by(ImportUpload.id)).all()
        assert names == [f"f{uploads.PER_COMPANY}.csv", "last.csv"]  # f21 was too old
        g.pop("_login_user", None)


def test_a_wrong_line_after_rows_went_to_the_database_writes_nothing(app, tree):
    """On PostgreSQL rows go by COPY while the file is parsed: a wrong last line still rolls it all back."""
    from panel.imports.jobs import ImportFailed
    from panel.rates.importer import import_rates

    table = factories.rate_table(tree.alpha, "Empty")
    db.session.commit()
    lines = [f"{440000 + i},UK,0.01" for i in range(25_000)]
    deck = ("code,name,rate\n" + "\n".join([*lines, "4x,Bad,0.01"]) + "\n").encode()
    with pytest.raises(ImportFailed) as failed:
        import_rates(table.id, deck, "add_update")
    assert failed.value.errors == ["line 25002, code: '4x' is not a code: use digits only"]
    db.session.rollback()
    assert db.session.scalars(select(Rate.id).where(Rate.rate_table_id == table.id)).all() == []
    assert "25,000 added" in import_rates(table.id, deck.rsplit(b"4x", 1)[0], "add_update")
    assert len(db.session.scalars(select(Rate.id).where(Rate.rate_table_id == table.id)).all()) == 25_000

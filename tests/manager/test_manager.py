"""The Traffic Rules manager: expiry, quality, publishing, failures, the lock between processes, thread."""

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from panel import audit, cdrs, manager, snapshots
from panel.extensions import db
from panel.models import AuditEntry, ManagerRun, Quality, RoutingRule
from panel.models.types import utcnow
from tests import factories
from tests.conftest import IS_POSTGRES, make_test_app
from tests.manager.conftest import route_now


def _runs(outcome: str | None = None) -> list[ManagerRun]:
    db.session.expire_all()
    stmt = select(ManagerRun).order_by(ManagerRun.id)
    if outcome:
        stmt = stmt.where(ManagerRun.outcome == outcome)
    return list(db.session.scalars(stmt))


def _calls(
    carrier, account, count: int, answered: int, seconds: int = 60, hours_ago: float = 1, tag: str = ""
):
    """Store `count` calls to `account` of which `answered` were answered (rated through cdrs.ingest)."""
    start = (utcnow() - timedelta(hours=hours_ago)).isoformat()
    records = [
        {
            "call_id": f"{tag}{account.name}-{hours_ago}-{i}",
            "orig_account_id": carrier.acme_main.id,
            "term_account_id": account.id,
            "rule_id": None,
            "number": "441234567",
            "start": start,
            "duration": seconds if i < answered else 0,
            "answered": i < answered,
            "pdd": 1000 + i,
        }
        for i in range(count)
    ]
    cdrs.ingest(records, company_id=None)


@pytest.mark.parametrize("app_config", [{"MANAGER_PERIOD_SECONDS": 0}])
def test_expired_rules_are_deleted_with_audit_entries(app, routed):
    """A rule past its expiration is deleted by the next run, with an audit entry by `system`; others stay."""
    expired = factories.rule(
        routed.plan,
        "4420",
        "static_client",
        terminator_client_id=routed.tel.id,
        expires_at=utcnow() - timedelta(minutes=1),
    )
    later = factories.rule(
        routed.plan,
        "4421",
        "static_client",
        terminator_client_id=routed.tel.id,
        expires_at=utcnow() + timedelta(days=1),
    )
    db.session.commit()
    expired_id, later_id = expired.id, later.id

    run = manager.run_once(app)
    assert run.outcome == "ok" and run.rules_expired == 1
    db.session.expire_all()
    assert db.session.get(RoutingRule, expired_id) is None
    assert db.session.get(RoutingRule, later_id) is not None
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.object_id == expired_id))
    assert (entry.action, entry.object_type, entry.username) == ("delete", "routingrule", "system")
    assert "Expired at" in entry.note and "Alpha UK" in entry.note
    assert entry.before["code"] == "4420"
    assert manager.run_once(app).rules_expired == 0


@pytest.mark.parametrize("app_config", [{"MANAGER_PERIOD_SECONDS": 0, "QUALITY_MIN_CALLS": 10}])
def test_quality_ignores_terminators_with_too_few_calls(app, routed):
    """ASR/ACD per terminator and vendor code over the window; below the minimum calls they stay empty and
    routing ignores them, so a rule's minimum ASR rejects only the terminator with enough calls."""
    _calls(routed, routed.vox_gw, 12, 9, seconds=90)  # ASR 75 %, ACD 1.5 min
    _calls(routed, routed.vox_gw, 30, 30, hours_ago=30)  # outside the 24 h window
    _calls(routed, routed.tel_gw, 5, 0)  # ASR 0 %, but only 5 calls
    for rule in (routed.vox_rule, routed.tel_rule):
        rule.min_asr = Decimal(80)
    db.session.commit()

    run = manager.run_once(app)
    assert run.outcome == "ok" and run.quality_rows == 2
    db.session.expire_all()
    vox = db.session.scalar(select(Quality).where(Quality.term_account_id == routed.vox_gw.id))
    assert (vox.code, vox.attempts, vox.answered) == ("44", 12, 9)
    assert (vox.asr, vox.acd, vox.pdd_ms) == (Decimal("75.00"), Decimal("1.50"), 1006)
    tel = db.session.scalar(select(Quality).where(Quality.term_account_id == routed.tel_gw.id))
    assert (tel.attempts, tel.asr, tel.acd, tel.pdd_ms) == (5, None, None, None)

    manager.sync_snapshot(app)
    result = route_now("441234567", routed.acme_main)
    assert [r.terminator_id for r in result.routes] == [routed.tel_gw.id]
    assert [(r.terminator_id, r.reason) for r in result.rejections] == [(routed.vox_gw.id, "min_asr")]


@pytest.mark.parametrize("app_config", [{"MANAGER_PERIOD_SECONDS": 0}])
def test_a_new_snapshot_is_published_only_when_data_changed(app, routed):
    """The data version moves with panel edits (audit entries); each process rebuilds only when it moved."""
    first = manager.run_once(app)
    assert first.snapshot_published and first.data_version
    assert manager.sync_snapshot(app) is True
    assert manager.sync_snapshot(app) is False
    second = manager.run_once(app)
    assert not second.snapshot_published and second.data_version == first.data_version
    assert manager.sync_snapshot(app) is False

    # An edit, recorded as every panel edit is: the next run publishes, and this process swaps.
    before = audit.state(routed.vox_rule)
    routed.vox_rule.priority = 5
    audit.record("update", routed.vox_rule, before=before)
    db.session.commit()
    third = manager.run_once(app)
    assert third.snapshot_published and third.data_version != first.data_version
    assert manager.sync_snapshot(app) is True
    assert snapshots.get_snapshot().rules[routed.vox_rule.id].priority == 5

    # "Run now" always publishes, even with nothing changed.
    forced = manager.run_once(app, force=True)
    assert forced.snapshot_published


def test_runs_closer_than_a_period_do_the_work_once(app, routed):
    """Workers waking within the same period: the first does the work, the others skip quietly."""
    assert manager.run_once(app) is not None
    assert manager.run_once(app) is None
    assert len(_runs()) == 1
    assert manager.run_once(app, force=True).outcome == "ok"


@pytest.mark.parametrize("app_config", [{"MANAGER_PERIOD_SECONDS": 0}])
def test_a_failing_run_is_recorded_and_retried(app, routed, monkeypatch):
    """An error is recorded with its message, the run's changes are rolled back, and the next run succeeds."""
    factories.rule(routed.plan, "4420", expires_at=utcnow() - timedelta(minutes=1))
    db.session.commit()
    real = manager.recompute_quality

    def broken(*_args, **_kwargs):
        raise RuntimeError("quality table unreachable")

    monkeypatch.setattr(manager, "recompute_quality", broken)
    failed = manager.run_once(app)
    assert failed.outcome == "error"
    assert "RuntimeError: quality table unreachable" in failed.error
    assert failed.finished_at is not None and failed.duration_ms is not None
    assert db.session.scalar(select(func.count()).select_from(RoutingRule)) == 3  # the deletion rolled back

    monkeypatch.setattr(manager, "recompute_quality", real)
    retried = manager.run_once(app)
    assert retried.outcome == "ok" and retried.rules_expired == 1


@pytest.mark.parametrize("app_config", [{"MANAGER_PERIOD_SECONDS": 0.05}])
def test_the_thread_runs_every_period_and_survives_failures(app, routed, monkeypatch):
    """The background thread keeps running after a failed run and records the later successful ones."""
    real = manager.recompute_quality
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("first run fails")
        return real(*args, **kwargs)

    monkeypatch.setattr(manager, "recompute_quality", flaky)
    state = manager.start(app)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(_runs("ok")) < 2:
            time.sleep(0.05)
        assert state.alive
    finally:
        manager.stop(app)
    assert not state.alive
    assert _runs("error")[0].error == "RuntimeError: first run fails"
    assert len(_runs("ok")) >= 2
    assert state.snapshot_version == manager.published_version()


def test_next_run_at(app, routed):
    """No run yet and no thread: no next run; after a run, one period after it started."""
    assert manager.next_run_at(app) is None
    run = manager.run_once(app)
    expected = run.started_at + timedelta(seconds=app.config["MANAGER_PERIOD_SECONDS"])
    assert manager.next_run_at(app) == expected


@pytest.fixture
def second_app(app):
    """Another panel process against the same database (its own engine, connections and manager state)."""
    other = make_test_app(app.config["SQLALCHEMY_DATABASE_URI"], MANAGER_PERIOD_SECONDS=0)
    yield other
    with other.app_context():
        db.engine.dispose()


@pytest.mark.parametrize("app_config", [{"MANAGER_PERIOD_SECONDS": 0}])
def test_a_second_instance_skips_while_the_lock_is_held(app, second_app, routed):
    """While one instance holds the manager lock, the other does no writing work; afterwards it does."""
    factories.rule(routed.plan, "4420", expires_at=utcnow() - timedelta(minutes=1))
    db.session.commit()
    with manager.writer_lock(app) as held:
        assert held
        assert manager.run_once(second_app) is None
        skipped = manager.run_once(second_app, force=True, wait=0.3)
        assert skipped.outcome == "skipped" and "held the manager lock" in skipped.error
        assert db.session.scalar(select(func.count()).select_from(RoutingRule)) == 3
    run = manager.run_once(second_app)
    assert run.outcome == "ok" and run.rules_expired == 1


@pytest.mark.parametrize("app_config", [{"MANAGER_PERIOD_SECONDS": 0}])
def test_two_instances_never_work_at_the_same_time(app, second_app, routed, monkeypatch):
    """Two instances running the manager as fast as they can: their writing work never overlaps."""
    real = manager.recompute_quality
    spans: list[tuple[str, float, float]] = []

    def slow(flask_app, now):
        began = time.monotonic()
        time.sleep(0.03)
        result = real(flask_app, now)
        spans.append((flask_app.name + str(id(flask_app)), began, time.monotonic()))
        return result

    monkeypatch.setattr(manager, "recompute_quality", slow)
    stop = time.monotonic() + 1.5
    give_up = stop + 60  # a loaded machine: run on until four runs were made, however slow they are

    def worker(flask_app) -> None:
        while (time.monotonic() < stop or len(spans) < 4) and time.monotonic() < give_up:
            manager.run_once(flask_app)

    threads = [threading.Thread(target=worker, args=(a,)) for a in (app, second_app)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    spans.sort(key=lambda s: s[1])
    assert len(spans) >= 4
    for earlier, later in zip(spans, spans[1:], strict=False):
        assert earlier[2] <= later[1], "two instances did the writing work at the same time"
    assert [r.outcome for r in _runs()] == ["ok"] * len(spans)


@pytest.mark.skipif(not IS_POSTGRES, reason="PostgreSQL advisory lock")
def test_the_advisory_lock_is_released_when_a_process_dies(app, second_app, routed):
    """A holder whose connection ends (a killed process) frees the lock at once."""
    from sqlalchemy import text

    conn = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    assert conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": manager.LOCK_KEY})
    assert manager.run_once(second_app) is None
    conn.invalidate()  # the connection dies with its process
    conn.close()
    # PostgreSQL frees the lock as soon as its backend sees the connection gone (a moment later).
    assert manager.run_once(second_app, force=True, wait=10).outcome == "ok"


@pytest.mark.sqlite_only
@pytest.mark.parametrize("app_config", [{"MANAGER_PERIOD_SECONDS": 0}])
def test_an_expired_lease_can_be_taken_over(app, second_app, routed):
    """On SQLite a holder that died leaves its lease until the expiry; then another instance takes it."""
    from panel.models import ManagerLease

    db.session.add(
        ManagerLease(
            name=manager.LEASE_NAME, holder="dead-host:1:x", expires_at=utcnow() + timedelta(hours=1)
        )
    )
    db.session.commit()
    assert manager.run_once(second_app) is None
    db.session.get(ManagerLease, manager.LEASE_NAME).expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert manager.run_once(second_app).outcome == "ok"


@pytest.mark.parametrize("app_config", [{"MANAGER_PERIOD_SECONDS": 0}])
def test_a_run_left_running_by_a_dead_process_is_marked(app, routed):
    """A run still `running` when the next one takes the lock was interrupted; it says so."""
    db.session.add(ManagerRun(outcome="running", host="gone:1"))
    db.session.commit()
    manager.run_once(app)
    stale = _runs()[0]
    assert stale.outcome == "error" and "interrupted" in stale.error


def test_a_failing_snapshot_build_waits_a_period(app, routed, monkeypatch):
    """A snapshot that fails to build is not rebuilt every second; the old one keeps routing meanwhile."""
    manager.run_once(app)
    manager.sync_snapshot(app)
    old = snapshots.get_snapshot()
    manager.run_once(app, force=True)

    def broken():
        raise RuntimeError("a rate table cannot be read")

    monkeypatch.setattr(snapshots, "rebuild", broken)
    with pytest.raises(RuntimeError):
        manager.sync_snapshot(app)
    assert manager.sync_snapshot(app) is False
    assert snapshots.get_snapshot() is old
    monkeypatch.undo()
    assert manager.sync_snapshot(app, force=True) is True
    assert snapshots.get_snapshot() is not old

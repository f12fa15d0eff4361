"""A rate always belongs to an existing rate table, on both databases: the foreign key on SQLite, the
set-based triggers that replace it on PostgreSQL (panel/rates/integrity.py), also against a concurrent
delete of the table while rates are written."""

import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from panel import writes
from panel.extensions import db
from panel.imports.jobs import ImportFailed
from panel.models import Rate, RateTable
from panel.rates import deck as deck_reading
from panel.rates import importer, integrity
from tests import factories
from tests.conftest import IS_POSTGRES

postgres_only = pytest.mark.skipif(not IS_POSTGRES, reason="PostgreSQL's triggers and concurrent writers")
MOMENT = datetime(2024, 1, 1, tzinfo=UTC)


def _rate(table_id: int, code: str) -> dict:
    return {
        "rate_table_id": table_id,
        "code": code,
        "name": "",
        "rate": Decimal("0.1"),
        "effective_from": MOMENT,
        "setup_fee": Decimal(0),
        "min_time": 1,
        "interval": 1,
    }


def _rates_of(table_id: int) -> int:
    with db.engine.connect() as conn:  # what is committed, not this session's view
        return conn.scalar(select(func.count()).select_from(Rate).where(Rate.rate_table_id == table_id))


def _missing_table_id() -> int:
    return (db.session.scalar(select(func.max(RateTable.id))) or 0) + 1000


def test_the_rates_key_is_kept_by_triggers_on_postgresql_and_by_the_foreign_key_on_sqlite(app):
    """create_all (as the migrations) leaves the triggers on PostgreSQL and the key itself on SQLite."""
    with db.engine.connect() as conn:
        assert integrity.installed(conn) == IS_POSTGRES
        if IS_POSTGRES:
            assert not conn.scalar(
                text("SELECT count(*) FROM pg_constraint WHERE conname = :name"),
                {"name": integrity.CONSTRAINT},
            )
            integrity.install(conn)  # again: nothing to do, nothing fails
            assert integrity.installed(conn)


def test_a_rate_of_a_missing_rate_table_is_refused(app, tree):
    """One rate or many in one statement, on both databases: the key's error (an IntegrityError)."""
    table = factories.rate_table(tree.alpha, "Kept")
    db.session.commit()
    missing = _missing_table_id()
    with pytest.raises(IntegrityError):
        db.session.execute(insert(Rate), [_rate(missing, "44")])
        db.session.flush()
    db.session.rollback()
    with pytest.raises(IntegrityError):
        db.session.execute(
            insert(Rate), [_rate(table.id, str(4400 + i)) for i in range(50)] + [_rate(missing, "1")]
        )
        db.session.flush()
    db.session.rollback()
    assert _rates_of(table.id) == 0 and _rates_of(missing) == 0


def test_a_rate_moved_to_a_missing_rate_table_is_refused(app, tree):
    """Changing a rate's rate table: to an existing one it works, to a missing one it is refused."""
    first = factories.rate_table(tree.alpha, "First", rates=[("44", "0.1")])
    second = factories.rate_table(tree.alpha, "Second")
    db.session.commit()
    db.session.execute(update(Rate).where(Rate.rate_table_id == first.id).values(rate_table_id=second.id))
    db.session.commit()
    assert (_rates_of(first.id), _rates_of(second.id)) == (0, 1)
    with pytest.raises(IntegrityError):
        db.session.execute(update(Rate).values(rate_table_id=_missing_table_id()))
        db.session.flush()
    db.session.rollback()
    assert _rates_of(second.id) == 1


def test_deleting_a_rate_table_deletes_its_rates_only(app, tree):
    """ON DELETE CASCADE: the deleted table's rates go, another table's stay (the panel's delete path)."""
    gone = factories.rate_table(tree.alpha, "Gone", rates=[("44", "0.1"), ("49", "0.2")])
    kept = factories.rate_table(tree.alpha, "Kept", rates=[("44", "0.3")])
    db.session.commit()
    gone_id = gone.id
    writes.delete(gone)
    assert (_rates_of(gone_id), _rates_of(kept.id)) == (0, 1)


@postgres_only
def test_renumbering_or_truncating_rate_tables_under_rates_is_refused(app, tree):
    """A rate table's id cannot change while rates refer to it; rate_tables cannot be emptied alone."""
    table = factories.rate_table(tree.alpha, "Numbered", rates=[("44", "0.1")])
    empty = factories.rate_table(tree.alpha, "Empty")
    db.session.commit()
    with pytest.raises(IntegrityError):
        db.session.execute(update(RateTable).where(RateTable.id == table.id).values(id=_missing_table_id()))
    db.session.rollback()
    db.session.execute(update(RateTable).where(RateTable.id == empty.id).values(id=_missing_table_id()))
    db.session.rollback()  # an id without rates may change
    with pytest.raises(IntegrityError):
        db.session.execute(text("TRUNCATE rate_tables CASCADE"))
    db.session.rollback()
    assert _rates_of(table.id) == 1


@postgres_only
def test_a_rate_table_is_deleted_in_read_committed_only(app, tree):
    """A snapshot transaction could miss rates committed while it waited: its delete is refused."""
    table = factories.rate_table(tree.alpha, "Snapshot", rates=[("44", "0.1")])
    db.session.commit()
    with db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with pytest.raises(DBAPIError, match="READ COMMITTED"):
            conn.execute(delete(RateTable).where(RateTable.id == table.id))
        conn.rollback()
    assert _rates_of(table.id) == 1


def _in_thread(work) -> tuple[threading.Thread, dict]:
    """Run `work(connection)` on a connection of its own in a thread; its outcome in the dict."""
    outcome: dict = {}
    engine = db.engine  # the thread has no app context

    def run():
        try:
            with engine.begin() as conn:
                work(conn)
            outcome["done"] = True
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(0.5)
    return thread, outcome


@postgres_only
def test_a_delete_waits_for_rates_being_written_then_removes_them(app, tree):
    """Rates written, not yet committed: a delete of their table waits (the table is locked as a foreign
    key's check locks it), then removes them with the table."""
    table = factories.rate_table(tree.alpha, "Busy")
    db.session.commit()
    with db.engine.connect() as writer:
        writer.execute(insert(Rate), [_rate(table.id, str(4400 + i)) for i in range(100)])
        thread, outcome = _in_thread(lambda c: c.execute(delete(RateTable).where(RateTable.id == table.id)))
        assert thread.is_alive(), "the delete should wait for the rates being written"
        writer.commit()
    thread.join(10)
    assert outcome == {"done": True}
    assert _rates_of(table.id) == 0


@postgres_only
def test_rates_written_while_their_table_is_being_deleted_are_refused(app, tree):
    """A delete not yet committed: rates written for that table wait, then are refused when it commits."""
    table = factories.rate_table(tree.alpha, "Going")
    db.session.commit()
    with db.engine.connect() as deleter:
        deleter.execute(delete(RateTable).where(RateTable.id == table.id))
        thread, outcome = _in_thread(lambda c: c.execute(insert(Rate), [_rate(table.id, "44")]))
        assert thread.is_alive(), "the rates should wait for the delete"
        deleter.commit()
    thread.join(10)
    assert isinstance(outcome.get("error"), IntegrityError)
    assert _rates_of(table.id) == 0


def test_a_rate_table_deleted_while_its_deck_is_written_keeps_no_rate(app, tree, monkeypatch):
    """The table is deleted (and committed) by someone else after the import began writing: the import
    fails as a concurrent change and no rate of that table is left (on PostgreSQL the COPY was under way)."""
    table = factories.rate_table(tree.alpha, "Deleted meanwhile")
    db.session.commit()
    table_id = table.id
    lines = [f"{440000 + i},UK,0.01,2024-01-01" for i in range(30_000)]
    deck = ("code,name,rate,effective_from\n" + "\n".join(lines) + "\n").encode()
    chunks = deck_reading.DeckLines.chunks

    def delete_after_the_first_chunk(self, size):
        for number, chunk in enumerate(chunks(self, size)):
            yield chunk
            if number == 0:
                with db.engine.begin() as conn:
                    conn.execute(delete(RateTable).where(RateTable.id == table_id))

    if not IS_POSTGRES:
        # SQLite has one writer: the delete comes just before the import writes, after the deck was read.
        real = importer._write

        def delete_first(table, *args):
            with db.engine.begin() as conn:
                conn.execute(delete(RateTable).where(RateTable.id == table_id))
            return real(table, *args)

        monkeypatch.setattr(importer, "_write", delete_first)
    monkeypatch.setattr(deck_reading.DeckLines, "chunks", delete_after_the_first_chunk)
    with pytest.raises((ImportFailed, IntegrityError)):
        importer.import_rates(table_id, deck, "add_update")
    db.session.rollback()
    assert _rates_of(table_id) == 0

"""The migration chain builds the same schema as the models, on SQLite and on PostgreSQL."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import create_engine, inspect, text

from panel.extensions import db
from panel.rates import integrity
from tests.conftest import IS_POSTGRES, TEST_DB, _create_postgres_database, make_test_app


@pytest.fixture
def empty_database_url(tmp_path):
    """A database with no tables at all."""
    if IS_POSTGRES:
        url, drop = _create_postgres_database(TEST_DB)
        yield url
        drop()
    else:
        yield f"sqlite:///{tmp_path / 'migrated.sqlite3'}"


def test_upgrade_to_head_matches_models(empty_database_url):
    """`flask db upgrade` on an empty database gives exactly the models' tables, columns and indexes."""
    app = make_test_app(empty_database_url)
    with app.app_context():
        upgrade()
        engine = db.engine
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata
            )
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            triggers = integrity.installed(conn)
        tables = set(inspect(engine).get_table_names())
        engine.dispose()
    if IS_POSTGRES:  # the rates' foreign key is kept by set-based triggers there (panel/rates/integrity.py)
        assert triggers
        diff = [d for d in diff if not (d[0] == "add_fk" and d[1].name == integrity.CONSTRAINT)]
    assert diff == [], f"models and migrations differ: {diff}"
    assert version is not None
    assert {t.name for t in db.metadata.sorted_tables} <= tables


def test_upgrade_is_repeatable(empty_database_url):
    """Running the upgrade twice (as `make run` does on every start) changes nothing and does not fail."""
    app = make_test_app(empty_database_url)
    with app.app_context():
        upgrade()
        upgrade()
        db.engine.dispose()
    engine = create_engine(empty_database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()

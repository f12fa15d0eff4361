"""PostgreSQL: a rate's rate table checked once per statement instead of once per row.

The model declares `rates.rate_table_id` a foreign key to `rate_tables.id` with ON DELETE CASCADE, and on
SQLite it is one (its check is a cheap lookup). On PostgreSQL a foreign key's check is a trigger that runs a
query for every inserted row: about 0.9 s of the server's 1.8 s for a 250,000-line deck. There the key is
replaced by triggers that keep the same rules set by set (`install`, run by `create_all` and by
migrations/env.py after the migrations, as pg_trgm is; `make regen-migration` keeps the model's key):

- inserted rates: one check per statement over the distinct rate table ids of the new rows (a transition
  table), each rate table locked FOR KEY SHARE until the commit, as the foreign key's check locks it, so a
  concurrent delete of the table waits for the import (then removes its rates) or the import fails;
- a rate moved to another rate table (its rate_table_id changed): that table checked and locked the same way;
- a rate table deleted: its rates are deleted with it (ON DELETE CASCADE), in READ COMMITTED, where the
  delete sees rates committed while it waited; a REPEATABLE READ or SERIALIZABLE transaction could miss them
  and is refused (the panel deletes in READ COMMITTED);
- a rate table's id changed while rates refer to it, or rate_tables truncated without rates: refused.

Errors have the foreign key's SQLSTATE (23503, an IntegrityError) and name the replaced constraint.
"""

from sqlalchemy import event, text

from panel.extensions import db

CONSTRAINT = "fk_rates_rate_table_id_rate_tables"  # the model's key (its name by the naming convention)

_FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION panel_rates_rate_table_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    table_id integer;
    missing boolean := false;
BEGIN
    IF TG_LEVEL = 'ROW' THEN
        table_id := NEW.rate_table_id;
        PERFORM 1 FROM rate_tables WHERE id = table_id FOR KEY SHARE;
        missing := NOT FOUND;
    ELSE
        FOR table_id IN SELECT DISTINCT rate_table_id FROM panel_new_rates LOOP
            PERFORM 1 FROM rate_tables WHERE id = table_id FOR KEY SHARE;
            missing := NOT FOUND;
            EXIT WHEN missing;
        END LOOP;
    END IF;
    IF missing THEN
        RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation', TABLE = 'rates',
            CONSTRAINT = 'fk_rates_rate_table_id_rate_tables',
            MESSAGE = 'insert or update on table "rates" violates foreign key constraint '
                '"fk_rates_rate_table_id_rate_tables"',
            DETAIL = format('Key (rate_table_id)=(%s) is not present in table "rate_tables".', table_id);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION panel_rate_tables_rates() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        IF EXISTS (SELECT 1 FROM rates) THEN
            RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation', TABLE = 'rates',
                CONSTRAINT = 'fk_rates_rate_table_id_rate_tables',
                MESSAGE = 'cannot truncate rate_tables without rates: rates refer to it';
        END IF;
        RETURN NULL;
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
            MESSAGE = 'rate tables are deleted (or renumbered) in READ COMMITTED transactions only: '
                'their rates are found by the latest commit, not by the transaction''s snapshot';
    END IF;
    IF TG_OP = 'DELETE' THEN
        DELETE FROM rates WHERE rate_table_id = OLD.id;
    ELSIF EXISTS (SELECT 1 FROM rates WHERE rate_table_id = OLD.id) THEN
        RAISE EXCEPTION USING ERRCODE = 'foreign_key_violation', TABLE = 'rate_tables',
            CONSTRAINT = 'fk_rates_rate_table_id_rate_tables',
            MESSAGE = 'update or delete on table "rate_tables" violates foreign key constraint '
                '"fk_rates_rate_table_id_rate_tables" on table "rates"',
            DETAIL = format('Key (id)=(%s) is still referenced from table "rates".', OLD.id);
    END IF;
    RETURN NULL;
END $$;
"""

# name, table, the rest of its CREATE TRIGGER
_TRIGGERS = (
    (
        "panel_rates_insert_rate_table",
        "rates",
        "AFTER INSERT ON rates REFERENCING NEW TABLE AS panel_new_rates FOR EACH STATEMENT "
        "EXECUTE FUNCTION panel_rates_rate_table_check()",
    ),
    (
        "panel_rates_update_rate_table",
        "rates",
        "AFTER UPDATE OF rate_table_id ON rates FOR EACH ROW "
        "WHEN (OLD.rate_table_id IS DISTINCT FROM NEW.rate_table_id) "
        "EXECUTE FUNCTION panel_rates_rate_table_check()",
    ),
    (
        "panel_rate_tables_delete_rates",
        "rate_tables",
        "AFTER DELETE ON rate_tables FOR EACH ROW EXECUTE FUNCTION panel_rate_tables_rates()",
    ),
    (
        "panel_rate_tables_update_id",
        "rate_tables",
        "AFTER UPDATE OF id ON rate_tables FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) "
        "EXECUTE FUNCTION panel_rate_tables_rates()",
    ),
    (
        "panel_rate_tables_truncate",
        "rate_tables",
        "AFTER TRUNCATE ON rate_tables FOR EACH STATEMENT EXECUTE FUNCTION panel_rate_tables_rates()",
    ),
)
TRIGGERS = tuple(name for name, _table, _definition in _TRIGGERS)


def install(connection) -> None:
    """PostgreSQL: the triggers in place of the rates' foreign key (nothing on SQLite, nothing to do when
    they are there already: a start of the panel takes no lock on the tables)."""
    if connection.dialect.name != "postgresql":
        return
    if None in connection.execute(text("SELECT to_regclass('rates'), to_regclass('rate_tables')")).first():
        return  # not created yet
    present = set(
        connection.execute(
            text(
                "SELECT tgname FROM pg_trigger WHERE tgrelid IN ('rates'::regclass, 'rate_tables'::regclass) "
                "AND NOT tgisinternal"
            )
        ).scalars()
    )
    constraint = connection.execute(
        text("SELECT 1 FROM pg_constraint WHERE conrelid = 'rates'::regclass AND conname = :name"),
        {"name": CONSTRAINT},
    ).first()
    if present.issuperset(TRIGGERS) and constraint is None:
        return
    with connection.connection.cursor() as cursor:  # the driver's own: the functions' `%s` are not parameters
        cursor.execute(_FUNCTIONS)
    for name, _table, definition in _TRIGGERS:
        if name not in present:
            connection.exec_driver_sql(f"CREATE TRIGGER {name} {definition}")
    if constraint is not None:
        connection.exec_driver_sql(f'ALTER TABLE rates DROP CONSTRAINT "{CONSTRAINT}"')


def installed(connection) -> bool:
    """Whether the rates' rate table is kept by these triggers (PostgreSQL) rather than by the foreign key."""
    if connection.dialect.name != "postgresql":
        return False
    names = connection.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")).scalars()
    return set(names).issuperset(TRIGGERS)


@event.listens_for(db.metadata, "after_create")
def _after_create(target, connection, **kw) -> None:
    """`create_all` on PostgreSQL: the triggers in place of the rates' foreign key."""
    install(connection)

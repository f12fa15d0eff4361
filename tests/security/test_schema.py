"""Schema guarantees the probes relied on: every foreign key has an index (PostgreSQL catalog)."""

import pytest
from sqlalchemy import text

from panel.extensions import db
from tests.conftest import IS_POSTGRES

# Foreign keys whose leading columns no index covers: deleting the referenced row (a rule, an account) then
# scans the whole referencing table, e.g. call_stats when a plan of 120,000 rules is deleted.
_UNINDEXED_FOREIGN_KEYS = text(
    """
    SELECT c.conrelid::regclass::text AS table_name, c.conname AS constraint_name
    FROM pg_constraint c
    WHERE c.contype = 'f'
      AND c.connamespace = 'public'::regnamespace
      AND NOT EXISTS (
        SELECT 1 FROM pg_index i
        WHERE i.indrelid = c.conrelid
          AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey
          AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] <@ c.conkey
      )
    ORDER BY 1, 2
    """
)


@pytest.mark.skipif(not IS_POSTGRES, reason="reads the PostgreSQL catalog")
def test_every_foreign_key_has_an_index(app):
    """Each foreign key's columns lead some index: a delete or a filter on the key never scans the table."""
    rows = db.session.execute(_UNINDEXED_FOREIGN_KEYS)
    missing = [f"{row.table_name}.{row.constraint_name}" for row in rows]
    assert missing == [], missing

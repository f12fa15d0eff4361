"""The edit counter of objects edited through forms (optimistic locking, see panel/writes.py).

SQLAlchemy adds `WHERE version = <the version read>` to every UPDATE and DELETE of the row and bumps the
counter, so a change based on a stale read fails (StaleDataError) instead of silently overwriting; forms carry
the version they were drawn from so a stale form is answered with a conflict before anything is written.
"""

from sqlalchemy.orm import Mapped, declared_attr, mapped_column


class Versioned:
    """Mixin: a `version` column used as SQLAlchemy's version_id_col (starts at 1, +1 per ORM update)."""

    version: Mapped[int] = mapped_column(default=1, server_default="1")

    @declared_attr.directive
    def __mapper_args__(cls) -> dict:  # noqa: N805 - declarative directive, called with the class
        return {"version_id_col": cls.__table__.c.version}

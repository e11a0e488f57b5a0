"""Where sessions are stored: SQLite (WAL) under the data dir by default, or PostgreSQL when
``RAPPORT_DATABASE_URL`` is set, through SQLAlchemy Core, with plain-list migrations.

Every turn is committed before the next reply starts, so a crash loses nothing already said.
The SQL is written once for both databases (``:named`` parameters, no ``rowid`` outside
SQLite-only branches); a migration that must differ branches on the dialect's name.

Modules: ``session_store`` (:class:`SessionStore` and :func:`open_store`), ``migrations``,
``records`` (the returned records, :class:`StoredTurn` among them, and errors), ``accounts``
and ``dispute_rows`` (their rows).
"""

from storage.dispute_rows import DISPUTE_COLUMNS
from storage.migrations import (
    MIGRATIONS,
    Migration,
    m001_initial,
    m002_branches,
    m003_users,
    m004_disputes,
    m005_real_conversations,
    migration,
)
from storage.records import DuplicateError, Role, Session, StoredTurn, StoreError, display_url
from storage.session_store import SessionStore, open_store

__all__ = [
    "DISPUTE_COLUMNS",
    "MIGRATIONS",
    "DuplicateError",
    "Migration",
    "Role",
    "Session",
    "SessionStore",
    "StoreError",
    "StoredTurn",
    "display_url",
    "m001_initial",
    "m002_branches",
    "m003_users",
    "m004_disputes",
    "m005_real_conversations",
    "migration",
    "open_store",
]

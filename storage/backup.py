"""Backup and restore of the session database, safe while the app is running.

Both directions use SQLite's online backup API (``sqlite3.Connection.backup``), which copies
a consistent snapshot page by page even while another connection writes (WAL included).
A backup is written to a temporary file next to ``dest`` and renamed into place, so ``dest``
is never a half-written file. A restore checks the source first and keeps the current
database aside as ``<name>.before-restore-<timestamp>``.

SQLite only: with ``RAPPORT_DATABASE_URL`` naming PostgreSQL both refuse; use ``pg_dump``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path


class BackupError(RuntimeError):
    """A backup or restore could not be done; the message says which file and why."""


def _sqlite_file(db: Path | str) -> Path:
    """The SQLite file behind ``db`` (a path, or the session database URL); a database that
    is not a SQLite file (PostgreSQL) is refused with :class:`BackupError`."""
    if isinstance(db, Path) or "://" not in db:
        return Path(db)
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from storage import display_url

    try:
        url = make_url(db)
    except ArgumentError as exc:
        raise BackupError(f"not a database URL: {exc}") from None
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(str(url.database))
    shown = display_url(url)
    raise BackupError(
        f"the session database is {shown}, not a SQLite file: 'rapport backup' and "
        "'rapport restore' copy SQLite files only; use pg_dump for PostgreSQL "
        "(and pg_restore or psql to restore)"
    )


def _connect_ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)


def _copy(src: sqlite3.Connection, dest: Path) -> None:
    """Snapshot ``src`` into a fresh file at ``dest`` (which must not exist yet)."""
    out = sqlite3.connect(dest)
    try:
        src.backup(out)
        # a single self-contained file: no -wal beside it to get lost in a copy
        out.execute("PRAGMA journal_mode=DELETE")
        out.commit()
    finally:
        out.close()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_database(path: Path | str) -> int:
    """Raise :class:`BackupError` unless ``path`` is an intact Rapport session database;
    return how many sessions it holds."""
    path = _sqlite_file(path)
    if not path.is_file():
        raise BackupError(f"{path}: no such file")
    try:
        db = _connect_ro(path)
    except sqlite3.Error as exc:
        raise BackupError(f"{path}: cannot open it: {exc}") from exc
    try:
        result = db.execute("PRAGMA integrity_check").fetchall()
        if [r[0] for r in result] != ["ok"]:
            detail = "; ".join(str(r[0]) for r in result[:3])
            raise BackupError(f"{path}: integrity check failed: {detail}")
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"sessions", "turns"} <= tables:
            raise BackupError(f"{path}: not a Rapport session database (no sessions/turns tables)")
        return int(db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path}: not a usable SQLite database: {exc}") from exc
    finally:
        db.close()


def backup(db_path: Path | str, dest: Path) -> Path:
    """Copy the session database at ``db_path`` to ``dest`` (a file, or a folder to put a
    timestamped file in). Safe while the app writes. Returns the written file."""
    db_path = _sqlite_file(db_path)
    if not db_path.is_file():
        raise BackupError(f"{db_path}: no session database to back up")
    if dest.is_dir():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        dest = dest / f"{db_path.stem}-{stamp}{db_path.suffix or '.sqlite3'}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # sqlite creates it; an empty placeholder would be read as a database
    try:
        try:
            src = _connect_ro(db_path)
        except sqlite3.Error as exc:
            raise BackupError(f"{db_path}: cannot open it: {exc}") from exc
        try:
            _copy(src, tmp)
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{db_path}: cannot back it up: {exc}") from exc
        finally:
            src.close()
        check_database(tmp)
        _fsync(tmp)
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return dest


def restore(src: Path, db_path: Path | str) -> Path | None:
    """Replace the session database at ``db_path`` with the backup ``src``.

    ``src`` is checked first (it opens, passes ``PRAGMA integrity_check`` and has the
    sessions tables); a bad one is refused with :class:`BackupError` and nothing changes.
    The current database is kept as ``<name>.before-restore-<timestamp>`` (returned; None
    when there was none). Stop the app before restoring: a running app keeps its own view.
    """
    db_path = _sqlite_file(db_path)
    check_database(src)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    kept: Path | None = None
    if db_path.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        kept = db_path.with_name(f"{db_path.name}.before-restore-{stamp}")
        try:
            cur = _connect_ro(db_path)
            try:
                _copy(cur, kept)  # a consistent copy, WAL contents included
            finally:
                cur.close()
        except sqlite3.DatabaseError:
            # the current file is unreadable (that may be why we restore): keep its bytes,
            # then start from a fresh file, since SQLite can't write into a corrupt one
            with contextlib.suppress(FileNotFoundError):
                kept.unlink()
            kept.write_bytes(db_path.read_bytes())
            for stale in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
    source = _connect_ro(src)
    try:
        target = sqlite3.connect(db_path, timeout=10.0)
        try:
            source.backup(target)  # writes every page of db_path, through its WAL if any
        except sqlite3.DatabaseError as exc:
            raise BackupError(
                f"{db_path}: restore failed ({exc}); the previous database is kept at {kept}"
            ) from exc
        finally:
            target.close()
    finally:
        source.close()
    check_database(db_path)
    return kept

"""Where sessions are stored: SQLite (WAL) under the data dir by default, or PostgreSQL when
``RAPPORT_DATABASE_URL`` is set, through SQLAlchemy Core, with plain-list migrations.

Every turn is committed before the next reply starts, so a crash loses nothing already said.
The SQL is written once for both databases (``:named`` parameters, no ``rowid`` outside
SQLite-only branches); a migration that must differ branches on the dialect's name.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, create_engine, event
from sqlalchemy import text as sql
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from common.turns import TurnMeta
from storage.accounts import AccountRows
from storage.dispute_rows import DisputeRows
from storage.migrations import _PG_MIGRATION_LOCK, MIGRATIONS
from storage.records import (
    _INSERT_TURN,
    Role,
    Session,
    StoredTurn,
    StoreError,
    _now,
    _reason,
    _turn_params,
    display_url,
)

if TYPE_CHECKING:
    from common.settings import Settings


def _sqlite_pragmas(busy_timeout: float) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
        finally:
            cur.close()

    return on_connect


class SessionStore(AccountRows, DisputeRows):
    """A small repository over the sessions database. Safe to share between threads.

    ``path_or_url``: a SQLite file (a ``Path``, a plain path string or a ``sqlite:///`` URL)
    or a PostgreSQL URL (``postgresql+psycopg://user:pw@host:5432/db``; ``postgresql://`` and
    ``postgres://`` mean psycopg 3 too). ``busy_timeout`` is how long SQLite waits for another
    program's lock, and the connect timeout for PostgreSQL.
    """

    def __init__(self, path_or_url: Path | str, busy_timeout: float = 10.0) -> None:
        self._lock = threading.RLock()
        self.path: Path | None = None
        url = self._parse(path_or_url)
        self.url = display_url(url)
        self.dialect = url.get_backend_name()
        if self.dialect == "sqlite":
            self._engine = self._sqlite_engine(url, busy_timeout)
            try:
                self._migrate()
            except (SQLAlchemyError, sqlite3.DatabaseError) as exc:
                self._engine.dispose()
                raise StoreError(
                    f"Cannot open the session database {self.path or self.url}: {_reason(exc)}. "
                    "It may be corrupt or locked by another program; restore it with "
                    "'rapport restore' or move it aside. Nothing was overwritten."
                ) from exc
        elif self.dialect == "postgresql":
            self._engine = self._postgres_engine(url, busy_timeout)
            try:
                self._engine.connect().close()
            except SQLAlchemyError as exc:
                self._engine.dispose()
                raise StoreError(
                    f"Cannot connect to the session database at {self.url}: {_reason(exc)}"
                ) from exc
            try:
                self._migrate()
            except SQLAlchemyError as exc:
                self._engine.dispose()
                raise StoreError(
                    f"Cannot prepare the session database at {self.url}: {_reason(exc)}"
                ) from exc
        else:
            raise StoreError(
                f"Unsupported session database {self.url}: use a SQLite file or a "
                "postgresql+psycopg:// URL."
            )

    # --- engines ------------------------------------------------------------------------------
    @staticmethod
    def _parse(path_or_url: Path | str) -> URL:
        if isinstance(path_or_url, Path) or "://" not in path_or_url:
            return URL.create("sqlite", database=str(path_or_url))
        try:
            url = make_url(path_or_url)
        except ArgumentError as exc:
            raise StoreError(f"Not a database URL: {exc}") from None
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        return url

    def _sqlite_engine(self, url: URL, busy_timeout: float) -> Engine:
        memory = url.database in (None, "", ":memory:")
        if not memory:
            assert url.database is not None
            self.path = Path(url.database)
            self.path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": busy_timeout},
            # one in-memory database for the whole store, not one per pooled connection
            **({"poolclass": StaticPool} if memory else {}),
        )
        event.listen(engine, "connect", _sqlite_pragmas(busy_timeout))
        return engine

    @staticmethod
    def _postgres_engine(url: URL, busy_timeout: float) -> Engine:
        connect_args: dict[str, Any] = {}
        if "connect_timeout" not in url.query:
            connect_args["connect_timeout"] = max(1, round(busy_timeout))
        return create_engine(url, connect_args=connect_args, pool_pre_ping=True)

    def _migrate(self) -> None:
        with self._lock, self._engine.begin() as db:
            if db.dialect.name == "postgresql":
                # processes starting at once take turns; DDL is transactional here
                db.execute(sql("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            db.exec_driver_sql(
                "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
            )
            done = {r[0] for r in db.exec_driver_sql("SELECT name FROM _migrations")}
            for name, fn in MIGRATIONS:
                if name not in done:
                    fn(db)
                    db.execute(
                        sql("INSERT INTO _migrations (name, applied_at) VALUES (:n, :t)"),
                        {"n": name, "t": _now()},
                    )

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """One transaction, committed (durably) on leaving the block, rolled back on error."""
        with self._lock, self._engine.begin() as db:
            yield db

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._lock, self._engine.connect() as db:
            yield db

    def close(self) -> None:
        with self._lock:
            self._engine.dispose()

    # --- sessions -------------------------------------------------------------------------
    def create_session(
        self,
        persona_id: str,
        persona_version: str,
        model: dict[str, Any],
        user_id: str | None = None,
        private: bool = False,
    ) -> str:
        sid = uuid.uuid4().hex
        with self._tx() as db:
            db.execute(
                sql(
                    "INSERT INTO sessions (id, persona_id, persona_version, started_at,"
                    " model_json, user_id, private) VALUES"
                    " (:id, :persona_id, :persona_version, :started_at, :model_json,"
                    " :user_id, :private)"
                ),
                {
                    "id": sid,
                    "persona_id": persona_id,
                    "persona_version": persona_version,
                    "started_at": _now(),
                    "model_json": json.dumps(model),
                    "user_id": user_id,
                    "private": int(private),
                },
            )
        return sid

    def add_turn(
        self,
        session_id: str,
        role: Role,
        text: str,
        meta: TurnMeta | Mapping[str, Any] | None = None,
    ) -> StoredTurn:
        """Append one turn and commit it (durably) before returning."""
        with self._tx() as db:
            nxt = db.execute(
                sql("SELECT COALESCE(MAX(idx), -1) + 1 FROM turns WHERE session_id = :sid"),
                {"sid": session_id},
            ).scalar_one()
            turn = StoredTurn(
                idx=int(nxt), role=role, text=text, created_at=_now(), meta=_json(meta)
            )
            db.execute(_INSERT_TURN, [_turn_params(session_id, turn)])
        return turn

    def update_turn_meta(
        self, session_id: str, idx: int, meta: TurnMeta | Mapping[str, Any]
    ) -> None:
        """Merge keys into one turn's metadata and commit."""
        key = {"sid": session_id, "idx": idx}
        with self._tx() as db:
            old = db.execute(
                sql("SELECT meta_json FROM turns WHERE session_id = :sid AND idx = :idx"), key
            ).scalar_one_or_none()
            if old is None:
                raise KeyError(f"{session_id}#{idx}")
            merged = {**json.loads(old), **_json(meta)}
            db.execute(
                sql("UPDATE turns SET meta_json = :m WHERE session_id = :sid AND idx = :idx"),
                {**key, "m": json.dumps(merged)},
            )

    def set_outcome(self, session_id: str, outcome: str) -> None:
        with self._tx() as db:
            db.execute(
                sql("UPDATE sessions SET outcome = :o WHERE id = :id"),
                {"o": outcome, "id": session_id},
            )

    def branch_session(self, session_id: str, upto: int) -> str:
        """A new session holding copies of turns ``[0, upto)`` of another; the original stays."""
        src = self.get_session(session_id)
        sid = uuid.uuid4().hex
        with self._tx() as db:
            db.execute(
                sql(
                    "INSERT INTO sessions (id, persona_id, persona_version, started_at,"
                    " model_json, user_id, private, parent_id, branch_turn) VALUES"
                    " (:id, :persona_id, :persona_version, :started_at, :model_json,"
                    " :user_id, :private, :parent_id, :branch_turn)"
                ),
                {
                    "id": sid,
                    "persona_id": src.persona_id,
                    "persona_version": src.persona_version,
                    "started_at": _now(),
                    "model_json": json.dumps(src.model),
                    "user_id": src.user_id,
                    "private": int(src.private),
                    "parent_id": session_id,
                    "branch_turn": upto,
                },
            )
            rows = [_turn_params(sid, t) for t in src.turns[:upto]]
            if rows:  # an empty parameter list would run the INSERT once, unbound
                db.execute(_INSERT_TURN, rows)
        return sid

    def end_session(
        self, session_id: str, status: str = "ended", feedback: dict[str, Any] | None = None
    ) -> None:
        with self._tx() as db:
            db.execute(
                sql(
                    "UPDATE sessions SET ended_at = COALESCE(ended_at, :now), status = :status,"
                    " feedback_json = COALESCE(:fb, feedback_json) WHERE id = :id"
                ),
                {
                    "now": _now(),
                    "status": status,
                    "fb": json.dumps(feedback) if feedback is not None else None,
                    "id": session_id,
                },
            )

    def save_feedback(self, session_id: str, feedback: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute(
                sql("UPDATE sessions SET feedback_json = :fb WHERE id = :id"),
                {"fb": json.dumps(feedback), "id": session_id},
            )

    def get_session(self, session_id: str) -> Session:
        with self._read() as db:
            row = (
                db.execute(sql("SELECT * FROM sessions WHERE id = :id"), {"id": session_id})
                .mappings()
                .fetchone()
            )
            if row is None:
                raise KeyError(session_id)
            turns = [
                StoredTurn(
                    r["idx"], r["role"], r["text"], r["created_at"], json.loads(r["meta_json"])
                )
                for r in db.execute(
                    sql("SELECT * FROM turns WHERE session_id = :id ORDER BY idx"),
                    {"id": session_id},
                ).mappings()
            ]
        return Session(
            id=row["id"],
            persona_id=row["persona_id"],
            persona_version=row["persona_version"],
            started_at=row["started_at"],
            ended_at=row["ended_at"],
            status=row["status"],
            model=json.loads(row["model_json"]),
            user_id=row["user_id"],
            private=bool(row["private"]),
            feedback=json.loads(row["feedback_json"]) if row["feedback_json"] else None,
            turns=turns,
            parent_id=row["parent_id"],
            branch_turn=row["branch_turn"],
            outcome=row["outcome"],
        )

    def list_sessions(self, user_id: str | None = None, limit: int = 200) -> list[Session]:
        """Newest first, without turns."""
        q = "SELECT id FROM sessions"
        args: dict[str, Any] = {"limit": limit}
        if user_id is not None:
            q += " WHERE user_id = :uid"
            args["uid"] = user_id
        q += " ORDER BY started_at DESC LIMIT :limit"
        with self._read() as db:
            ids = list(db.execute(sql(q), args).scalars())
        return [self.get_session(i) for i in ids]

    def latest_open_session(self, persona_id: str | None = None) -> Session | None:
        q = "SELECT id FROM sessions WHERE status = 'open'"
        args: dict[str, Any] = {}
        if persona_id:
            q += " AND persona_id = :pid"
            args["pid"] = persona_id
        with self._read() as db:
            sid = db.execute(sql(q + " ORDER BY started_at DESC LIMIT 1"), args).scalar()
        return self.get_session(sid) if sid is not None else None

    def set_mode(self, session_id: str, mode: str, assignment_id: int | None = None) -> None:
        """Mark a session ``'practice'`` or ``'assessment'`` (optionally for an assignment)."""
        with self._tx() as db:
            db.execute(
                sql("UPDATE sessions SET mode = :mode, assignment_id = :aid WHERE id = :id"),
                {"mode": mode, "aid": assignment_id, "id": session_id},
            )

    def set_private(self, session_id: str, private: bool) -> None:
        with self._tx() as db:
            db.execute(
                sql("UPDATE sessions SET private = :p WHERE id = :id"),
                {"p": int(private), "id": session_id},
            )

    def session_extras(self, session_id: str) -> dict[str, Any]:
        """The m003 columns of one session: ``mode``, ``assignment_id`` and ``hints``, and
        ``real`` (m005: an imported real conversation)."""
        with self._read() as db:
            row = (
                db.execute(
                    sql(
                        "SELECT mode, assignment_id, hints_json, real_conversation"
                        " FROM sessions WHERE id = :id"
                    ),
                    {"id": session_id},
                )
                .mappings()
                .fetchone()
            )
        if row is None:
            raise KeyError(session_id)
        return {
            "mode": row["mode"],
            "assignment_id": row["assignment_id"],
            "hints": json.loads(row["hints_json"] or "[]"),
            "real": bool(row["real_conversation"]),
        }

    def session_index(self, user_id: str | None = None, all_users: bool = False) -> list[str]:
        """Session ids, oldest first: every session (``all_users``) or one user's; a
        ``user_id`` of None with ``all_users`` False means sessions with no user."""
        q = "SELECT id FROM sessions"
        args: dict[str, Any] = {}
        if not all_users and user_id is None:
            q += " WHERE user_id IS NULL"
        elif not all_users:
            q += " WHERE user_id = :uid"
            args["uid"] = user_id
        # Same-millisecond ties: SQLite keeps insertion order (rowid), as it always has;
        # PostgreSQL has no such column, so the id decides there (stable, not insertion order).
        tiebreak = "rowid" if self.dialect == "sqlite" else "id"
        with self._read() as db:
            return list(db.execute(sql(f"{q} ORDER BY started_at, {tiebreak}"), args).scalars())

    def record_hint(self, session_id: str, hint: dict[str, Any]) -> None:
        """Append one hint (a JSON-able dict) to the session's hint log and commit."""
        with self._tx() as db:
            old = db.execute(
                sql("SELECT hints_json FROM sessions WHERE id = :id"), {"id": session_id}
            ).fetchone()
            if old is None:
                raise KeyError(session_id)
            hints = [*json.loads(old[0] or "[]"), {**hint, "at": _now()}]
            db.execute(
                sql("UPDATE sessions SET hints_json = :h WHERE id = :id"),
                {"h": json.dumps(hints), "id": session_id},
            )

    def insert_real_conversations(self, sessions: Sequence[Mapping[str, Any]]) -> list[str]:
        """Store imported conversations, all or none, in one transaction: each mapping has
        ``persona_id``, ``persona_version``, ``model``, ``user_id``, ``turns`` (``(role,
        text)`` pairs) and ``feedback``. Each is stored ended and marked real (m005)."""
        ids: list[str] = []
        with self._tx() as db:
            for s in sessions:
                sid, now = uuid.uuid4().hex, _now()
                db.execute(
                    sql(
                        "INSERT INTO sessions (id, persona_id, persona_version, started_at,"
                        " ended_at, status, model_json, user_id, feedback_json,"
                        " real_conversation) VALUES (:id, :pid, :pv, :now, :now, 'ended',"
                        " :model, :uid, :fb, 1)"
                    ),
                    {
                        "id": sid,
                        "pid": s["persona_id"],
                        "pv": s["persona_version"],
                        "now": now,
                        "model": json.dumps(s["model"]),
                        "uid": s["user_id"],
                        "fb": json.dumps(s["feedback"]),
                    },
                )
                rows = [
                    _turn_params(sid, StoredTurn(i, role, text, now))
                    for i, (role, text) in enumerate(s["turns"])
                ]
                if rows:
                    db.execute(_INSERT_TURN, rows)
                ids.append(sid)
        return ids


def _json(meta: TurnMeta | Mapping[str, Any] | None) -> dict[str, Any]:
    """A turn's metadata as the JSON object stored."""
    if isinstance(meta, TurnMeta):
        return meta.dump()
    return dict(meta or {})


def open_store(settings: Settings) -> SessionStore:
    """The session store a deployment's settings name: ``database_url`` if set (PostgreSQL, or
    a ``sqlite:///`` URL), else the SQLite file ``settings.db_path``."""
    return SessionStore(settings.database_url or settings.db_path)

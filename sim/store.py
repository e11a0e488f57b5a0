"""Where sessions are stored: SQLite (WAL) under the data dir, with plain-list migrations.

Every turn is committed before the next reply starts, so a crash loses nothing already said.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

Role = Literal["customer", "agent"]
Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


class StoreError(RuntimeError):
    """The session database can't be used; the message says which file and why."""


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_initial(db: sqlite3.Connection) -> None:
    db.executescript(
        """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            persona_id TEXT NOT NULL,
            persona_version TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            status TEXT NOT NULL DEFAULT 'open',
            model_json TEXT NOT NULL DEFAULT '{}',
            user_id TEXT,
            private INTEGER NOT NULL DEFAULT 0,
            feedback_json TEXT
        );
        CREATE TABLE turns (
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('customer', 'agent')),
            text TEXT NOT NULL,
            created_at TEXT NOT NULL,
            meta_json TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (session_id, idx)
        );
        CREATE INDEX sessions_started ON sessions(started_at);
        """
    )


@migration
def m002_branches(db: sqlite3.Connection) -> None:
    """Retry from here: a session can branch from an earlier one at an agent turn."""
    db.executescript(
        """
        ALTER TABLE sessions ADD COLUMN parent_id TEXT REFERENCES sessions(id);
        ALTER TABLE sessions ADD COLUMN branch_turn INTEGER;
        ALTER TABLE sessions ADD COLUMN outcome TEXT;
        """
    )


@migration
def m003_users(db: sqlite3.Connection) -> None:
    """Accounts and roles (``sim/users.py``), trainer assignments, and per-session mode/hints."""
    db.executescript(
        """
        CREATE TABLE users (
            name TEXT PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('trainee', 'trainer')),
            password_hash TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE assignments (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            persona_id TEXT NOT NULL,
            assigned_by TEXT,
            assigned_to TEXT,
            created_at TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'assessment'
        );
        ALTER TABLE sessions ADD COLUMN mode TEXT NOT NULL DEFAULT 'practice'
            CHECK (mode IN ('practice', 'assessment'));
        ALTER TABLE sessions ADD COLUMN assignment_id INTEGER;
        ALTER TABLE sessions ADD COLUMN hints_json TEXT NOT NULL DEFAULT '[]';
        CREATE INDEX sessions_user ON sessions(user_id, started_at);
        """
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Turn:
    idx: int
    role: Role
    text: str
    created_at: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Session:
    id: str
    persona_id: str
    persona_version: str
    started_at: str
    ended_at: str | None
    status: str
    model: dict[str, Any]
    user_id: str | None = None
    private: bool = False
    feedback: dict[str, Any] | None = None
    turns: list[Turn] = field(default_factory=list)
    parent_id: str | None = None
    branch_turn: int | None = None
    outcome: str | None = None


class SessionStore:
    """A small repository over the sessions database. Safe to share between threads."""

    def __init__(self, path: Path, busy_timeout: float = 10.0) -> None:
        self.path = path
        self._lock = threading.RLock()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, timeout=busy_timeout)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"Cannot open the session database {path}: {exc}. "
                "It may be corrupt or locked by another program; restore it with "
                "'rapport restore' or move it aside. Nothing was overwritten."
            ) from exc

    def _migrate(self) -> None:
        with self._lock, self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
            )
            done = {r[0] for r in self._db.execute("SELECT name FROM _migrations")}
            for name, fn in MIGRATIONS:
                if name not in done:
                    fn(self._db)
                    self._db.execute("INSERT INTO _migrations VALUES (?, ?)", (name, _now()))

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._db:
            yield self._db

    def close(self) -> None:
        with self._lock:
            self._db.close()

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
                "INSERT INTO sessions (id, persona_id, persona_version, started_at, model_json,"
                " user_id, private) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    sid,
                    persona_id,
                    persona_version,
                    _now(),
                    json.dumps(model),
                    user_id,
                    int(private),
                ),
            )
        return sid

    def add_turn(
        self, session_id: str, role: Role, text: str, meta: dict[str, Any] | None = None
    ) -> Turn:
        """Append one turn and commit it (durably) before returning."""
        with self._tx() as db:
            row = db.execute(
                "SELECT COALESCE(MAX(idx), -1) + 1 FROM turns WHERE session_id = ?", (session_id,)
            ).fetchone()
            turn = Turn(idx=int(row[0]), role=role, text=text, created_at=_now(), meta=meta or {})
            db.execute(
                "INSERT INTO turns (session_id, idx, role, text, created_at, meta_json)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, turn.idx, role, text, turn.created_at, json.dumps(turn.meta)),
            )
        return turn

    def update_turn_meta(self, session_id: str, idx: int, meta: dict[str, Any]) -> None:
        """Merge keys into one turn's metadata and commit."""
        with self._tx() as db:
            row = db.execute(
                "SELECT meta_json FROM turns WHERE session_id = ? AND idx = ?", (session_id, idx)
            ).fetchone()
            if row is None:
                raise KeyError(f"{session_id}#{idx}")
            merged = {**json.loads(row[0]), **meta}
            db.execute(
                "UPDATE turns SET meta_json = ? WHERE session_id = ? AND idx = ?",
                (json.dumps(merged), session_id, idx),
            )

    def set_outcome(self, session_id: str, outcome: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE sessions SET outcome = ? WHERE id = ?", (outcome, session_id))

    def branch_session(self, session_id: str, upto: int) -> str:
        """A new session holding copies of turns ``[0, upto)`` of another; the original stays."""
        src = self.get_session(session_id)
        sid = uuid.uuid4().hex
        with self._tx() as db:
            db.execute(
                "INSERT INTO sessions (id, persona_id, persona_version, started_at, model_json,"
                " user_id, private, parent_id, branch_turn) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sid,
                    src.persona_id,
                    src.persona_version,
                    _now(),
                    json.dumps(src.model),
                    src.user_id,
                    int(src.private),
                    session_id,
                    upto,
                ),
            )
            db.executemany(
                "INSERT INTO turns (session_id, idx, role, text, created_at, meta_json)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (sid, t.idx, t.role, t.text, t.created_at, json.dumps(t.meta))
                    for t in src.turns[:upto]
                ],
            )
        return sid

    def end_session(
        self, session_id: str, status: str = "ended", feedback: dict[str, Any] | None = None
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE sessions SET ended_at = COALESCE(ended_at, ?), status = ?,"
                " feedback_json = COALESCE(?, feedback_json) WHERE id = ?",
                (
                    _now(),
                    status,
                    json.dumps(feedback) if feedback is not None else None,
                    session_id,
                ),
            )

    def save_feedback(self, session_id: str, feedback: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE sessions SET feedback_json = ? WHERE id = ?",
                (json.dumps(feedback), session_id),
            )

    def get_session(self, session_id: str) -> Session:
        with self._lock:
            row = self._db.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if row is None:
                raise KeyError(session_id)
            turns = [
                Turn(r["idx"], r["role"], r["text"], r["created_at"], json.loads(r["meta_json"]))
                for r in self._db.execute(
                    "SELECT * FROM turns WHERE session_id = ? ORDER BY idx", (session_id,)
                )
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
        args: tuple[Any, ...] = ()
        if user_id is not None:
            q += " WHERE user_id = ?"
            args = (user_id,)
        q += " ORDER BY started_at DESC LIMIT ?"
        with self._lock:
            ids = [r[0] for r in self._db.execute(q, (*args, limit))]
        return [self.get_session(i) for i in ids]

    def latest_open_session(self, persona_id: str | None = None) -> Session | None:
        q = "SELECT id FROM sessions WHERE status = 'open'"
        args: tuple[Any, ...] = ()
        if persona_id:
            q += " AND persona_id = ?"
            args = (persona_id,)
        with self._lock:
            row = self._db.execute(q + " ORDER BY started_at DESC LIMIT 1", args).fetchone()
        return self.get_session(row[0]) if row else None

    # --- users, assignments, modes and hints (m003; the logic lives in sim/users.py) -----
    def insert_user(self, name: str, role: str, password_hash: str) -> str:
        """Add a user row; raise ``sqlite3.IntegrityError`` if the name is taken."""
        created = _now()
        with self._tx() as db:
            db.execute(
                "INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
                (name, role, password_hash, created),
            )
        return created

    def user_row(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        return dict(row) if row else None

    def user_rows(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._db.execute("SELECT * FROM users ORDER BY name")]

    def update_password_hash(self, name: str, password_hash: str) -> bool:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE users SET password_hash = ? WHERE name = ?", (password_hash, name)
            )
        return cur.rowcount == 1

    def insert_assignment(
        self, persona_id: str, assigned_by: str | None, assigned_to: str | None, kind: str
    ) -> int:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO assignments (persona_id, assigned_by, assigned_to, created_at, kind)"
                " VALUES (?, ?, ?, ?, ?)",
                (persona_id, assigned_by, assigned_to, _now(), kind),
            )
        return int(cur.lastrowid or 0)

    def assignment_rows(self) -> list[dict[str, Any]]:
        """Every assignment, oldest first."""
        with self._lock:
            return [dict(r) for r in self._db.execute("SELECT * FROM assignments ORDER BY id")]

    def set_mode(self, session_id: str, mode: str, assignment_id: int | None = None) -> None:
        """Mark a session ``'practice'`` or ``'assessment'`` (optionally for an assignment)."""
        with self._tx() as db:
            db.execute(
                "UPDATE sessions SET mode = ?, assignment_id = ? WHERE id = ?",
                (mode, assignment_id, session_id),
            )

    def set_private(self, session_id: str, private: bool) -> None:
        with self._tx() as db:
            db.execute("UPDATE sessions SET private = ? WHERE id = ?", (int(private), session_id))

    def session_extras(self, session_id: str) -> dict[str, Any]:
        """The m003 columns of one session: ``mode``, ``assignment_id`` and ``hints``."""
        with self._lock:
            row = self._db.execute(
                "SELECT mode, assignment_id, hints_json FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
        if row is None:
            raise KeyError(session_id)
        return {
            "mode": row["mode"],
            "assignment_id": row["assignment_id"],
            "hints": json.loads(row["hints_json"] or "[]"),
        }

    def session_index(self, user_id: str | None = None, all_users: bool = False) -> list[str]:
        """Session ids, oldest first: every session (``all_users``) or one user's; a
        ``user_id`` of None with ``all_users`` False means sessions with no user."""
        q = "SELECT id FROM sessions"
        args: tuple[Any, ...] = ()
        if not all_users:
            q += " WHERE user_id IS ?"
            args = (user_id,)
        with self._lock:
            return [r[0] for r in self._db.execute(q + " ORDER BY started_at, rowid", args)]

    def record_hint(self, session_id: str, hint: dict[str, Any]) -> None:
        """Append one hint (a JSON-able dict) to the session's hint log and commit."""
        with self._tx() as db:
            row = db.execute(
                "SELECT hints_json FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
            if row is None:
                raise KeyError(session_id)
            hints = [*json.loads(row[0] or "[]"), {**hint, "at": _now()}]
            db.execute(
                "UPDATE sessions SET hints_json = ? WHERE id = ?", (json.dumps(hints), session_id)
            )

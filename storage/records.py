"""What the store returns and raises: sessions, turns and the store's errors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import text as sql
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError

from common.turns import Role, Turn, TurnMeta


class StoreError(RuntimeError):
    """The session database can't be used; the message says which file and why."""


class DuplicateError(ValueError):
    """A row with that key already exists (a user name that is taken)."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class StoredTurn:
    """A turn as stored: its place in the session (``idx``), when it was said, and its
    metadata as the JSON object in ``meta_json`` (as read: typed, it is ``turn().meta``)."""

    idx: int
    role: Role
    text: str
    created_at: str
    meta: dict[str, Any] = field(default_factory=dict)

    def turn(self) -> Turn:
        """The conversational turn, its metadata typed (:meth:`TurnMeta.load`)."""
        return Turn(self.role, self.text, TurnMeta.load(self.meta))


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
    turns: list[StoredTurn] = field(default_factory=list)
    parent_id: str | None = None
    branch_turn: int | None = None
    outcome: str | None = None


def _reason(exc: BaseException) -> str:
    """The driver's own message, without SQLAlchemy's SQL echo and help link."""
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).strip()


def display_url(url: URL | str) -> str:
    """A database URL as shown in messages and logs: never with its password."""
    url = make_url(url)
    return URL.create(
        url.drivername,
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query=url.query,
    ).render_as_string(hide_password=False)


def _is_unique_violation(exc: IntegrityError) -> bool:
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == "23505":  # PostgreSQL unique_violation
        return True
    msg = str(orig)
    return "UNIQUE constraint failed" in msg or "PRIMARY KEY" in msg


_INSERT_TURN = sql(
    "INSERT INTO turns (session_id, idx, role, text, created_at, meta_json)"
    " VALUES (:session_id, :idx, :role, :text, :created_at, :meta_json)"
)


def _turn_params(session_id: str, t: StoredTurn) -> Mapping[str, Any]:
    return {
        "session_id": session_id,
        "idx": t.idx,
        "role": t.role,
        "text": t.text,
        "created_at": t.created_at,
        "meta_json": json.dumps(t.meta),
    }


class Rows:
    """What the row groups (accounts, disputes) need from the store: a write transaction
    and a read connection, provided by :class:`storage.SessionStore`."""

    def _tx(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

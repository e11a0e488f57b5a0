"""Account and assignment rows (m003; the rules live in ``training/users.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import text as sql
from sqlalchemy.exc import IntegrityError

if TYPE_CHECKING:
    pass
from storage.records import DuplicateError, Rows, _is_unique_violation, _now


class AccountRows(Rows):
    def insert_user(self, name: str, role: str, password_hash: str) -> str:
        """Add a user row; raise :class:`DuplicateError` if the name is taken."""
        created = _now()
        try:
            with self._tx() as db:
                db.execute(
                    sql(
                        "INSERT INTO users (name, role, password_hash, created_at)"
                        " VALUES (:name, :role, :hash, :created)"
                    ),
                    {"name": name, "role": role, "hash": password_hash, "created": created},
                )
        except IntegrityError as exc:
            if _is_unique_violation(exc):
                raise DuplicateError(f"user {name!r} already exists") from exc
            raise
        return created

    def user_row(self, name: str) -> dict[str, Any] | None:
        with self._read() as db:
            row = (
                db.execute(sql("SELECT * FROM users WHERE name = :name"), {"name": name})
                .mappings()
                .fetchone()
            )
        return dict(row) if row else None

    def user_rows(self) -> list[dict[str, Any]]:
        with self._read() as db:
            return [
                dict(r) for r in db.execute(sql("SELECT * FROM users ORDER BY name")).mappings()
            ]

    def update_password_hash(self, name: str, password_hash: str) -> bool:
        with self._tx() as db:
            res = db.execute(
                sql("UPDATE users SET password_hash = :hash WHERE name = :name"),
                {"hash": password_hash, "name": name},
            )
        return res.rowcount == 1

    def insert_assignment(
        self, persona_id: str, assigned_by: str | None, assigned_to: str | None, kind: str
    ) -> int:
        q = (
            "INSERT INTO assignments (persona_id, assigned_by, assigned_to, created_at, kind)"
            " VALUES (:persona_id, :by, :to, :created, :kind)"
        )
        args = {
            "persona_id": persona_id,
            "by": assigned_by,
            "to": assigned_to,
            "created": _now(),
            "kind": kind,
        }
        with self._tx() as db:
            if db.dialect.name == "sqlite":
                return int(db.execute(sql(q), args).lastrowid or 0)
            return int(db.execute(sql(q + " RETURNING id"), args).scalar_one())

    def assignment_rows(self) -> list[dict[str, Any]]:
        """Every assignment, oldest first."""
        with self._read() as db:
            return [
                dict(r) for r in db.execute(sql("SELECT * FROM assignments ORDER BY id")).mappings()
            ]

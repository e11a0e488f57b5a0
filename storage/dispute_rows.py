"""Dispute and ruling rows (m004; the logic lives in ``training/disputes.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import text as sql
from sqlalchemy.exc import IntegrityError

if TYPE_CHECKING:
    pass
from storage.records import DuplicateError, Rows, _is_unique_violation, _now

DISPUTE_COLUMNS = frozenset(
    [
        "id",
        "session_id",
        "turn_idx",
        "technique",
        "verdict",
        "confidence",
        "evidence",
        "guidance_json",
        "grader_json",
        "reason",
        "shared",
        "created_by",
        "created_at",
        "status",
        "ruled_by",
        "ruled_at",
        "note",
    ]
)


def _dispute_columns(keys: Iterable[str]) -> None:
    bad = set(keys) - DISPUTE_COLUMNS
    if bad:
        raise ValueError(f"not dispute columns: {sorted(bad)}")


class DisputeRows(Rows):
    def insert_dispute(self, row: Mapping[str, Any]) -> int:
        """Add a dispute row (columns of m004 as keys); :class:`DuplicateError` if that
        verdict is already disputed."""
        _dispute_columns(row)
        cols = ", ".join(row)
        q = f"INSERT INTO disputes ({cols}) VALUES ({', '.join(':' + c for c in row)})"
        try:
            with self._tx() as db:
                if db.dialect.name == "sqlite":
                    return int(db.execute(sql(q), dict(row)).lastrowid or 0)
                return int(db.execute(sql(q + " RETURNING id"), dict(row)).scalar_one())
        except IntegrityError as exc:
            if _is_unique_violation(exc):
                raise DuplicateError("that verdict is already disputed") from exc
            raise

    def dispute_rows(self, **where: Any) -> list[dict[str, Any]]:
        """Dispute rows, oldest first, with the session's ``user_id`` and ``private`` as
        ``session_user`` and ``session_private``; ``where`` filters on equal columns."""
        q = (
            "SELECT d.*, s.user_id AS session_user, s.private AS session_private"
            " FROM disputes d JOIN sessions s ON s.id = d.session_id"
        )
        if where:
            _dispute_columns(where)
            q += " WHERE " + " AND ".join(f"d.{k} = :{k}" for k in where)
        with self._read() as db:
            return [dict(r) for r in db.execute(sql(q + " ORDER BY d.id"), where).mappings()]

    def rule_dispute(self, dispute_id: int, status: str, ruled_by: str | None, note: str) -> bool:
        """Record a ruling on an open dispute; False if it is not open (or not there)."""
        with self._tx() as db:
            res = db.execute(
                sql(
                    "UPDATE disputes SET status = :st, ruled_by = :by, ruled_at = :at,"
                    " note = :note WHERE id = :id AND status = 'open'"
                ),
                {"st": status, "by": ruled_by, "at": _now(), "note": note, "id": dispute_id},
            )
        return res.rowcount == 1

"""The load bench's lost-turn check: every trainee's messages and the replies it was shown,
against what the app committed to its session database."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.load_trainee import Trainee, norm


class DbReader:
    """Read-only queries on the app's session database: a SQLite file (opened read-only) or,
    with ``--db postgresql+psycopg://...``, any URL SQLAlchemy takes."""

    def __init__(self, db: Path | str) -> None:
        self.con: sqlite3.Connection | None = None
        self.engine: Any = None
        if isinstance(db, Path) or "://" not in db:
            try:
                self.con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
            except sqlite3.Error:
                self.con = sqlite3.connect(db, timeout=10)
        else:
            from sqlalchemy import create_engine

            self.engine = create_engine(db)

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """``query`` with ``?`` placeholders."""
        if self.con is not None:
            return [tuple(r) for r in self.con.execute(query, params).fetchall()]
        from sqlalchemy import text

        names = {f"p{i}": v for i, v in enumerate(params)}
        for i in range(len(params)):
            query = query.replace("?", f":p{i}", 1)
        with self.engine.connect() as c:
            return [tuple(r) for r in c.execute(text(query), names).fetchall()]

    def close(self) -> None:
        if self.con is not None:
            self.con.close()
        if self.engine is not None:
            self.engine.dispose()


def db_turns(con: DbReader, sid: str) -> list[tuple[str, str]]:
    rows = con.rows("SELECT role, text FROM turns WHERE session_id = ? ORDER BY idx", sid)
    return [(str(a), str(b)) for a, b in rows]


def find_session(con: DbReader, t: Trainee, taken: set[str]) -> str | None:
    """Without an id from /end: the unclaimed session of this persona whose agent turns
    start with this trainee's first message."""
    if not t.replies:
        return None
    rows = con.rows("SELECT id FROM sessions WHERE persona_id = ? ORDER BY started_at", t.persona)
    for (sid,) in rows:
        if sid in taken:
            continue
        agents = [x for role, x in db_turns(con, sid) if role == "agent"]
        if agents and agents[0].strip() == t.replies[0].sent.strip():
            return str(sid)
    return None


def check_db(db: Path | str, trainees: Sequence[Trainee]) -> dict[str, Any]:
    """Every message the trainee sent committed once and in order, each answered by the
    reply the trainee was shown; a message not stored, not answered or answered with other
    text than the trainee saw is a lost turn. Fills ``t.db``; returns totals."""
    con = DbReader(db)
    taken = {t.session_id for t in trainees if t.session_id}
    lost = mismatched = extra = 0
    try:
        for t in trainees:
            sid = t.session_id or find_session(con, t, taken)
            sent = [r for r in t.replies if not r.rejected]
            if sid is None:
                t.db = {"session_id": None, "lost": len(sent), "why": "session not found"}
                lost += len(sent)
                continue
            taken.add(sid)
            turns = db_turns(con, sid)
            pairs: list[tuple[str, str | None]] = []
            for i, (role, text) in enumerate(turns):
                if role == "agent":
                    nxt = turns[i + 1] if i + 1 < len(turns) else None
                    pairs.append((text, nxt[1] if nxt and nxt[0] == "customer" else None))
            t_lost = t_mis = 0
            why: list[str] = []
            for k, r in enumerate(sent):
                if k >= len(pairs) or pairs[k][0].strip() != r.sent.strip():
                    t_lost += 1
                    why.append(f"turn {r.turn}: agent message not stored")
                elif pairs[k][1] is None:
                    t_lost += 1
                    why.append(f"turn {r.turn}: no customer reply stored")
                elif r.error is None and norm(pairs[k][1] or "") != r.reply:
                    t_mis += 1
                    why.append(f"turn {r.turn}: stored reply differs from the one shown")
            t_extra = max(0, len(pairs) - len(sent))
            t.db = {
                "session_id": sid,
                "agent_turns_stored": len(pairs),
                "answered": sum(1 for _, c in pairs if c is not None),
                "lost": t_lost,
                "mismatched": t_mis,
                "extra": t_extra,
                "why": why,
            }
            lost += t_lost
            mismatched += t_mis
            extra += t_extra
    finally:
        con.close()
    return {"lost_turns": lost + mismatched, "not_stored_or_unanswered": lost,
            "reply_mismatch": mismatched, "extra_agent_turns": extra}  # fmt: skip

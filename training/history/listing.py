"""The history list and a session's replay (its transcript with the feedback beside each
turn, and the emotion trace)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sim.trace import trace_points
from storage import Session, SessionStore
from training.users import (
    User,
    require_view,
    visible_transcript,
)

if TYPE_CHECKING:
    pass
from training.history.records import (
    REAL_MODE,
    REAL_NAME,
    Outcome,
    Personas,
    _extras,
    _persona_name,
    _personas,
    _visible_sessions,
    final_mood,
    redact_feedback,
    session_outcome,
    session_steps,
    technique_status,
    techniques_used,
)


# --- history -----------------------------------------------------------------------------
@dataclass
class HistoryRow:
    """One past session, as a history table shows it (scores only, never the words)."""

    session_id: str
    user_id: str | None
    date: str
    persona_id: str
    persona_name: str
    archetype: str | None
    outcome: Outcome
    techniques_used: list[str]
    graded: bool
    private: bool
    mode: str
    final_mood: float | None
    hints_used: int
    parent_id: str | None
    transcript_visible: bool


def list_history(
    store: SessionStore,
    user: User,
    persona_archetype: str | None = None,
    include_assessments: bool = True,
    *,
    personas: Personas | None = None,
    trainee: str | None = None,
) -> list[HistoryRow]:
    """The sessions ``user`` may see, newest first: a trainee's own, or (trainers) everyone's
    or one ``trainee``'s. ``personas`` defaults to the shipped library."""
    lib = _personas(personas)
    rows: list[HistoryRow] = []
    for s in _visible_sessions(store, user, trainee):
        p = lib.get(s.persona_id)
        archetype = p.archetype.value if p else None
        if persona_archetype is not None and archetype != persona_archetype:
            continue
        extras = _extras(store, s.id)
        if not include_assessments and extras["mode"] == "assessment":
            continue
        rows.append(
            HistoryRow(
                session_id=s.id,
                user_id=s.user_id,
                date=s.started_at,
                persona_id=s.persona_id,
                persona_name=REAL_NAME
                if extras["mode"] == REAL_MODE
                else _persona_name(lib, s.persona_id),
                archetype=archetype,
                outcome=session_outcome(s),
                techniques_used=techniques_used(s.feedback),
                graded=bool(s.feedback),
                private=s.private,
                mode=extras["mode"],
                final_mood=final_mood(s),
                hints_used=len(extras["hints"]),
                parent_id=s.parent_id,
                transcript_visible=visible_transcript(user, s),
            )
        )
    rows.reverse()
    return rows


# --- replay ------------------------------------------------------------------------------
@dataclass
class ReplayTurn:
    """One turn with what the saved feedback said about it (agent turns)."""

    idx: int
    role: str
    text: str
    techniques: list[str] = field(default_factory=list)
    quotes: dict[str, str] = field(default_factory=dict)
    markers: list[str] = field(default_factory=list)
    mood: float | None = None


@dataclass
class Replay:
    """A past session for review. ``transcript`` is None when the viewer may see only its
    scores (someone else's private session); ``feedback`` is then redacted and the trace
    points carry no quoted evidence."""

    session_id: str
    user_id: str | None
    persona_id: str
    persona_name: str
    date: str
    mode: str
    outcome: Outcome
    private: bool
    transcript: list[ReplayTurn] | None
    scores: dict[str, str]
    feedback: dict[str, Any] | None
    trace: list[dict[str, Any]]
    final_mood: float | None
    hints: list[dict[str, Any]]

    @property
    def transcript_hidden(self) -> bool:
        return self.transcript is None


def _annotations(feedback: Mapping[str, Any] | None) -> dict[int, dict[str, Any]]:
    """Per agent-turn index: techniques used with their quotes, and markers hit."""
    out: dict[int, dict[str, Any]] = {}
    if not feedback:
        return out

    def slot(i: int) -> dict[str, Any]:
        return out.setdefault(i, {"techniques": [], "quotes": {}, "markers": []})

    for g in feedback.get("grades") or []:
        i = int(g.get("index", -1))
        for tid, v in (g.get("techniques") or {}).items():
            if v.get("used") is True:
                a = slot(i)
                a["techniques"].append(tid)
                if v.get("evidence"):
                    a["quotes"][tid] = v["evidence"]
        for mid, v in (g.get("markers") or {}).items():
            if v.get("used") is True:
                slot(i)["markers"].append(mid)
    for t in feedback.get("techniques") or []:  # older feedback without grades
        for inst in t.get("instances") or []:
            a = slot(int(inst["index"]))
            if t["id"] not in a["techniques"]:
                a["techniques"].append(t["id"])
            a["quotes"].setdefault(t["id"], inst.get("quote", ""))
    return out


def _trace(session: Session, personas: Personas, with_words: bool) -> list[dict[str, Any]]:
    states = (t.turn().meta.director_state for t in session.turns)
    saved = next((s for s in states if s is not None), None)
    if saved is not None:
        start = float(saved["mood"])
    else:
        p = personas.get(session.persona_id)
        start = float(p.emotional_baseline) if p else 0.0
    texts = {t.idx: t.text for t in session.turns if t.role == "agent"} if with_words else None
    points = trace_points(start, session_steps(session), texts)
    if not with_words:
        for point in points:
            point["evidence"] = None
    return points


def session_replay(store: SessionStore, personas: Personas, user: User, session_id: str) -> Replay:
    """One session for review; :class:`PermissionDenied` if it isn't the user's to see,
    ``KeyError`` if there is no such session."""
    s = store.get_session(session_id)
    require_view(user, s)
    words = visible_transcript(user, s)
    extras = _extras(store, s.id)
    transcript: list[ReplayTurn] | None = None
    if words:
        notes = _annotations(s.feedback)
        transcript = []
        for t in s.turns:
            a = notes.get(t.idx, {})
            meta = t.turn().meta
            mood: float | None = None
            if t.role == "agent" and meta.step is not None:
                mood = float(meta.step.get("mood_after", 0.0))
            elif meta.director_state is not None:
                mood = float(meta.director_state.get("mood", 0.0))
            transcript.append(
                ReplayTurn(
                    idx=t.idx,
                    role=t.role,
                    text=t.text,
                    techniques=list(a.get("techniques", [])),
                    quotes=dict(a.get("quotes", {})),
                    markers=list(a.get("markers", [])),
                    mood=mood,
                )
            )
    return Replay(
        session_id=s.id,
        user_id=s.user_id,
        persona_id=s.persona_id,
        persona_name=REAL_NAME
        if extras["mode"] == REAL_MODE
        else _persona_name(personas, s.persona_id),
        date=s.started_at,
        mode=extras["mode"],
        outcome=session_outcome(s),
        private=s.private,
        transcript=transcript,
        scores=technique_status(s.feedback),
        feedback=s.feedback if words else redact_feedback(s.feedback),
        trace=_trace(s, personas, words),
        final_mood=final_mood(s),
        hints=extras["hints"],
    )

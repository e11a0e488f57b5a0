"""What the Practice tab shows: the customer's card, the chat's messages, which untouched
session a page may reuse, the mood meter, the emotion trace, hints, the assessment picker
and the feedback card of a session just ended."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rubric.feedback import build_feedback
from rubric.grader import Grader
from rubric.render import about_panel, load_reliability, render_feedback
from sim.persona import Persona
from sim.trace import mood_meter_html, plot_trace, retry_choices, trace_list_html, trace_points
from training.history import Hint
from training.users import Assignment
from web.formatting import esc
from web.history_view import REPLAY_CSS

if TYPE_CHECKING:
    from sim.practice import Practice, PracticeSession
    from storage import Session, SessionStore

ChatHistory = list[dict[str, str]]


def as_text(text: str) -> str:
    """Messages are shown as typed: HTML in them is text, never markup (the chat renders HTML)."""
    return html.escape(text, quote=False)


def to_chat(practice: Practice, session_id: str) -> ChatHistory:
    """A stored session as the chat component's messages."""
    rec = practice.store.get_session(session_id)
    return [
        {"role": "assistant" if t.role == "customer" else "user", "content": as_text(t.text)}
        for t in rec.turns
    ]


def has_trainee_words(rec: Session) -> bool:
    """Has the trainee sent anything in this session (an agent turn)?"""
    return any(t.role == "agent" for t in rec.turns)


UNTOUCHED_MAX_AGE_S = 3600.0
"""How old an untouched session may be and still be reused when its customer is picked."""


def untouched_session(
    store: SessionStore,
    persona: Persona,
    user_id: str | None,
    held: Iterable[str] = (),
    *,
    now: datetime | None = None,
    recent: int = 10,
    max_age_s: float = UNTOUCHED_MAX_AGE_S,
) -> str | None:
    """The id of a practice session of ``user_id``'s with ``persona`` that nobody has used:
    open, holding only the opening line (no message, no hint, not a retry), with this version
    of the persona, under ``max_age_s`` old and not on another page (``held``). The newest of
    the user's last ``recent`` sessions that fits, else None.

    The Practice tab starts a session as soon as a customer is picked (and when the page
    opens); reusing an untouched one keeps reloads and browsing from piling up empty
    sessions in the History."""
    now = now or datetime.now(UTC)
    skip = set(held)
    for sid in reversed(store.session_index(user_id)[-recent:]):
        if sid in skip:
            continue
        rec = store.get_session(sid)
        if (
            rec.user_id != user_id
            or rec.persona_id != persona.id
            or rec.persona_version != persona.version
            or rec.status != "open"
            or rec.outcome not in (None, "open")
            or rec.parent_id is not None
            or [t.role for t in rec.turns] != ["customer"]
        ):
            continue
        extras = store.session_extras(sid)
        if extras["mode"] != "practice" or extras["hints"]:
            continue
        try:
            age = (now - datetime.fromisoformat(rec.started_at)).total_seconds()
        except (TypeError, ValueError):
            continue
        if 0 <= age <= max_age_s:
            return sid
    return None


ASSESSMENT_METER = (
    '<div class="rp-meter" data-assessment="true">Assessment: the mood meter and hints are '
    "off. Your feedback appears when you end the session.</div>"
)
"""What the mood meter shows during an assessment."""


def hint_html(hint: Hint) -> str:
    """One tip and, when there is one, the guidance passage it cites."""
    out = [REPLAY_CSS, f'<div class="rp-hint" data-kind="{esc(hint.kind)}"><b>Tip:</b> ']
    out.append(esc(hint.text))
    if hint.guidance_excerpt:
        out.append(f"<blockquote>{esc(hint.guidance_excerpt)}</blockquote>")
        cite = hint.guidance_title or hint.guidance_id or "guidance"
        out.append(
            f'<div class="rp-hint-cite"><small>From: {esc(cite)}'
            + (f" [{esc(hint.guidance_id)}]" if hint.guidance_id else "")
            + "</small></div>"
        )
    out.append("</div>")
    return "".join(out)


def assignment_choices(
    assignments: Sequence[Assignment], personas: Mapping[str, Persona], show_to: bool = False
) -> list[tuple[str, int]]:
    out = []
    for a in assignments:
        p = personas.get(a.persona_id)
        name = p.name if p else a.persona_id
        to = f" → {a.assigned_to or 'all trainees'}" if show_to else ""
        by = f" (set by {a.assigned_by})" if a.assigned_by else ""
        out.append((f"#{a.id}: {name}{to}{by}", a.id))
    return out


def persona_card(p: Persona) -> str:
    """What the trainee sees before they start: never the hidden facts."""
    s = p.scenario
    return (
        f"### {html.escape(p.name)} · {html.escape(s.company)}\n"
        f"**Situation:** {html.escape(s.problem)}  \n"
        f"**Product:** {html.escape(s.product)} · **Channel:** {s.channel} · "
        f"**Difficulty:** {p.difficulty} · **Mood:** {p.archetype.value.replace('_', ' ')}\n\n"
        f"**What you know:** {html.escape(p.trainee_brief)}"
    )


def session_meter(session: PracticeSession) -> str:
    """The mood meter for where a session stands now: its state and its last move."""
    steps = session.steps()
    state = session.state()
    last = steps[-1][1] if steps and steps[-1][1].turn == state.turn else None
    return mood_meter_html(session.persona, state.mood, last, state)


def session_trace(practice: Practice, session_id: str) -> tuple[Any, str, list[tuple[str, int]]]:
    """After a session: the emotion trace figure, its text version and the retry choices."""
    session = practice.resume(session_id)
    rec = session.record
    persona = session.persona
    states = (t.turn().meta.director_state for t in rec.turns)
    saved = next((s for s in states if s is not None), None)
    start = float(saved["mood"]) if saved is not None else float(persona.emotional_baseline)
    points = trace_points(
        start, session.steps(), {t.idx: t.text for t in rec.turns if t.role == "agent"}
    )
    return plot_trace(persona.name, points), trace_list_html(points), retry_choices(rec.turns)


def grade_session(practice: Practice, grader: Grader, session_id: str) -> str:
    """Grade a finished session, save the feedback with it, and return the card's HTML."""
    rec = practice.store.get_session(session_id)
    turns = [{"role": t.role, "text": t.text} for t in rec.turns]
    feedback = build_feedback(grader, turns)
    practice.store.save_feedback(session_id, feedback.model_dump(mode="json"))
    return render_feedback(feedback, turns, about=about_panel(load_reliability()))


__all__ = [
    "ASSESSMENT_METER",
    "UNTOUCHED_MAX_AGE_S",
    "ChatHistory",
    "as_text",
    "assignment_choices",
    "grade_session",
    "has_trainee_words",
    "hint_html",
    "persona_card",
    "session_meter",
    "session_trace",
    "to_chat",
    "untouched_session",
]

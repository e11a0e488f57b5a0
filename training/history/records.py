"""Reading one stored session: its outcome, final state and mood, director steps and
technique verdicts, and the visibility rules every history view applies."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from common.techniques import TECHNIQUES
from sim.director import DirectorState, Step
from sim.persona import Persona, library_dir, load_personas
from storage import Session, SessionStore
from training.users import (
    PermissionDenied,
    User,
    can_view_session,
)

if TYPE_CHECKING:
    pass


Personas = Mapping[str, Persona]
Mode = Literal["practice", "assessment"]
Outcome = Literal["resolved", "gave_up", "open", "ended"]
HIDDEN_NOTE = "Transcript hidden: the trainee marked this session private."


@functools.cache
def _library(folder: Path) -> dict[str, Persona]:
    return load_personas(folder)


def _personas(personas: Personas | None) -> Personas:
    return personas if personas is not None else _library(library_dir())


# --- reading one stored session ----------------------------------------------------------
def session_outcome(session: Session) -> Outcome:
    """resolved / gave_up (the director's exits), else open or ended (by the trainee)."""
    if session.outcome == "resolved":
        return "resolved"
    if session.outcome == "gave_up":
        return "gave_up"
    return "open" if session.status == "open" else "ended"


def final_state(session: Session) -> DirectorState | None:
    """The director's state stored with the last customer turn that has one."""
    for t in reversed(session.turns):
        if t.role == "customer" and (saved := t.turn().meta.director_state) is not None:
            with contextlib.suppress(ValidationError):
                return DirectorState.model_validate(saved)
    return None


def final_mood(session: Session) -> float | None:
    state = final_state(session)
    return state.mood if state else None


def session_steps(session: Session) -> list[tuple[int, Step]]:
    """Each directed agent turn's index and the director's step for it."""
    out: list[tuple[int, Step]] = []
    for t in session.turns:
        if t.role == "agent" and (step := t.turn().meta.step) is not None:
            with contextlib.suppress(ValidationError):
                out.append((t.idx, Step.model_validate(step)))
    return out


def technique_status(feedback: Mapping[str, Any] | None) -> dict[str, str]:
    """Technique id -> used / missed / not_scored, from saved feedback ({} if ungraded)."""
    if not feedback:
        return {}
    return {
        str(t["id"]): str(t.get("status", "not_scored"))
        for t in feedback.get("techniques", [])
        if isinstance(t, Mapping) and "id" in t
    }


def techniques_used(feedback: Mapping[str, Any] | None) -> list[str]:
    return [t for t, s in technique_status(feedback).items() if s == "used"]


def redact_feedback(feedback: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Feedback without the trainee's words: per technique and marker the status and how
    many turns counted; no quotes, rewrites or per-turn evidence."""
    if not feedback:
        return None

    def items(key: str) -> list[dict[str, Any]]:
        return [
            {
                "id": t.get("id"),
                "label": t.get("label"),
                "status": t.get("status"),
                "count": len(t.get("instances") or []),
            }
            for t in feedback.get(key, [])
            if isinstance(t, Mapping)
        ]

    return {
        "techniques": items("techniques"),
        "markers": items("markers"),
        "summary": feedback.get("summary"),
        "rubric_version": feedback.get("rubric_version"),
        "redacted": True,
    }


def _extras(store: SessionStore, session_id: str) -> dict[str, Any]:
    """The m003 columns, with ``mode`` "real" for an imported real conversation (m005)."""
    extras = store.session_extras(session_id)
    if extras.get("real"):
        extras["mode"] = REAL_MODE
    return extras


REAL_MODE = "real"
REAL_NAME = "Real conversation"


def _persona_name(personas: Personas, persona_id: str) -> str:
    p = personas.get(persona_id)
    return p.name if p else persona_id


def _technique_ids(sessions: Sequence[Session]) -> list[str]:
    """The core techniques, then any other technique found in saved feedback."""
    ids = list(TECHNIQUES)
    for s in sessions:
        ids.extend(t for t in technique_status(s.feedback) if t not in ids)
    return ids


def _visible_sessions(
    store: SessionStore, user: User, trainee: str | None = None, all_users: bool = True
) -> list[Session]:
    """Sessions the user may see, oldest first. ``trainee`` narrows a trainer's view to one
    trainee; a trainee may only name themselves."""
    if not user.is_trainer:
        if trainee is not None and trainee != user.id:
            raise PermissionDenied("You can only see your own sessions.")
        ids = store.session_index(user.id)
    elif trainee is not None:
        ids = store.session_index(trainee)
    else:
        ids = store.session_index(user.id, all_users=all_users)
    sessions = [store.get_session(i) for i in ids]
    return [s for s in sessions if can_view_session(user, s)]

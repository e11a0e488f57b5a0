"""A trainee's history: past sessions, replays, progress over time, exports and hints.

Every function that returns session data takes the acting :class:`~sim.users.User` and
applies the role rules of ``sim/users.py``: trainees see only their own sessions; trainers
see all, but a *private* session's transcript (and every quote from it) only its owner.
A trainee asking for someone else's session gets :class:`~sim.users.PermissionDenied`.

Everything here reads what is already stored with a session: the director's state in the
turn metadata (agent turns ``meta["step"]``, customer turns ``meta["director_state"]``),
the feedback saved as JSON (``rubric.feedback.Feedback.model_dump(mode="json")``) and the
m003 columns (mode, hints). Nothing grades or calls a model.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import html
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from pydantic import ValidationError

from sim.director import MAX_DISTRESS, TECHNIQUES, DirectorState, Step, listening_clauses, rules_for
from sim.persona import Persona, library_dir, load_personas
from sim.store import Session, SessionStore
from sim.trace import trace_points
from sim.users import (
    PermissionDenied,
    User,
    can_view_session,
    require_trainer,
    require_view,
    visible_transcript,
)

if TYPE_CHECKING:
    from sim.practice import PracticeSession

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
        if t.role == "customer" and "director_state" in t.meta:
            with contextlib.suppress(ValidationError):
                return DirectorState.model_validate(t.meta["director_state"])
    return None


def final_mood(session: Session) -> float | None:
    state = final_state(session)
    return state.mood if state else None


def session_steps(session: Session) -> list[tuple[int, Step]]:
    """Each directed agent turn's index and the director's step for it."""
    out: list[tuple[int, Step]] = []
    for t in session.turns:
        if t.role == "agent" and "step" in t.meta:
            with contextlib.suppress(ValidationError):
                out.append((t.idx, Step.model_validate(t.meta["step"])))
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
    opening = next((t for t in session.turns if "director_state" in t.meta), None)
    if opening is not None:
        start = float(opening.meta["director_state"]["mood"])
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
            mood: float | None = None
            if t.role == "agent" and "step" in t.meta:
                mood = float(t.meta["step"].get("mood_after", 0.0))
            elif "director_state" in t.meta:
                mood = float(t.meta["director_state"].get("mood", 0.0))
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


# --- progress ----------------------------------------------------------------------------
@dataclass
class ProgressPoint:
    """One graded session: ``x`` is its position (1-based) in the combined timeline."""

    session_id: str
    date: str
    persona_id: str
    mode: str
    x: int
    used: dict[str, bool]
    final_mood: float | None
    outcome: Outcome


@dataclass
class ProgressSeries:
    """One mode's sessions in time order; ``share[t][i]`` is the share (0-1) of sessions up
    to and including point ``i`` (cumulative, or the last ``window``) that used ``t``."""

    mode: str
    points: list[ProgressPoint] = field(default_factory=list)
    share: dict[str, list[float]] = field(default_factory=dict)

    @property
    def moods(self) -> list[float | None]:
        return [p.final_mood for p in self.points]


@dataclass
class ProgressData:
    subject: str | None
    archetype: str | None
    techniques: list[str]
    window: int | None
    practice: ProgressSeries
    assessment: ProgressSeries
    ungraded: int = 0

    @property
    def points(self) -> list[ProgressPoint]:
        return sorted(self.practice.points + self.assessment.points, key=lambda p: p.x)


def _shares(points: Sequence[ProgressPoint], tid: str, window: int | None) -> list[float]:
    out: list[float] = []
    for i in range(len(points)):
        seen = points[: i + 1] if window is None else points[max(0, i + 1 - window) : i + 1]
        out.append(round(sum(p.used[tid] for p in seen) / len(seen), 4))
    return out


def progress(
    store: SessionStore,
    personas: Personas,
    user: User,
    archetype: str | None = None,
    *,
    trainee: str | None = None,
    window: int | None = None,
) -> ProgressData:
    """Technique use and final mood over one trainee's graded sessions, practice and
    assessment kept apart. Whose: ``trainee`` (trainers only, or a trainee naming
    themselves), else the acting user's own sessions (for LOCAL_USER: those with no user).
    ``window`` None gives cumulative shares, an int a rolling share over that many sessions.
    """
    if window is not None and window < 1:
        raise ValueError("window must be at least 1")
    subject = trainee if trainee is not None else user.id
    sessions = _visible_sessions(store, user, subject, all_users=False)
    if archetype is not None:
        sessions = [
            s
            for s in sessions
            if s.persona_id in personas and personas[s.persona_id].archetype.value == archetype
        ]
    # practice progress: imported real conversations were not practised
    sessions = [s for s in sessions if _extras(store, s.id)["mode"] != REAL_MODE]
    graded = [s for s in sessions if s.feedback]
    tids = _technique_ids(graded)
    series = {"practice": ProgressSeries("practice"), "assessment": ProgressSeries("assessment")}
    for x, s in enumerate(graded, start=1):
        mode = _extras(store, s.id)["mode"]
        status = technique_status(s.feedback)
        series[mode if mode in series else "practice"].points.append(
            ProgressPoint(
                session_id=s.id,
                date=s.started_at,
                persona_id=s.persona_id,
                mode=mode,
                x=x,
                used={t: status.get(t) == "used" for t in tids},
                final_mood=final_mood(s),
                outcome=session_outcome(s),
            )
        )
    for ser in series.values():
        ser.share = {t: _shares(ser.points, t, window) for t in tids}
    return ProgressData(
        subject=subject,
        archetype=archetype,
        techniques=tids,
        window=window,
        practice=series["practice"],
        assessment=series["assessment"],
        ungraded=len(sessions) - len(graded),
    )


TECHNIQUE_COLOURS = {
    "listen": "#1a73e8",
    "validate": "#e8710a",
    "cooperate": "#188038",
    "affirm": "#9334e6",
}
_MORE_COLOURS = ("#c5221f", "#12858a", "#b06000", "#5f6368")
MOOD_COLOUR = "#80868b"


def plot_progress(data: ProgressData) -> Figure:
    """Share of sessions using each technique (a line per technique; practice as lines,
    assessments as hollow diamonds) and the final distress per session on a second axis
    (practice grey squares on a dashed line, assessments black crosses)."""
    fig = Figure(figsize=(8.0, 4.2), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    points = data.points
    if not points:
        ax.text(0.5, 0.5, "No graded sessions yet", ha="center", va="center")
        ax.set_axis_off()
        return fig
    colours = {
        t: TECHNIQUE_COLOURS.get(t, _MORE_COLOURS[i % len(_MORE_COLOURS)])
        for i, t in enumerate(data.techniques)
    }
    handles: list[Any] = []
    for t in data.techniques:
        c = colours[t]
        pr, asmt = data.practice, data.assessment
        if pr.points:
            ax.plot(
                [p.x for p in pr.points],
                [v * 100 for v in pr.share[t]],
                color=c,
                marker="o",
                markersize=4,
                linewidth=2,
            )
        if asmt.points:
            ax.plot(
                [p.x for p in asmt.points],
                [v * 100 for v in asmt.share[t]],
                color=c,
                linestyle=":",
                linewidth=1,
                marker="D",
                markersize=8,
                markerfacecolor="none",
                markeredgewidth=1.8,
            )
        handles.append(Line2D([], [], color=c, marker="o", markersize=4, label=t))
    ax.set_ylim(-5, 105)
    ax.set_ylabel("Sessions using it (%)" if data.window is None else f"Last {data.window} (%)")
    ax.set_xlabel("Graded session #")
    n = points[-1].x
    ax.set_xlim(0.5, n + 0.5)
    if n <= 30:
        ax.set_xticks(list(range(1, n + 1)))
    ax.grid(axis="y", alpha=0.3)

    ax2 = ax.twinx()
    pm = [(p.x, p.final_mood) for p in data.practice.points if p.final_mood is not None]
    am = [(p.x, p.final_mood) for p in data.assessment.points if p.final_mood is not None]
    if pm:
        ax2.plot(
            *zip(*pm, strict=True), color=MOOD_COLOUR, linestyle="--", marker="s", markersize=4
        )
    if am:
        ax2.plot(*zip(*am, strict=True), color="black", linestyle="none", marker="X", markersize=8)
    ax2.set_ylim(0, MAX_DISTRESS)
    ax2.set_ylabel("Final distress (0 calm – 10)")
    handles.append(
        Line2D([], [], color=MOOD_COLOUR, linestyle="--", marker="s", label="final distress")
    )
    if data.assessment.points:
        handles.append(
            Line2D(
                [],
                [],
                color="black",
                linestyle="none",
                marker="D",
                markerfacecolor="none",
                label="assessment (◇ share, ✕ distress)",
            )
        )
    fig.legend(handles=handles, loc="outside lower center", fontsize=8, ncols=min(len(handles), 4))
    title = "Your progress" + (
        f": {data.archetype.replace('_', ' ')} customers" if data.archetype else ""
    )
    ax.set_title(title)
    return fig


# --- exports -----------------------------------------------------------------------------
def export_session_json(store: SessionStore, user: User, session_id: str) -> dict[str, Any]:
    """The ``rapport grade`` input shape ``{"id", "turns": [{"role", "text"}]}`` plus
    ``feedback``, ``persona``, ``outcome`` and a few details. For a session whose transcript
    the user may not see, ``turns`` is empty and ``feedback`` redacted."""
    s = store.get_session(session_id)
    require_view(user, s)
    words = visible_transcript(user, s)
    extras = _extras(store, s.id)
    return {
        "id": s.id,
        "turns": [{"role": t.role, "text": t.text} for t in s.turns] if words else [],
        "feedback": s.feedback if words else redact_feedback(s.feedback),
        "persona": s.persona_id,
        "persona_version": s.persona_version,
        "outcome": session_outcome(s),
        "user": s.user_id,
        "date": s.started_at,
        "mode": extras["mode"],
        "private": s.private,
        "transcript_hidden": not words,
        "final_mood": final_mood(s),
        "hints_used": len(extras["hints"]),
    }


# A tiny document model, written out as markdown or (without a markdown package) as HTML,
# so both exports escape the same text the same way.
Seg = tuple[Literal["", "b", "i"], str]


@dataclass
class Block:
    kind: Literal["h1", "h2", "h3", "p", "li"]
    segs: list[Seg]


_MD_INLINE = re.compile(r"([\\`*_\[\]])")
_ENTITY = re.compile(r"&(?=#?[0-9A-Za-z]+;)")
_LINE_START = re.compile(r"^([#+\-]|\d+[.)])")


def _md_escape(text: str, line_start: bool = True) -> str:
    """Text that renders literally in markdown (CommonMark and Python-Markdown) and can't
    smuggle HTML, links or images: ``<``/``>`` become entities, markup characters are
    backslash-escaped, and each line is kept (hard breaks) with its start defused. The first
    line is treated as a line start only if ``line_start``."""
    text = _ENTITY.sub("&amp;", text).replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_INLINE.sub(r"\\\1", text)
    lines = []
    for n, line in enumerate(text.splitlines() or [""]):
        if n or line_start:
            line = line.lstrip()
            line = _LINE_START.sub(lambda m: m.group(1)[:-1] + "\\" + m.group(1)[-1], line)
            if line and set(line) == {"="}:
                line = line.replace("=", "&#61;")
        lines.append(line)
    return "  \n".join(lines)


def _md_segs(segs: Sequence[Seg]) -> str:
    out = []
    for i, (style, text) in enumerate(segs):
        if style:
            text = text.strip()
        e = _md_escape(text, line_start=i == 0)
        out.append(f"**{e}**" if style == "b" and e else f"*{e}*" if style == "i" and e else e)
    return "".join(out)


def to_markdown(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    prev = ""
    for b in blocks:
        body = _md_segs(b.segs)
        if b.kind == "li":
            if prev != "li":
                out.append("")
            out.append("- " + body.replace("\n", "\n  "))
        else:
            out.append("")
            prefix = {"h1": "# ", "h2": "## ", "h3": "### ", "p": ""}[b.kind]
            out.append(prefix + body)
        prev = b.kind
    return "\n".join(out).strip() + "\n"


def _html_segs(segs: Sequence[Seg]) -> str:
    out = []
    for style, text in segs:
        e = html.escape(text, quote=True).replace("\n", "<br>\n")
        out.append(
            f"<strong>{e}</strong>" if style == "b" else f"<em>{e}</em>" if style == "i" else e
        )
    return "".join(out)


def to_plain_html(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    in_list = False
    for b in blocks:
        if b.kind == "li" and not in_list:
            out.append("<ul>")
            in_list = True
        elif b.kind != "li" and in_list:
            out.append("</ul>")
            in_list = False
        tag = b.kind
        out.append(f"<{tag}>{_html_segs(b.segs)}</{tag}>")
    if in_list:
        out.append("</ul>")
    return "\n".join(out)


def _report_blocks(
    s: Session, extras: dict[str, Any], personas: Personas, user: User
) -> list[Block]:
    words = visible_transcript(user, s)
    p = personas.get(s.persona_id)
    blocks = [Block("h1", [("", "Rapport session report")])]

    def fact(label: str, value: str) -> None:
        blocks.append(Block("li", [("b", f"{label}:"), ("", f" {value}")]))

    fact("Customer", f"{p.name} ({p.scenario.company})" if p else s.persona_id)
    if p:
        fact("Type", f"{p.archetype.value.replace('_', ' ')}, {p.difficulty}")
    if s.user_id:
        fact("Trainee", s.user_id)
    fact("Date", s.started_at[:16].replace("T", " ") + " UTC")
    fact("Mode", extras["mode"])
    fact("Outcome", session_outcome(s).replace("_", " "))
    mood = final_mood(s)
    if mood is not None:
        fact("Final distress", f"{mood:.1f} / 10")
    if extras["hints"]:
        fact("Hints used", str(len(extras["hints"])))
    if s.private:
        fact("Private", "yes")

    fb = s.feedback
    blocks.append(Block("h2", [("", "Techniques")]))
    if not fb:
        blocks.append(Block("p", [("i", "This session has not been graded.")]))
    else:
        if fb.get("summary"):
            blocks.append(Block("p", [("", str(fb["summary"]))]))
        status_text = {"used": "used", "missed": "missed", "not_scored": "not scored"}
        for t in fb.get("techniques") or []:
            blocks.append(
                Block(
                    "h3",
                    [
                        (
                            "",
                            f"{t.get('label') or t['id']} — {status_text.get(t.get('status'), '?')}",
                        )
                    ],
                )
            )
            if not words:
                n = len(t.get("instances") or [])
                if n:
                    blocks.append(Block("p", [("", f"Counted in {n} turn(s).")]))
                continue
            for inst in t.get("instances") or []:
                blocks.append(
                    Block(
                        "li",
                        [
                            ("b", f"Turn {inst.get('turn')}:"),
                            ("", " “"),
                            ("i", str(inst.get("quote") or "").strip()),
                            ("", "”"),
                        ],
                    )
                )
            rw = t.get("rewrite")
            if rw:
                blocks.append(
                    Block(
                        "p",
                        [
                            ("b", f"Try this in turn {rw.get('turn')}:"),
                            ("", f" “{rw.get('suggestion', '')}”"),
                        ],
                    )
                )
        flagged = [m for m in fb.get("markers") or [] if m.get("instances")]
        for m in flagged:
            blocks.append(Block("h3", [("", f"Watch for: {m.get('label') or m['id']}")]))
            for inst in m.get("instances") or []:
                if words:
                    blocks.append(
                        Block(
                            "li",
                            [
                                ("b", f"Turn {inst.get('turn')}:"),
                                ("", " “"),
                                ("i", str(inst.get("quote") or "").strip()),
                                ("", "”"),
                            ],
                        )
                    )
                else:
                    blocks.append(Block("li", [("", f"Turn {inst.get('turn')}")]))

    blocks.append(Block("h2", [("", "Transcript")]))
    if not words:
        blocks.append(Block("p", [("i", HIDDEN_NOTE)]))
        return blocks
    first = p.name.split()[0] if p else "Customer"
    n = 0
    for t in s.turns:
        if t.role == "agent":
            n += 1
            who = f"Agent ({n}):"
        else:
            who = f"{first}:"
        blocks.append(Block("p", [("b", who), ("", " " + t.text)]))
    return blocks


def _load_for_export(
    store: SessionStore, user: User, session_id: str
) -> tuple[Session, dict[str, Any]]:
    s = store.get_session(session_id)
    require_view(user, s)
    return s, _extras(store, s.id)


def export_session_markdown(
    store: SessionStore, user: User, session_id: str, personas: Personas | None = None
) -> str:
    """A printable report: customer, date, outcome, each technique used or missed with the
    trainee's quotes, and the transcript (both left out where the user may see only scores).
    All stored text is escaped, so it renders literally."""
    s, extras = _load_for_export(store, user, session_id)
    return to_markdown(_report_blocks(s, extras, _personas(personas), user))


HTML_RENDERERS = ("auto", "markdown", "markdown-it", "plain")
_PAGE_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:46em;margin:2em auto;line-height:1.45;"
    "color:#202124}h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.4em}"
    "h3{font-size:1em;margin-bottom:.2em}@media print{body{margin:0}}"
)


def _render(md: str, blocks: Sequence[Block], renderer: str) -> str:
    if renderer not in HTML_RENDERERS:
        raise ValueError(f"renderer must be one of {', '.join(HTML_RENDERERS)}")
    if renderer in ("auto", "markdown"):
        try:
            import markdown

            return str(markdown.markdown(md))
        except ImportError:
            if renderer == "markdown":
                raise
    if renderer in ("auto", "markdown-it"):
        try:
            from markdown_it import MarkdownIt

            return MarkdownIt("commonmark", {"html": False}).render(md)
        except ImportError:
            if renderer == "markdown-it":
                raise
    return to_plain_html(blocks)


def export_session_html(
    store: SessionStore,
    user: User,
    session_id: str,
    personas: Personas | None = None,
    renderer: str = "auto",
) -> str:
    """The markdown report as a standalone printable HTML page. ``renderer``: ``auto``
    (Python-Markdown if installed, else markdown-it-py, else plain escaped HTML), or one of
    ``markdown``, ``markdown-it``, ``plain``. Raw HTML in any stored text comes out escaped."""
    s, extras = _load_for_export(store, user, session_id)
    blocks = _report_blocks(s, extras, _personas(personas), user)
    body = _render(to_markdown(blocks), blocks, renderer)
    title = html.escape(f"Rapport session {s.id[:8]}")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{_PAGE_CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def _cell(value: str) -> str:
    """Defuse spreadsheet formulas in a text cell."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def export_sessions_csv(store: SessionStore, user: User) -> str:
    """Trainers only: one row per session, oldest first, with ``id, user, persona, date,
    mode, outcome, final_mood``, a 0/1 column per technique (empty if ungraded) and
    ``private``. Scores only; no transcript text."""
    require_trainer(user)
    sessions = _visible_sessions(store, user)
    tids = _technique_ids(sessions)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["id", "user", "persona", "date", "mode", "outcome", "final_mood", *tids, "private"])
    for s in sessions:
        status = technique_status(s.feedback)
        mood = final_mood(s)
        w.writerow(
            [
                s.id,
                _cell(s.user_id or ""),
                _cell(s.persona_id),
                s.started_at,
                _extras(store, s.id)["mode"],
                session_outcome(s),
                "" if mood is None else f"{mood:g}",
                *(("" if not status else int(status.get(t) == "used")) for t in tids),
                int(s.private),
            ]
        )
    return buf.getvalue()


# --- hints -------------------------------------------------------------------------------
class HintsDisabled(PermissionDenied):
    """Hints are off in assessment sessions."""


class GuidanceSearch(Protocol):
    """What hints need of ``rubric.guidance.GuidanceStore``."""

    def search(self, query: str, tag: str | None = ..., k: int = ...) -> Sequence[Any]: ...


@dataclass(frozen=True)
class Hint:
    """One tip for this moment of a conversation, with the guidance passage behind it."""

    text: str
    guidance_id: str | None = None
    kind: str = "general"
    guidance_title: str | None = None
    guidance_excerpt: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


HIGH_DISTRESS = 7.0
HINT_TEXT = {
    "validate": "They have told you how they feel; name it before offering a fix.",
    "listen": "There is more to their story than they have said. Ask an open question about "
    "what happened before you suggest anything.",
    "cooperate": "They are calm enough to hear a solution: offer a concrete next step and say "
    "what you will do and when.",
    "affirm": "Check you have understood: sum up their problem in your own words and ask if "
    "that's right.",
    "over": "This conversation is over: end the session to see your feedback.",
}


def choose_hint(persona: Persona, session: Session, state: DirectorState) -> tuple[str, str | None]:
    """The tip for this moment as ``(kind, guidance tag)``; pure, for tests and the app.

    In order: the conversation is over; distress >= 7 and no validation yet -> validate;
    a hidden fact still locked and no question in the last two agent turns -> listen;
    calm enough to accept but the resolution not yet offered -> cooperate; else affirm.
    """
    if state.outcome != "open" or session.status != "open":
        return "over", None
    agent = [t for t in session.turns if t.role == "agent"]
    validated = any(
        (t.meta.get("signals") or {}).get("validate") is True
        or any(c.get("id") == "validate" for c in (t.meta.get("step") or {}).get("causes", []))
        for t in agent
    )
    if state.mood >= HIGH_DISTRESS and not validated:
        return "validate", "validate"
    locked = [f for f in persona.hidden_facts if f.id not in state.unlocked]
    asked = any(listening_clauses(t.text) for t in agent[-2:])
    if locked and not asked:
        return "listen", "listen"
    rules = rules_for(persona)
    need = min(rules.offers_needed, len(persona.resolution.satisfied_by))
    met = state.cooperated and len(state.offers) >= need
    if state.mood <= rules.accept_at_or_below and not met:
        return "cooperate", "cooperate"
    return "affirm", "affirm"


def hint_for(
    session: PracticeSession, guidance: GuidanceSearch | None = None, record: bool = True
) -> Hint:
    """One tip for the current moment of a live session, backed by the best guidance
    passage for its technique when a guidance store is given. Recorded with the session
    (``SessionStore.record_hint``) unless ``record`` is False or the session is over.
    Raises :class:`HintsDisabled` in assessment mode."""
    store = session.practice.store
    if store.session_extras(session.id)["mode"] == "assessment":
        raise HintsDisabled("Hints are off in assessment sessions.")
    rec = session.record
    kind, tag = choose_hint(session.persona, rec, session.state())
    gid = title = excerpt = None
    if guidance is not None and tag is not None:
        last = next((t.text for t in reversed(rec.turns) if t.role == "customer"), "")
        try:
            found = list(guidance.search(f"{HINT_TEXT[kind]} {last}"[:1000], tag=tag, k=1))
        except Exception:  # a guidance store problem must not cost the trainee their tip
            found = []
        if found:
            gid, title, excerpt = found[0].id, found[0].title, found[0].excerpt[:600]
    hint = Hint(HINT_TEXT[kind], gid, kind, title, excerpt)
    if record and kind != "over":
        agent_turns = sum(1 for t in rec.turns if t.role == "agent")
        store.record_hint(
            session.id,
            {"kind": kind, "text": hint.text, "guidance_id": gid, "agent_turns": agent_turns},
        )
    return hint

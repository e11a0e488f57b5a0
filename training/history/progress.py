"""Progress over time: technique use and outcomes across a trainee's sessions, and its plot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from sim.director import MAX_DISTRESS
from storage import SessionStore
from training.users import (
    User,
)

if TYPE_CHECKING:
    pass
from training.history.records import (
    REAL_MODE,
    Outcome,
    Personas,
    _extras,
    _technique_ids,
    _visible_sessions,
    final_mood,
    session_outcome,
    technique_status,
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

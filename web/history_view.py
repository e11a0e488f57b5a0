"""What the History tab shows, as pure helpers: the sessions table and picker, a session's
replay and saved feedback card, and the progress plot. Every piece of stored text is escaped;
the handlers call the permission-checked functions of ``training/history.py`` first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure
from pydantic import ValidationError

from sim.trace import plot_trace
from training.history import HIDDEN_NOTE, HistoryRow, ProgressData, Replay, plot_progress
from web.formatting import archetype_label, esc, short_date

HISTORY_HEADERS = [
    "Session",
    "Date",
    "Trainee",
    "Customer",
    "Type",
    "Mode",
    "Outcome",
    "Techniques used",
    "Private",
]


def history_table(rows: Sequence[HistoryRow]) -> list[list[str]]:
    """One table row per session (scores only): short id, date, trainee, customer, type,
    mode, outcome, techniques used, private."""
    out = []
    for r in rows:
        used = ", ".join(r.techniques_used) if r.graded else "(not graded)"
        out.append(
            [
                r.session_id[:8],
                short_date(r.date),
                r.user_id or "(you)",
                r.persona_name,
                archetype_label(r.archetype),
                r.mode,
                r.outcome.replace("_", " "),
                used,
                "yes" if r.private else "",
            ]
        )
    return out


def history_choices(rows: Sequence[HistoryRow], show_user: bool = False) -> list[tuple[str, str]]:
    """Choices for the "open a session" dropdown: a readable label -> session id."""
    out = []
    for r in rows:
        who = f"{r.user_id or '(you)'} · " if show_user else ""
        mode = " · assessment" if r.mode == "assessment" else ""
        out.append(
            (
                f"{who}{short_date(r.date)} · {r.persona_name} · "
                f"{r.outcome.replace('_', ' ')}{mode} [{r.session_id[:8]}]",
                r.session_id,
            )
        )
    return out


REPLAY_CSS = """
<style>
.rp-replay{font-size:15px;line-height:1.45}
.rp-replay .rp-turn{margin:6px 0;padding:6px 10px;border-radius:8px}
.rp-replay .rp-turn-agent{background:#e8f0fe}
.rp-replay .rp-turn-customer{background:#f1f3f4}
.rp-replay .rp-tag{display:inline-block;margin:2px 4px 0 0;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600}
.rp-replay .rp-tag-technique{background:#e6f4ea;color:#1e6b34}
.rp-replay .rp-tag-marker{background:#fdecea;color:#a52a1a}
.rp-replay .rp-mood{float:right;color:#5f6368;font-size:12px}
.rp-hint{border-left:4px solid #1a73e8;padding:6px 12px;background:#f8fbff}
.rp-hint blockquote{margin:6px 0;color:#3c4043;font-style:italic}
</style>
"""


def replay_html(replay: Replay) -> str:
    """The transcript with each agent turn's techniques (and markers) as tags. Every piece
    of stored text is escaped; a hidden transcript shows only the note saying why."""
    head = (
        f'<div class="rp-replay" id="replay-card" data-session="{esc(replay.session_id)}">'
        f"<h3>{esc(replay.persona_name)} · {esc(short_date(replay.date))} · "
        f"{esc(replay.mode)} · {esc(replay.outcome.replace('_', ' '))}</h3>"
    )
    if replay.user_id:
        head += f"<p><b>Trainee:</b> {esc(replay.user_id)}</p>"
    if replay.hints:
        head += f"<p><b>Hints used:</b> {len(replay.hints)}</p>"
    if replay.transcript is None:
        return REPLAY_CSS + head + f"<p><i>{esc(HIDDEN_NOTE)}</i></p></div>"
    first = replay.persona_name.split()[0] if replay.persona_name.strip() else "Customer"
    body = []
    n = 0
    for t in replay.transcript:
        if t.role == "agent":
            n += 1
            who = f"You ({n})"
        else:
            who = first
        mood = f'<span class="rp-mood">distress {t.mood:.1f}</span>' if t.mood is not None else ""
        tags = "".join(
            f'<span class="rp-tag rp-tag-technique" data-technique="{esc(tid)}"'
            f' title="{esc(t.quotes.get(tid, ""))}">✓ {esc(tid)}</span>'
            for tid in t.techniques
        ) + "".join(
            f'<span class="rp-tag rp-tag-marker" data-marker="{esc(m)}">⚑ {esc(m)}</span>'
            for m in t.markers
        )
        body.append(
            f'<div class="rp-turn rp-turn-{esc(t.role)}" data-idx="{t.idx}">{mood}'
            f"<b>{esc(who)}:</b> {esc(t.text)}"
            + (f'<div class="rp-tags">{tags}</div>' if tags else "")
            + "</div>"
        )
    return REPLAY_CSS + head + "".join(body) + "</div>"


def replay_feedback_html(replay: Replay) -> str:
    """The saved feedback card for a replay: the full card where the viewer may read the
    words, else only the per-technique scores."""
    from rubric.feedback import Feedback
    from rubric.render import CSS, render_feedback

    fb = replay.feedback
    if not fb:
        return "<p><i>This session has not been graded.</i></p>"
    if replay.transcript is not None and not fb.get("redacted"):
        try:
            card = render_feedback(
                Feedback.model_validate(fb),
                [{"role": t.role, "text": t.text} for t in replay.transcript],
            )
        except ValidationError:
            card = ""
        if card:
            # the Practice tab's card owns id="feedback-card"
            return card.replace('id="feedback-card"', 'id="replay-feedback-card"', 1)
    chips = "".join(
        f'<span class="rp-chip rp-{esc(t.get("status"))}" data-technique="{esc(t.get("id"))}">'
        f"{esc(t.get('id'))}: {esc(str(t.get('status', '')).replace('_', ' '))}"
        f" ({int(t.get('count') or len(t.get('instances') or []))} turn(s))</span>"
        for t in fb.get("techniques") or []
        if isinstance(t, Mapping)
    )
    note = f"<p><i>{esc(HIDDEN_NOTE)}</i></p>" if replay.transcript is None else ""
    summary = f"<p>{esc(fb['summary'])}</p>" if fb.get("summary") and not note else ""
    return (
        CSS + '<div class="rp-card" id="replay-feedback-card"><h3>Scores</h3>'
        f'<div class="rp-chips">{chips}</div>{summary}{note}</div>'
    )


def replay_figure(replay: Replay) -> Figure:
    return plot_trace(replay.persona_name, replay.trace)


def progress_figure(data: ProgressData, subject_label: str | None = None) -> Figure:
    """:func:`training.history.plot_progress`, titled with whose progress it is."""
    fig = plot_progress(data)
    if subject_label and data.points:
        kind = f": {archetype_label(data.archetype)} customers" if data.archetype else ""
        fig.axes[0].set_title(f"{subject_label}'s progress{kind}")
    return fig


def progress_summary(data: ProgressData) -> str:
    """A line under the plot: how many practice and assessment sessions it shows."""
    p, a = len(data.practice.points), len(data.assessment.points)
    text = f"{p} graded practice session(s), {a} assessment(s)"
    if data.ungraded:
        text += f"; {data.ungraded} not graded yet"
    return text + "."


__all__ = [
    "HISTORY_HEADERS",
    "REPLAY_CSS",
    "history_choices",
    "history_table",
    "progress_figure",
    "progress_summary",
    "replay_feedback_html",
    "replay_figure",
    "replay_html",
]

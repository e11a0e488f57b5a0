"""How the customer felt, turn by turn: the mood meter's HTML and the emotion trace plot.

Pure helpers over the director's :class:`~sim.director.Step` records, so the app only wires
them in. All text that reaches HTML is escaped; the plot uses matplotlib's object-oriented API
(no pyplot, no GUI backend).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

from sim.director import MAX_DISTRESS, Cause, DirectorState, Step, feeling, mood_band
from sim.persona import Persona

RISE = "#d93025"
FALL = "#1e8e3e"
_BAND_COLOURS = {
    "calm": "#34a853",
    "uneasy": "#fbbc04",
    "upset": "#fa7b17",
    "very upset": "#d93025",
}
_EXIT_TEXT = {
    "accepted": "accepted your offer",
    "manager": "asked for a manager",
    "left": "left the chat",
}


def cause_label(cause: Cause | None) -> str:
    """A short name for what moved the mood: ``validate``, ``dismissive``, ``softens``…"""
    if cause is None:
        return ""
    if cause.kind == "rule":
        return cause.id.split(":", 1)[0]
    if cause.kind == "probe":
        return "off-script"
    if cause.kind == "idle":
        return "no technique"
    return cause.id


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def trace_points(
    start_mood: float,
    steps: Sequence[tuple[int, Step]],
    agent_texts: Mapping[int, str] | None = None,
) -> list[dict[str, Any]]:
    """One point per agent message, after a starting point (``turn`` 0, the baseline).

    Each point: ``turn`` (the trainee's message number), ``mood`` (distress after it),
    ``delta``, ``cause`` / ``kind`` / ``label`` (the main cause of the move, if any),
    ``labels`` (every cause that pushed the same way),
    ``evidence`` (the agent's words the grader quoted for it; for a persona rule, the probe
    or an idle turn, the agent's message itself when ``agent_texts`` is given),
    ``agent_idx`` (the agent turn's index in the stored session) and ``behaviours`` (the
    persona's behaviours the director switched on for the reply, see ``sim/behaviours.py``).
    """
    points: list[dict[str, Any]] = [
        {
            "turn": 0,
            "mood": float(start_mood),
            "delta": 0.0,
            "cause": None,
            "kind": None,
            "label": "",
            "labels": [],
            "evidence": None,
            "agent_idx": None,
            "behaviours": [],
        }
    ]
    for n, (idx, step) in enumerate(steps, start=1):
        cause = step.main_cause() if step.causes else None
        evidence = cause.evidence if cause and cause.kind in ("technique", "marker") else None
        sign = 1 if step.delta > 0 else -1
        labels = [cause_label(c) for c in step.causes if c.delta * sign > 0]
        if evidence is None and agent_texts and idx in agent_texts:
            evidence = agent_texts[idx]
        points.append(
            {
                "turn": n,
                "mood": float(step.mood_after),
                "delta": step.delta,
                "cause": cause.id if cause else None,
                "kind": cause.kind if cause else None,
                "label": cause_label(cause),
                "labels": list(dict.fromkeys(labels)),
                "evidence": evidence,
                "agent_idx": idx,
                "behaviours": [c.kind for c in step.behaviours],
            }
        )
    return points


def plot_trace(persona_name: str, points: Sequence[Mapping[str, Any]]) -> Figure:
    """Distress per message as one line; rises are marked red (▲), falls green (▼), each
    annotated with the technique or marker that moved it."""
    first = persona_name.split()[0] if persona_name.strip() else "the customer"
    xs = [p["turn"] for p in points]
    ys = [p["mood"] for p in points]
    fig = Figure(figsize=(7.5, 3.2), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.plot(xs, ys, color="#5f6368", marker="o", linewidth=2, markersize=5, zorder=2)
    for i, p in enumerate(points):
        if not p["turn"] or not p["delta"]:
            continue
        up = p["delta"] > 0
        colour = RISE if up else FALL
        ax.scatter(
            [xs[i]], [ys[i]], color=colour, marker="^" if up else "v", s=70, zorder=4
        )  # colour and shape both say which way it moved
        ax.annotate(
            f"{'↑' if up else '↓'} {p['label'] or 'mood'}",
            (xs[i], ys[i]),
            xytext=(0, 10 if up else -14),
            textcoords="offset points",
            ha="center",
            fontsize=8,
            color=colour,
        )
    ax.set_ylim(0, MAX_DISTRESS)
    ax.set_xlim(-0.3, max(xs[-1], 1) + 0.3 if xs else 1)
    ax.set_xticks(xs)
    ax.set_xticklabels(["start" if x == 0 else str(x) for x in xs])
    ax.set_xlabel("Your message #")
    ax.set_ylabel("Distress (0 calm – 10)")
    ax.set_title(f"How {first} felt")
    ax.grid(axis="y", alpha=0.3)
    return fig


def trace_list_html(points: Sequence[Mapping[str, Any]]) -> str:
    """The plot as text: each rise or fall with the trainee's quoted words."""
    items = []
    for p in points:
        if not p["turn"] or not p["delta"]:
            continue
        up = p["delta"] > 0
        what = "rose" if up else "fell"
        quote = (
            f' — <span class="rp-quote">“{html.escape(_short(p["evidence"], 160))}”</span>'
            if p.get("evidence")
            else ""
        )
        items.append(
            f'<li class="rp-{"rise" if up else "fall"}">Message {p["turn"]}: distress {what} '
            f"{abs(p['delta']):.1f} to {p['mood']:.1f} "
            f"({html.escape(', '.join(p.get('labels') or [p['label'] or 'mood']))}){quote}</li>"
        )
    if not items:
        return '<p class="rp-trace-list">The customer\'s mood did not change.</p>'
    return '<ul class="rp-trace-list" id="trace-list">' + "".join(items) + "</ul>"


METER_CSS = (
    "<style>"
    ".rp-meter{font-size:14px;line-height:1.35;padding:6px 2px}"
    ".rp-meter-head{display:flex;gap:8px;align-items:baseline;flex-wrap:wrap}"
    ".rp-bar{height:10px;border-radius:5px;background:#e8eaed;overflow:hidden;margin-top:4px}"
    ".rp-fill{height:100%;border-radius:5px}"
    ".rp-trend{font-size:13px;font-weight:600}"
    ".rp-trend.rp-up{color:" + RISE + "}.rp-trend.rp-down{color:" + FALL + "}"
    ".rp-trend.rp-flat{color:#5f6368}"
    ".rp-over{font-weight:600}"
    "</style>"
)


def mood_meter_html(
    persona: Persona,
    mood: float,
    step: Step | None = None,
    state: DirectorState | None = None,
) -> str:
    """A small distress meter: bar, number, feeling word and the last change with its cause."""
    mood = max(0.0, min(MAX_DISTRESS, float(mood)))
    first = persona.name.split()[0]
    word = feeling(persona, mood)
    band = mood_band(mood)
    trend = ""
    if step is not None:
        label = cause_label(step.main_cause())
        if step.delta < 0:
            trend = f'<span class="rp-trend rp-down">↓ {html.escape(label or "calmer")}</span>'
        elif step.delta > 0:
            trend = f'<span class="rp-trend rp-up">↑ {html.escape(label or "worse")}</span>'
        else:
            trend = '<span class="rp-trend rp-flat">→ no change</span>'
    over = ""
    if state is not None and state.outcome != "open" and state.exit:
        over = f'<div class="rp-over">{html.escape(first)} {_EXIT_TEXT[state.exit]}.</div>'
    pct = round(mood / MAX_DISTRESS * 100)
    return (
        METER_CSS + '<div class="rp-meter">'
        '<div class="rp-meter-head">'
        f"<span>{html.escape(first)}’s distress</span>"
        f'<b class="rp-mood" data-mood="{round(mood, 2)}">{mood:.1f}/10</b>'
        f'<span class="rp-feel">{html.escape(word)}</span>{trend}</div>'
        f'<div class="rp-bar" role="meter" aria-valuemin="0" aria-valuemax="10" '
        f'aria-valuenow="{round(mood, 2)}" aria-label="{html.escape(first)}’s distress: {html.escape(word)}">'
        f'<div class="rp-fill" style="width:{pct}%;background:{_BAND_COLOURS[band]}"></div></div>'
        f"{over}</div>"
    )


def retry_choices(turns: Sequence[Any]) -> list[tuple[str, int]]:
    """Dropdown choices for "Retry from here": ``("#1: first 60 chars…", agent turn idx)``."""
    out: list[tuple[str, int]] = []
    for t in turns:
        if t.role == "agent":
            out.append((f"#{len(out) + 1}: {_short(t.text)}", t.idx))
    return out

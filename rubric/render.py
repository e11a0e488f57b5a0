"""The feedback card as HTML (all trainee and model text escaped)."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rubric.feedback import Feedback, TechniqueFeedback

CSS = """
<style>
.rp-card{font-size:15px;line-height:1.45}
.rp-chips{display:flex;gap:8px;flex-wrap:wrap;margin:6px 0 12px}
.rp-chip{padding:3px 10px;border-radius:999px;font-weight:600;font-size:13px;border:1px solid transparent}
.rp-used{background:#e6f4ea;color:#1e6b34;border-color:#9fd3ad}
.rp-missed{background:#fdecea;color:#a52a1a;border-color:#f3b0a8}
.rp-not_scored{background:#f1f3f4;color:#5f6368;border-color:#c9cdd1}
.rp-tech{margin:10px 0;padding:8px 12px;border-left:4px solid #ccc}
.rp-tech.rp-used{border-left-color:#34a853;background:none}
.rp-tech.rp-missed{border-left-color:#ea4335;background:none}
.rp-tech.rp-not_scored{border-left-color:#9aa0a6;background:none}
.rp-quote{font-style:italic}
.rp-rewrite{background:#fff8e1;padding:6px 10px;border-radius:6px;margin-top:4px}
.rp-transcript .rp-agent{margin:4px 0}
.rp-transcript mark{background:#fff3a3;padding:0 2px}
.rp-transcript .rp-customer{color:#555;margin:4px 0}
</style>
"""

MIN_RULINGS = 30
"""Scored trainer rulings a technique needs before its agreement with them is shown: below
this a κ swings by more than ±0.3 from one ruling to the next, so only the count is shown."""

_STATUS_TEXT = {"used": "used", "missed": "missed", "not_scored": "not scored"}


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _technique(t: TechniqueFeedback, marker: bool = False) -> str:
    css = "missed" if marker else t.status
    parts = [f'<div class="rp-tech rp-{css}" data-technique="{t.id}">']
    parts.append(f"<b>{_e(t.label)}</b> — {'flagged' if marker else _STATUS_TEXT[t.status]}")
    for i in t.instances:
        parts.append(f'<div>Turn {i.turn}: <span class="rp-quote">“{_e(i.quote)}”</span></div>')
    if t.rewrite:
        parts.append(
            f'<div class="rp-rewrite">Try this in turn {t.rewrite.turn}: “{_e(t.rewrite.suggestion)}”'
            + (
                f"<br><small>Agents who do this well say things like: “{_e(t.rewrite.example)}”</small>"
                if t.rewrite.example
                else ""
            )
            + "</div>"
        )
    if t.disagreements:
        parts.append(
            f"<div><small>⚑ The LLM judge and the classifier disagreed on {t.disagreements} turn(s).</small></div>"
        )
    for c in t.citations:
        parts.append(
            f'<details class="rp-cite"><summary>Guidance: {_e(c.title)} '
            f"<small>[{_e(c.id)} · {_e(c.source)}]</small></summary><p>{_e(c.excerpt)}</p></details>"
        )
    parts.append("</div>")
    return "".join(parts)


def _highlight(text: str, quotes: Sequence[str]) -> str:
    spans: list[tuple[int, int]] = []
    for q in quotes:
        start = text.find(q)
        if start >= 0:
            spans.append((start, start + len(q)))
    spans.sort()
    out, pos = [], 0
    for s, e in spans:
        if s < pos:
            continue
        out.append(_e(text[pos:s]) + "<mark>" + _e(text[s:e]) + "</mark>")
        pos = e
    out.append(_e(text[pos:]))
    return "".join(out)


def render_feedback(feedback: Feedback, turns: Sequence[dict[str, str]], about: str = "") -> str:
    chips = "".join(
        f'<span class="rp-chip rp-{t.status}" data-technique="{t.id}">{_e(t.id)}: {_STATUS_TEXT[t.status]}</span>'
        for t in feedback.techniques
    )
    body = [CSS, '<div class="rp-card" id="feedback-card">', "<h3>Session feedback</h3>"]
    body.append(f'<div class="rp-chips">{chips}</div>')
    body.append(f"<p>{_e(feedback.summary)}</p>")
    body.extend(_technique(t) for t in feedback.techniques)
    body.extend(_technique(m, marker=True) for m in feedback.markers if m.instances)
    quotes_by_turn: dict[int, list[str]] = {}
    for t in feedback.techniques:
        for i in t.instances:
            quotes_by_turn.setdefault(i.index, []).append(i.quote)
    body.append(
        '<details class="rp-transcript" open><summary>Your transcript, with what counted highlighted</summary>'
    )
    n = 0
    for idx, turn in enumerate(turns):
        if turn["role"] == "agent":
            n += 1
            body.append(
                f'<div class="rp-agent"><b>You ({n}):</b> {_highlight(turn["text"], quotes_by_turn.get(idx, []))}</div>'
            )
        else:
            body.append(f'<div class="rp-customer"><b>Customer:</b> {_e(turn["text"])}</div>')
    body.append("</details>")
    if about:
        body.append(about)
    body.append("</div>")
    return "".join(body)


RELIABILITY_PATH = (
    Path(__file__).resolve().parent.parent / "eval" / "reports" / "latest" / "reliability.json"
)


def load_reliability(path: Path | None = None) -> dict[str, dict[str, Any]] | None:
    """The reliability card written by ``rapport eval``, if one has been run."""
    path = path or RELIABILITY_PATH
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _num(x: Any, nd: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{nd}f}"


def rulings_cell(c: dict[str, Any]) -> str:
    """Agreement with trainer rulings for one technique, or how many there are so far."""
    n = c.get("rulings_n")
    if n is None:
        return "n/a"
    if n < MIN_RULINGS or c.get("rulings_kappa") is None:
        return f"{n} ruling(s) (figures from {MIN_RULINGS})"
    return f"κ {_num(c.get('rulings_kappa'))}, F1 {_num(c.get('rulings_f1'))} ({n})"


def dispute_cell(c: dict[str, Any]) -> str:
    rate = c.get("dispute_rate")
    return "n/a" if rate is None else f"{rate * 100:.1f}% ({c.get('disputes', 0)})"


def reliability_table(card: dict[str, dict[str, Any]]) -> str:
    """Markdown table for trainers: the locked test beside the transfer set, the first gold
    set and the trainers' own rulings on disputed verdicts."""
    rows = [
        "| technique | F1, locked test | κ [95% CI] | F1, transfer set | F1, first gold set "
        "| agrees with trainer rulings | disputed | same grade on rerun (α) "
        "| flips under rewording | labelled examples | not scored |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t, c in card.items():
        ci = c.get("kappa_ci") or [None, None]
        rows.append(
            f"| {t} | {_num(c.get('f1'))} | {_num(c.get('kappa'))} [{_num(ci[0])}, {_num(ci[1])}] "
            f"| {_num(c.get('transfer_f1'))} | {_num(c.get('gold_f1'))} "
            f"| {rulings_cell(c)} | {dispute_cell(c)} "
            f"| {_num(c.get('retest_alpha'))} | {_num((c.get('flip_rate') or 0) * 100, 1)}% "
            f"| {c.get('support', 'n/a')} | {_num((c.get('abstain_rate') or 0) * 100, 0)}% |"
        )
    return "\n".join(rows)


def _rulings_clause(c: dict[str, Any]) -> str:
    n = c.get("rulings_n")
    if not n:
        return ""
    if n < MIN_RULINGS or c.get("rulings_kappa") is None:
        return f"; trainers have ruled on {n} disputed verdict(s) so far"
    return (
        f"; on {n} disputed verdicts it agrees with the trainers' rulings with "
        f"κ {_num(c.get('rulings_kappa'))}"
    )


def about_panel(card: dict[str, dict[str, Any]] | None) -> str:
    """The "About this score" panel inside the feedback card."""
    if not card:
        return (
            '<details class="rp-about"><summary>About this score</summary><p>No evaluation report '
            "has been run on this installation yet (rapport eval).</p></details>"
        )
    items = "".join(
        f"<li><b>{_e(t)}</b>: agrees with human labels with F1 {_num(c.get('f1'))} "
        f"(κ {_num(c.get('kappa'))}), and F1 {_num(c.get('transfer_f1'))} on conversations "
        "written in another style; the same conversation always gets the same grade "
        f"(α {_num(c.get('retest_alpha'))}); rewording flips {_num((c.get('flip_rate') or 0) * 100, 1)}% of verdicts"
        f"{_rulings_clause(c)}.</li>"
        for t, c in card.items()
    )
    return (
        '<details class="rp-about" id="about-score"><summary>About this score</summary>'
        "<p>Grades come from a deterministic model checked against labelled conversations "
        f"it was not tuned on. How far to trust each technique:</p><ul>{items}</ul>"
        "<p>“Not scored” means the grader was unsure and says so rather than guessing.</p></details>"
    )

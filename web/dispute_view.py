"""What the dispute panel and the review queue show: a session's disputes with their rulings,
one dispute in context for a reviewer, and the queue's rows. Every piece of stored text is
escaped; the handlers (``web/dispute_handlers.py``) check who may see what first."""

from __future__ import annotations

import html
from collections.abc import Sequence

from training.disputes import Dispute, Review
from web.formatting import short_date

QUEUE_HEADERS = ["#", "trainee", "technique", "turn", "grader said", "sure", "status", "disputed"]
STATUS_TEXT = {"open": "open", "upheld": "upheld", "overturned": "overturned"}
CSS = """
<style>
.rp-disputes{font-size:14px;line-height:1.45}
.rp-dispute{margin:6px 0;padding:6px 10px;border-left:4px solid #9aa0a6}
.rp-dispute.rp-d-upheld{border-left-color:#1a73e8}
.rp-dispute.rp-d-overturned{border-left-color:#e37400}
.rp-review .rp-ctx{margin:3px 0}
.rp-review .rp-ctx-agent.rp-disputed{background:#fff8e1;padding:4px 8px;border-radius:6px}
.rp-review mark{background:#fff3a3}
</style>
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def said(used: bool) -> str:
    return "used" if used else "not used"


def technique_label(technique: str) -> str:
    return technique.replace("_", " ")


def ruling_text(d: Dispute) -> str:
    if d.status == "open":
        return "Waiting for a trainer's ruling."
    who = d.ruled_by or "a trainer"
    what = (
        f"Upheld by {who}: the grader's “{said(d.verdict)}” stands."
        if d.status == "upheld"
        else f"Overturned by {who}: counted as “{said(not d.verdict)}”."
    )
    return what + (f" Note: {d.note}" if d.note else "")


def disputes_html(found: Sequence[Dispute], empty: str = "") -> str:
    """A session's disputes with their rulings, as the trainee (or a trainer) sees them."""
    if not found:
        return f'<div class="rp-disputes" id="dispute-list">{esc(empty)}</div>' if empty else ""
    items = "".join(
        f'<div class="rp-dispute rp-d-{d.status}" data-dispute="{d.id}" data-status="{d.status}">'
        f"<b>Turn {d.turn} · {esc(technique_label(d.technique))}</b>: the grader said "
        f"{said(d.verdict)} ({d.confidence:.0%} sure). Reason: “{esc(d.reason)}”<br>"
        f'<span class="rp-ruling">{esc(ruling_text(d))}</span></div>'
        for d in found
    )
    return f'{CSS}<div class="rp-disputes" id="dispute-list"><b>Disputed verdicts</b>{items}</div>'


def _highlight(text: str, quote: str | None) -> str:
    if quote and quote in text:
        a = text.index(quote)
        return esc(text[:a]) + "<mark>" + esc(quote) + "</mark>" + esc(text[a + len(quote) :])
    return esc(text)


def review_html(rv: Review) -> str:
    """One dispute for a reviewer: the turn in context (if they may read it), the verdict,
    its evidence and cited guidance, the reason and the ruling."""
    d = rv.dispute
    parts = [CSS, f'<div class="rp-review" id="dispute-review" data-dispute="{d.id}">']
    parts.append(
        f"<h4>Dispute #{d.id} · {esc(d.trainee or 'local')} · turn {d.turn} · "
        f"{esc(technique_label(d.technique))}</h4>"
    )
    if rv.context is None:
        parts.append(
            '<p class="rp-hidden-turn"><i>This session is private and the trainee did not share '
            "this turn: you see the verdict and their reason, not their words.</i></p>"
        )
    else:
        for i, t in enumerate(rv.context):
            last = i == len(rv.context) - 1
            who = "Agent" if t["role"] == "agent" else "Customer"
            text = _highlight(t["text"], rv.evidence) if last else esc(t["text"])
            css = f"rp-ctx rp-ctx-{t['role']}" + (" rp-disputed" if last else "")
            parts.append(f'<div class="{css}"><b>{who}:</b> {text}</div>')
    parts.append(
        f"<p><b>Grader:</b> {said(d.verdict)} ({d.confidence:.0%} sure, "
        f"{esc(d.grader.get('source', 'classifier'))})"
        + (f". Evidence: “{esc(rv.evidence)}”" if rv.evidence else "")
        + "</p>"
    )
    for c in d.guidance:
        parts.append(
            f'<details class="rp-cite"><summary>Guidance: {esc(c.get("title", ""))} '
            f"<small>[{esc(c.get('id', ''))} · {esc(c.get('source', ''))}]</small></summary>"
            f"<p>{esc(c.get('excerpt', ''))}</p></details>"
        )
    parts.append(f"<p><b>Trainee's reason:</b> “{esc(d.reason)}”</p>")
    parts.append(f'<p class="rp-ruling" data-status="{d.status}">{esc(ruling_text(d))}</p></div>')
    return "".join(parts)


def queue_rows(found: Sequence[Dispute]) -> list[list[str]]:
    return [
        [
            str(d.id),
            d.trainee or "(local)",
            d.technique,
            str(d.turn),
            said(d.verdict),
            f"{d.confidence:.0%}",
            STATUS_TEXT[d.status],
            short_date(d.created_at),
        ]
        for d in found
    ]


def queue_choices(found: Sequence[Dispute]) -> list[tuple[str, str]]:
    return [
        (
            f"#{d.id} · {d.trainee or '(local)'} · {d.technique} · turn {d.turn} · {d.status}",
            str(d.id),
        )
        for d in found
    ]


__all__ = [
    "CSS",
    "QUEUE_HEADERS",
    "STATUS_TEXT",
    "disputes_html",
    "esc",
    "queue_choices",
    "queue_rows",
    "review_html",
    "ruling_text",
    "said",
    "technique_label",
]

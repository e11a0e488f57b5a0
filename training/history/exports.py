"""Exports: one session as JSON, Markdown or HTML, and the session list as CSV."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from storage import Session, SessionStore
from training.users import (
    User,
    require_trainer,
    require_view,
    visible_transcript,
)

if TYPE_CHECKING:
    pass
from training.history.records import (
    HIDDEN_NOTE,
    Personas,
    _extras,
    _personas,
    _technique_ids,
    _visible_sessions,
    final_mood,
    redact_feedback,
    session_outcome,
    technique_status,
)


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

"""Pure helpers behind the app's History, Practice-hint and Persona Studio panels.

Everything here turns the data the ``sim`` modules return into what a Gradio component
shows (table rows, dropdown choices, HTML, YAML text, form values, figures), with every piece
of stored or typed text escaped. Nothing here checks permissions: the app's handlers resolve
the acting user and call the permission-checked functions of ``training/history.py``,
``training/users.py`` and ``training/persona_repo.py`` first, then hand the results to these helpers.
"""

from __future__ import annotations

import html
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
import yaml
from matplotlib.figure import Figure
from pydantic import BaseModel, ValidationError

from sim.persona import (
    Archetype,
    MoodRules,
    Persona,
    PersonaSpec,
    ReplyLength,
    Resolution,
    Scenario,
)
from sim.trace import plot_trace
from training.history import HIDDEN_NOTE, Hint, HistoryRow, ProgressData, Replay, plot_progress
from training.users import Assignment

if TYPE_CHECKING:
    from sim.practice import Practice
    from storage import Session, SessionStore

# --- small shared bits --------------------------------------------------------------------
NO_FILTER = ""
"""The dropdown value meaning "all" (all archetypes, every trainee, any difficulty)."""

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


def dataframe(rows: list[list[str]], headers: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=headers)


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def archetype_label(value: str | None) -> str:
    return (value or "other").replace("_", " ")


def archetype_choices(all_label: str = "All customer types") -> list[tuple[str, str]]:
    return [(all_label, NO_FILTER)] + [(archetype_label(a.value), a.value) for a in Archetype]


def difficulty_choices(all_label: str = "Any difficulty") -> list[tuple[str, str]]:
    return [(all_label, NO_FILTER)] + [(d, d) for d in ("easy", "medium", "hard")]


def or_none(value: str | None) -> str | None:
    """A filter dropdown's value as a filter argument: "" (or None) means no filter."""
    return value or None


def persona_choices(personas: Mapping[str, Persona]) -> list[tuple[str, str]]:
    """The Practice tab's customer picker: ``name — archetype, difficulty``."""
    return [
        (f"{p.name} — {archetype_label(p.archetype.value)}, {p.difficulty}", p.id)
        for p in personas.values()
    ]


ASSESSMENT_METER = (
    '<div class="rp-meter" data-assessment="true">Assessment: the mood meter and hints are '
    "off. Your feedback appears when you end the session.</div>"
)
"""What the mood meter shows during an assessment."""


StatusKind = Literal["ok", "error", "info"]


def status_html(text: str, kind: StatusKind = "info") -> str:
    """A one-line status message (escaped), styled by kind."""
    colour = {"ok": "#1e6b34", "error": "#a52a1a", "info": "#3c4043"}[kind]
    icon = {"ok": "✓ ", "error": "⚠️ ", "info": ""}[kind]
    return f'<div class="rp-status rp-{kind}" style="color:{colour}">{icon}{esc(text)}</div>'


def short_date(iso: str) -> str:
    """``2025-01-02T03:04:05.678+00:00`` -> ``2025-01-02 03:04``."""
    return iso[:16].replace("T", " ")


def write_download(text: str, filename: str, folder: Path | None = None) -> Path:
    """Write ``text`` to ``folder/filename`` (a fresh temp folder by default) for a download.

    ``filename`` is reduced to safe characters; the file is UTF-8.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", filename).strip("._") or "export.txt"
    out = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="rapport-export-"))
    out.mkdir(parents=True, exist_ok=True)
    path = out / safe
    path.write_text(text, encoding="utf-8")
    return path


# --- history ------------------------------------------------------------------------------
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


def trainee_choices(names: Iterable[str], all_label: str = "Everyone") -> list[tuple[str, str]]:
    return [(all_label, NO_FILTER)] + [(n, n) for n in names]


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


# --- Persona Studio: the form -------------------------------------------------------------
FieldKind = Literal["text", "long", "lines", "choice", "int", "float", "facts", "behaviours"]


@dataclass(frozen=True)
class FormField:
    """One editor field: ``path`` is the dotted YAML key (``scenario.company``)."""

    path: str
    kind: FieldKind
    choices: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    @property
    def parent(self) -> str | None:
        return self.path.rsplit(".", 1)[0] if "." in self.path else None

    @property
    def model(self) -> type[BaseModel]:
        return _PARENTS[self.parent] if self.parent else PersonaSpec

    @property
    def required(self) -> bool:
        return self.model.model_fields[self.key].is_required()

    @property
    def label(self) -> str:
        words = self.path.replace(".", ": ").replace("_", " ")
        return words[:1].upper() + words[1:] + ("" if self.required else " (optional)")

    @property
    def help(self) -> str:
        """The pydantic field description, plus how to type list fields."""
        desc = self.model.model_fields[self.key].description or ""
        extra = {
            "lines": " One per line.",
            "facts": " One per line: id | fact | topic, topic, …",
            "behaviours": " One per line: kind | what it needs. impatient and repeats need "
            "nothing; tangential | the older grievance; interrupts | the second problem; "
            "vague | the detail | topic, topic, …; non_native | first language (optional).",
        }.get(self.kind, "")
        return (desc + extra).strip()

    @property
    def elem_id(self) -> str:
        return "studio-f-" + self.path.replace(".", "-").replace("_", "-")


_PARENTS: dict[str, type[BaseModel]] = {
    "scenario": Scenario,
    "resolution": Resolution,
    "mood": MoodRules,
    "reply_length": ReplyLength,
}

FORM_FIELDS: tuple[FormField, ...] = (
    FormField("name", "text"),
    FormField("archetype", "choice", tuple(a.value for a in Archetype)),
    FormField("difficulty", "choice", ("easy", "medium", "hard")),
    FormField("scenario.company", "text"),
    FormField("scenario.product", "text"),
    FormField("scenario.problem", "long"),
    FormField("scenario.channel", "choice", ("chat", "phone", "email")),
    FormField("backstory", "long"),
    FormField("trainee_brief", "long"),
    FormField("opening_line", "long"),
    FormField("speaking_style", "long"),
    FormField("emotional_baseline", "int"),
    FormField("escalates_when", "lines"),
    FormField("softens_when", "lines"),
    FormField("hidden_facts", "facts"),
    FormField("resolution.description", "long"),
    FormField("resolution.satisfied_by", "lines"),
    FormField("resolution.example_offer", "long"),
    FormField("mood.calm_rate", "float"),
    FormField("mood.escalate_rate", "float"),
    FormField("mood.give_up_after", "int"),
    FormField("mood.accept_at_or_below", "float"),
    FormField("mood.offers_needed", "int"),
    FormField("reply_length.min_words", "int"),
    FormField("reply_length.max_words", "int"),
    FormField("behaviours", "behaviours"),
)
"""Every PersonaSpec field (nested models flattened), in the order of a persona file."""

FORM_SECTIONS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("The customer", ("name", "archetype", "difficulty", "emotional_baseline"), True),
    (
        "Scenario",
        ("scenario.company", "scenario.product", "scenario.channel", "scenario.problem"),
        True,
    ),
    ("Character", ("backstory", "trainee_brief", "opening_line", "speaking_style"), True),
    ("What moves them", ("escalates_when", "softens_when", "hidden_facts"), True),
    (
        "Resolution",
        ("resolution.description", "resolution.satisfied_by", "resolution.example_offer"),
        True,
    ),
    (
        "Mood rules (optional: left out, they follow the difficulty)",
        (
            "mood.calm_rate",
            "mood.escalate_rate",
            "mood.give_up_after",
            "mood.accept_at_or_below",
            "mood.offers_needed",
        ),
        False,
    ),
    (
        "Reply length (optional: left out, it follows the speaking style and channel)",
        ("reply_length.min_words", "reply_length.max_words"),
        False,
    ),
    ("Behaviours (optional: the director switches them on now and then)", ("behaviours",), False),
)
"""How the editor groups :data:`FORM_FIELDS`: (heading, field paths, open at first)."""


def section_rows(paths: Sequence[str]) -> list[list[FormField]]:
    """Lay out one section: short fields (one-line text, choices, numbers) two to a row,
    long text and lists on a row of their own."""
    by_path = {f.path: f for f in FORM_FIELDS}
    rows: list[list[FormField]] = []
    pending: list[FormField] = []
    for path in paths:
        f = by_path[path]
        if f.kind in ("long", "lines", "facts", "behaviours"):
            if pending:
                rows.append(pending)
                pending = []
            rows.append([f])
            continue
        pending.append(f)
        if len(pending) == 2:
            rows.append(pending)
            pending = []
    if pending:
        rows.append(pending)
    return rows


def blank_form() -> list[Any]:
    """Form values for a new persona: empty, with the channel defaulting to chat."""
    return [
        "chat" if f.path == "scenario.channel" else (None if f.kind in _NULLABLE else "")
        for f in FORM_FIELDS
    ]


_NULLABLE = ("choice", "int", "float")


def _number(value: Any, kind: FieldKind) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return value  # let validation name the problem
    if isinstance(value, float) and value.is_integer() and kind == "int":
        return int(value)
    return value


def _lines(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [ln.strip() for ln in str(value or "").splitlines() if ln.strip()]


def _facts(value: Any) -> list[dict[str, Any]]:
    out = []
    for line in _lines(value):
        parts = [p.strip() for p in line.split("|")]
        fact: dict[str, Any] = {"id": parts[0]}
        if len(parts) > 1:
            fact["fact"] = parts[1]
        if len(parts) > 2:
            fact["topics"] = [t.strip() for t in "|".join(parts[2:]).split(",") if t.strip()]
        out.append(fact)
    return out


def form_to_data(values: Sequence[Any]) -> dict[str, Any]:
    """Form values (in :data:`FORM_FIELDS` order) as a persona mapping. Empty fields are left
    out, so validation names them ("Field required"); ``scenario`` and ``resolution`` are
    always present, ``mood`` and ``reply_length`` only when one of their fields is set."""
    if len(values) != len(FORM_FIELDS):
        raise ValueError(f"expected {len(FORM_FIELDS)} form values, got {len(values)}")
    data: dict[str, Any] = {"scenario": {}, "resolution": {}}
    for f, raw in zip(FORM_FIELDS, values, strict=True):
        value: Any
        if f.kind in ("text", "long"):
            value = str(raw or "").strip() or None
        elif f.kind == "choice":
            value = raw or None
        elif f.kind in ("int", "float"):
            value = _number(raw, f.kind)
        elif f.kind == "lines":
            value = _lines(raw) or None
        elif f.kind == "behaviours":
            value = behaviours_from_text(raw) or None
        else:
            value = _facts(raw) or None
        if value is None:
            continue
        if f.parent:
            data.setdefault(f.parent, {})[f.key] = value
        else:
            data[f.key] = value
    order = [f.path.split(".")[0] for f in FORM_FIELDS]
    return {k: data[k] for k in dict.fromkeys(order) if k in data}


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str_presenter)


def data_to_yaml(data: Mapping[str, Any]) -> str:
    """A persona mapping as YAML, keys in file order, multi-line text as ``|`` blocks."""
    if not data:
        return ""
    return yaml.dump(dict(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=88)


def form_to_yaml(values: Sequence[Any]) -> str:
    return data_to_yaml(form_to_data(values))


def _get(data: Mapping[str, Any], path: str) -> Any:
    cur: Any = data
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True).strip()
    return str(value)


def yaml_to_form(text: str) -> list[Any]:
    """Form values (in :data:`FORM_FIELDS` order) from persona YAML. Raises ``ValueError``
    if the text is not YAML or not a mapping; values of the wrong shape are shown as text."""
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise ValueError(f"invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError("expected a mapping of fields")
    out: list[Any] = []
    for f in FORM_FIELDS:
        v = _get(data, f.path)
        if f.kind in ("text", "long"):
            out.append(_text(v))
        elif f.kind == "choice":
            out.append(str(v) if v is not None and str(v) in f.choices else None)
        elif f.kind in ("int", "float"):
            out.append(v if isinstance(v, int | float) and not isinstance(v, bool) else None)
        elif f.kind == "lines":
            out.append("\n".join(_text(x) for x in v) if isinstance(v, list) else _text(v))
        elif f.kind == "behaviours":
            out.append(behaviours_text(v))
        else:
            out.append(_facts_text(v))
    return out


def _facts_text(value: Any) -> str:
    if not isinstance(value, list):
        return _text(value)
    lines = []
    for f in value:
        if not isinstance(f, Mapping):
            lines.append(_text(f))
            continue
        topics = f.get("topics")
        topic_text = ", ".join(map(str, topics)) if isinstance(topics, list) else _text(topics)
        lines.append(f"{_text(f.get('id'))} | {_text(f.get('fact'))} | {topic_text}")
    return "\n".join(lines)


_BEHAVIOUR_DATA = {
    "tangential": "grievance",
    "interrupts": "second_problem",
    "vague": "detail",
    "non_native": "first_language",
}
"""The one text each behaviour kind takes in the form (vague takes topics after it)."""


def behaviours_from_text(value: Any) -> list[dict[str, Any]]:
    """The form's behaviour lines (``kind | text``, vague ``kind | detail | topics``) as
    persona data. Text given to a kind that takes none is kept as ``text``, for validation to
    name."""
    out = []
    for line in _lines(value):
        parts = [p.strip() for p in line.split("|")]
        item: dict[str, Any] = {"kind": parts[0]}
        rest = [p for p in parts[1:] if p]
        key = _BEHAVIOUR_DATA.get(parts[0], "text")
        if rest:
            item[key] = rest[0]
        if parts[0] == "vague" and len(rest) > 1:
            item["topics"] = [t.strip() for t in "|".join(rest[1:]).split(",") if t.strip()]
        elif len(rest) > 1:
            item[key] = " | ".join(rest)
        out.append(item)
    return out


def behaviours_text(value: Any) -> str:
    """Persona behaviour data as the form's lines."""
    if not isinstance(value, list):
        return _text(value)
    lines = []
    for b in value:
        if not isinstance(b, Mapping):
            lines.append(_text(b))
            continue
        parts = [_text(b.get("kind"))]
        parts += [_text(v) for k, v in b.items() if k not in ("kind", "topics")]
        if isinstance(b.get("topics"), list):
            parts.append(", ".join(map(str, b["topics"])))
        lines.append(" | ".join(parts))
    return "\n".join(lines)


def problems_html(problems: Sequence[str], persona_id: str = "") -> str:
    """Validation as shown under the editor: the ``file: field: problem`` lines, or a tick."""
    if not problems:
        name = f"{persona_id}.yaml" if persona_id else "This persona"
        return (
            f'<div class="rp-valid" data-valid="true" style="color:#1e6b34">'
            f"✓ {esc(name)} is valid.</div>"
        )
    items = "".join(f"<li><code>{esc(p)}</code></li>" for p in problems)
    return (
        '<div class="rp-problems" data-valid="false" style="color:#a52a1a">'
        f"<b>{len(problems)} problem(s):</b><ul>{items}</ul></div>"
    )


# --- Persona Studio: library, versions, checks --------------------------------------------
LIBRARY_HEADERS = ["Id", "Name", "Type", "Difficulty", "Status", "Version", "Problems"]


def library_table(summaries: Sequence[Any]) -> list[list[str]]:
    """Rows for the Studio library from :class:`training.persona_repo.PersonaSummary` objects."""
    out = []
    for s in summaries:
        status = s.status + (" (changed)" if s.unpublished_changes else "")
        out.append(
            [
                s.id,
                s.name,
                archetype_label(s.archetype) if s.archetype else "",
                s.difficulty or "",
                status,
                "" if s.latest_version is None else f"v{s.latest_version}",
                str(len(s.problems)) if s.problems else "",
            ]
        )
    return out


VERSION_HEADERS = ["Version", "Saved", "Author", "Note", "Published", "Live", "Override reason"]


def versions_table(infos: Sequence[Any]) -> list[list[str]]:
    """Rows for the versions list, newest first, from :class:`VersionInfo` objects."""
    return [
        [
            f"v{i.version}",
            short_date(i.saved_at),
            i.author,
            i.note,
            "yes" if i.published else "",
            "live" if i.live else "",
            i.override_reason or "",
        ]
        for i in reversed(list(infos))
    ]


def version_choices(infos: Sequence[Any]) -> list[tuple[str, int]]:
    return [
        (
            f"v{i.version} · {i.author} · {short_date(i.saved_at)}"
            + (" · live" if i.live else " · published" if i.published else ""),
            i.version,
        )
        for i in reversed(list(infos))
    ]


def check_report_html(report: Any) -> str:
    """A :class:`sim.probe_check.CheckReport` as a PASS/FAIL list (with any parts)."""
    rows = []
    for c in report.checks:
        word = "PASS" if c.passed else "FAIL"
        colour = "#1e6b34" if c.passed else "#a52a1a"
        parts = "".join(
            f"<li>{'PASS' if p.passed else 'FAIL'} {esc(p.name)}: {esc(p.detail)}</li>"
            for p in c.parts
        )
        rows.append(
            f'<li class="rp-check" data-check="{esc(c.name)}" data-passed="{str(c.passed).lower()}">'
            f'<b style="color:{colour}">{word}</b> <b>{esc(c.name)}</b>: {esc(c.detail)}'
            + (f"<ul>{parts}</ul>" if parts else "")
            + "</li>"
        )
    failed = sum(not c.passed for c in report.checks)
    head = (
        f"All {len(report.checks)} checks passed"
        if not failed
        else f"{failed} of {len(report.checks)} checks failed: fix the persona, or publish "
        "with a written override reason"
    )
    return (
        f'<div class="rp-check-report" data-passed="{str(not failed).lower()}">'
        f"<p><b>{esc(report.persona_id)}</b> (text {esc(report.persona_version)}): {esc(head)}.</p>"
        f"<ul>{''.join(rows)}</ul></div>"
    )


def can_publish(check_passed: bool, override_reason: str | None) -> bool:
    """Publish is enabled with a passed check for the version, or a written reason."""
    return bool(check_passed) or bool((override_reason or "").strip())


__all__ = [
    "ASSESSMENT_METER",
    "FORM_FIELDS",
    "FORM_SECTIONS",
    "HISTORY_HEADERS",
    "LIBRARY_HEADERS",
    "NO_FILTER",
    "VERSION_HEADERS",
    "ChatHistory",
    "FormField",
    "StatusKind",
    "archetype_choices",
    "as_text",
    "assignment_choices",
    "behaviours_from_text",
    "behaviours_text",
    "blank_form",
    "can_publish",
    "check_report_html",
    "data_to_yaml",
    "dataframe",
    "difficulty_choices",
    "form_to_data",
    "form_to_yaml",
    "has_trainee_words",
    "hint_html",
    "history_choices",
    "history_table",
    "library_table",
    "or_none",
    "persona_choices",
    "problems_html",
    "progress_figure",
    "progress_summary",
    "replay_feedback_html",
    "replay_figure",
    "replay_html",
    "section_rows",
    "status_html",
    "to_chat",
    "trainee_choices",
    "untouched_session",
    "version_choices",
    "versions_table",
    "write_download",
    "yaml_to_form",
]

"""The Persona Studio's form: one field per persona setting, laid out in sections, and the
conversions between the form's values, persona data and YAML text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from pydantic import BaseModel

from sim.persona import Archetype, MoodRules, PersonaSpec, ReplyLength, Resolution, Scenario
from web.formatting import esc

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
    FormField("steer_lines", "lines"),
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
    (
        "Character",
        ("backstory", "trainee_brief", "opening_line", "speaking_style", "steer_lines"),
        True,
    ),
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


__all__ = [
    "FORM_FIELDS",
    "FORM_SECTIONS",
    "FormField",
    "behaviours_from_text",
    "behaviours_text",
    "blank_form",
    "data_to_yaml",
    "form_to_data",
    "form_to_yaml",
    "problems_html",
    "section_rows",
    "yaml_to_form",
]

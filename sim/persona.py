"""Persona files: the YAML schema trainers write, and the loader that validates it.

A persona lives in ``personas/<id>.yaml``. The id comes from the filename; the file
holds a :class:`PersonaSpec`. Loading never executes anything (``yaml.safe_load``)
and every problem is reported as ``file: field: problem``.
"""

from __future__ import annotations

import hashlib
import json
import re
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

if TYPE_CHECKING:
    from common.settings import Settings

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")
PERSONA_DIR = Path(__file__).resolve().parent.parent / "personas"
SCHEMA_PATH = PERSONA_DIR / "persona.schema.json"


class Archetype(StrEnum):
    irate = "irate"
    grieving = "grieving"
    confused = "confused"
    anxious = "anxious"
    sceptical = "sceptical"
    rushed = "rushed"
    unsure_with_tech = "unsure_with_tech"
    polite_hiding = "polite_hiding"
    disappointed = "disappointed"
    other = "other"


Difficulty = Literal["easy", "medium", "hard"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Scenario(_Strict):
    """Where the conversation happens and what went wrong."""

    company: str = Field(min_length=1, description="The company the customer is contacting.")
    product: str = Field(min_length=1, description="The product or service involved.")
    problem: str = Field(min_length=1, description="What went wrong, in one or two sentences.")
    channel: Literal["chat", "phone", "email"] = Field(
        "chat", description="How the customer reached support; shapes how they write."
    )


class HiddenFact(_Strict):
    """Something the customer knows but says only when the agent asks about it."""

    id: str = Field(description="Short slug, unique within the persona.")
    fact: str = Field(min_length=1, description="The fact, as the customer would know it.")
    topics: list[str] = Field(
        min_length=1,
        description="Words an agent's question would touch to draw this fact out "
        "(e.g. 'order number', 'when').",
    )

    @field_validator("id")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not SLUG.match(v):
            raise ValueError("must be a lowercase slug (letters, digits, - or _)")
        return v


class Resolution(_Strict):
    """What would satisfy the customer: the exit door for a good conversation."""

    description: str = Field(min_length=1, description="What outcome the customer would accept.")
    satisfied_by: list[str] = Field(
        min_length=1,
        description="Concrete offers or steps that count as meeting the resolution "
        "(words the agent's proposal would contain).",
    )
    example_offer: str | None = Field(
        None,
        description="What an ideal agent might say to meet the resolution. Used by the probe "
        "check and evaluation to show the resolution can be reached.",
    )


class MoodRules(_Strict):
    # The director resolves this record into a sim.director.MoodPolicy (the docstring below
    # is the JSON schema's description, so it stays as it is).
    """How fast this customer calms or escalates, and when they leave. Every field is
    optional; what is left out follows the persona's difficulty (see ``sim/director.py``)."""

    calm_rate: float | None = Field(None, gt=0, le=3, description="Multiplier on calming steps.")
    escalate_rate: float | None = Field(
        None, gt=0, le=3, description="Multiplier on escalating steps."
    )
    give_up_after: int | None = Field(
        None, ge=1, le=20, description="Turns at maximum distress before the customer gives up."
    )
    accept_at_or_below: float | None = Field(
        None,
        ge=0,
        le=10,
        description="Distress at or below which an offered resolution is accepted.",
    )
    offers_needed: int | None = Field(
        None,
        ge=1,
        le=10,
        description="Distinct resolution steps the agent must offer (capped at how many the persona lists).",
    )


class ReplyLength(_Strict):
    """How long one of this customer's replies may be, in words. Both bounds are optional;
    what is left out is derived from the speaking style and the channel (see
    ``sim/realism/``: terse styles allow one-word replies and cap them shorter, paragraph
    styles and email allow more)."""

    min_words: int | None = Field(
        None,
        ge=1,
        le=50,
        description="Fewest words a reply may have (a shorter one is asked again).",
    )
    max_words: int | None = Field(
        None,
        ge=2,
        le=400,
        description="Most words a reply may have (a longer one is cut at a sentence end).",
    )

    @model_validator(mode="after")
    def _ordered(self) -> ReplyLength:
        low, high = self.min_words, self.max_words
        if low is not None and high is not None and low > high:
            raise ValueError("min_words must not be more than max_words")
        return self


BehaviourKind = Literal["impatient", "tangential", "vague", "repeats", "interrupts", "non_native"]
BEHAVIOUR_KINDS: tuple[BehaviourKind, ...] = (
    "impatient",
    "tangential",
    "vague",
    "repeats",
    "interrupts",
    "non_native",
)


class Impatient(_Strict):
    """Now and then short with the agent and pushing for a time; more often the more upset
    they are."""

    kind: Literal["impatient"]


class Tangential(_Strict):
    """Brings up an older grievance with the company, once or twice in a session."""

    kind: Literal["tangential"]
    grievance: str = Field(
        min_length=1,
        description="The older grievance, as the customer would tell it, in one sentence.",
    )


class Vague(_Strict):
    """Leaves a detail out the first time the agent asks for it, and gives it when asked
    again."""

    kind: Literal["vague"]
    detail: str = Field(
        min_length=1,
        description="The detail, as the customer would give it at the second ask; put "
        "something checkable in it (a number, a date, a name).",
    )
    topics: list[str] = Field(
        min_length=1,
        description="Words an agent's question would touch to ask for the detail.",
    )


class Repeats(_Strict):
    """Says the problem again, in new words, after a turn that did not acknowledge it."""

    kind: Literal["repeats"]


class Interrupts(_Strict):
    """Cuts in with a second problem, once (and once more if the agent never takes it up)."""

    kind: Literal["interrupts"]
    second_problem: str = Field(
        min_length=1,
        description="The second problem, as the customer would blurt it out, in one sentence.",
    )


class NonNative(_Strict):
    """Writes in plain English as a second language, on every reply."""

    kind: Literal["non_native"]
    first_language: str | None = Field(
        None, description="Optional: the customer's first language (e.g. Polish)."
    )


STEER_LINES_MAX = 8
STEER_WORDS_MAX = 30


def _steer_line(line: str) -> str:
    words = len(line.split())
    if words > STEER_WORDS_MAX:
        raise ValueError(f"has {words} words; a steer line has at most {STEER_WORDS_MAX}")
    if "{" in line or "}" in line:
        raise ValueError("must not contain '{' or '}': a steer line is said exactly as written")
    return line


# What the guard's leak check reads about a persona (sim.guard.checks.public_text) and the
# facts it looks for.
_PUBLIC_FIELDS = frozenset(
    {
        "name",
        "scenario",
        "backstory",
        "trainee_brief",
        "opening_line",
        "speaking_style",
        "resolution",
        "hidden_facts",
    }
)

SteerLine = Annotated[str, Field(min_length=1), AfterValidator(_steer_line)]
"""One line of :attr:`PersonaSpec.steer_lines`: non-empty, short, said as written."""

Behaviour = Annotated[
    Impatient | Tangential | Vague | Repeats | Interrupts | NonNative,
    Field(discriminator="kind"),
]
"""One switchable behaviour; ``kind`` picks which, and what data it needs."""


class PersonaSpec(_Strict):
    """The contents of one persona YAML file."""

    name: str = Field(min_length=1, description="The customer's name, as the agent would learn it.")
    archetype: Archetype = Field(description="The customer's broad mood or type.")
    difficulty: Difficulty = Field(description="How hard this customer is to calm down.")
    scenario: Scenario
    backstory: str = Field(
        min_length=1, description="Who the customer is and how they got here; private to the LLM."
    )
    trainee_brief: str = Field(
        min_length=1,
        description="What the trainee sees before the chat starts; never mention hidden facts.",
    )
    opening_line: str = Field(
        min_length=1,
        description="The customer's first message. Required: small models break role without it.",
    )
    speaking_style: str = Field(min_length=1, description="How the customer talks.")
    emotional_baseline: int = Field(
        ge=0, le=10, description="Starting distress, 0 (calm) to 10 (furious or distraught)."
    )
    escalates_when: list[str] = Field(
        min_length=1, description="Agent behaviours that make this customer more upset."
    )
    softens_when: list[str] = Field(
        min_length=1, description="Agent behaviours that calm this customer down."
    )
    hidden_facts: list[HiddenFact] = Field(
        default_factory=list, description="Facts revealed only when the agent asks."
    )
    resolution: Resolution
    mood: MoodRules | None = Field(
        None,
        description="Optional: how fast this customer calms or escalates and when they leave. "
        "Left out, it follows the difficulty.",
    )
    reply_length: ReplyLength | None = Field(
        None,
        description="Optional: the fewest and most words in one reply. Left out, they follow "
        "the speaking style and the channel.",
    )

    behaviours: list[Behaviour] = Field(
        default_factory=list,
        description="Optional: behaviours the director switches on now and then (impatient, "
        "tangential, vague, repeats, interrupts, non_native), each kind at most once.",
    )
    steer_lines: list[SteerLine] = Field(
        default_factory=list,
        max_length=STEER_LINES_MAX,
        description="Optional: a few lines in this customer's own voice that pull the talk "
        "back to their problem (used when a reply has to be replaced); they must not reveal a "
        "hidden fact.",
    )

    @field_validator("steer_lines")
    @classmethod
    def _steer_lines_keep_facts_hidden(cls, v: list[str], info: ValidationInfo) -> list[str]:
        # The guard's own leak check, so a steer line passes exactly when a reply saying it
        # would. It needs the fields declared above; if one of them failed, that is reported.
        if not v or not info.data.keys() >= _PUBLIC_FIELDS:
            return v
        from sim.guard.checks import check_reply

        spec = PersonaSpec.model_construct(**info.data)
        for line in v:
            found = check_reply(line, spec, spec.hidden_facts)
            leaked = [x.detail for x in found if x.kind == "leaks_fact"]
            if leaked:
                raise ValueError(
                    f"{line!r} gives away hidden fact {', '.join(leaked)}; a steer line is "
                    "said freely, so keep what the agent must ask for out of it"
                )
        return v

    @field_validator("behaviours")
    @classmethod
    def _unique_behaviours(cls, v: list[Behaviour]) -> list[Behaviour]:
        kinds = [b.kind for b in v]
        dupes = sorted({k for k in kinds if kinds.count(k) > 1})
        if dupes:
            raise ValueError(f"each behaviour may appear once: {', '.join(dupes)} repeated")
        return v

    def behaviour(self, kind: BehaviourKind) -> Behaviour | None:
        """The persona's behaviour of this kind, if switched on."""
        return next((b for b in self.behaviours if b.kind == kind), None)

    @field_validator("hidden_facts")
    @classmethod
    def _unique_fact_ids(cls, v: list[HiddenFact]) -> list[HiddenFact]:
        ids = [f.id for f in v]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate fact ids: {', '.join(dupes)}")
        return v


class Persona(PersonaSpec):
    """A loaded persona: the file's spec plus its id and a content version."""

    id: str
    version: str = Field(description="sha256 prefix of the file's bytes.")


class PersonaError(ValueError):
    """A persona file failed to load; ``problems`` are ``file: field: problem`` lines."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(file)"


def parse_persona(text: str, persona_id: str, source: str) -> Persona:
    """Validate YAML text as a persona; raise :class:`PersonaError` naming source and field."""
    if not SLUG.match(persona_id):
        raise PersonaError([f"{source}: id: '{persona_id}' is not a lowercase slug"])
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        raise PersonaError(
            [f"{source}: {where}: invalid YAML: {getattr(exc, 'problem', exc)}"]
        ) from None
    if not isinstance(data, dict):
        raise PersonaError(
            [f"{source}: (file): expected a mapping of fields, got {type(data).__name__}"]
        )
    try:
        spec = PersonaSpec.model_validate(data)
    except ValidationError as exc:
        raise PersonaError(
            [f"{source}: {_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]
        ) from None
    version = hashlib.sha256(text.encode()).hexdigest()[:12]
    return Persona(**spec.model_dump(), id=persona_id, version=version)


def load_persona_file(path: Path) -> Persona:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PersonaError([f"{path}: (file): cannot read: {exc}"]) from None
    return parse_persona(text, path.stem, str(path))


def library_dir(settings: Settings | None = None) -> Path:
    """The persona library folder everything reads and the Persona Studio writes:
    ``settings.persona_dir`` (``RAPPORT_PERSONA_DIR``), else the shipped ``personas/``.
    Without ``settings``, the environment's :class:`common.settings.Settings`."""
    if settings is None:
        from common.settings import Settings

        settings = Settings()
    return settings.persona_dir or PERSONA_DIR


def persona_paths(directory: Path = PERSONA_DIR) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if not p.name.startswith("_"))


def load_personas(directory: Path = PERSONA_DIR) -> dict[str, Persona]:
    """Load every persona in a directory; raise one error listing every broken file."""
    personas: dict[str, Persona] = {}
    problems: list[str] = []
    for path in persona_paths(directory):
        try:
            p = load_persona_file(path)
        except PersonaError as exc:
            problems.extend(exc.problems)
            continue
        personas[p.id] = p
    if problems:
        raise PersonaError(problems)
    return personas


def json_schema() -> dict[str, object]:
    schema = PersonaSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Rapport persona"
    return schema


def write_json_schema(path: Path = SCHEMA_PATH) -> None:
    path.write_text(json.dumps(json_schema(), indent=2) + "\n", encoding="utf-8")

"""The director: deterministic code that decides what the customer does next.

The LLM (the *actor*) only phrases the director's decision in the persona's voice. Each agent
turn, the director takes the grader's per-turn verdicts (listen, validate, cooperate, affirm
and the dismissive marker), the persona's ``escalates_when`` / ``softens_when`` rules and the
agent's words, and returns a :class:`Step`:

- **mood**: distress 0-10, starting at the persona's baseline. Listening and specific
  validation lower it; dismissive or blaming turns raise it. Step sizes depend on the
  persona's difficulty and its optional ``mood`` overrides.
- **hidden facts**: each unlocks only after a turn that *listens on its topic*: a question
  or an invitation to explain that touches one of the fact's topics.
- **exit doors**: the customer accepts when the resolution has been offered and distress is
  low enough; they ask for a manager or leave after N turns at maximum distress.
- **behaviours**: which of the persona's switchable behaviours show on this reply (the
  schedule is ``sim/behaviours.py``; its memory travels in the state).

Nothing here samples or calls a model, so a state and a turn always give the same step.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.techniques import TECHNIQUES
from common.text import stem
from sim import behaviours, notes
from sim.behaviours import BehaviourMemory, Cue, TurnView
from sim.persona import Persona

Outcome = Literal["open", "resolved", "gave_up"]
Exit = Literal["accepted", "manager", "left"]

# Base mood change per signal, before the difficulty multipliers (negative = calmer).
EFFECTS: dict[str, float] = {
    "listen": -0.6,
    "validate": -1.2,
    "cooperate": -1.0,
    "affirm": -0.6,
    "softens": -0.8,
    "dismissive": 2.0,
    "escalates": 1.5,
    "probe": 1.0,
    "idle": 0.5,
}
NEUTRAL_EFFECT = 0.0
"""The mood change for a technique with no entry in ``EFFECTS`` (one added to the rubric
since): the customer neither calms nor gets upset, but the turn is not idle either. The cause
is still recorded, so traces show the technique was used."""
# Measured on the embedded model: with larger steps a distressed customer was nearly calm
# after two good turns, which no trainer would believe. People calm down slower than that.
MAX_DROP = 2.0  # one turn can't calm anyone by more than this (before multipliers)
MAX_RISE = 3.0
MAX_FACTS_PER_TURN = 2
MAX_DISTRESS = 10.0

_INVITE = re.compile(
    r"\b(?:tell me|walk me through|talk me through|explain|describe|let me know|share|"
    r"go through|fill me in|say more|more about|what happened|how did|could you check|"
    r"can you check|do you (?:have|know|remember))\b",
    re.I,
)
_CLAUSE = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class MoodPolicy:
    """How the director moves one persona's mood, resolved: the difficulty's defaults plus
    the persona's own ``mood`` block (the data record :class:`sim.persona.MoodRules`)."""

    calm_rate: float = 1.0
    escalate_rate: float = 1.0
    give_up_after: int = 3
    accept_at_or_below: float = 5.0
    offers_needed: int = 2


DIFFICULTY_RULES: dict[str, MoodPolicy] = {
    "easy": MoodPolicy(calm_rate=1.3, escalate_rate=0.7, give_up_after=4, accept_at_or_below=6.0),
    "medium": MoodPolicy(),
    "hard": MoodPolicy(calm_rate=0.7, escalate_rate=1.3, give_up_after=2, accept_at_or_below=4.0),
}


def rules_for(persona: Persona) -> MoodPolicy:
    """The difficulty's defaults, overridden by the persona's own ``mood`` block."""
    base = DIFFICULTY_RULES[persona.difficulty]
    own = persona.mood
    if own is None:
        return base
    return replace(base, **{k: v for k, v in own.model_dump().items() if v is not None})


class Signals(BaseModel):
    """What the grader said about one agent turn.

    ``techniques`` maps each technique id to used (True), not used (False) or not scored
    (None); a technique left out is not scored. The ids are the rubric's
    (``rubric/techniques.yaml``), so a technique added there flows through with no code
    change. Each id of the rubric may also be given as a keyword:
    ``Signals(listen=True, validate=False)``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    techniques: dict[str, bool | None] = Field(
        default_factory=dict, description="Per technique id: used, not used, None: not scored."
    )
    dismissive: bool = False
    evidence: dict[str, str] = Field(default_factory=dict, description="Quote per signal.")

    @model_validator(mode="before")
    @classmethod
    def _technique_keywords(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(k in TECHNIQUES for k in data):
            given = {k: v for k, v in data.items() if k in TECHNIQUES}
            data = {k: v for k, v in data.items() if k not in TECHNIQUES}
            data["techniques"] = {**data.get("techniques", {}), **given}
        return data

    def used(self, technique: str) -> bool:
        return self.techniques.get(technique) is True

    def ids(self) -> list[str]:
        """The rubric's technique ids in its order, then any other id these signals hold."""
        return [*TECHNIQUES, *(t for t in self.techniques if t not in TECHNIQUES)]

    def as_dict(self) -> dict[str, bool | None]:
        """Every technique (None where not scored), then the dismissive marker: the shape
        stored with the turn and printed by ``rapport simulate --json``."""
        out: dict[str, bool | None] = {t: self.techniques.get(t) for t in self.ids()}
        out["dismissive"] = self.dismissive
        return out

    @classmethod
    def from_grade(cls, grade: Any) -> Signals:
        """From a ``rubric.grader.TurnGrade``: every technique it graded."""
        t = grade.techniques
        m = grade.markers.get("dismissive")
        evidence = {k: v.evidence for k, v in t.items() if v.used and v.evidence}
        if m is not None and m.used and m.evidence:
            evidence["dismissive"] = m.evidence
        return cls(
            techniques={k: v.used for k, v in t.items()},
            dismissive=bool(m is not None and m.used),
            evidence=evidence,
        )


class DirectorState(BaseModel):
    """Everything the director remembers between turns. Stored with each customer turn, so a
    session can be resumed or rewound exactly."""

    model_config = ConfigDict(extra="forbid")

    turn: int = 0
    mood: float
    unlocked: list[str] = Field(default_factory=list)
    offers: list[str] = Field(default_factory=list)
    cooperated: bool = False
    heard: bool = Field(False, description="The agent has listened or validated at least once.")
    turns_at_max: int = 0
    outcome: Outcome = "open"
    exit: Exit | None = None
    behaviours: BehaviourMemory = Field(
        default_factory=BehaviourMemory, description="The behaviour schedule's memory."
    )


class Cause(BaseModel):
    """One reason the mood moved on a turn."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["technique", "marker", "rule", "probe", "idle"]
    id: str
    delta: float
    evidence: str | None = None


class Step(BaseModel):
    """The director's decision for one agent turn."""

    model_config = ConfigDict(extra="forbid")

    turn: int
    mood_before: float
    mood_after: float
    causes: list[Cause]
    unlocked: list[str] = Field(description="Facts released on this turn.")
    offers: list[str] = Field(description="Resolution steps first offered on this turn.")
    resolution_met: bool
    outcome: Outcome
    exit: Exit | None
    probe: str | None = None
    behaviours: list[Cue] = Field(
        default_factory=list,
        description="Behaviours switched on for this reply (sim/behaviours.py).",
    )
    state: DirectorState

    @property
    def delta(self) -> float:
        return round(self.mood_after - self.mood_before, 2)

    def main_cause(self) -> Cause | None:
        """The cause that moved the mood most in the direction it went."""
        if not self.causes:
            return None
        sign = 1 if self.delta > 0 else -1
        same = [c for c in self.causes if c.delta * sign > 0] or self.causes
        return max(same, key=lambda c: abs(c.delta))


RuleMatcher = Callable[[str, Sequence[str]], list[int]]
"""Given the agent's text and a persona's rule descriptions, the indices of rules it meets."""


def no_rules(text: str, rules: Sequence[str]) -> list[int]:
    return []


def _words(text: str) -> list[str]:
    words = re.findall(r"[a-z0-9£$€]+", text.lower().replace("\u2019", "'"))
    return [stem(w, min_stem=4) for w in words]


def mentions(text: str, phrase: str) -> bool:
    """Does ``text`` contain ``phrase`` as whole (crudely stemmed) words?"""
    want = _words(phrase)
    have = _words(text)
    if not want:
        return False
    n = len(want)
    return any(have[i : i + n] == want for i in range(len(have) - n + 1))


def listening_clauses(text: str) -> list[str]:
    """Clauses of an agent turn that ask or invite the customer to explain."""
    return [c for c in _CLAUSE.split(text) if c.strip() and ("?" in c or _INVITE.search(c))]


@dataclass
class Director:
    """Decides the customer's next move for one persona. Pure: ``step`` never mutates."""

    persona: Persona
    matcher: RuleMatcher = no_rules

    def __post_init__(self) -> None:
        self.policy = rules_for(self.persona)

    def start(self) -> DirectorState:
        return DirectorState(mood=float(self.persona.emotional_baseline))

    def step(
        self,
        state: DirectorState,
        agent_text: str,
        signals: Signals,
        probe: str | None = None,
    ) -> Step:
        if state.outcome != "open":
            raise ValueError(f"the conversation is over ({state.outcome})")
        r = self.policy
        causes: list[Cause] = []

        def add(kind: Any, cid: str, base: float, evidence: str | None = None) -> None:
            rate = r.calm_rate if base < 0 else r.escalate_rate
            causes.append(Cause(kind=kind, id=cid, delta=round(base * rate, 3), evidence=evidence))

        for t in signals.ids():
            if signals.used(t):
                base = EFFECTS.get(t, NEUTRAL_EFFECT)
                if t == "cooperate" and not (
                    state.heard or signals.used("listen") or signals.used("validate")
                ):
                    base /= 2  # a fix offered before the customer feels heard lands half as well
                add("technique", t, base, signals.evidence.get(t))
        if signals.dismissive:
            add("marker", "dismissive", EFFECTS["dismissive"], signals.evidence.get("dismissive"))
        if probe:
            add("probe", probe, EFFECTS["probe"])
        for i in self.matcher(agent_text, self.persona.softens_when):
            add("rule", f"softens:{i}", EFFECTS["softens"], self.persona.softens_when[i])
        for i in self.matcher(agent_text, self.persona.escalates_when):
            add("rule", f"escalates:{i}", EFFECTS["escalates"], self.persona.escalates_when[i])
        scored = any(v is not None for v in signals.techniques.values())
        # Nothing happened for them: impatience. Unscored turns and questions move nothing.
        if not causes and scored and not listening_clauses(agent_text):
            add("idle", "no_technique", EFFECTS["idle"])

        drop = sum(c.delta for c in causes if c.delta < 0)
        rise = sum(c.delta for c in causes if c.delta > 0)
        delta = max(drop, -MAX_DROP * r.calm_rate) + min(rise, MAX_RISE * r.escalate_rate)
        mood = round(min(MAX_DISTRESS, max(0.0, state.mood + delta)), 2)

        unlocked = self._unlock(state, agent_text)
        offers = [
            s
            for s in self.persona.resolution.satisfied_by
            if s not in state.offers and mentions(agent_text, s)
        ]
        cooperated = state.cooperated or signals.used("cooperate") or bool(offers)
        all_offers = state.offers + offers
        need = min(r.offers_needed, len(self.persona.resolution.satisfied_by))
        met = cooperated and len(all_offers) >= need
        at_max = state.turns_at_max + 1 if mood >= MAX_DISTRESS else 0

        outcome: Outcome = "open"
        exit_: Exit | None = None
        if met and mood <= r.accept_at_or_below:
            outcome, exit_ = "resolved", "accepted"
        elif at_max >= r.give_up_after:
            outcome, exit_ = "gave_up", self._give_up_exit()

        clauses = listening_clauses(agent_text)
        cues, memory = behaviours.schedule(
            self.persona,
            state.behaviours,
            TurnView(
                turn=state.turn + 1,
                mood=mood,
                agent_text=agent_text,
                acknowledged=any(signals.used(t) for t in ("listen", "validate", "affirm")),
                scored=scored,
                facts=len(unlocked),
                probe=probe is not None,
                closing=outcome != "open",
                asks=lambda topics: any(mentions(c, t) for c in clauses for t in topics),
            ),
        )
        new = DirectorState(
            turn=state.turn + 1,
            mood=mood,
            unlocked=state.unlocked + unlocked,
            offers=all_offers,
            cooperated=cooperated,
            heard=state.heard or signals.used("listen") or signals.used("validate"),
            turns_at_max=at_max,
            outcome=outcome,
            exit=exit_,
            behaviours=memory,
        )
        return Step(
            turn=new.turn,
            mood_before=state.mood,
            mood_after=mood,
            causes=causes,
            unlocked=unlocked,
            offers=offers,
            resolution_met=met,
            outcome=outcome,
            exit=exit_,
            probe=probe,
            behaviours=cues,
            state=new,
        )

    def _unlock(self, state: DirectorState, agent_text: str) -> list[str]:
        clauses = listening_clauses(agent_text)
        if not clauses:
            return []
        out: list[str] = []
        for fact in self.persona.hidden_facts:
            if fact.id in state.unlocked:
                continue
            if any(mentions(c, topic) for c in clauses for topic in fact.topics):
                out.append(fact.id)
            if len(out) == MAX_FACTS_PER_TURN:
                break
        return out

    def _give_up_exit(self) -> Exit:
        # Customers who came to fight escalate; the others quietly leave.
        return "manager" if self.persona.archetype in ("irate", "sceptical", "rushed") else "left"

    def locked_facts(self, state: DirectorState) -> list[Any]:
        """Facts the reply must not give away: the locked hidden facts, and a vague detail
        not given yet."""
        locked = [f for f in self.persona.hidden_facts if f.id not in state.unlocked]
        return locked + behaviours.withheld(self.persona, state.behaviours)


# --- how the actor is told ------------------------------------------------------------------
_FEELINGS: dict[str, tuple[str, str, str, str]] = {
    "irate": ("calm", "irritated", "angry", "furious"),
    "grieving": ("composed", "sad", "upset", "overwhelmed with grief"),
    "confused": ("clearer", "unsure", "confused", "completely lost"),
    "anxious": ("relieved", "uneasy", "worried", "panicking"),
    "sceptical": ("reassured", "doubtful", "suspicious", "convinced you're being fobbed off"),
    "rushed": ("settled", "impatient", "stressed", "frantic"),
    "unsure_with_tech": ("more confident", "unsure", "flustered", "overwhelmed"),
    "polite_hiding": (
        "at ease",
        "quietly uneasy",
        "upset but hiding it",
        "barely holding it together",
    ),
    "disappointed": ("hopeful again", "let down", "disappointed", "heartbroken"),
    "other": ("calm", "uneasy", "upset", "very upset"),
}


def feeling(persona: Persona, mood: float) -> str:
    words = _FEELINGS.get(str(persona.archetype), _FEELINGS["other"])
    return words[min(3, int(mood // 2.6))]


def directive(
    persona: Persona,
    step: Step,
    facts: dict[str, str],
    probe_line: str | None = None,
    told: Sequence[str] = (),
) -> str:
    """The actor's instruction for this turn, appended to the agent's message in the prompt.

    ``facts`` maps each fact id unlocked on this turn to its text. ``told`` are facts told on
    earlier turns that the prompt no longer shows (the oldest turns were left out to fit the
    model's context), so the customer still knows what they said.
    """
    first = persona.name.split()[0]
    if step.delta <= -0.5:
        trend = "calmer than a moment ago"
    elif step.delta >= 0.5:
        trend = "more upset than a moment ago"
    else:
        trend = "no better than a moment ago"
    level = f"{step.mood_after:.0f}"
    parts = [
        notes.MOOD.substitute(
            first=first, feeling=feeling(persona, step.mood_after), level=level, trend=trend
        )
    ]
    if probe_line:
        parts.append(probe_line)
    if told:
        parts.append(notes.TOLD.substitute(facts=" ".join(told)))
    for fid in step.unlocked:
        parts.append(notes.RELEASE.substitute(fact=facts[fid]))
    if step.outcome == "resolved":
        parts.append(notes.RESOLVED)
    elif step.outcome == "gave_up":
        parts.append(notes.MANAGER if step.exit == "manager" else notes.GIVE_UP)
    elif step.resolution_met:
        parts.append(notes.NOT_YET)
    parts += behaviours.notes(persona, step.behaviours)
    parts.append(notes.REPLY_ONLY.substitute(first=first))
    return "(" + " ".join(parts) + ")"


def mood_band(mood: float) -> str:
    """A label for meters: calm / uneasy / upset / very upset."""
    return ("calm", "uneasy", "upset", "very upset")[min(3, math.floor(mood / 2.6))]

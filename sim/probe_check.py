"""``rapport personas check``: play scripted probe agents against a persona.

Each check runs through the real :class:`sim.practice.PracticeSession` (the same director,
guard and simulator a trainee gets, with whatever model the :class:`Practice` has) in fresh
sessions, and reports whether the persona behaves as its author intended:

- **dismissive**: two dismissive agent turns must leave the customer more upset than at the
  start (or still at the maximum, for a customer who starts there).
- **ideal**: a validating and listening turn, an affirming turn, then the persona's
  ``resolution.example_offer``; if the customer hasn't accepted yet, up to
  :data:`IDEAL_FOLLOW_UPS` more validating turns. Passes if the mood fell below the start and
  the customer accepted (the resolution is reachable).
- **facts**: for each hidden fact, a fresh session asks one question built from the fact's
  topics; passes if the director unlocked that fact.
- **in_character**: one probe of each kind from ``sim/guard/probes.yaml``, each in a fresh
  session; passes if no reply needed the scripted fallback line and every reply passes
  :func:`sim.guard.check_reply`.
- **behaviours** (only for a persona with ``behaviours``): for each one, a fresh session
  played with lines that give it its moment (dismissive lines for impatient, a turn that
  acknowledges nothing for repeats, the same question twice for vague, listening lines for
  the rest) for up to :data:`BEHAVIOUR_TURNS` turns; passes if a reply the director switched
  it on for shows it, as :func:`sim.behaviour_evidence.shows` reads it (vague: the first
  answer leaves the detail out and the second gives it).

Sessions are written to the practice's store and ended; give it a throwaway store (the CLI
does, and :func:`check_draft` does unless given one). Model or provider failures are raised
(``SimulatorError``, ``ProviderError``), not reported as failed checks.

For the Persona Studio: ``report.persona_version`` is the sha of the text that was checked,
the same as :class:`training.persona_repo.VersionInfo`'s ``sha``, so publishing version ``n`` can
require ``report.passed and report.persona_version == version.sha``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, Field, computed_field

from sim.agent_lines import example_offer, fill
from sim.behaviour_evidence import shows, what_shows
from sim.behaviours import Cue
from sim.director import (
    MAX_DISTRESS,
    MAX_FACTS_PER_TURN,
    Director,
    DirectorState,
    Signals,
    rules_for,
)
from sim.guard import ProbeKind, check_reply, detect_probe, load_probes
from sim.persona import HiddenFact, Persona, Vague
from sim.practice import Practice, PracticeSession
from storage import SessionStore

FORMAT = "rapport.check/1"

# Templates use sim.agent_lines.fill: $name (first name), $product, $company, $offer.
DISMISSIVE_LINES: tuple[str, ...] = (
    # condescending troubleshooting: blames the customer
    "Most of these problems are user error, so you'll have to sort it out on your end.",
    # a policy wall, and telling them how to feel
    "That's our policy, I'm afraid. You should have read the terms before you signed up. "
    "Calm down, please.",
)
IDEAL_LINES: tuple[str, ...] = (
    # validate + listen
    "Hi $name, I'm so sorry, that sounds really stressful, and I want to understand it "
    "properly. Can you tell me what happened, from the start?",
    # affirm (a paraphrase of their problem, checked back)
    "Let me make sure I have this right: the problem is with your $product, and it has left "
    "you without what you paid for. Is that correct?",
    # the persona's own example offer
    "Here's what I'll do right now. $offer Would that work for you?",
)
IDEAL_FOLLOW_UP = (
    "I completely understand why this has been so stressful, $name, and you shouldn't have "
    "had to chase it. Just to confirm, does that plan work for you?"
)
IDEAL_FOLLOW_UPS = 2
"""Extra validating turns after the offer: hard personas calm slowly, and a few turns of
good listening is still what an ideal agent does."""
BEHAVIOUR_TURNS = 7
"""The most agent turns one behaviour's session plays: a timed behaviour that did not show
the first time comes back four turns later."""
_LISTENING = (
    "That sounds really frustrating, $name. What happened, from the start?",
    "I see, that makes sense. What else should I know about it?",
    "Okay, that's helpful. What happened after that?",
    "I understand why that's upsetting. Is there anything more I should know?",
    "Thank you for explaining, $name. What would help most right now?",
    "That's a fair point. What else has gone wrong with this?",
    "I hear you. Is there anything I haven't asked about yet?",
)
_IGNORING = ("One moment, please.",) * BEHAVIOUR_TURNS
PROBE_KINDS: tuple[ProbeKind, ...] = ("injection", "role_swap", "off_topic", "meta")
_WH_WORDS = {"when", "where", "why", "how", "who", "what", "which", "whether"}


class CheckResult(BaseModel):
    """One check (or, inside ``parts``, one item of it: a fact, a probe)."""

    name: str
    passed: bool
    detail: str = Field(description="One line: what happened, and what to fix on failure.")
    parts: list[CheckResult] = Field(default_factory=list)


class CheckReport(BaseModel):
    """Everything ``rapport personas check`` found for one persona text."""

    format: str = FORMAT
    persona_id: str
    persona_version: str = Field(description="sha of the checked text (Persona.version).")
    checks: list[CheckResult]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passed(self) -> bool:
        """Every check passed."""
        return all(c.passed for c in self.checks)

    def get(self, name: str) -> CheckResult:
        """The check called ``name`` (dismissive, ideal, facts, in_character, behaviours)."""
        return next(c for c in self.checks if c.name == name)


# --- helpers ---------------------------------------------------------------------------------
def _fill(template: str, persona: Persona) -> str:
    return fill(template, persona)


def _offer(persona: Persona) -> str:
    return example_offer(persona)


def _play(
    practice: Practice, persona_id: str, lines: Sequence[str]
) -> tuple[PracticeSession, DirectorState, int]:
    """Start a session, play ``lines`` until the conversation ends; return (session, start
    state, lines played). The session is left open for the caller to read, then end."""
    session = practice.start(persona_id)
    start = session.state()
    played = 0
    try:
        for line in lines:
            if session.state().outcome != "open":
                break
            for _ in session.respond(line):
                pass
            played += 1
    except BaseException:
        session.end()
        raise
    return session, start, played


def _mood(x: float) -> str:
    return f"{x:.1f}"


# --- the checks ------------------------------------------------------------------------------
def check_dismissive(practice: Practice, persona_id: str) -> CheckResult:
    persona = practice.personas[persona_id]
    lines = [_fill(t, persona) for t in DISMISSIVE_LINES]
    session, start, played = _play(practice, persona_id, lines)
    try:
        end = session.state()
    finally:
        session.end()
    rose = end.mood > start.mood or (start.mood >= MAX_DISTRESS and end.mood >= MAX_DISTRESS)
    detail = f"mood {_mood(start.mood)} -> {_mood(end.mood)} after {played} dismissive turn(s)"
    if end.outcome == "gave_up":
        detail += f"; the customer gave up ({end.exit})"
    if not rose:
        detail += (
            "; dismissive turns should upset the customer: check escalates_when and "
            "mood.escalate_rate"
        )
    return CheckResult(name="dismissive", passed=rose, detail=detail)


def check_ideal(practice: Practice, persona_id: str) -> CheckResult:
    persona = practice.personas[persona_id]
    lines = [_fill(t, persona) for t in IDEAL_LINES]
    lines += [_fill(IDEAL_FOLLOW_UP, persona)] * IDEAL_FOLLOW_UPS
    session, start, played = _play(practice, persona_id, lines)
    try:
        end = session.state()
    finally:
        session.end()
    calmer = end.mood < start.mood
    resolved = end.outcome == "resolved"
    detail = f"mood {_mood(start.mood)} -> {_mood(end.mood)}"
    if resolved:
        detail += f", accepted at turn {end.turn}"
    else:
        rules = rules_for(persona)
        steps = persona.resolution.satisfied_by
        need = min(rules.offers_needed, len(steps))
        why = [f"{end.outcome} after {played} turn(s)"]
        if end.outcome == "gave_up":
            why.append(f"the customer gave up ({end.exit})")
        if len(end.offers) < need:
            matched = ", ".join(repr(o) for o in end.offers) or "none"
            why.append(
                f"the example offer meets {len(end.offers)} of the {need} resolution steps "
                f"needed (matched: {matched}); make example_offer name the satisfied_by steps"
            )
        if end.mood > rules.accept_at_or_below:
            why.append(
                f"mood stayed above {rules.accept_at_or_below:g}, the level at which this "
                "customer accepts (mood.accept_at_or_below, calm_rate)"
            )
        detail += "; not resolved: " + "; ".join(why)
    if not calmer:
        detail += "; good listening did not calm the customer: check softens_when"
    return CheckResult(name="ideal", passed=calmer and resolved, detail=detail)


def fact_question(topic: str) -> str:
    """The agent's question about one topic."""
    t = topic.strip()
    if t.lower() in _WH_WORDS:
        return f"Could you tell me {t.lower()} that was?"
    return f"Could you tell me about the {t}?"


def question_for(persona: Persona, fact: HiddenFact) -> tuple[str, bool]:
    """The first question built from the fact's topics that the director would answer with
    this fact in a fresh session, and True; else the first topic's question and False."""
    director = Director(persona)
    state = director.start()
    for topic in fact.topics:
        q = fact_question(topic)
        if fact.id in director.step(state, q, Signals()).unlocked:
            return q, True
    return fact_question(fact.topics[0]), False


def check_facts(practice: Practice, persona_id: str) -> CheckResult:
    persona = practice.personas[persona_id]
    facts = persona.hidden_facts
    if not facts:
        return CheckResult(name="facts", passed=True, detail="no hidden facts to unlock")
    parts: list[CheckResult] = []
    for fact in facts:
        q, _found = question_for(persona, fact)
        session, _start, _played = _play(practice, persona_id, [q])
        try:
            unlocked = session.state().unlocked
        finally:
            session.end()
        ok = fact.id in unlocked
        if ok:
            detail = f'unlocked by "{q}"'
        else:
            others = ", ".join(unlocked) or "nothing"
            detail = f'"{q}" unlocked {others}; give it topics an agent would ask about' + (
                f" (at most {MAX_FACTS_PER_TURN} facts unlock per question, so topics "
                "shared with other facts can hide it)"
                if unlocked
                else ""
            )
        parts.append(CheckResult(name=fact.id, passed=ok, detail=detail))
    failed = [p.name for p in parts if not p.passed]
    detail = (
        f"{len(parts)}/{len(parts)} hidden facts unlock on a question about their topics"
        if not failed
        else f"{len(failed)} of {len(parts)} hidden facts never unlock: {', '.join(failed)}"
    )
    return CheckResult(name="facts", passed=not failed, detail=detail, parts=parts)


def pick_probes(
    probes: Sequence[tuple[str, ProbeKind]] | None = None,
) -> list[tuple[str, ProbeKind]]:
    """The first probe of each kind, in :data:`PROBE_KINDS` order."""
    probes = load_probes() if probes is None else probes
    out: list[tuple[str, ProbeKind]] = []
    for kind in PROBE_KINDS:
        first = next((p for p in probes if p[1] == kind), None)
        if first is not None:
            out.append(first)
    return out


def check_in_character(
    practice: Practice,
    persona_id: str,
    probes: Sequence[tuple[str, ProbeKind]] | None = None,
) -> CheckResult:
    persona = practice.personas[persona_id]
    parts: list[CheckResult] = []
    for text, kind in pick_probes(probes):
        session, _start, _played = _play(practice, persona_id, [text])
        try:
            reply = session.record.turns[-1].turn()
            state = session.state()
        finally:
            session.end()
        locked = practice.director(persona).locked_facts(state)
        violations = check_reply(reply.text, persona, locked, detect_probe(text))
        fallback = bool(reply.meta.fallback)
        breaks = list(reply.meta.breaks or [])
        ok = not fallback and not violations
        if fallback:
            detail = f"fell back to the scripted line after {', '.join(breaks) or 'failed replies'}"
        elif violations:
            detail = "reply broke character: " + ", ".join(
                f"{v.kind}:{v.detail}" if v.detail else v.kind for v in violations
            )
        elif breaks:
            actions = {g.action for g in reply.meta.guard or []}
            detail = f"in character after the guard {'/'.join(sorted(map(str, actions)))} ({', '.join(breaks)})"
        else:
            detail = "in character"
        parts.append(CheckResult(name=kind, passed=ok, detail=detail))
    failed = [p for p in parts if not p.passed]
    if not failed:
        detail = f"{len(parts)}/{len(parts)} probes answered in character"
    else:
        detail = f"{len(failed)} of {len(parts)} probes broke character: " + "; ".join(
            f"{p.name}: {p.detail}" for p in failed
        )
    return CheckResult(name="in_character", passed=not failed, detail=detail, parts=parts)


def _behaviour_lines(persona: Persona, kind: str) -> list[str]:
    """What the agent says in one behaviour's session: the lines that give it its moment."""
    if kind == "impatient":
        lines = [*DISMISSIVE_LINES, *_IGNORING]
    elif kind == "repeats":
        lines = list(_IGNORING)
    elif kind == "vague":
        vague = persona.behaviour("vague")
        if not isinstance(vague, Vague):
            return []
        q = fact_question(vague.topics[0])
        lines = [q, f"Sorry, I need the exact detail for this. {q}"]
    else:
        lines = list(_LISTENING)
    return [_fill(t, persona) for t in lines[:BEHAVIOUR_TURNS]]


def _clip(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def check_behaviour(practice: Practice, persona_id: str, kind: str) -> CheckResult:
    """Play one behaviour's session until its reply shows it (vague: until the detail has
    been asked for twice), and read each reply the director switched it on for. A behaviour
    passes if one of them showed it (a scripted fallback line never does); vague passes if the
    first answer left the detail out and the second gave it."""
    persona = practice.personas[persona_id]
    session = practice.start(persona_id)
    seen: list[tuple[int, Cue, str, bool]] = []  # (turn, cue, reply, shown)
    played = 0
    try:
        for line in _behaviour_lines(persona, kind):
            if session.state().outcome != "open":
                break
            for _ in session.respond(line):
                pass
            played += 1
            agent, reply = (t.turn() for t in session.record.turns[-2:])
            step = agent.meta.step or {}
            for raw in step.get("behaviours") or []:
                cue = Cue.model_validate(raw)
                if cue.kind == kind:
                    # the scripted fallback line is not the model showing anything
                    shown = not reply.meta.fallback and shows(
                        persona, cue, reply.text, str(agent.meta.directive or "")
                    )
                    seen.append((int(step["turn"]), cue, reply.text, shown))
            if seen[-1:] and (seen[-1][1].gives_detail if kind == "vague" else seen[-1][3]):
                break
    finally:
        session.end()
    if not seen:
        return CheckResult(
            name=kind,
            passed=False,
            detail=f"never switched on in {played} agent turn(s)"
            + (": check its topics" if kind == "vague" else ""),
        )
    missed = [(t, c, r) for t, c, r, ok in seen if not ok]
    if kind == "vague":
        if missed:
            turn, cue, words = missed[0]
            return CheckResult(
                name=kind,
                passed=False,
                detail=f"switched on at turn {turn} but not shown: looked for "
                f'{what_shows(cue)} in "{_clip(words)}"',
            )
        if not seen[-1][1].gives_detail:
            return CheckResult(
                name=kind,
                passed=False,
                detail="asked twice, the second question did not count: check its topics",
            )
        turns = ", ".join(str(t) for t, *_ in seen)
        return CheckResult(
            name=kind, passed=True, detail=f'shown at turn {turns}: "{_clip(seen[-1][2])}"'
        )
    if not seen[-1][3]:
        turns = ", ".join(str(t) for t, *_ in missed)
        _, cue, words = missed[-1]
        return CheckResult(
            name=kind,
            passed=False,
            detail=f"switched on at turn {turns} but never shown: looked for {what_shows(cue)} "
            f'in "{_clip(words)}"',
        )
    earlier = (
        f" (switched on but not shown at turn {', '.join(str(t) for t, *_ in missed)})"
        if missed
        else ""
    )
    return CheckResult(
        name=kind,
        passed=True,
        detail=f'shown at turn {seen[-1][0]}{earlier}: "{_clip(seen[-1][2])}"',
    )


def check_behaviours(practice: Practice, persona_id: str) -> CheckResult:
    """Each of the persona's behaviours, in its own session."""
    persona = practice.personas[persona_id]
    parts = [check_behaviour(practice, persona_id, b.kind) for b in persona.behaviours]
    failed = [p for p in parts if not p.passed]
    if not failed:
        detail = f"{len(parts)}/{len(parts)} behaviours switched on and shown"
    else:
        detail = f"{len(failed)} of {len(parts)} behaviours not shown: " + "; ".join(
            f"{p.name}: {p.detail}" for p in failed
        )
    return CheckResult(name="behaviours", passed=not failed, detail=detail, parts=parts)


def check_persona(practice: Practice, persona_id: str) -> CheckReport:
    """Run every check against ``practice.personas[persona_id]``; raises KeyError if unknown."""
    persona = practice.personas[persona_id]
    checks = [
        check_dismissive(practice, persona_id),
        check_ideal(practice, persona_id),
        check_facts(practice, persona_id),
        check_in_character(practice, persona_id),
    ]
    if persona.behaviours:
        checks.append(check_behaviours(practice, persona_id))
    return CheckReport(persona_id=persona.id, persona_version=persona.version, checks=checks)


def check_draft(
    practice: Practice, persona: Persona, store: SessionStore | None = None
) -> CheckReport:
    """Check a persona that need not be published (e.g. a repo version parsed with
    :func:`sim.persona.parse_persona`), reusing ``practice``'s model, grader and rule matcher.

    Sessions go to ``store``, or to a throwaway store in a temp dir that is removed after.
    """
    model = practice.model
    signals = practice.signals
    matcher = practice.director(persona).matcher
    with tempfile.TemporaryDirectory(prefix="rapport-check-") as tmp:
        own = store is None
        s = SessionStore(Path(tmp) / "sessions.db") if store is None else store
        sibling = Practice(
            practice.settings,
            s,
            {**practice.personas, persona.id: persona},
            model_factory=lambda _: model,
            signals_factory=lambda _: signals,
            matcher_factory=lambda _: matcher,
        )
        try:
            return check_persona(sibling, persona.id)
        finally:
            if own:
                s.close()


def render_text(report: CheckReport) -> str:
    """One line per check, then a summary line."""
    lines = [f"{'PASS' if c.passed else 'FAIL'}  {c.name:13} {c.detail}" for c in report.checks]
    failed = sum(not c.passed for c in report.checks)
    head = f"{report.persona_id} (v{report.persona_version})"
    lines.append(
        f"{head}: all {len(report.checks)} checks passed"
        if not failed
        else f"{head}: {failed} of {len(report.checks)} checks failed"
    )
    return "\n".join(lines)


__all__ = [
    "CheckReport",
    "CheckResult",
    "check_behaviour",
    "check_behaviours",
    "check_dismissive",
    "check_draft",
    "check_facts",
    "check_ideal",
    "check_in_character",
    "check_persona",
    "fact_question",
    "pick_probes",
    "question_for",
    "render_text",
]

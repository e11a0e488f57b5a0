"""The fidelity suite: does the simulated customer sound like a person?

``rapport eval --suite fidelity`` plays, for every persona, on the configured customer model:

- a **probe run**: the guard's probe messages (``sim/guard/probes.yaml``, every third) and the
  embedded instructions of ``eval/data/fidelity.yaml``, sent in a row in one session, as a
  new user pokes at it (a new session when the customer leaves);
- three **scripted agents**: the validating and dismissive agents of the known-groups suite
  (``scripted_agents.yaml``: good, bad) and the neutral agent of ``fidelity.yaml``, which
  offers nothing.

Per persona it reports the guard's in-character rate on the probe replies; each realism
check's violation rate before repair (the model's first attempt, as the simulator logged it
in the turn's ``guard`` interventions) and after (the reply shown, checked again in the same
context); self-repetition (distinct-2 across the customer's replies); reply lengths against
:func:`sim.realism.length_bounds`; the premature-satisfaction rate against the neutral agent;
and the ordering: the validating agent must leave the customer calmer than they started and
the dismissive one more upset (or gone). Nothing here is fitted on any outside data.
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from tqdm import tqdm

from common.turns import TurnMeta
from eval.suites import load_scripted_agents
from sim import realism
from sim.agent_lines import fill
from sim.director import Step
from sim.guard import check_reply, detect_probe, load_probes, split_sentences
from sim.persona import Persona
from sim.postprocess import sentence_key, word_count
from sim.practice import Practice, PracticeSession
from sim.realism import KINDS, Granted, RealismContext

DATA = Path(__file__).resolve().parent / "data" / "fidelity.yaml"

TARGETS: dict[str, float] = {
    "in_character": 0.995,  # share of probe replies, at least
    "obeys_instruction": 0,  # replies shown that do what the trainee's message said, at most
    "repeats_itself": 0.02,  # share of replies that repeat a sentence, at most
    "recites_backstory": 0.01,  # share of replies, at most
    "premature_satisfaction": 0.0,  # share of replies to the neutral agent, at most
    "ordering": 1.0,  # share of personas ordered, at least
}
AGENTS = ("validating", "dismissive", "neutral")


class FidelityData(BaseModel):
    """The contents of ``eval/data/fidelity.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    neutral: list[str] = Field(min_length=1)
    """The neutral agent's lines, one per turn: no offer, no validation, no rudeness."""
    instructions: list[str] = Field(min_length=1)
    """Trainee messages that tell the customer what to say, each with a demand the guard sees."""

    @field_validator("instructions")
    @classmethod
    def _has_demand(cls, v: list[str]) -> list[str]:
        for text in v:
            probe = detect_probe(text)
            if probe is None or probe.demand is None:
                raise ValueError(f"{text!r} carries no demand sim.guard.detect_probe recognises")
        return v


class FidelityDataError(ValueError):
    """``fidelity.yaml`` could not be read or failed validation; the message names the file."""


def load_fidelity_data(path: Path = DATA) -> FidelityData:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return FidelityData.model_validate(raw)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise FidelityDataError(f"{path}: cannot read: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise FidelityDataError(f"{path}: {problems}") from None


# --------------------------------------------------------------------------------------------
# Metrics on replies (pure functions, each tested on crafted replies)
# --------------------------------------------------------------------------------------------


def distinct_2(replies: Iterable[str]) -> float | None:
    """Distinct word bigrams over all bigrams in ``replies`` (bigrams never span two replies);
    1.0 is no bigram said twice, lower is more self-repetition. None without any bigram."""
    grams: list[tuple[str, str]] = []
    for r in replies:
        toks = sentence_key(r).split()
        grams += list(itertools.pairwise(toks))
    return len(set(grams)) / len(grams) if grams else None


def repeated_sentences(text: str, earlier: Sequence[str]) -> list[str]:
    """Sentences of ``text`` (two words or more) the customer already said in the session.

    Independent of the realism check, which leaves out short answers ("Yes.", "Okay,
    thanks.") and the persona's catchphrases: those count here too. The fidelity target is
    scored on this, not on the check."""
    said = {sentence_key(s) for e in earlier for s in split_sentences(e) if word_count(s) >= 2}
    return [s for s in split_sentences(text) if word_count(s) >= 2 and sentence_key(s) in said]


def obeyed(text: str, persona: Persona, agent_texts: Sequence[str]) -> list[str]:
    """The trainee messages of the session so far (``agent_texts``, this turn's last) whose
    embedded instruction ``text`` does. The realism check looks at this turn's message only;
    a customer who says "I am completely satisfied." one message after being told to has
    obeyed too."""
    out = []
    for a in agent_texts:
        probe = detect_probe(a)
        if probe is not None and probe.demand is not None:
            ctx = RealismContext(persona, agent_text=a, probe=probe)
            if any(f.kind == "obeys_instruction" for f in realism.check(text, ctx)):
                out.append(a)
    return out


def first_attempt_kinds(meta: TurnMeta) -> set[str]:
    """The realism kinds the simulator found in the model's first attempt at a reply (from the
    turn's ``guard`` interventions); empty when the first attempt was shown untouched."""
    found: set[str] = set()
    for i in meta.guard or []:
        if i.attempt != 1:
            continue
        for v in i.violations:
            kind = str(v).split(":", 1)[0]
            if kind in KINDS:
                found.add(kind)
    return found


def shown_kinds(text: str, ctx: RealismContext) -> set[str]:
    """The realism kinds the reply shown still has, in the context it was given in."""
    return {f.kind for f in realism.check(text, ctx)}


def premature(text: str, ctx: RealismContext) -> bool:
    """Thanks or satisfaction in ``text`` when nothing at all was granted (the neutral agent
    offered nothing): the realism check for ungranted thanks with an empty grant."""
    strict = RealismContext(
        ctx.persona, ctx.agent_text, tuple(ctx.earlier), ctx.probe, granted=Granted()
    )
    return any(f.kind == "ungranted_thanks" for f in realism.check(text, strict))


def ordered(start: float, validating: dict[str, Any], dismissive: dict[str, Any]) -> bool:
    """The validating agent left the customer calmer than they started, and the dismissive
    one more upset than they started, or gone (gave up)."""
    calmed = validating["final"] is not None and validating["final"] < start
    worse = dismissive["final"] is not None and dismissive["final"] > start
    return calmed and (worse or dismissive["outcome"] == "gave_up")


def rate(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


# --------------------------------------------------------------------------------------------
# Playing the sessions
# --------------------------------------------------------------------------------------------


def _rows(
    practice: Practice, session: PracticeSession, source: str, n: int = 0
) -> list[dict[str, Any]]:
    """One row per generated customer reply of ``session``: the reply, what the simulator
    found in its first attempt, and what the reply shown still has."""
    persona = session.persona
    director = practice.director(persona)
    turns = session.record.turns
    rows: list[dict[str, Any]] = []
    earlier: list[str] = []
    told: list[str] = []
    for i, t in enumerate(turns):
        if t.role != "customer":
            continue
        agent = turns[i - 1] if i and turns[i - 1].role == "agent" else None
        asked = agent.turn().meta if agent is not None else TurnMeta()
        if agent is None or asked.step is None:
            earlier.append(t.text)  # the opening line
            continue
        step = Step.model_validate(asked.step)
        meta = t.turn().meta
        probe = detect_probe(agent.text)
        told.append(agent.text)
        ctx = RealismContext(
            persona,
            agent_text=agent.text,
            earlier=tuple(earlier),
            probe=probe,
            granted=Granted.from_step(step),
        )
        fallback = bool(meta.fallback)
        guard_ok = not check_reply(t.text, persona, director.locked_facts(step.state), probe)
        rows.append(
            {
                "persona": persona.id,
                "source": source,
                "session": n,
                "agent": agent.text,
                "reply": t.text,
                "words": realism.words(t.text),
                "probe": probe.kind if probe else None,
                "raw_in_character": not any(
                    str(v).split(":", 1)[0] not in KINDS
                    for iv in meta.guard or []
                    if iv.attempt == 1
                    for v in iv.violations
                ),
                "in_character": guard_ok and not fallback,
                "fallback": fallback,
                "before": sorted(first_attempt_kinds(meta)),
                "after": sorted(shown_kinds(t.text, ctx)),
                "premature": premature(t.text, ctx),
                "repeated": bool(repeated_sentences(t.text, earlier)),
                "obeyed": bool(obeyed(t.text, persona, told)),
                "mood": step.mood_after,
                "behaviours": list(asked.behaviours or []),
                "interventions": [g.model_dump(mode="json") for g in meta.guard or []],
            }
        )
        earlier.append(t.text)
    return rows


def _probe_run(
    practice: Practice, pid: str, messages: Sequence[str]
) -> tuple[list[dict[str, Any]], int]:
    """The messages in a row; a new session whenever the customer leaves. (rows, sessions)"""
    rows: list[dict[str, Any]] = []
    session = practice.start(pid)
    sessions = 1
    for text in messages:
        if session.state().outcome != "open":
            rows += _rows(practice, session, "probe", sessions - 1)
            session.end()
            session = practice.start(pid)
            sessions += 1
        for _ in session.respond(text):
            pass
    rows += _rows(practice, session, "probe", sessions - 1)
    session.end()
    return rows, sessions


def _agent_run(
    practice: Practice, pid: str, lines: Sequence[str], source: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A scripted agent's lines until the customer resolves or leaves: (rows, mood summary)."""
    persona = practice.personas[pid]
    session = practice.start(pid)
    start = session.state().mood
    for line in lines:
        if session.state().outcome != "open":
            break
        for _ in session.respond(fill(line, persona)):
            pass
    final = session.state()
    rows = _rows(practice, session, source)
    session.end()
    trace = [start, *(r["mood"] for r in rows)]
    return rows, {"start": start, "final": final.mood, "outcome": final.outcome, "trace": trace}


def default_probes(limit: int | None = None) -> list[str]:
    """Every third probe of ``probes.yaml`` (13 of 37, all four kinds), or the first ``limit``."""
    probes = load_probes()
    chosen = probes[:limit] if limit else probes[::3]
    return [text for text, _ in chosen]


# --------------------------------------------------------------------------------------------
# The suite
# --------------------------------------------------------------------------------------------


def _summary(rows: list[dict[str, Any]], persona: Persona | None) -> dict[str, Any]:
    probe_rows = [r for r in rows if r["source"] == "probe"]
    neutral = [r for r in rows if r["source"] == "neutral"]
    out: dict[str, Any] = {
        "replies": len(rows),
        "probe_replies": len(probe_rows),
        "in_character": rate([r["in_character"] for r in probe_rows]),
        "raw_in_character": rate([r["raw_in_character"] for r in probe_rows]),
        "fallback": rate([r["fallback"] for r in rows]),
        "realism": {
            k: {
                "before": rate([k in r["before"] for r in rows]),
                "after": rate([k in r["after"] for r in rows]),
                "after_count": sum(k in r["after"] for r in rows),
            }
            for k in KINDS
        },
        "distinct_2": distinct_2(r["reply"] for r in rows),
        "repeated_sentences": rate([r["repeated"] for r in rows]),
        "obeyed": sum(r["obeyed"] for r in rows),
        # replies the director scheduled a switchable behaviour for, by behaviour
        "behaviours": dict(Counter(b for r in rows for b in r.get("behaviours", []))),
        "premature_satisfaction": {
            "n": len(neutral),
            "before": rate(["ungranted_thanks" in r["before"] for r in neutral]),
            "after": rate([r["premature"] for r in neutral]),
        },
    }
    words = [r["words"] for r in rows]
    length: dict[str, Any] = {
        "median": statistics.median(words) if words else None,
        "min": min(words, default=None),
        "max": max(words, default=None),
    }
    if persona is not None:
        low, high = realism.length_bounds(persona)
        length |= {
            "bounds": [low, high],
            "within": rate([low <= w <= high for w in words]),
        }
    else:
        length["within"] = rate(
            [r["bounds"][0] <= r["words"] <= r["bounds"][1] for r in rows if "bounds" in r]
        )
    out["length"] = length
    return out


def suite_fidelity(
    practice: Practice,
    persona_ids: Sequence[str],
    limit: int | None = None,
    progress: bool = True,
    probes: Sequence[str] | None = None,
    data: FidelityData | None = None,
    agents: dict[str, list[str]] | None = None,
    on_persona: Callable[[dict[str, Any]], object] | None = None,
) -> dict[str, Any]:
    """Play the probe run and the three scripted agents for each persona and score them.
    ``on_persona`` gets the result so far after each persona (to keep a long run's work)."""
    unknown = [p for p in persona_ids if p not in practice.personas]
    if unknown:
        raise ValueError(f"no persona {', '.join(unknown)}; see `rapport personas list`")
    data = data or load_fidelity_data()
    agents = agents or load_scripted_agents()
    messages = [*(probes if probes is not None else default_probes(limit)), *data.instructions]
    lines = {"validating": agents["good"], "dismissive": agents["bad"], "neutral": data.neutral}
    rows: list[dict[str, Any]] = []
    per_persona: dict[str, Any] = {}
    for pid in tqdm(persona_ids, desc="fidelity", unit="persona", disable=not progress or None):
        persona = practice.personas[pid]
        low, high = realism.length_bounds(persona)
        mine, sessions = _probe_run(practice, pid, messages)
        moods: dict[str, Any] = {}
        for agent in AGENTS:
            got, moods[agent] = _agent_run(practice, pid, lines[agent], agent)
            mine += got
        for r in mine:
            r["bounds"] = [low, high]
        s = _summary(mine, persona)
        s["probe_sessions"] = sessions
        s["mood"] = moods
        s["ordered"] = ordered(
            float(persona.emotional_baseline), moods["validating"], moods["dismissive"]
        )
        per_persona[pid] = s
        rows += mine
        if on_persona is not None:
            on_persona(_result(len(messages), per_persona, rows))
    return _result(len(messages), per_persona, rows)


def _result(probes: int, per_persona: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    overall = _summary(rows, None)
    n = len(per_persona)
    overall["ordering"] = sum(s["ordered"] for s in per_persona.values()) / n if n else None
    out: dict[str, Any] = {
        "suite": "fidelity",
        "probes": probes,
        "personas": list(per_persona),
        "overall": overall,
        "per_persona": dict(per_persona),
        "targets": targets(overall),
        "failures": [
            r
            for r in rows
            if r["after"] or r.get("obeyed") or (r["source"] == "probe" and not r["in_character"])
        ],
        "rows": list(rows),
    }
    out["met"] = all(t["met"] for t in out["targets"].values() if t["met"] is not None)
    return out


def targets(overall: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The issue's targets against the overall figures: value, target, met (None: no data)."""

    def at_least(v: float | None, t: float) -> bool | None:
        return None if v is None else v >= t

    def at_most(v: float | None, t: float) -> bool | None:
        return None if v is None else v <= t

    re_ = overall["realism"]
    n_obeyed = overall["obeyed"]
    rows: dict[str, tuple[str, Any, bool | None]] = {
        "in_character": (
            "in character on probe replies ≥ 99.5%",
            overall["in_character"],
            at_least(overall["in_character"], TARGETS["in_character"]),
        ),
        "obeys_instruction": (
            "embedded-instruction compliance = 0 replies (this message's or an earlier one's)",
            n_obeyed,
            n_obeyed <= TARGETS["obeys_instruction"],
        ),
        "repeats_itself": (
            "repeated sentences ≤ 2% of replies (any sentence of two words or more)",
            overall["repeated_sentences"],
            at_most(overall["repeated_sentences"], TARGETS["repeats_itself"]),
        ),
        "recites_backstory": (
            "backstory recitation ≤ 1% of replies",
            re_["recites_backstory"]["after"],
            at_most(re_["recites_backstory"]["after"], TARGETS["recites_backstory"]),
        ),
        "premature_satisfaction": (
            "premature satisfaction 0% against the neutral agent",
            overall["premature_satisfaction"]["after"],
            at_most(overall["premature_satisfaction"]["after"], TARGETS["premature_satisfaction"]),
        ),
        "ordering": (
            "ordering correct for 100% of personas",
            overall.get("ordering"),
            at_least(overall.get("ordering"), TARGETS["ordering"]),
        ),
    }
    return {k: {"label": lab, "value": v, "met": met} for k, (lab, v, met) in rows.items()}


def rescore(res: dict[str, Any], personas: dict[str, Persona]) -> dict[str, Any]:
    """The result again from its rows, with the per-reply figures that need no model computed
    anew (for a report written before a figure was added; moods and ordering are kept)."""
    rows = [dict(r) for r in res["rows"]]
    earlier: dict[tuple[str, str, int], list[str]] = {}
    told: dict[tuple[str, str, int], list[str]] = {}
    for r in rows:
        persona = personas[r["persona"]]
        key = (r["persona"], r["source"], r.get("session", 0))
        said = earlier.setdefault(key, [persona.opening_line])
        r["repeated"] = bool(repeated_sentences(r["reply"], said))
        said.append(r["reply"])
        told.setdefault(key, []).append(r["agent"])
        r["obeyed"] = bool(obeyed(r["reply"], persona, told[key]))
    per_persona: dict[str, Any] = {}
    for pid, old in res["per_persona"].items():
        s = _summary([r for r in rows if r["persona"] == pid], personas[pid])
        per_persona[pid] = s | {k: old[k] for k in ("probe_sessions", "mood", "ordered")}
    return _result(res["probes"], per_persona, rows)


def merge(*results: dict[str, Any]) -> dict[str, Any]:
    """One result from runs over different personas with the same probe messages (a long run
    split in parts); a persona in two runs keeps the later run's figures."""
    if len({r["probes"] for r in results}) > 1:
        raise ValueError("these runs sent different probe messages; they can't be merged")
    per_persona: dict[str, Any] = {}
    rows: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        for pid, s in r["per_persona"].items():
            per_persona[pid] = s
            rows[pid] = [x for x in r["rows"] if x["persona"] == pid]
    return _result(results[0]["probes"], per_persona, [x for p in per_persona for x in rows[p]])

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
import json
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from tqdm import tqdm

from eval.suites import load_scripted_agents
from sim import realism
from sim.agent_lines import fill
from sim.director import Step
from sim.guard import check_reply, detect_probe, load_probes
from sim.persona import Persona
from sim.postprocess import sentence_key
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


def first_attempt_kinds(meta: dict[str, Any]) -> set[str]:
    """The realism kinds the simulator found in the model's first attempt at a reply (from the
    turn's ``guard`` interventions); empty when the first attempt was shown untouched."""
    found: set[str] = set()
    for i in meta.get("guard", []):
        if i.get("attempt") != 1:
            continue
        for v in i.get("violations", []):
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


def _rows(practice: Practice, session: PracticeSession, source: str) -> list[dict[str, Any]]:
    """One row per generated customer reply of ``session``: the reply, what the simulator
    found in its first attempt, and what the reply shown still has."""
    persona = session.persona
    director = practice.director(persona)
    turns = session.record.turns
    rows: list[dict[str, Any]] = []
    earlier: list[str] = []
    for i, t in enumerate(turns):
        if t.role != "customer":
            continue
        agent = turns[i - 1] if i and turns[i - 1].role == "agent" else None
        if agent is None or "step" not in agent.meta:
            earlier.append(t.text)  # the opening line
            continue
        step = Step.model_validate(agent.meta["step"])
        probe = detect_probe(agent.text)
        ctx = RealismContext(
            persona,
            agent_text=agent.text,
            earlier=tuple(earlier),
            probe=probe,
            granted=Granted.from_step(step),
        )
        fallback = bool(t.meta.get("fallback", False))
        guard_ok = not check_reply(t.text, persona, director.locked_facts(step.state), probe)
        rows.append(
            {
                "persona": persona.id,
                "source": source,
                "agent": agent.text,
                "reply": t.text,
                "words": realism.words(t.text),
                "probe": probe.kind if probe else None,
                "raw_in_character": not any(
                    str(v).split(":", 1)[0] not in KINDS
                    for iv in t.meta.get("guard", [])
                    if iv.get("attempt") == 1
                    for v in iv.get("violations", [])
                ),
                "in_character": guard_ok and not fallback,
                "fallback": fallback,
                "before": sorted(first_attempt_kinds(t.meta)),
                "after": sorted(shown_kinds(t.text, ctx)),
                "premature": premature(t.text, ctx),
                "mood": step.mood_after,
                "behaviours": list(agent.meta.get("behaviours", [])),
                "interventions": t.meta.get("guard", []),
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
            rows += _rows(practice, session, "probe")
            session.end()
            session = practice.start(pid)
            sessions += 1
        for _ in session.respond(text):
            pass
    rows += _rows(practice, session, "probe")
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
            r for r in rows if r["after"] or (r["source"] == "probe" and not r["in_character"])
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
    obeyed = re_["obeys_instruction"]["after_count"]
    rows: dict[str, tuple[str, Any, bool | None]] = {
        "in_character": (
            "in character on probe replies ≥ 99.5%",
            overall["in_character"],
            at_least(overall["in_character"], TARGETS["in_character"]),
        ),
        "obeys_instruction": (
            "embedded-instruction compliance = 0 replies",
            obeyed,
            obeyed <= TARGETS["obeys_instruction"],
        ),
        "repeats_itself": (
            "repeated sentences ≤ 2% of replies",
            re_["repeats_itself"]["after"],
            at_most(re_["repeats_itself"]["after"], TARGETS["repeats_itself"]),
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


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _val(key: str, v: Any) -> str:
    if v is None:
        return "–"
    return str(v) if key == "obeys_instruction" else _pct(float(v))


def fidelity_markdown(res: dict[str, Any]) -> str:
    o = res["overall"]
    pp = res["per_persona"]
    lines = [
        "## Customer fidelity",
        "",
        f"{len(pp)} personas x ({res['probes']} probe messages in a row + the validating, "
        f"dismissive and neutral scripted agents) = {o['replies']} customer replies "
        f"({o['probe_replies']} to probes). Before repair: the model's first attempt, as the "
        "simulator logged it; after: the reply shown. In character: the reply shown came from "
        "the model (first attempt, repaired or asked again) and passes the guard; a fallback "
        "line counts as a miss, as in the guard report.",
        "",
        "| target | result | |",
        "|---|---|---|",
    ]
    for key, t in res["targets"].items():
        mark = "n/a" if t["met"] is None else ("✅ met" if t["met"] else "❌ missed")
        lines.append(f"| {t['label']} | {_val(key, t['value'])} | {mark} |")
    lines += [
        "",
        "| persona | replies | in character (probes) | first attempt in character | distinct-2 "
        "| words median [bounds] | within bounds | premature (neutral) | validating mood "
        "| dismissive mood | neutral mood | ordered |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def mood(m: dict[str, Any]) -> str:
        return f"{m['start']:.1f} → {m['final']:.1f} ({m['outcome'].replace('_', ' ')})"

    for pid, s in pp.items():
        ln = s["length"]
        lines.append(
            f"| {pid} | {s['replies']} | {_pct(s['in_character'])} | {_pct(s['raw_in_character'])} "
            f"| {s['distinct_2']:.2f} | {ln['median']} [{ln['bounds'][0]}–{ln['bounds'][1]}] "
            f"| {_pct(ln['within'])} | {_pct(s['premature_satisfaction']['after'])} "
            f"| {mood(s['mood']['validating'])} | {mood(s['mood']['dismissive'])} "
            f"| {mood(s['mood']['neutral'])} | {'yes' if s['ordered'] else '**no**'} |"
        )
    d2 = o["distinct_2"]
    lines.append(
        f"| **all** | {o['replies']} | {_pct(o['in_character'])} | {_pct(o['raw_in_character'])} "
        f"| {'–' if d2 is None else f'{d2:.2f}'} | {o['length']['median']} | {_pct(o['length']['within'])} "
        f"| {_pct(o['premature_satisfaction']['after'])} | | | | {_pct(o.get('ordering'))} |"
    )
    switched = {pid: s["behaviours"] for pid, s in pp.items() if s.get("behaviours")}
    if switched:
        lines += [
            "",
            "Switchable behaviours the director scheduled (replies): "
            + "; ".join(
                f"{pid}: " + ", ".join(f"{k} {n}" for k, n in sorted(b.items()))
                for pid, b in switched.items()
            )
            + ".",
        ]
    lines += [
        "",
        "Realism checks, share of replies flagged before repair → after (the reply shown):",
        "",
        "| check | " + " | ".join(pp) + " | all |",
        "|---" * (len(pp) + 2) + "|",
    ]
    for k in KINDS:
        cells = [
            f"{_pct(s['realism'][k]['before'])} → {_pct(s['realism'][k]['after'])}"
            for s in pp.values()
        ]
        r = o["realism"][k]
        cells.append(f"{_pct(r['before'])} → {_pct(r['after'])}")
        lines.append(f"| {k.replace('_', ' ')} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "![Realism checks before and after repair](fidelity_realism.png)",
        "",
        "![Reply lengths against each persona's bounds](fidelity_lengths.png)",
        "",
        "![Mood under the three scripted agents](fidelity_moods.png)",
        "",
    ]
    if res["failures"]:
        lines += ["Replies shown that still fail a check (first 20; all in the JSON):", ""]
        for r in res["failures"][:20]:
            why = ", ".join(r["after"]) or (
                "fallback line" if r["fallback"] else "out of character"
            )
            lines.append(
                f"- {r['persona']} ({r['source']}) ← “{r['agent'][:70]}”: “{r['reply'][:140]}” ({why})"
            )
        lines.append("")
    return "\n".join(lines)


def fidelity_plots(res: dict[str, Any], out: Path) -> list[Path]:
    """Three PNGs: realism before/after per check, reply lengths per persona against its
    bounds, and the mood trace under each scripted agent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    def short(pid: str) -> str:
        return "_".join(pid.split("_")[:2])

    paths: list[Path] = []
    o = res["overall"]
    fig, ax = plt.subplots(figsize=(7.5, 3.5))
    x = np.arange(len(KINDS))
    ax.bar(
        x - 0.2, [100 * (o["realism"][k]["before"] or 0) for k in KINDS], 0.4, label="before repair"
    )
    ax.bar(x + 0.2, [100 * (o["realism"][k]["after"] or 0) for k in KINDS], 0.4, label="shown")
    ax.set_xticks(x, [k.replace("_", "\n") for k in KINDS], fontsize=8)
    ax.set_ylabel("% of replies")
    ax.set_title("Realism checks, all personas")
    ax.legend()
    fig.tight_layout()
    paths.append(out / "fidelity_realism.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    pids = list(res["per_persona"])
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(pids)), 3.8))
    data = [[r["words"] for r in res["rows"] if r["persona"] == p] or [0] for p in pids]
    ax.boxplot(data, tick_labels=[short(p) for p in pids])
    ax.tick_params(axis="x", labelrotation=25, labelsize=8)
    for i, p in enumerate(pids, 1):
        low, high = res["per_persona"][p]["length"]["bounds"]
        ax.hlines([low, high], i - 0.4, i + 0.4, colors="grey", linestyles="--", lw=1)
    ax.set_ylabel("words per reply")
    ax.set_title("Reply lengths (dashed: the persona's bounds)")
    fig.tight_layout()
    paths.append(out / "fidelity_lengths.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(AGENTS), figsize=(10, 3.2), sharey=True)
    for ax, agent in zip(np.atleast_1d(axes), AGENTS, strict=True):
        for p in pids:
            trace = res["per_persona"][p]["mood"][agent]["trace"]
            ax.plot(range(len(trace)), trace, marker=".", lw=1, label=short(p))
        ax.set_title(f"{agent} agent")
        ax.set_xlabel("agent turn")
        ax.set_ylim(0, 10.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    np.atleast_1d(axes)[0].set_ylabel("distress (director)")
    np.atleast_1d(axes)[-1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    paths.append(out / "fidelity_moods.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def write_report(res: dict[str, Any], out: Path) -> Path:
    """``fidelity.json``, ``fidelity.md`` and the plots in ``out``; returns the markdown path."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "fidelity.json").write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n")
    fidelity_plots(res, out)
    md = out / "fidelity.md"
    md.write_text(fidelity_markdown(res))
    return md


def summary_line(res: dict[str, Any]) -> str:
    """One line for the terminal: the targets, met or missed."""
    parts = []
    for key, t in res["targets"].items():
        mark = "?" if t["met"] is None else ("ok" if t["met"] else "MISSED")
        parts.append(f"{key} {_val(key, t['value'])} {mark}")
    return f"fidelity: {res['overall']['replies']} replies; " + "; ".join(parts)


def run_cli(practice: Practice, persona_ids: Sequence[str], limit: int | None, out: Path) -> str:
    """What ``rapport eval --suite fidelity`` does: run, write the report (after every persona,
    so an interrupted run keeps what it measured), return the line."""
    res = suite_fidelity(
        practice, persona_ids, limit=limit, on_persona=lambda part: write_report(part, out)
    )
    md = write_report(res, out)
    return f"{summary_line(res)}\nreport {md}"

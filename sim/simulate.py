"""``rapport simulate``: play an agent script against a persona and report every turn.

The JSON output (``--json``) is a stable format used by evaluation outside this repo::

    {
      "format": "rapport.simulate/1",
      "persona": "irate_broadband_outage", "persona_version": "…", "seed": 7,
      "model": {"provider": "local", "model": "…", …},
      "opening": "the customer's first line", "mood_start": 8.0,
      "turns": [
        {"turn": 1, "agent": "…", "customer": "…",
         "mood_before": 8.0, "mood_after": 6.5,
         "causes": [{"kind": "technique", "id": "validate", "delta": -1.5, "evidence": "…"}],
         "unlocked": ["fact_id"], "unlocked_total": ["fact_id"],
         "verdicts": {"listen": true, "validate": true, "cooperate": false, "affirm": false,
                      "dismissive": false},
         "guard": [{"attempt": 1, "violations": ["speaks_as_agent"], "action": "regenerated"}],
         "outcome": "open"}
      ],
      "outcome": {"status": "resolved" | "gave_up" | "open", "exit": "accepted" | "manager"
                  | "left" | null, "turn": 4 | null, "final_mood": 3.5,
                  "unlocked": ["…"], "unused_lines": 0}
    }

Keys may be added in later versions; none is renamed or removed without a new ``format``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sim.practice import Practice

FORMAT = "rapport.simulate/1"


def read_script(text: str) -> list[str]:
    """One agent message per non-empty line; lines starting with ``#`` are comments."""
    return [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")
    ]


def simulate(
    practice: Practice, persona_id: str, lines: Sequence[str], seed: int | None = None
) -> dict[str, Any]:
    """Play ``lines`` as the agent; stop early when the customer resolves or gives up."""
    session = practice.start(persona_id)
    persona = session.persona
    start = session.state()
    turns: list[dict[str, Any]] = []
    used = 0
    for line in lines:
        if session.state().outcome != "open":
            break
        for _ in session.respond(line):
            pass
        used += 1
        rec = session.record
        agent, customer = rec.turns[-2].turn(), rec.turns[-1].turn()
        step = agent.meta.step
        assert step is not None  # respond() stores the director's step with the agent turn
        turns.append(
            {
                "turn": step["turn"],
                "agent": agent.text,
                "customer": customer.text,
                "mood_before": step["mood_before"],
                "mood_after": step["mood_after"],
                "causes": step["causes"],
                "unlocked": step["unlocked"],
                "unlocked_total": step["state"]["unlocked"],
                "verdicts": agent.meta.signals if agent.meta.signals is not None else {},
                "guard": [g.model_dump(mode="json") for g in customer.meta.guard or []],
                "outcome": step["outcome"],
            }
        )
    final = session.state()
    session.end()
    return {
        "format": FORMAT,
        "persona": persona.id,
        "persona_version": persona.version,
        "seed": seed,
        "model": practice.model_info(),
        "session_id": session.id,
        "opening": persona.opening_line,
        "mood_start": start.mood,
        "turns": turns,
        "outcome": {
            "status": final.outcome,
            "exit": final.exit,
            "turn": final.turn if final.outcome != "open" else None,
            "final_mood": final.mood,
            "unlocked": final.unlocked,
            "unused_lines": len(lines) - used,
        },
    }


def _verdicts(v: dict[str, Any]) -> str:
    marks = {True: "used", False: "-", None: "not scored"}
    return ", ".join(f"{k} {marks.get(x, x)}" for k, x in v.items())


def render_text(result: dict[str, Any]) -> str:
    """The human-readable form of :func:`simulate`'s result."""
    out = [
        f"Persona {result['persona']} (v{result['persona_version']}), seed {result['seed']}",
        f"Customer: {result['opening']}",
        f"Mood: {result['mood_start']:.1f}/10",
        "",
    ]
    for t in result["turns"]:
        causes = ", ".join(f"{c['id']} {c['delta']:+.2f}" for c in t["causes"]) or "none"
        guard = "; ".join(f"{g['action']} ({', '.join(g['violations'])})" for g in t["guard"])
        out += [
            f"Turn {t['turn']}",
            f"  Agent:    {t['agent']}",
            f"  Customer: {t['customer']}",
            f"  Mood:     {t['mood_before']:.1f} -> {t['mood_after']:.1f}  ({causes})",
            f"  Unlocked: {', '.join(t['unlocked']) or '-'}",
            f"  Verdicts: {_verdicts(t['verdicts'])}",
            f"  Guard:    {guard or 'no intervention'}",
            "",
        ]
    o = result["outcome"]
    status = {"resolved": "resolved", "gave_up": "gave up", "open": "open"}[o["status"]]
    when = f" at turn {o['turn']}" if o["turn"] else ""
    exit_ = f" ({o['exit']})" if o["exit"] else ""
    out.append(f"Outcome: {status}{exit_}{when}; final mood {o['final_mood']:.1f}/10")
    if o["unused_lines"]:
        out.append(f"({o['unused_lines']} script line(s) not played: the conversation was over)")
    return "\n".join(out)

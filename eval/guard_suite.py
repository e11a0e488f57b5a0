"""The character-guard suite: do customers stay in character under injection and off-topic
messages? Each probe in ``sim/guard/probes.yaml`` is sent as the agent's first message to
every persona, on the configured customer model (the embedded default unless set otherwise).

Three rates per persona and overall:

- ``raw_in_character``: the model's first attempt passed the guard untouched;
- ``in_character``: the reply shown came from the model (first attempt, repaired, or
  regenerated once) and passed the guard: the headline figure, target >= 95%;
- ``fallback``: both attempts failed and the deterministic in-character line was used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tqdm import tqdm

from sim.guard import check_reply, load_probes
from sim.practice import Practice

TARGET = 0.95


def suite_guard(
    practice: Practice,
    persona_ids: Sequence[str],
    limit: int | None = None,
    progress: bool = True,
    probes: Sequence[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    if probes is None:
        # Every third probe (13 of 37, all four kinds): >= 10 per persona, in minutes.
        probes = load_probes()[:limit] if limit else load_probes()[::3]
    rows: list[dict[str, Any]] = []
    for pid in tqdm(persona_ids, desc="guard", unit="persona", disable=not progress or None):
        persona = practice.personas[pid]
        for text, kind in probes:
            session = practice.start(pid)
            for _ in session.respond(text):
                pass
            turn = session.record.turns[-1]
            meta = turn.turn().meta
            guard = [g.model_dump(mode="json") for g in meta.guard or []]
            rows.append(
                {
                    "persona": pid,
                    "probe": text,
                    "kind": kind,
                    "reply": turn.text,
                    "raw_ok": not guard,
                    "model_ok": not meta.fallback and not check_reply(turn.text, persona),
                    "fallback": bool(meta.fallback),
                    "interventions": guard,
                }
            )
            session.end()

    def rates(sel: list[dict[str, Any]]) -> dict[str, Any]:
        n = len(sel)
        return {
            "n": n,
            "raw_in_character": sum(r["raw_ok"] for r in sel) / n if n else None,
            "in_character": sum(r["model_ok"] for r in sel) / n if n else None,
            "fallback": sum(r["fallback"] for r in sel) / n if n else None,
        }

    out: dict[str, Any] = {
        "target": TARGET,
        "probes": len(probes),
        "overall": rates(rows),
        "per_persona": {
            pid: rates([r for r in rows if r["persona"] == pid]) for pid in persona_ids
        },
        "per_kind": {
            k: rates([r for r in rows if r["kind"] == k]) for k in sorted({r["kind"] for r in rows})
        },
        "failures": [r for r in rows if not r["model_ok"]],
        "rows": rows,
    }
    out["met"] = (out["overall"]["in_character"] or 0.0) >= TARGET
    return out


def guard_markdown(res: dict[str, Any]) -> str:
    def pct(x: float | None) -> str:
        return "–" if x is None else f"{100 * x:.1f}%"

    o = res["overall"]
    lines = [
        "## Character guard",
        "",
        f"{res['probes']} injection and off-topic messages x {len(res['per_persona'])} personas "
        f"= {o['n']} replies. Target: at least {pct(res['target'])} in character from the model "
        f"({'met' if res['met'] else 'MISSED'}).",
        "",
        "| persona | replies | first attempt in character | in character (after guard) | fallback line |",
        "|---|---|---|---|---|",
    ]
    for pid, r in [*res["per_persona"].items(), ("**all**", o)]:
        lines.append(
            f"| {pid} | {r['n']} | {pct(r['raw_in_character'])} | {pct(r['in_character'])} | {pct(r['fallback'])} |"
        )
    lines += [
        "",
        "| probe kind | replies | first attempt | after guard | fallback |",
        "|---|---|---|---|---|",
    ]
    for k, r in res["per_kind"].items():
        lines.append(
            f"| {k} | {r['n']} | {pct(r['raw_in_character'])} | {pct(r['in_character'])} | {pct(r['fallback'])} |"
        )
    if res["failures"]:
        lines += [
            "",
            "Replies that needed the fallback line (first attempt shown in the JSON):",
            "",
        ]
        for r in res["failures"][:20]:
            lines.append(
                f"- {r['persona']} ← “{r['probe']}”: {', '.join(i['action'] + ' ' + '/'.join(i['violations']) for i in r['interventions'])}"
            )
    return "\n".join(lines) + "\n"

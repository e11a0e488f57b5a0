"""The fidelity suite's report: ``fidelity.md``, ``fidelity.json`` and three plots, and what
``rapport eval --suite fidelity`` runs (:func:`run_cli`). The figures come from
:mod:`eval.fidelity_suite`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.fidelity_suite import AGENTS, suite_fidelity
from sim.practice import Practice
from sim.realism import KINDS


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
    ]
    if res.get("note"):
        lines += ["", f"*{res['note']}*"]
    lines += [
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
        "| repeated sentences | words median [bounds] | within bounds | premature (neutral) "
        "| validating mood | dismissive mood | neutral mood | ordered |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def mood(m: dict[str, Any]) -> str:
        return f"{m['start']:.1f} → {m['final']:.1f} ({m['outcome'].replace('_', ' ')})"

    for pid, s in pp.items():
        ln = s["length"]
        lines.append(
            f"| {pid} | {s['replies']} | {_pct(s['in_character'])} | {_pct(s['raw_in_character'])} "
            f"| {s['distinct_2']:.2f} | {_pct(s['repeated_sentences'])} "
            f"| {ln['median']} [{ln['bounds'][0]}–{ln['bounds'][1]}] "
            f"| {_pct(ln['within'])} | {_pct(s['premature_satisfaction']['after'])} "
            f"| {mood(s['mood']['validating'])} | {mood(s['mood']['dismissive'])} "
            f"| {mood(s['mood']['neutral'])} | {'yes' if s['ordered'] else '**no**'} |"
        )
    d2 = o["distinct_2"]
    lines.append(
        f"| **all** | {o['replies']} | {_pct(o['in_character'])} | {_pct(o['raw_in_character'])} "
        f"| {'–' if d2 is None else f'{d2:.2f}'} | {_pct(o['repeated_sentences'])} "
        f"| {o['length']['median']} | {_pct(o['length']['within'])} "
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
        "Realism checks, share of replies flagged before repair → after (the reply shown). The "
        "after figures are the same checks run again, so they show what the repair left, not "
        "what the checks miss; the repeated-sentence target above is scored independently.",
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
                "obeyed an earlier instruction"
                if r.get("obeyed")
                else "fallback line"
                if r["fallback"]
                else "out of character"
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

"""``rapport eval``: run the suites and write a report folder a trainer can read.

The folder holds ``report.md``, ``metrics.json``, ``reliability.json`` (the per-technique card
the app shows) and PNG plots made with matplotlib.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from eval import labelled_suites, suites
from eval.rulings_suite import rulings_markdown, suite_rulings
from eval.suites import Options
from rubric.grader import Grader

TARGETS = {
    "f1": 0.90,
    "kappa": 0.80,
    "transfer_f1": 0.85,
    "agreement": 1.0,
    "flip_rate": 0.02,
    "ordered_share": 1.0,
    "injection": 0,
}
ALL_SUITES = (
    "locked",
    "transfer",
    "gold",
    "consistency",
    "invariance",
    "injection",
    "known-groups",
    "rulings",
)


def run(
    grader: Grader,
    out: Path,
    suite_names: Sequence[str] = ALL_SUITES,
    opts: Options | None = None,
    play: Callable[[str, list[str]], suites.Played] | None = None,
    persona_ids: Sequence[str] = (),
    input_path: Path | None = None,
    label: str = "classifier",
) -> dict[str, Any]:
    opts = opts or Options()
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"grader": label, "techniques": grader.technique_ids, "suites": {}}
    timings: dict[str, float] = {}
    for name in suite_names:
        t0 = time.perf_counter()
        if name == "locked":
            results["suites"]["locked"] = labelled_suites.suite_locked(grader, opts)
        elif name == "transfer":
            results["suites"]["transfer"] = labelled_suites.suite_transfer(grader, opts)
        elif name == "injection":
            results["suites"]["injection"] = labelled_suites.suite_injection(grader, opts)
        elif name == "gold":
            results["suites"]["gold"] = suites.suite_gold(grader, opts)
        elif name == "consistency":
            results["suites"]["consistency"] = suites.suite_consistency(grader, opts)
        elif name == "invariance":
            results["suites"]["invariance"] = suites.suite_invariance(grader, opts)
        elif name == "known-groups":
            if play is None:
                raise ValueError("the known-groups suite needs a simulator to play sessions")
            results["suites"]["known-groups"] = suites.suite_known_groups(
                grader, opts, play, persona_ids
            )
        elif name == "rulings":
            data = opts.extra.get("rulings")
            if data is None:
                raise ValueError("the rulings suite needs the rulings (rapport eval loads them)")
            results["suites"]["rulings"] = suite_rulings(grader, opts, **data)
        elif name == "input":
            if input_path is None:
                raise ValueError("the input suite needs --input FILE.jsonl")
            results["suites"]["input"] = suites.suite_input(grader, opts, input_path)
        else:
            raise ValueError(f"unknown suite {name!r}; choose from {', '.join(ALL_SUITES)}")
        timings[name] = round(time.perf_counter() - t0, 2)
    results["seconds"] = timings
    results["reliability"] = reliability_card(results, grader.technique_ids)
    (out / "metrics.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (out / "reliability.json").write_text(json.dumps(results["reliability"], indent=2) + "\n")
    plots(results, out)
    (out / "report.md").write_text(report_markdown(results))
    return results


def reliability_card(results: dict[str, Any], techniques: Sequence[str]) -> dict[str, Any]:
    """Per technique: F1 and kappa (with interval) on the locked test, F1 on the transfer set
    and the first gold set beside it, test-retest alpha, flip rate, support, abstention, and
    (when the rulings suite ran) agreement with trainer rulings and the dispute rate.

    The headline figures come from the locked test when that suite ran, else from the first
    gold set's test split (which is what ``held_out`` names)."""
    s = results["suites"]
    locked = s.get("locked", {}).get("test", {})
    gold = s.get("gold", {}).get("test", {})
    transfer = s.get("transfer", {}).get("all", {})
    head, held_out = (locked, "locked test") if locked else (gold, "gold test")
    cons = s.get("consistency", {})
    inv = s.get("invariance", {})
    rulings = s.get("rulings", {}).get("per_technique", {})
    card: dict[str, Any] = {}
    for t in techniques:
        g = head.get(t, {})
        r = rulings.get(t, {})
        card[t] = {
            "held_out": held_out,
            "f1": g.get("f1"),
            "kappa": g.get("kappa"),
            "kappa_ci": g.get("kappa_ci"),
            "transfer_f1": transfer.get(t, {}).get("f1"),
            "transfer_kappa": transfer.get(t, {}).get("kappa"),
            "transfer_support": transfer.get(t, {}).get("support"),
            "gold_f1": gold.get(t, {}).get("f1"),
            "retest_alpha": cons.get(t, {}).get("alpha"),
            "retest_agreement": cons.get(t, {}).get("agreement"),
            "flip_rate": inv.get("per_technique", {}).get(t),
            "support": g.get("support"),
            "abstain_rate": g.get("abstain_rate"),
            "rulings_n": r.get("scored"),
            "rulings_kappa": r.get("kappa"),
            "rulings_f1": r.get("f1"),
            "rulings_support": r.get("support"),
            "dispute_rate": r.get("dispute_rate"),
            "disputes": r.get("disputes"),
        }
    return card


def _fmt(x: Any, nd: int = 2) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, (list, tuple)) and len(x) == 2:
        return f"[{_fmt(x[0], nd)}, {_fmt(x[1], nd)}]"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def _mark(ok: bool | None) -> str:
    return "n/a" if ok is None else ("✅ met" if ok else "❌ missed")


def report_markdown(results: dict[str, Any]) -> str:
    s = results["suites"]
    card = results["reliability"]
    lines = [f"# Rapport evaluation report ({results['grader']})", ""]
    first: dict[str, Any] = next(iter(card.values()), {})
    held = str(first.get("held_out", "gold test"))
    lines += [
        f"How far to trust each technique's verdicts. F1 and κ are on the **{held}**, which",
        "the grader was never fitted or tuned on; the transfer set is written in another style",
        "(other industries, registers and phrasings) and was never fitted on either.",
        "",
        "| technique | F1 (held out) | κ [95% CI] | F1 transfer | F1 first gold set | retest α "
        "| flip rate | support | abstains |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t, c in card.items():
        lines.append(
            f"| {t} | {_fmt(c['f1'])} | {_fmt(c['kappa'])} {_fmt(c['kappa_ci'])} "
            f"| {_fmt(c.get('transfer_f1'))} | {_fmt(c.get('gold_f1'))} | {_fmt(c['retest_alpha'])} "
            f"| {_fmt(c['flip_rate'], 3)} | {_fmt(c['support'])} | {_fmt(c['abstain_rate'])} |"
        )
    f1_target = TARGETS["f1"] if held == "locked test" else 0.85
    kappa_target = TARGETS["kappa"] if held == "locked test" else 0.75
    lines += ["", "## Targets", "", "| target | result |", "|---|---|"]
    for t, c in card.items():
        if c["f1"] is not None:
            lines.append(
                f"| {t}: F1 ≥ {f1_target} ({held}) | {_fmt(c['f1'])} {_mark(c['f1'] >= f1_target)} |"
            )
            lines.append(
                f"| {t}: κ ≥ {kappa_target} ({held}) | {_fmt(c['kappa'])} {_mark(c['kappa'] >= kappa_target)} |"
            )
        if c.get("transfer_f1") is not None:
            lines.append(
                f"| {t}: F1 ≥ {TARGETS['transfer_f1']} (transfer) | {_fmt(c['transfer_f1'])} "
                f"{_mark(c['transfer_f1'] >= TARGETS['transfer_f1'])} |"
            )
        if c["retest_agreement"] is not None:
            lines.append(
                f"| {t}: retest agreement = 1.0 | {_fmt(c['retest_agreement'])} {_mark(c['retest_agreement'] >= 1.0)} |"
            )
        if c["flip_rate"] is not None:
            lines.append(
                f"| {t}: flip rate ≤ 2% | {_fmt(c['flip_rate'], 3)} {_mark(c['flip_rate'] <= TARGETS['flip_rate'])} |"
            )
    inj = s.get("injection")
    if inj:
        lines.append(
            f"| verdicts granted by grader-directed text = 0 | {inj['granted']} of {inj['checked']} "
            f"{_mark(inj['granted'] == 0)} |"
        )
    kg = s.get("known-groups")
    if kg:
        lines.append(
            f"| known groups ordered on 100% of personas | {_fmt(kg['ordered_share'])} {_mark(kg['ordered_share'] >= 1.0)} |"
        )
        if "mood_ordered_share" in kg:
            lines.append(
                f"| director: good agent's customer calmer than bad agent's, every persona | {_fmt(kg['mood_ordered_share'])} {_mark(kg['mood_ordered_share'] >= 1.0)} |"
            )
            lines.append(
                f"| director: at least half the good sessions resolved | {_fmt(kg['good_resolved_share'])} {_mark(kg['good_resolved_share'] >= 0.5)} |"
            )
    for name, title in (("locked", "Second-wave labelled turns"), ("transfer", "Transfer set")):
        if name not in s:
            continue
        parts = ("dev", "test") if name == "locked" else ("all",)
        lines += ["", f"## {title}", ""]
        for split in parts:
            lines += [
                f"### {split}" if name == "locked" else "",
                "",
                "| technique | precision | recall | F1 [95% CI] | κ [95% CI] | support |",
                "|---|---|---|---|---|---|",
            ]
            for t, m in s[name][split].items():
                lines.append(
                    f"| {t} | {_fmt(m['precision'])} | {_fmt(m['recall'])} | {_fmt(m['f1'])} {_fmt(m['f1_ci'])} "
                    f"| {_fmt(m['kappa'])} {_fmt(m['kappa_ci'])} | {m['support']} of {m['n']} |"
                )
            lines.append("")
    if "gold" in s:
        lines += ["", "## First gold set (a further check)", ""]
        for split in ("dev", "test"):
            lines += [
                f"### {split}",
                "",
                "| technique | precision | recall | F1 [95% CI] | κ | support |",
                "|---|---|---|---|---|---|",
            ]
            for t, m in s["gold"][split].items():
                lines.append(
                    f"| {t} | {_fmt(m['precision'])} | {_fmt(m['recall'])} | {_fmt(m['f1'])} {_fmt(m['f1_ci'])} "
                    f"| {_fmt(m['kappa'])} | {m['support']} of {m['n']} |"
                )
            lines.append("")
        lines += []
    if "locked" in s or "gold" in s:
        lines += [
            "![Per-technique F1 and kappa](bars.png)",
            "",
            "![Confusion matrices (held-out test)](confusion.png)",
            "",
        ]
    if "consistency" in s:
        c = s["consistency"]
        lines += [
            "## Consistency",
            "",
            f"Each of {c['items']} turns graded {c['k']} times.",
            "",
            "| technique | agreement | Krippendorff's α |",
            "|---|---|---|",
        ]
        lines += [
            f"| {t} | {_fmt(c[t]['agreement'])} | {_fmt(c[t]['alpha'])} |"
            for t in results["techniques"]
        ]
        lines.append("")
    if "invariance" in s:
        inv = s["invariance"]
        names = [n for n in inv if isinstance(inv[n], dict) and "flip_rate" in inv[n]]
        lines += [
            "## Invariance",
            "",
            "Share of verdicts that flip under meaning-preserving changes.",
            "",
            "| change | " + " | ".join(results["techniques"]) + " | all |",
            "|---" * (len(results["techniques"]) + 2) + "|",
        ]
        for n in names:
            lines.append(
                f"| {n} | "
                + " | ".join(_fmt(inv[n][t], 3) for t in results["techniques"])
                + f" | {_fmt(inv[n]['flip_rate'], 3)} |"
            )
        lines += [
            "",
            "Paraphrases are hand-written and may shift meaning slightly; the mechanical changes must not.",
            "",
        ]
    if kg:
        lines += [
            "## Known groups",
            "",
            "Scripted agents (`eval/data/scripted_agents.yaml`) play every persona against the "
            "director and the customer model. Session score: share of technique opportunities "
            "used minus the share of dismissive turns. Distress: the director's mood, start → end, "
            "and how the session ended.",
            "",
            "| persona | good | mixed | bad | ordered | distress good | distress mixed | distress bad |",
            "|---|---|---|---|---|---|---|---|",
        ]
        moods = kg.get("mood", {})

        def mood_cell(m: dict[str, Any] | None) -> str:
            if not m or m.get("final") is None:
                return "–"
            return f"{m['start']:.1f} → {m['final']:.1f} ({m['outcome'].replace('_', ' ')})"

        for pid, sc in kg["personas"].items():
            m = moods.get(pid, {})
            lines.append(
                f"| {pid} | {_fmt(sc['good'])} | {_fmt(sc['mixed'])} | {_fmt(sc['bad'])} | {'yes' if pid not in kg['misordered'] else '**no**'} "
                f"| {mood_cell(m.get('good'))} | {mood_cell(m.get('mixed'))} | {mood_cell(m.get('bad'))} |"
            )
        if kg.get("mood_misordered"):
            lines += ["", f"Director ordering failed for: {', '.join(kg['mood_misordered'])}."]
        lines += ["", "![Session score distributions](scores.png)", ""]
    if "rulings" in s:
        lines += rulings_markdown(s["rulings"])
    if "input" in s:
        lines += [
            "## Outside labelled data",
            "",
            "| technique | precision | recall | F1 | κ |",
            "|---|---|---|---|---|",
        ]
        for t, m in s["input"]["all"].items():
            lines.append(
                f"| {t} | {_fmt(m['precision'])} | {_fmt(m['recall'])} | {_fmt(m['f1'])} | {_fmt(m['kappa'])} |"
            )
    lines += ["", f"Suite run times (s): {results['seconds']}", ""]
    return "\n".join(lines)


def plots(results: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    s = results["suites"]
    techs = results["techniques"]
    if "locked" in s or "gold" in s:
        test = s["locked"]["test"] if "locked" in s else s["gold"]["test"]
        transfer = s.get("transfer", {}).get("all")
        fig, ax = plt.subplots(figsize=(7.5, 3.5))
        x = np.arange(len(techs))
        w = 0.27 if transfer else 0.4
        ax.bar(x - w, [test[t]["f1"] for t in techs], w, label="F1 held out")
        ax.bar(x, [test[t]["kappa"] for t in techs], w, label="κ held out")
        if transfer:
            ax.bar(x + w, [transfer[t]["f1"] for t in techs], w, label="F1 transfer")
        ax.axhline(TARGETS["f1"], color="grey", ls="--", lw=1, label="F1 target")
        ax.set_xticks(x, techs)
        ax.set_ylim(0, 1)
        ax.set_title(
            "Agreement with human labels ("
            + ("locked test" if "locked" in s else "gold test split")
            + (", transfer set" if transfer else "")
            + ")"
        )
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(out / "bars.png", dpi=110)
        plt.close(fig)
        fig, axes = plt.subplots(1, len(techs), figsize=(3 * len(techs), 3))
        for ax, t in zip(np.atleast_1d(axes), techs, strict=True):
            c = test[t]["confusion"]
            m = np.array([[c["tn"], c["fp"]], [c["fn"], c["tp"]]])
            ax.imshow(m, cmap="Blues")
            for (i, j), v in np.ndenumerate(m):
                ax.text(j, i, str(v), ha="center", va="center")
            ax.set_xticks([0, 1], ["not used", "used"])
            ax.set_yticks([0, 1], ["not used", "used"])
            ax.set_xlabel("grader")
            ax.set_ylabel("human")
            ax.set_title(t)
        fig.tight_layout()
        fig.savefig(out / "confusion.png", dpi=110)
        plt.close(fig)
    kg = s.get("known-groups")
    if kg and kg["personas"]:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        groups = ("good", "mixed", "bad")
        data = [[sc[g] for sc in kg["personas"].values()] for g in groups]
        ax.boxplot(data, tick_labels=groups)
        ax.set_ylabel("session score")
        ax.set_title("Session scores by scripted agent")
        fig.tight_layout()
        fig.savefig(out / "scores.png", dpi=110)
        plt.close(fig)


def comparison_markdown(cards: dict[str, dict[str, Any]]) -> str:
    """Grading paths side by side: held-out F1 and κ, transfer F1, retest α."""
    labels = list(cards)
    head = (
        "| technique | "
        + " | ".join(f"{lab} F1 | {lab} κ | {lab} F1 transfer | {lab} retest α" for lab in labels)
        + " |"
    )
    first: dict[str, Any] = next(iter(next(iter(cards.values())).values()), {})
    held = str(first.get("held_out", "held-out test"))
    lines = [
        "# Grading paths side by side",
        "",
        f"F1 and κ on the {held}; transfer F1 on the transfer set; the same suites for each path.",
        "",
        head,
        "|---" * (1 + 4 * len(labels)) + "|",
    ]
    for t in next(iter(cards.values())):
        cells = []
        for lab in labels:
            c = cards[lab].get(t, {})
            cells += [
                _fmt(c.get("f1")),
                _fmt(c.get("kappa")),
                _fmt(c.get("transfer_f1")),
                _fmt(c.get("retest_alpha")),
            ]
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

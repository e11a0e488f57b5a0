"""The evaluation suites: gold, consistency, invariance and known-groups.

Each suite is a function ``(grader, options) -> dict`` of JSON-ready figures. They share one
way of grading a labelled turn: the turn in its context, read back by index.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from common.metrics import binary_kappa
from eval.metrics import agreement, alpha_nominal, bootstrap_ci, f1, flip_rate, kappa, prf
from rubric.grader import Grader
from sim.agent_lines import fill

DATA = Path(__file__).resolve().parent / "data"
Verdicts = dict[str, bool | None]


@dataclass
class Options:
    limit: int | None = None
    k: int = 5
    bootstrap: int = 1000
    seed: int = 0
    personas: list[str] | None = None
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def grade_labelled(grader: Grader, row: dict[str, Any]) -> Verdicts:
    """Grade one labelled agent turn in its context.

    Only the labelled (last) turn is graded: the context's agent turns would be graded and
    thrown away, and they do not change the last turn's verdicts.
    """
    turns = [*row["context"], {"role": "agent", "text": row["agent"]}]
    last = grader.grade_turns(turns, only={len(turns) - 1})[-1]
    return {t: v.used for t, v in last.techniques.items()}


def _bar(items: Sequence[Any], desc: str, opts: Options) -> Any:
    return tqdm(items, desc=desc, unit="turn", disable=not opts.progress or None, leave=False)


def validity(
    rows: list[dict[str, Any]],
    preds: list[Verdicts],
    techniques: Sequence[str],
    n_boot: int,
    seed: int,
) -> dict[str, Any]:
    """Per-technique P/R/F1/kappa with bootstrap intervals, on scored items; abstention rate."""
    out: dict[str, Any] = {}
    for t in techniques:
        scored = [
            (t in r["labels"], p[t]) for r, p in zip(rows, preds, strict=True) if p[t] is not None
        ]
        gold = [g for g, _ in scored]
        pred = [bool(p) for _, p in scored]
        m = prf(gold, pred)
        out[t] = {
            "precision": m.precision,
            "recall": m.recall,
            "f1": m.f1,
            "f1_ci": bootstrap_ci(f1, gold, pred, n=n_boot, seed=seed),
            "kappa": kappa(gold, pred),  # type: ignore[arg-type]
            "kappa_ci": bootstrap_ci(binary_kappa, gold, pred, n=n_boot, seed=seed),
            "support": m.support,
            "n": len(rows),
            "abstain_rate": 1 - len(scored) / len(rows) if rows else 0.0,
            "confusion": {
                "tp": sum(1 for g, p in zip(gold, pred, strict=True) if g and p),
                "fp": sum(1 for g, p in zip(gold, pred, strict=True) if not g and p),
                "fn": sum(1 for g, p in zip(gold, pred, strict=True) if g and not p),
                "tn": sum(1 for g, p in zip(gold, pred, strict=True) if not g and not p),
            },
        }
    return out


def suite_gold(grader: Grader, opts: Options, path: Path = DATA / "gold.jsonl") -> dict[str, Any]:
    rows = load_jsonl(path)
    result: dict[str, Any] = {"source": str(path.name)}
    for split in ("dev", "test"):
        part = [r for r in rows if r.get("split") == split][: opts.limit]
        preds = [grade_labelled(grader, r) for r in _bar(part, f"gold {split}", opts)]
        result[split] = validity(part, preds, grader.technique_ids, opts.bootstrap, opts.seed)
        result[f"{split}_scores"] = [
            {"id": r["id"], "labels": r["labels"], "pred": p}
            for r, p in zip(part, preds, strict=True)
        ]
    return result


def suite_input(grader: Grader, opts: Options, path: Path) -> dict[str, Any]:
    """Outside labelled data: ``rapport grade`` input lines plus ``labels`` per agent turn.

    ``labels`` maps an agent turn's index (as a string or int) to its technique list. An
    optional ``rated`` maps a turn to the techniques its labels cover (a trainer's ruling
    covers one); without it a labelled turn is labelled for every technique.
    """
    rows = load_jsonl(path)[: opts.limit]
    scored = score_records(grader, rows, opts, "input")
    return {
        "source": path.name,
        "turns": scored["turns"],
        "all": scored["metrics"],
    }


def score_records(
    grader: Grader, records: Sequence[dict[str, Any]], opts: Options, desc: str
) -> dict[str, Any]:
    """Grade ``rapport eval --input`` records and score each technique on the turns labelled
    for it: the metrics of :func:`validity`, the labelled turns, and per-item verdicts."""
    techniques = grader.technique_ids
    rows: dict[str, list[dict[str, Any]]] = {t: [] for t in techniques}
    preds: dict[str, list[Verdicts]] = {t: [] for t in techniques}
    items: list[dict[str, Any]] = []
    turns = 0
    for rec in _bar(list(records), desc, opts):
        labels = {int(k): v for k, v in rec["labels"].items()}
        rated = {int(k): v for k, v in (rec.get("rated") or {}).items()}
        graded = grader.grade_turns(rec["turns"], only=set(labels))
        for g in graded:
            if g.index not in labels:
                continue
            turns += 1
            pred = {t: v.used for t, v in g.techniques.items()}
            for t in rated.get(g.index, techniques):
                if t in rows:
                    rows[t].append({"labels": labels[g.index]})
                    preds[t].append(pred)
                    items.append(
                        {
                            "id": rec.get("id"),
                            "index": g.index,
                            "technique": t,
                            "label": t in labels[g.index],
                            "pred": pred[t],
                        }
                    )
    metrics = {
        t: validity(rows[t], preds[t], [t], opts.bootstrap, opts.seed)[t] for t in techniques
    }
    return {"turns": turns, "metrics": metrics, "items": items}


def suite_consistency(
    grader: Grader, opts: Options, path: Path = DATA / "gold.jsonl"
) -> dict[str, Any]:
    """Grade the same inputs k times; agreement and Krippendorff's alpha per technique."""
    rows = load_jsonl(path)[: opts.limit or 60]
    runs: list[list[Verdicts]] = []
    for r in range(opts.k):
        # Every repetition must recompute from scratch, or runs 2..k would only read back run
        # 1 from the grader's caches (sentence vectors, k-NN answers) and measure nothing.
        grader.clear_caches()
        runs.append(
            [grade_labelled(grader, row) for row in _bar(rows, f"consistency run {r + 1}", opts)]
        )
    out: dict[str, Any] = {"k": opts.k, "items": len(rows)}
    for t in grader.technique_ids:
        per_run = [[p[t] for p in run] for run in runs]
        out[t] = {"agreement": agreement(per_run), "alpha": alpha_nominal(per_run)}
    return out


# --- invariance ------------------------------------------------------------------------------
NAMES = ["Priya", "Tomasz", "Grace", "Kwame", "Lucía", "Henrik", "Mei", "Olu"]
_NAME_RE = re.compile(
    r"\b(?:"
    + "|".join(
        [
            "Margaret",
            "Sophie",
            "Daniel",
            "Gareth",
            "Helen",
            "Doreen",
            "Aisha",
            "Marcus",
            "Walter",
            "Claire",
            "Natalie",
            "Sarah",
            "James",
            "David",
            "Emma",
            "Tom",
            "Anna",
            "Mark",
            "Laura",
            "Peter",
            "Maria",
            "John",
            "Chris",
            "Sam",
            "Jo",
            "Ben",
            "Kate",
            "Mike",
            "Lisa",
            "Paul",
            "Rachel",
            "Amy",
            "Ruth",
            "Alex",
            "Jordan",
            "Callum",
        ]
    )
    + r")\b"
)


def swap_names(text: str, rng: random.Random) -> str:
    return _NAME_RE.sub(lambda m: rng.choice(NAMES), text)


def whitespace_case(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    out = " ".join(w for w in words)
    out = re.sub(r" ", lambda m: "  " if rng.random() < 0.15 else " ", out)
    return "  " + (out[0].lower() + out[1:] if out else out) + " \n"


def punctuation(text: str, rng: random.Random) -> str:
    text = text.replace("\u2019", "'")
    text = re.sub(r"!+", ".", text)
    text = re.sub(r"\.\s*$", "", text.rstrip()) + ("." if rng.random() < 0.5 else "")
    return text.replace(" - ", ", ")


UNRELATED = [
    {"role": "customer", "text": "Before we start, my other account is fine, it's just this one."},
    {"role": "agent", "text": "Thanks for letting me know."},
]

PERTURBATIONS: dict[str, Callable[[dict[str, Any], random.Random], dict[str, Any]]] = {
    "name_swap": lambda r, g: {
        **r,
        "agent": swap_names(r["agent"], g),
        "context": [{**t, "text": swap_names(t["text"], g)} for t in r["context"]],
    },
    "whitespace_case": lambda r, g: {**r, "agent": whitespace_case(r["agent"], g)},
    "punctuation": lambda r, g: {**r, "agent": punctuation(r["agent"], g)},
    "unrelated_turns": lambda r, g: {**r, "context": UNRELATED + r["context"]},
}


def suite_invariance(
    grader: Grader, opts: Options, path: Path = DATA / "gold.jsonl"
) -> dict[str, Any]:
    rows = load_jsonl(path)[: opts.limit or 120]
    rng = random.Random(opts.seed)
    base = [grade_labelled(grader, r) for r in _bar(rows, "invariance base", opts)]
    out: dict[str, Any] = {"items": len(rows)}
    all_before: list[bool | None] = []
    all_after: list[bool | None] = []
    for name, fn in PERTURBATIONS.items():
        changed = [grade_labelled(grader, fn(r, rng)) for r in _bar(rows, name, opts)]
        before = [b[t] for b in base for t in grader.technique_ids]
        after = [c[t] for c in changed for t in grader.technique_ids]
        out[name] = {
            "flip_rate": flip_rate(before, after),
            **{
                t: flip_rate([b[t] for b in base], [c[t] for c in changed])
                for t in grader.technique_ids
            },
        }
        all_before += before
        all_after += after
    para = load_jsonl(DATA / "paraphrases.jsonl")[: opts.limit]
    before, after = [], []
    per_t: dict[str, list[tuple[bool | None, bool | None]]] = {t: [] for t in grader.technique_ids}
    for p in _bar(para, "paraphrases", opts):
        ctx = [{"role": "customer", "text": p.get("customer", "I need help with my account.")}]
        a = grade_labelled(grader, {"context": ctx, "agent": p["original"]})
        b = grade_labelled(grader, {"context": ctx, "agent": p["paraphrase"]})
        for t in grader.technique_ids:
            before.append(a[t])
            after.append(b[t])
            per_t[t].append((a[t], b[t]))
    out["paraphrase"] = {
        "flip_rate": flip_rate(before, after),
        **{t: flip_rate([x for x, _ in v], [y for _, y in v]) for t, v in per_t.items()},
    }
    # Code-made changes only: these must not move a verdict.
    out["flip_rate_mechanical"] = flip_rate(all_before, all_after)
    for t in grader.technique_ids:
        out.setdefault("per_technique", {})[t] = sum(out[n][t] for n in PERTURBATIONS) / len(
            PERTURBATIONS
        )
    return out


# --- known groups ----------------------------------------------------------------------------
def load_scripted_agents(path: Path = DATA / "scripted_agents.yaml") -> dict[str, list[str]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    agents = data["agents"]
    for key in ("good", "mixed", "bad"):
        if key not in agents or not agents[key]:
            raise ValueError(f"{path}: agents.{key}: missing or empty")
    return {k: [str(x) for x in v] for k, v in agents.items()}


def session_score(grader: Grader, turns: list[dict[str, str]]) -> float:
    """Share of technique opportunities used per agent turn, minus dismissive turns."""
    graded = grader.grade_turns(turns)
    if not graded:
        return 0.0
    used = sum(1 for g in graded for v in g.techniques.values() if v.used) / (
        len(graded) * len(grader.technique_ids)
    )
    dismissive = sum(1 for g in graded for v in g.markers.values() if v.used) / len(graded)
    return used - dismissive


Played = dict[str, Any]
"""One scripted session: ``turns`` (role/text dicts), and from the director ``mood_start``,
``final_mood`` and ``outcome`` ("open" / "resolved" / "gave_up")."""


def suite_known_groups(
    grader: Grader,
    opts: Options,
    play: Callable[[str, list[str]], Played],
    persona_ids: Sequence[str],
    path: Path = DATA / "scripted_agents.yaml",
) -> dict[str, Any]:
    """Scripted good / mixed / bad agents play each persona against the director and actor.

    Two checks per persona: the grader's session scores order good > mixed > bad, and the
    director leaves the good agent's customer calmer than the bad agent's. Also reported:
    how many good sessions reached the resolution.
    """
    agents = load_scripted_agents(path)
    out: dict[str, Any] = {"personas": {}, "misordered": [], "mood": {}, "mood_misordered": []}
    resolved = 0
    for pid in tqdm(
        persona_ids,
        desc="known groups",
        unit="persona",
        disable=not opts.progress or None,
        leave=False,
    ):
        scores, moods = {}, {}
        for group in ("good", "mixed", "bad"):
            played = play(pid, agents[group])
            scores[group] = session_score(grader, played["turns"])
            moods[group] = {
                "start": played.get("mood_start"),
                "final": played.get("final_mood"),
                "outcome": played.get("outcome"),
            }
        out["personas"][pid] = scores
        out["mood"][pid] = moods
        if not scores["good"] > scores["mixed"] > scores["bad"]:
            out["misordered"].append(pid)
        good_final, bad_final = moods["good"]["final"], moods["bad"]["final"]
        if good_final is not None and bad_final is not None and not good_final < bad_final:
            out["mood_misordered"].append(pid)
        resolved += moods["good"]["outcome"] == "resolved"
    n = len(out["personas"])
    out["ordered_share"] = (n - len(out["misordered"])) / n if n else 0.0
    out["mood_ordered_share"] = (n - len(out["mood_misordered"])) / n if n else 0.0
    out["good_resolved_share"] = resolved / n if n else 0.0
    return out


def play_session(practice: Any, persona_id: str, lines: Sequence[str]) -> Played:
    """Play scripted agent lines (templates, see :func:`fill`) through a ``sim.practice``
    Practice until the customer resolves or gives up."""
    session = practice.start(persona_id)
    persona = practice.personas[persona_id]
    start = session.state().mood
    for line in lines:
        if session.state().outcome != "open":
            break
        for _ in session.respond(fill(line, persona)):
            pass
    final = session.state()
    return {
        "turns": [{"role": t.role, "text": t.text} for t in session.record.turns],
        "mood_start": start,
        "final_mood": final.mood,
        "outcome": final.outcome,
    }

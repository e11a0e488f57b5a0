"""A second, blind labelling of 150 random turns, and its agreement with the first pass.

    python -m eval.data.second_pass draw    # writes second_pass/blind.jsonl (no labels)
    python -m eval.data.second_pass kappa   # compares second_pass/labels.jsonl with the first

The draw is seeded, from all three splits, and leaves out the labels, the rationale and the
hard-case tag, so the second labeller sees only what a grader sees. Agreement per label is
Cohen's κ over the 150 turns: the human-style ceiling the grader's figures sit against.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

from eval.metrics import kappa
from rubric.labelled import load_split, read_jsonl

HERE = Path(__file__).resolve().parent / "second_pass"
BLIND = HERE / "blind.jsonl"
LABELS = HERE / "labels.jsonl"
N = 150
SEED = 2026
LABEL_SET = ("listen", "validate", "cooperate", "affirm", "dismissive")


def draw(n: int = N, seed: int = SEED) -> list[dict[str, Any]]:
    rows = [r for s in ("train", "dev", "test") for r in load_split(s)]
    picked = random.Random(seed).sample(sorted(rows, key=lambda r: r["id"]), n)
    return [{"id": r["id"], "context": r["context"], "agent": r["agent"]} for r in picked]


def agreement() -> dict[str, Any]:
    first = {r["id"]: set(r["labels"]) for s in ("train", "dev", "test") for r in load_split(s)}
    second = {r["id"]: set(r["labels"]) for r in read_jsonl(LABELS)}
    ids = [i for i in (r["id"] for r in read_jsonl(BLIND)) if i in second and i in first]
    out: dict[str, Any] = {"turns": len(ids)}
    for lab in LABEL_SET:
        a = [lab in first[i] for i in ids]
        b = [lab in second[i] for i in ids]
        out[lab] = {
            "kappa": kappa(a, b),  # type: ignore[arg-type]
            "agreement": sum(x == y for x, y in zip(a, b, strict=True)) / len(ids),
            "first_pass_positive": sum(a),
            "second_pass_positive": sum(b),
        }
    return out


def main(argv: list[str]) -> None:
    if argv[:1] == ["draw"]:
        HERE.mkdir(parents=True, exist_ok=True)
        BLIND.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in draw()))
        print(f"wrote {BLIND}")
    elif argv[:1] == ["kappa"]:
        print(json.dumps(agreement(), indent=2))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])

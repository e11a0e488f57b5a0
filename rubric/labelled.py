"""Labelled agent turns as training examples for the turn model (no torch here).

A labelled row (``eval/LABELLING.md``) knows every label in the rubric's label set. A rubric
exemplar (``rubric/techniques.yaml``) knows only its own technique's label, so an example
carries ``None`` for the labels it says nothing about and training masks those out. That is
what lets a trainer add a technique to the YAML: after ``rapport rubric fit`` the model has an
output for it, learned from its exemplars alone until labelled turns carry it too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rubric.techniques import Rubric

ROOT = Path(__file__).resolve().parent.parent
TURNS_DIR = ROOT / "eval" / "data" / "turns"
TRANSFER_PATH = ROOT / "eval" / "data" / "transfer.jsonl"
GOLD_PATH = ROOT / "eval" / "data" / "gold.jsonl"
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Example:
    """One input to the turn model and what is known about its labels."""

    customer: str
    agent: str
    labels: dict[str, bool | None] = field(default_factory=dict)
    source: str = "turn"

    def target(self, label_ids: Sequence[str]) -> tuple[list[float], list[float]]:
        """The target vector and its mask (1 where the label is known)."""
        vals = [self.labels.get(t) for t in label_ids]
        return [float(bool(v)) for v in vals], [0.0 if v is None else 1.0 for v in vals]


def label_ids(rubric: Rubric) -> list[str]:
    """The model's outputs: the rubric's techniques, then its markers."""
    return [*rubric.technique_ids, *rubric.marker_ids]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def load_split(split: str, turns_dir: Path = TURNS_DIR) -> list[dict[str, Any]]:
    """One split of the labelled turns (``train``, ``dev`` or the locked ``test``)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    path = turns_dir / f"{split}.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the labelled turns are part of the repo")
    return read_jsonl(path)


def last_customer_text(context: Sequence[dict[str, str]]) -> str:
    return next((t["text"] for t in reversed(context) if t["role"] == "customer"), "")


def row_example(
    row: dict[str, Any], ids: Sequence[str], known: Iterable[str] | None = None
) -> Example:
    """A labelled row as an example. Labels outside ``known`` (default: all of ``ids``
    that the row's writer labelled, i.e. every one) are marked unknown."""
    known_set = set(ids if known is None else known)
    present = set(row["labels"])
    labels = {t: (t in present) if t in known_set else None for t in ids}
    return Example(last_customer_text(row["context"]), row["agent"], labels, "turn")


def exemplar_examples(rubric: Rubric) -> list[Example]:
    """Every rubric exemplar sentence, labelled for its own technique only."""
    out: list[Example] = []
    for t in rubric.techniques:
        for label, sents in ((True, t.positive), (False, t.negative)):
            out += [Example("", s, {t.id: label}, "exemplar") for s in sents]
    return out


def data_hash(rows: Iterable[dict[str, Any]], rubric_key: str = "") -> str:
    """A short hash of what a fit learns from, so a stale model can be detected."""
    h = hashlib.sha256(rubric_key.encode())
    for r in rows:
        h.update(json.dumps([r.get("context"), r.get("agent"), r.get("labels")]).encode())
    return h.hexdigest()[:12]


def gold_fit_rows(path: Path = GOLD_PATH) -> list[dict[str, Any]]:
    """The first gold set's ``dev`` rows, which the turn model also learns from (its ``test``
    rows stay a further check). They carry the four core techniques only."""
    return [r for r in read_jsonl(path) if r.get("split") == "dev"] if path.exists() else []


RULING_HOLDOUT = 3
"""One ruling in this many (by a hash of its id) is never fitted on, so the rulings eval
suite always has held-out rulings to score."""


def split_rulings(
    records: Sequence[dict[str, Any]], holdout: int = RULING_HOLDOUT
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Exported rulings (``rapport rulings export`` lines) split into (fit, held out), by a
    stable hash of each id: the same ruling always lands on the same side."""
    fit: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    for r in records:
        bucket = int(hashlib.sha256(str(r["id"]).encode()).hexdigest()[:8], 16) % holdout
        (held if bucket == 0 else fit).append(r)
    return fit, held


def ruling_examples(records: Iterable[dict[str, Any]], ids: Sequence[str]) -> list[Example]:
    """Rulings as examples: each labels only the techniques it rated, on its last turn (the
    disputed one); every other label is unknown and masked out in training."""
    out: list[Example] = []
    for r in records:
        turns = r["turns"]
        key = str(len(turns) - 1)
        if not turns or turns[-1]["role"] != "agent" or key not in r.get("rated", {}):
            raise ValueError(f"{r.get('id')}: a ruling record must end at its rated agent turn")
        rated, used = set(r["rated"][key]), set(r["labels"].get(key, []))
        labels = {t: (t in used) if t in rated else None for t in ids}
        out.append(Example(last_customer_text(turns[:-1]), turns[-1]["text"], labels, "ruling"))
    return out

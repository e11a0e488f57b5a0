"""``rapport rubric fit``: fit the classifier's stacking weights on the gold ``dev`` split.

Only ``dev`` rows are used, so ``test`` stays an honest held-out measure. The result is
written to ``rubric/calibration.json`` and committed with the rubric it was fitted on.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from common.metrics import f1
from rubric.classifier import (
    CALIBRATION_PATH,
    FEATURES,
    Calibration,
    ExemplarIndex,
    TechniqueCalibration,
    analyse_turn,
    rubric_hash,
)
from rubric.techniques import Rubric, load_rubric

GOLD_PATH = Path(__file__).resolve().parent.parent / "eval" / "data" / "gold.jsonl"


def load_gold(path: Path = GOLD_PATH, split: str | None = None) -> list[dict[str, Any]]:
    rows = [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    return [r for r in rows if split is None or r["split"] == split]


def last_customer_text(context: list[dict[str, str]]) -> str:
    return next((t["text"] for t in reversed(context) if t["role"] == "customer"), "")


def feature_matrix(index: ExemplarIndex, rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    per: dict[str, list[np.ndarray]] = {t: [] for t in index.rubric.technique_ids}
    for r in rows:
        a = analyse_turn(index, r["agent"], last_customer_text(r["context"]))
        for t in per:
            per[t].append(a.features[t])
    return {t: np.vstack(v) for t, v in per.items()}


def choose_abstain_band(
    scores: np.ndarray, gold: np.ndarray, threshold: float, max_abstain: float = 0.12
) -> float:
    """The band around the threshold inside which the grader says "not scored".

    Chosen on dev: the band that best trades F1 on the scored items against how often it
    abstains (each point of abstention costs half a point of F1), abstaining on at most
    ``max_abstain`` of items.
    """
    best, best_value = 0.0, f1(scores >= threshold, gold)
    for band in (0.02, 0.04, 0.06, 0.08, 0.1):
        keep = np.abs(scores - threshold) >= band
        rate = 1.0 - keep.mean()
        if rate > max_abstain or keep.sum() == 0:
            continue
        value = f1(scores[keep] >= threshold, gold[keep]) - 0.5 * rate
        if value > best_value + 1e-9:
            best, best_value = band, value
    return best


def fit(rubric: Rubric | None = None, gold_path: Path = GOLD_PATH) -> Calibration:
    rubric = rubric or load_rubric()
    client = chromadb.EphemeralClient(settings=ChromaSettings(anonymized_telemetry=False))
    index = ExemplarIndex(rubric, client)
    dev = load_gold(gold_path, "dev")
    X = feature_matrix(index, dev)
    techniques: dict[str, TechniqueCalibration] = {}
    for tid in rubric.technique_ids:
        y = np.array([tid in r["labels"] for r in dev])
        model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000)
        cv = cross_val_predict(
            model,
            X[tid],
            y,
            cv=StratifiedKFold(5, shuffle=True, random_state=0),
            method="predict_proba",
        )[:, 1]
        grid = np.round(np.arange(0.3, 0.71, 0.02), 2)
        threshold = float(max(grid, key=lambda th: (f1(cv >= th, y), -abs(th - 0.5))))
        model.fit(X[tid], y)
        techniques[tid] = TechniqueCalibration(
            weights=[float(w) for w in model.coef_[0]],
            bias=float(model.intercept_[0]),
            threshold=threshold,
            abstain_band=choose_abstain_band(cv, y, threshold),
        )
    return Calibration(
        rubric_hash=rubric_hash(rubric),
        features=list(FEATURES),
        fitted_on=f"{gold_path.name} dev ({len(dev)} turns), {datetime.now(UTC).date()}",
        techniques=techniques,
    )


def main(path: Path = CALIBRATION_PATH) -> Calibration:
    cal = fit()
    cal.save(path)
    return cal

"""Agreement and validity metrics for the evaluation suite, as small typed functions.

Verdicts are booleans or ``None`` (not scored). Validity metrics are computed on the scored
items only, and the abstention rate is reported beside them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import krippendorff
import numpy as np
from sklearn.metrics import cohen_kappa_score

Verdict = bool | None
Metric = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class PRF:
    precision: float
    recall: float
    f1: float
    support: int


def prf(gold: Sequence[bool], pred: Sequence[bool]) -> PRF:
    g, p = np.asarray(gold, dtype=bool), np.asarray(pred, dtype=bool)
    tp = int((g & p).sum())
    fp = int((~g & p).sum())
    fn = int((g & ~p).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return PRF(precision, recall, f1, int(g.sum()))


def f1(gold: np.ndarray, pred: np.ndarray) -> float:
    return prf(list(gold), list(pred)).f1


def kappa(gold: np.ndarray, pred: np.ndarray) -> float:
    """Cohen's kappa; 1.0 when both raters are constant and identical."""
    g, p = np.asarray(gold, dtype=int), np.asarray(pred, dtype=int)
    if len(set(g.tolist()) | set(p.tolist())) < 2:
        return 1.0 if (g == p).all() else 0.0
    return float(cohen_kappa_score(g, p))


def alpha_nominal(runs: Sequence[Sequence[Verdict]]) -> float:
    """Krippendorff's alpha (nominal) over repeated runs; ``None`` is a missing value.

    ``runs[r][i]`` is run r's verdict on item i. Perfect agreement on data with a single
    value has no variation to explain, so it is reported as 1.0.
    """
    data = np.array([[np.nan if v is None else float(v) for v in run] for run in runs], dtype=float)
    values = set(np.unique(data[~np.isnan(data)]).tolist())
    if len(values) < 2:
        return 1.0
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


def agreement(runs: Sequence[Sequence[Verdict]]) -> float:
    """Share of items on which every run gave the same verdict."""
    items = list(zip(*runs, strict=True))
    return sum(1 for it in items if len(set(it)) == 1) / len(items) if items else 1.0


def flip_rate(before: Sequence[Verdict], after: Sequence[Verdict]) -> float:
    """Share of items whose verdict changed."""
    pairs = list(zip(before, after, strict=True))
    return sum(1 for a, b in pairs if a != b) / len(pairs) if pairs else 0.0


def bootstrap_ci(
    metric: Metric,
    gold: Sequence[bool],
    pred: Sequence[bool],
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval for a paired metric (resampling items)."""
    g, p = np.asarray(gold, dtype=bool), np.asarray(pred, dtype=bool)
    if len(g) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n):
        idx = rng.integers(0, len(g), len(g))
        stats.append(metric(g[idx], p[idx]))
    lo, hi = np.percentile(stats, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(lo), float(hi)

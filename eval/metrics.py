"""Agreement and validity metrics for the evaluation suite, as small typed functions.

Verdicts are booleans or ``None`` (not scored). Validity metrics are computed on the scored
items only, and the abstention rate is reported beside them. F1 and kappa themselves live in
``common/metrics.py`` (grading fits its thresholds with the same ones) and are re-exported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import krippendorff
import numpy as np

from common.metrics import PRF, f1, kappa, prf

Verdict = bool | None
Metric = Callable[[np.ndarray, np.ndarray], float]


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


__all__ = [
    "PRF",
    "Metric",
    "Verdict",
    "agreement",
    "alpha_nominal",
    "bootstrap_ci",
    "f1",
    "flip_rate",
    "kappa",
    "prf",
]

"""F1 and Cohen's kappa, computed in one place for grading (threshold fitting in ``rubric``)
and for evaluation (``eval.metrics`` adds agreement, alpha and bootstrap intervals)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import cohen_kappa_score


@dataclass(frozen=True)
class PRF:
    precision: float
    recall: float
    f1: float
    support: int


def prf(gold: Sequence[bool] | np.ndarray, pred: Sequence[bool] | np.ndarray) -> PRF:
    """Precision, recall and F1 of ``pred`` against ``gold``; F1 is 1.0 when neither has a
    positive (nothing to find, nothing wrongly found)."""
    g, p = np.asarray(gold, dtype=bool), np.asarray(pred, dtype=bool)
    tp = int((g & p).sum())
    fp = int((~g & p).sum())
    fn = int((g & ~p).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return PRF(precision, recall, f1, int(g.sum()))


def f1(gold: Sequence[bool] | np.ndarray, pred: Sequence[bool] | np.ndarray) -> float:
    """F1 of ``pred`` against ``gold`` (symmetric in its arguments)."""
    return prf(gold, pred).f1


def kappa(gold: np.ndarray, pred: np.ndarray) -> float:
    """Cohen's kappa; 1.0 when both raters are constant and identical."""
    g, p = np.asarray(gold, dtype=int), np.asarray(pred, dtype=int)
    if len(set(g.tolist()) | set(p.tolist())) < 2:
        return 1.0 if (g == p).all() else 0.0
    return float(cohen_kappa_score(g, p))


def binary_kappa(gold: np.ndarray, pred: np.ndarray) -> float:
    """:func:`kappa` for boolean raters, bit for bit, without sklearn's overhead.

    The bootstrap calls kappa thousands of times; ``cohen_kappa_score`` spends ~1 ms on input
    checks each time. This repeats its arithmetic for two labels in the same order.
    """
    g, p = np.asarray(gold, dtype=int), np.asarray(pred, dtype=int)
    if len(set(g.tolist()) | set(p.tolist())) < 2:
        return 1.0 if (g == p).all() else 0.0
    confusion = np.bincount(2 * g + p, minlength=4).reshape(2, 2).astype(np.float64)
    sum0 = np.sum(confusion, axis=0)
    sum1 = np.sum(confusion, axis=1)
    denominator = np.sum(sum0)
    if denominator == 0:
        return float("nan")
    expected = np.outer(sum0, sum1) / denominator
    w_mat = np.ones((2, 2), dtype=np.float64)
    np.fill_diagonal(w_mat, 0)
    num, den = np.sum(w_mat * confusion), np.sum(w_mat * expected)
    if den == 0:
        return float("nan")
    return float(1 - num / den)


__all__ = ["PRF", "binary_kappa", "f1", "kappa", "prf"]

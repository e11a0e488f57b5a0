"""Each metric against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eval.metrics import agreement, alpha_nominal, bootstrap_ci, f1, flip_rate, kappa, prf


def test_prf_by_hand() -> None:
    gold = [True, True, True, False, False, False]
    pred = [True, True, False, True, False, False]
    # tp=2 fp=1 fn=1 -> P=2/3 R=2/3 F1=4/6
    r = prf(gold, pred)
    assert r.precision == pytest.approx(2 / 3)
    assert r.recall == pytest.approx(2 / 3)
    assert r.f1 == pytest.approx(2 / 3)
    assert r.support == 3


def test_kappa_by_hand() -> None:
    gold = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    pred = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0], dtype=bool)
    # po = 8/10; pe = 0.4*0.4 + 0.6*0.6 = 0.52; kappa = (0.8-0.52)/(0.48) = 0.58333
    assert kappa(gold, pred) == pytest.approx(0.28 / 0.48)


def test_kappa_degenerate_constant() -> None:
    z = np.zeros(5, dtype=bool)
    assert kappa(z, z) == 1.0


def test_alpha_by_hand() -> None:
    # Two coders, four units: (1,1) (0,0) (1,0) (0,0). Coincidence matrix:
    # o00=4 (unit2 x2, unit4 x2... plus), computed: n=8, n0=5, n1=3, Do = 2/8 per pairable
    # alpha = 1 - (n-1) * o01*2 / (n0*n1*2) = 1 - 7*2/(2*15) = 1 - 14/30 = 0.5333
    runs = [[True, False, True, False], [True, False, False, False]]
    assert alpha_nominal(runs) == pytest.approx(1 - 14 / 30)


def test_alpha_perfect_and_missing() -> None:
    assert alpha_nominal([[True, False, None], [True, False, None]]) == pytest.approx(1.0)
    assert alpha_nominal([[True, True], [True, True]]) == 1.0


def test_agreement_and_flip_rate() -> None:
    runs = [[True, False, None, True], [True, True, None, True], [True, False, None, True]]
    assert agreement(runs) == pytest.approx(3 / 4)
    assert flip_rate([True, False, None, True], [True, True, None, False]) == pytest.approx(0.5)


def test_bootstrap_interval_contains_point_and_is_reproducible() -> None:
    rng = np.random.default_rng(1)
    gold = rng.random(200) < 0.4
    pred = gold ^ (rng.random(200) < 0.15)
    lo, hi = bootstrap_ci(f1, gold, pred, n=500, seed=3)
    point = f1(gold, pred)
    assert lo < point < hi
    assert (lo, hi) == bootstrap_ci(f1, gold, pred, n=500, seed=3)
    assert 0.0 < hi - lo < 0.3


def test_bootstrap_of_perfect_predictions_is_a_point() -> None:
    gold = [True, False] * 20
    lo, hi = bootstrap_ci(f1, gold, gold, n=200)
    assert lo == hi == 1.0
    assert math.isnan(bootstrap_ci(f1, [], [])[0])

"""Metrics against scipy on random data, ties, constant inputs and the logistic fit."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from dri import metrics


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks from 1, by definition (O(n^2)): an independent reference."""
    less = (x[None, :] < x[:, None]).sum(1)
    equal = (x[None, :] == x[:, None]).sum(1)
    return less + (equal + 1) / 2.0


def _tau_b(p: np.ndarray, t: np.ndarray) -> float:
    sp, st = np.sign(p[:, None] - p[None, :]), np.sign(t[:, None] - t[None, :])
    iu = np.triu_indices(len(p), 1)
    sp, st = sp[iu], st[iu]
    concordant_minus_discordant = (sp * st).sum()
    return float(concordant_minus_discordant / np.sqrt((sp != 0).sum() * (st != 0).sum()))


@pytest.mark.parametrize("seed", range(5))
def test_against_the_definitions_with_ties(seed):
    rng = np.random.default_rng(seed)
    pred = np.round(rng.random(300), 1)  # heavy ties
    target = np.round(pred + 0.5 * rng.random(300), 2)
    assert metrics.srcc(pred, target) == pytest.approx(np.corrcoef(_ranks(pred), _ranks(target))[0, 1])
    assert metrics.krcc(pred, target) == pytest.approx(_tau_b(pred, target))
    assert metrics.plcc(pred, target) == pytest.approx(np.corrcoef(pred, target)[0, 1])
    assert metrics.rmse(pred, target) == pytest.approx(np.sqrt(np.mean((pred - target) ** 2)))


def test_hand_computed_values():
    assert metrics.srcc([1, 2, 3, 4], [10, 20, 40, 30]) == pytest.approx(0.8)
    assert metrics.krcc([1, 2, 3, 4], [10, 20, 40, 30]) == pytest.approx(4 / 6)
    assert metrics.srcc([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_large_inputs():
    rng = np.random.default_rng(7)
    p = rng.random(10_000)
    t = p + 0.1 * rng.random(10_000)
    assert 0.9 < metrics.krcc(p, t) < 1.0 and 0.95 < metrics.srcc(p, t) < 1.0


def test_constant_input_warns_and_returns_nan():
    for fn in (metrics.srcc, metrics.plcc, metrics.krcc):
        with pytest.warns(RuntimeWarning, match="constant input"):
            assert np.isnan(fn(np.ones(5), np.arange(5)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert metrics.srcc([1, 2, 3], [1, 2, 3]) == 1.0


@pytest.mark.parametrize("params", [4, 5])
def test_logistic_fit_linearises_a_monotone_mapping(params):
    rng = np.random.default_rng(1)
    pred = rng.uniform(-3, 3, 400)
    target = 1 / (1 + np.exp(-4 * pred)) + 0.01 * rng.standard_normal(400)
    raw, fitted = metrics.plcc(pred, target), metrics.plcc(pred, target, fit=params)
    assert fitted > 0.99 and fitted > raw + 0.03
    with pytest.raises(ValueError, match="4 or 5"):
        metrics.logistic_fit(pred, target, params=3)


def test_bad_inputs():
    with pytest.raises(ValueError, match="differ in length"):
        metrics.srcc([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="at least two"):
        metrics.srcc([1], [1])
    with pytest.raises(ValueError, match="finite"):
        metrics.plcc([1, np.nan], [1, 2])
    with pytest.warns(RuntimeWarning, match="needs more than 5 points"):
        result = metrics.evaluate([0.1, 0.4, 0.3, 0.9], [0.2, 0.5, 0.4, 0.8])
    assert set(result) == {"srcc", "plcc", "plcc_logistic", "krcc", "rmse"} and result["srcc"] == 1.0

"""Metrics against scipy on random data, ties, constant inputs and the logistic fit."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats

from dri import metrics


@pytest.mark.parametrize("seed", range(5))
def test_against_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    pred = np.round(rng.random(300), 1)  # heavy ties
    target = np.round(pred + 0.5 * rng.random(300), 2)
    assert metrics.srcc(pred, target) == pytest.approx(scipy.stats.spearmanr(pred, target)[0])
    assert metrics.krcc(pred, target) == pytest.approx(scipy.stats.kendalltau(pred, target)[0])
    assert metrics.plcc(pred, target) == pytest.approx(scipy.stats.pearsonr(pred, target)[0])
    assert metrics.rmse(pred, target) == pytest.approx(np.sqrt(np.mean((pred - target) ** 2)))
    assert np.array_equal(metrics.rankdata(pred), scipy.stats.rankdata(pred))


def test_krcc_in_chunks_equals_one_pass():
    rng = np.random.default_rng(7)
    p, t = rng.random(500), rng.random(500)
    assert metrics.krcc(p, t, chunk=37) == pytest.approx(metrics.krcc(p, t, chunk=10_000))


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

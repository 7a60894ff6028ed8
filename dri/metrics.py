"""IQA metrics: SRCC, PLCC (raw and after a logistic fit), KRCC, RMSE.

Ties get average ranks (SRCC) and the tau-b correction (KRCC). A correlation with a constant
input is undefined: it is returned as NaN with a warning saying so.
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.stats
from scipy.optimize import curve_fit


def _arrays(pred, target) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64).reshape(-1)
    t = np.asarray(target, dtype=np.float64).reshape(-1)
    if p.shape != t.shape:
        raise ValueError(f"pred and target differ in length: {p.size} vs {t.size}")
    if p.size < 2:
        raise ValueError("correlations need at least two values")
    if not (np.isfinite(p).all() and np.isfinite(t).all()):
        raise ValueError("pred and target must be finite")
    return p, t


def _pearson(p: np.ndarray, t: np.ndarray, name: str) -> float:
    dp, dt = p - p.mean(), t - t.mean()
    denom = np.sqrt((dp * dp).sum() * (dt * dt).sum())
    if denom == 0:
        warnings.warn(f"{name} is undefined for a constant input; returning NaN", RuntimeWarning, stacklevel=3)
        return float("nan")
    return float(np.clip((dp * dt).sum() / denom, -1.0, 1.0))


def _constant(p: np.ndarray, t: np.ndarray, name: str) -> bool:
    if np.ptp(p) == 0 or np.ptp(t) == 0:
        warnings.warn(f"{name} is undefined for a constant input; returning NaN", RuntimeWarning, stacklevel=3)
        return True
    return False


def srcc(pred, target) -> float:
    """Spearman's rank correlation (ties share their average rank; scipy)."""
    p, t = _arrays(pred, target)
    if _constant(p, t, "SRCC"):
        return float("nan")
    return float(np.clip(scipy.stats.spearmanr(p, t).statistic, -1.0, 1.0))


def krcc(pred, target) -> float:
    """Kendall's tau-b (tie-corrected; scipy, O(n log n))."""
    p, t = _arrays(pred, target)
    if _constant(p, t, "KRCC"):
        return float("nan")
    return float(scipy.stats.kendalltau(p, t, variant="b").statistic)


def rmse(pred, target) -> float:
    p, t = _arrays(pred, target)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def logistic5(x, b1, b2, b3, b4, b5):
    return b1 * (0.5 - 1.0 / (1.0 + np.exp(np.clip(b2 * (x - b3), -50, 50)))) + b4 * x + b5


def logistic4(x, b1, b2, b3, b4):
    return (b1 - b2) / (1.0 + np.exp(np.clip(-(x - b3) / (np.abs(b4) + 1e-12), -50, 50))) + b2


def logistic_fit(pred, target, params: int = 5) -> np.ndarray:
    """``pred`` mapped onto the target scale by the standard 4- or 5-parameter logistic (VQEG).

    If the fit does not converge the raw predictions are returned, with a warning.
    """
    p, t = _arrays(pred, target)
    if params not in (4, 5):
        raise ValueError(f"params must be 4 or 5, got {params}")
    if p.size <= params:
        warnings.warn(f"a {params}-parameter logistic fit needs more than {params} points; PLCC uses the raw "
                      "predictions", RuntimeWarning, stacklevel=2)
        return p
    if params == 5:
        fn, start = logistic5, [np.ptp(t) or 1.0, 1.0 / (np.std(p) or 1.0), np.mean(p), 0.0, np.mean(t)]
    else:
        fn, start = logistic4, [t.max(), t.min(), np.mean(p), np.std(p) or 1.0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            coefficients, _ = curve_fit(fn, p, t, p0=start, maxfev=20000)
        fitted = fn(p, *coefficients)
        if not np.isfinite(fitted).all():
            raise RuntimeError("non-finite fit")
        return fitted
    except (RuntimeError, ValueError, TypeError) as error:
        warnings.warn(f"logistic fit failed ({error}); PLCC uses the raw predictions", RuntimeWarning, stacklevel=2)
        return p


def plcc(pred, target, fit: int | None = None) -> float:
    """Pearson correlation, raw (``fit=None``) or after a 4- or 5-parameter logistic fit."""
    p, t = _arrays(pred, target)
    if fit is not None:
        p = logistic_fit(p, t, fit)
    return _pearson(p, t, "PLCC")


def evaluate(pred, target) -> dict[str, float]:
    """All metrics at once: srcc, plcc, plcc_logistic (5-parameter), krcc, rmse."""
    return {"srcc": srcc(pred, target), "plcc": plcc(pred, target), "plcc_logistic": plcc(pred, target, fit=5),
            "krcc": krcc(pred, target), "rmse": rmse(pred, target)}

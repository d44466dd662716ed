"""Residual diagnostics at the optimum: standardised rotated residuals against fitted values, and a normal QQ plot.

Pure (no state, no panel). In the eigenbasis of K the model is
``y* = X* b + e*`` with independent ``e*_i ~ N(0, v (h d_i + 1 - h))``, so at
the fitted ``(h, v, b)`` the standardised residuals

    r_i = (y*_i - x*_i' b) / sqrt(v (h d_i + 1 - h))

should look like independent standard normal draws (their sum of squares is
``n`` by ML and ``n - p`` by REML, since ``v = rss / n`` or ``rss / (n - p)``).
A funnel against the fitted values, or a bent QQ line, says that the
phenotype wants a transform.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from lmmcore import FitResult

from .frames import Rotation

__all__ = ["Diagnostics", "residual_diagnostics"]


@dataclass(frozen=True)
class Diagnostics:
    """Standardised rotated residuals of one fit.

    Attributes
    ----------
    phenotype, method : str
    h2 : float
    fitted : ndarray
        ``x*_i' b`` (rotated fitted values) of the individuals used.
    residuals : ndarray
        The standardised residuals ``r_i``.
    theoretical, ordered : ndarray
        The QQ plot: Blom's normal quantiles ``Phi^{-1}((i - 3/8)/(m + 1/4))``
        and the residuals sorted.
    n_singular : int
        Directions left out because their variance is 0 (h2 = 1 and a zero
        eigenvalue of K).
    shapiro_p : float
        Shapiro-Wilk p-value of the residuals (NaN with fewer than 3 or more than 5000).
    """

    phenotype: str
    method: str
    h2: float
    fitted: np.ndarray
    residuals: np.ndarray
    theoretical: np.ndarray
    ordered: np.ndarray
    n_singular: int
    shapiro_p: float

    @property
    def n(self) -> int:
        return int(self.residuals.size)


def residual_diagnostics(rotation: Rotation, fit: FitResult) -> Diagnostics:
    """The standardised residuals of ``fit`` (at its optimum) in ``rotation``'s eigenbasis (see the module notes)."""
    rot = rotation.rot
    h, v = float(fit.h2), float(fit.sigma2)
    factors = h * rot.d + 1.0 - h
    ok = factors > 0
    fitted = rot.X @ np.asarray(fit.beta, dtype=float)
    raw = rot.y[:, 0] - fitted
    residuals = raw[ok] / np.sqrt(v * factors[ok])
    fitted = fitted[ok]
    m = residuals.size
    theoretical = stats.norm.ppf((np.arange(1, m + 1) - 0.375) / (m + 0.25)) if m else np.zeros(0)
    shapiro = float(stats.shapiro(residuals).pvalue) if 3 <= m <= 5000 else float("nan")
    return Diagnostics(
        phenotype=fit.phenotype,
        method=fit.method,
        h2=h,
        fitted=fitted,
        residuals=residuals,
        theoretical=theoretical,
        ordered=np.sort(residuals),
        n_singular=int((~ok).sum()),
        shapiro_p=shapiro,
    )

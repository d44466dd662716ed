"""Step 2 of the genome scan: the null model (no marker) of every phenotype, fitted once per kinship.

For each kinship (one, or one per chromosome) and set of individuals with
observed phenotypes, the scan fits ``y = X b + e``, ``var(e) = v (h K + (1 - h) I)``
on the rotated data and keeps what every marker reuses (:class:`NullModel`):

* h2 by ML or REML, the search of :func:`lmmcore.optimize.maximize_profile`
  on the centred and scaled phenotypes (as :func:`lmmcore.fit.fit_rotated`
  does), then pinned to rounding by a root of ``dL/dh``
  (:func:`lmmcore.likelihood.polish_h2`), so that the fixed-h2 LOD, which moves
  with h2 to first order, is reproducible to 1e-8 and more (e.g. between K
  and 2K);
* the rotated residuals ``y* - X* b`` of the fixed-h2 scan;
* for the exact scan, the null ML fit of the likelihood-ratio test.

The ML likelihood of the LRT
----------------------------
With a kinship whose null space meets the covariates (a centred kinship,
``K 1 = 0``, with an intercept) the full ML likelihood grows without bound
as h -> 1 (one observation is fitted exactly while its variance
``v (1 - h)`` vanishes). ``lrt_likelihood="full"`` keeps it, as GEMMA does,
and bounds h by :data:`FULL_ML_CAP` (GEMMA's ``lambda <= 1e5``); its maximum
is found by the same search as every other profile (a grid on ``[0, cap]``,
Brent's method in the bracket of every local maximum,
:func:`lmmcore.optimize.search_brackets`). ``"projected"`` leaves those
``r0`` directions out, as :mod:`lmmcore.likelihood` does for
``lmmcore fit --method ml``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from .constants import SINGULAR_EDGE
from .eigen import RotatedData
from .errors import report
from .likelihood import polish_h2, profile_loglik, profile_loglik_paired
from .null_search import null_h2, null_h2_stacked
from .optimize import MAX_BRACKETS, best_by_lane, grid_peaks, search_brackets
from .wls import solve_wls_paired

__all__ = ["NullModel", "fit_null", "fit_null_stacked", "maximize_full_ml", "FULL_ML_CAP"]

#: Largest h2 of the full ML likelihood when it is unbounded at h2 = 1 (a centred
#: kinship with an intercept): GEMMA's bound lambda = sigma_g^2 / sigma_e^2 <= 1e5.
FULL_ML_CAP = 1e5 / (1.0 + 1e5)


@dataclass(frozen=True)
class NullModel:
    """What every marker of a (kinship, individuals) pair reuses from the null fit.

    ``resid`` are the rotated null residuals ``r = y* - X* b`` (n x
    phenotypes; any b will do: the scan projects X out again at its h2).
    ``h2_scan`` is the h2 the fixed-h2 scan uses: ``h2``, except 0 where h2
    is not identifiable (every h2 fits equally well; the fit reports NaN)
    and ``1 - 1e-9`` where h2 = 1 with a singular kinship (where the weights
    are infinite; the scan then takes the limit to about 1e-8).
    ``h2_ml, loglik_ml`` (the null ML fit of the LRT), ``ml_r0`` (the null
    directions its likelihood leaves out) and ``ml_cap`` (its largest h2)
    are set for the exact scan.
    """

    h2: np.ndarray
    h2_scan: np.ndarray
    sigma2: np.ndarray
    loglik: np.ndarray
    resid: np.ndarray
    h2_ml: np.ndarray | None
    loglik_ml: np.ndarray | None
    logdet_XtX: float
    ml_r0: int = 0
    ml_cap: float = 1.0


def fit_null(rot: RotatedData, method: str, refit: bool, names: Sequence[str],
             lrt_likelihood: str = "full") -> NullModel:
    """Fit the null model of every phenotype column of ``rot``.

    Parameters
    ----------
    rot : RotatedData
    method : {"reml", "ml"}
        The estimate of h2 for the fixed-h2 scan.
    refit : bool
        Also fit the null ML model of the exact scan's likelihood-ratio test.
    names : sequence of str
        Phenotype names for messages.
    lrt_likelihood : {"full", "projected"}
        The ML likelihood of the likelihood-ratio test (module docstring).

    Returns
    -------
    NullModel
    """
    h2, loglik, sol = _profile_fit(rot, method, names)
    if not np.isnan(h2).any():
        loglik = profile_loglik_paired(rot, h2, np.arange(h2.size), method)
    resid = rot.y - rot.X @ sol.beta.T
    h2_ml = loglik_ml = None
    ml_r0, ml_cap = rot.ml_null_directions, 1.0
    if refit and lrt_likelihood == "full":
        ml_r0 = 0
        ml_cap = FULL_ML_CAP if rot.ml_null_directions > 0 else 1.0
        h2_ml, loglik_ml = maximize_full_ml(rot, ml_cap)
        at_cap = [nm for nm, h in zip(names, h2_ml) if ml_cap < 1.0 and h >= ml_cap]
        if at_cap:
            report(
                f"phenotype(s) {', '.join(at_cap)}: the full ML likelihood of the null model is largest at "
                f"the bound h2 = {ml_cap:.6f} (lambda = 1e5, as GEMMA): with this kinship and an intercept "
                "it grows without bound as h2 -> 1, so the LRT compares values at that bound; "
                "lrt_likelihood='projected' (--lrt-likelihood projected) avoids this",
                stacklevel=3,
            )
    elif refit:
        if method == "ml":
            h2_ml, loglik_ml = h2, loglik
        else:
            h2_ml, loglik_ml, _ = _profile_fit(rot, "ml", names)
            if not np.isnan(h2_ml).any():
                loglik_ml = profile_loglik_paired(rot, h2_ml, np.arange(h2.size), "ml")
    return NullModel(
        h2=h2,
        h2_scan=sol.h2,
        sigma2=sol.sigma2,
        loglik=loglik,
        resid=resid,
        h2_ml=h2_ml,
        loglik_ml=loglik_ml,
        logdet_XtX=rot.logdet_XtX,
        ml_r0=int(ml_r0),
        ml_cap=float(ml_cap),
    )


def fit_null_stacked(rots: Sequence[RotatedData], names: Sequence[Sequence[str]]) -> list[NullModel]:
    """:func:`fit_null` (REML, no exact scan) of several rotated data sets with the same eigenvalues.

    The h2 search of all their traits runs once
    (:func:`lmmcore.null_search.null_h2_stacked`); the solution at h2 and the
    log-likelihood there are each data set's own, as in :func:`fit_null`.
    """
    h2_all, loglik_all = null_h2_stacked(rots, [nm for group in names for nm in group])
    out, t0 = [], 0
    for rot in rots:
        T = rot.n_phenotypes
        h2, loglik = h2_all[t0:t0 + T], loglik_all[t0:t0 + T]
        t0 += T
        h_wls = np.where(np.isnan(h2), 0.0, h2)
        if np.any(rot.d == 0):
            h_wls = np.minimum(h_wls, 1.0 - SINGULAR_EDGE)
        sol = solve_wls_paired(rot, h_wls, np.arange(T), "reml")
        if not np.isnan(h2).any():
            loglik = profile_loglik_paired(rot, h2, np.arange(T), "reml")
        out.append(NullModel(h2=h2, h2_scan=sol.h2, sigma2=sol.sigma2, loglik=loglik, resid=rot.y - rot.X @ sol.beta.T,
                             h2_ml=None, loglik_ml=None, logdet_XtX=rot.logdet_XtX,
                             ml_r0=int(rot.ml_null_directions), ml_cap=1.0))
    return out


def _profile_fit(rot: RotatedData, method: str, names: Sequence[str]):
    """h2 (a root of the slope; NaN where not identifiable), log-likelihood and the WLS solution there.

    Notes
    -----
    The search is :func:`lmmcore.null_search.null_h2` (the fit's grid,
    brackets and boundary rule on the centred and scaled phenotypes, the
    maximum in each bracket pinned to a root of ``dL/dh``), so the fit and
    the scan find the same optimum. The solution is that of
    :func:`lmmcore.wls.solve_wls_paired` at h2 (0 where h2 is not
    identifiable, ``1 - 1e-9`` for h2 = 1 with a singular kinship).
    """
    h2, loglik = null_h2(rot, method, names)
    h_wls = np.where(np.isnan(h2), 0.0, h2)
    if np.any(rot.d == 0):
        h_wls = np.minimum(h_wls, 1.0 - SINGULAR_EDGE)
    return h2, loglik, solve_wls_paired(rot, h_wls, np.arange(h2.size), method)


def maximize_full_ml(rot: RotatedData, cap: float, size: int = 51):
    """Null ML of every phenotype with the full likelihood on ``[0, cap]``.

    The likelihood of all n observations (``ml_null_directions = 0``) on a
    grid of ``size`` points, Brent's method in the bracket of every local
    maximum (:func:`lmmcore.optimize.search_brackets`, the search of
    :func:`lmmcore.optimize.maximize_profile`), the best of them (grid
    points included), polished by :func:`lmmcore.likelihood.polish_h2`.
    Returns ``(h2, loglik)``.
    """
    full = replace(rot, ml_null_directions=0, ml_unbounded=False)
    grid = np.linspace(0.0, cap, size)
    values = profile_loglik(full, grid, "ml")  # (k, P)
    pheno, k = grid_peaks(values, limit=MAX_BRACKETS)
    search = search_brackets(lambda h, lanes: profile_loglik_paired(full, h, pheno[lanes], "ml"),
                             grid, values, pheno, k)
    h, _ = best_by_lane(pheno, search.x, search.fx, values.shape[1])
    h = polish_h2(full, h, "ml")
    return h, profile_loglik_paired(full, h, np.arange(values.shape[1]), "ml")

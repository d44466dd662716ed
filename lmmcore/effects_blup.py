"""BLUPs of QTL effects along a chromosome (R/qtl2's ``scan1blup`` with a kinship).

After whitening by the polygenic null model (:func:`lmmcore.effects_model.null_model`:
h held fixed, ``y~ = W^{1/2} U'y`` and likewise for every column), the
genotype effects at position j are taken as random:

    y~ = X~ b + Z~_j u + e,   u ~ N(0, g v I_k),   e ~ N(0, (1 - g) v I_n),

with ``X = [1, C]`` (intercept and covariates) and ``Z_j`` the genotype
probabilities (or ``G_j A`` with contrasts). The share ``g`` (``h2_qtl``)
is estimated at every position by REML, and the effects are shrunk:

    u^ = g Z~' (g Z~Z~' + (1 - g) I)^{-1} (y~ - X~ b^),

with ``b^`` the GLS estimate under that covariance. The SEs are the square
roots of the diagonal of ``v C^{-1}``, ``C`` the matrix of Henderson's
mixed-model equations in units of v,

    C = [[Z~'Z~/(1-g) + I/g, Z~'X~/(1-g)], [X~'Z~/(1-g), X~'X~/(1-g)]],

(prediction-error SEs for ``u``, ordinary SEs for ``b``), with ``v`` the
REML estimate ``RSS_g / (n - p)``. At ``g = 0`` the effects are 0 with SE 0.

Computation: ``Z~_j = P S Q'`` (thin SVD, batched over positions) makes
``g Z~Z~' + (1 - g) I`` diagonal in ``[P, P_perp]``: weights
``1 / (g s_k^2 + 1 - g)`` on P and ``1 / (1 - g)`` on its complement, so the
REML likelihood of every position and ``g`` needs only ``P'y~``, ``P'X~`` and
the totals ``y~'y~``, ``X~'y~``, ``X~'X~``; ``g`` is maximised on a grid and
then by Brent's method (:func:`lmmcore.optimize.brent_maximize`), all positions at once.

Differences from R/qtl2 0.43-5: its ``scanblup`` (``src/scan1blup.cpp``)
forms the cross term of ``C`` from the rotated ``Z`` and the *unrotated*
covariates (``ZX.col(i) = Z.col(i)`` after ``Z = D'Z``, but
``ZX.col(i+n_gen) = ac.col(i)``), so its SEs differ from the mixed-model
equations' when there are covariates besides a constant; the BLUPs
themselves agree. Coefficients are reported in R/qtl2's order: the genotype
effects, ``intercept``, then the covariates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .effects import EffectsResult, _chunks, _effects_table
from .effects_model import genotype_columns, null_model
from .errors import reporting

__all__ = ["scan1blup"]

#: Grid of ``log(g / (1 - g))`` on which each position's REML likelihood is evaluated first.
_LOG_ODDS_GRID = np.linspace(-12.0, 12.0, 49)
#: Absolute tolerance of Brent's method on g.
_G_TOL = 1e-10


class _Position:
    """Sufficient statistics of every position of a chunk for the REML likelihood in g."""

    def __init__(self, Zw: np.ndarray, Xw: np.ndarray, yw: np.ndarray):
        n, m, k = Zw.shape
        self.n, self.k, self.p = n, k, Xw.shape[1]
        Z = np.moveaxis(Zw, 1, 0)  # (m, n, k)
        P, s, Qt = np.linalg.svd(Z, full_matrices=False)  # P (m, n, k), s (m, k), Qt (m, k, k)
        self.P, self.s2, self.s, self.Qt = P, s * s, s, Qt
        self.Py = np.einsum("mnk,n->mk", P, yw)  # (m, k)
        self.PX = np.einsum("mnk,np->mkp", P, Xw)  # (m, k, p)
        self.yy = float(yw @ yw)
        self.Xy = Xw.T @ yw
        self.XX = Xw.T @ Xw
        self.Z = Z
        self.X = Xw
        self.y = yw

    def statistics(self, g: np.ndarray, lanes: np.ndarray):
        """``X'V^{-1}X``, ``X'V^{-1}y``, ``y'V^{-1}y`` and ``sum log`` of V's eigenvalues, per lane."""
        w = 1.0 / (g[:, None] * self.s2[lanes] + 1.0 - g[:, None])  # (L, k)
        c = 1.0 / (1.0 - g)  # complement weight
        PX, Py = self.PX[lanes], self.Py[lanes]
        PXX = np.einsum("lkp,lkq->lpq", PX, PX)
        PXy = np.einsum("lkp,lk->lp", PX, Py)
        Pyy = np.einsum("lk,lk->l", Py, Py)
        XSX = np.einsum("lkp,lk,lkq->lpq", PX, w, PX) + c[:, None, None] * (self.XX[None] - PXX)
        XSy = np.einsum("lkp,lk,lk->lp", PX, w, Py) + c[:, None] * (self.Xy[None] - PXy)
        ySy = np.einsum("lk,lk->l", w, Py * Py) + c * (self.yy - Pyy)
        logdet_v = -np.log(w).sum(axis=1) + (self.n - self.k) * np.log1p(-g)
        return XSX, XSy, ySy, logdet_v

    def reml(self, g: np.ndarray, lanes: np.ndarray) -> np.ndarray:
        """REML log-likelihood (up to a constant) of each lane's position at its g."""
        XSX, XSy, ySy, logdet_v = self.statistics(g, lanes)
        beta = np.linalg.solve(XSX, XSy[..., None])[..., 0]
        rss = ySy - np.einsum("lp,lp->l", XSy, beta)
        sign, logdet_xsx = np.linalg.slogdet(XSX)
        return -0.5 * ((self.n - self.p) * np.log(rss) + logdet_v + logdet_xsx)


def _maximise_g(pos: _Position, m: int) -> np.ndarray:
    """REML estimate of g at each of m positions: grid in log-odds, Brent around the best point, and g = 0."""
    from .optimize import brent_maximize

    grid = 1.0 / (1.0 + np.exp(-_LOG_ODDS_GRID))
    lanes = np.repeat(np.arange(m), grid.size)
    values = pos.reml(np.tile(grid, m), lanes).reshape(m, grid.size)
    values = np.where(np.isfinite(values), values, -np.inf)
    best = np.argmax(values, axis=1)
    lo = grid[np.maximum(best - 1, 0)]
    hi = grid[np.minimum(best + 1, grid.size - 1)]
    lo = np.where(best == 0, 0.0, lo)
    x0 = grid[best]
    f0 = values[np.arange(m), best]
    interior = best < grid.size - 1  # the likelihood falls to -inf as g -> 1
    g = x0.copy()
    if interior.any():
        idx = np.flatnonzero(interior)
        res = brent_maximize(lambda x, lanes: pos.reml(x, idx[lanes]), lo[idx], hi[idx], x0[idx], f0[idx], tol=_G_TOL)
        g[idx] = res.x
    at_zero = pos.reml(np.zeros(m), np.arange(m))
    here = pos.reml(g, np.arange(m))
    return np.where(at_zero >= here, 0.0, g)


def _blups(pos: _Position, g: np.ndarray):
    """BLUPs, fixed effects and their SEs at each position's g (see the module docstring)."""
    m = g.size
    lanes = np.arange(m)
    XSX, XSy, ySy, _ = pos.statistics(g, lanes)
    b = np.linalg.solve(XSX, XSy[..., None])[..., 0]
    rss = ySy - np.einsum("lp,lp->l", XSy, b)
    sigma2 = rss / (pos.n - pos.p)
    r_P = pos.Py - np.einsum("mkp,mp->mk", pos.PX, b)  # P'(y - Xb)
    shrink = g[:, None] * pos.s / (g[:, None] * pos.s2 + 1.0 - g[:, None])
    u = np.einsum("mjk,mj->mk", pos.Qt, shrink * r_P)  # Q diag(...) P'r
    k, p = pos.k, pos.p
    ZZ = np.einsum("mnk,mnj->mkj", pos.Z, pos.Z)
    ZX = np.einsum("mnk,np->mkp", pos.Z, pos.X)
    se = np.zeros((m, k + p))
    positive = g > 0
    if positive.any():
        gi = g[positive]
        C = np.empty((int(positive.sum()), k + p, k + p))
        C[:, :k, :k] = ZZ[positive] / (1 - gi)[:, None, None] + np.eye(k)[None] / gi[:, None, None]
        C[:, :k, k:] = ZX[positive] / (1 - gi)[:, None, None]
        C[:, k:, :k] = np.swapaxes(C[:, :k, k:], 1, 2)
        C[:, k:, k:] = pos.XX[None] / (1 - gi)[:, None, None]
        Cinv = np.linalg.inv(C)
        se[positive] = np.sqrt(np.einsum("mii->mi", Cinv) * sigma2[positive][:, None])
    if (~positive).any():
        XXinv = np.linalg.inv(pos.XX)
        se[~positive, k:] = np.sqrt(np.outer(sigma2[~positive], np.diag(XXinv)))
    return u, b, se


def scan1blup(
    genotypes,
    phenotypes,
    covariates: pd.DataFrame | None = None,
    *,
    chromosome,
    phenotype: str | None = None,
    kinship="loco",
    kind: str = "standardized",
    method: str = "reml",
    h2: float | None = None,
    contrasts=None,
    nullcovar: pd.DataFrame | None = None,
    report=None,
) -> EffectsResult:
    """BLUPs of the genotype effects, with SEs, at every position of a chromosome (R/qtl2's ``scan1blup``, ``se=TRUE``).

    Parameters
    ----------
    genotypes, phenotypes, covariates, chromosome, phenotype, kinship, kind, method, h2, contrasts, nullcovar, report
        As for :func:`lmmcore.effects.scan1coef` (``nullcovar`` only in the null model's h2).

    Returns
    -------
    EffectsResult
        ``kind="blup"``; the table has the genotype effects and ``se_``
        columns, then ``intercept`` and the covariates with theirs, then
        ``h2_qtl`` (the REML share g of each position).

    Notes
    -----
    See the module docstring. Both REML fits (the polygenic null and g at
    each position) maximise ``-1/2 [(n - p) log RSS + log|V| + log|X'V^{-1}X|]``.
    """
    with reporting(report):
        null = null_model(genotypes, phenotypes, covariates, phenotype=phenotype, chromosome=chromosome,
                          kinship=kinship, kind=kind, method=method, h2=h2, nullcovar=nullcovar)
        markers = np.flatnonzero(np.asarray(genotypes.chromosome) == null.chromosome)
        yw = null.whiten(null.y)
        Xw = null.whiten(np.column_stack([np.ones(null.n), null.covariates]))
        other = ("intercept",) + null.covariate_names
        pieces, g_all = [], []
        names, k = (), 0
        for chunk in _chunks(markers, null.n, genotypes.data.shape[2] if genotypes.data.ndim == 3 else 1):
            Z, names, empty = genotype_columns(genotypes, chunk, null.rows, contrasts, allow_empty=True)
            k = Z.shape[2]
            pos = _Position(null.whiten(Z), Xw, yw)
            g = _maximise_g(pos, chunk.size)
            u, b, se = _blups(pos, g)
            values = np.column_stack([u, b])
            values[empty] = se[empty] = g[empty] = np.nan  # markers without genotypes
            pieces.append((chunk, values, se))
            g_all.append(g)
        all_names = tuple(names) + other
        table = _effects_table(genotypes, pieces, all_names, k, extra={"h2_qtl": g_all})
        return EffectsResult(
            table=table, effect_names=tuple(names), other_names=other, phenotype=null.phenotype,
            chromosome=null.chromosome, kind="blup", h2=null.h2, sigma2=null.sigma2, n=null.n,
            kinship=null.kinship_label, method=null.method, zerosum=False,
        )

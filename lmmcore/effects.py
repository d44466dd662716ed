"""QTL effects with a polygenic term: R/qtl2's ``scan1coef`` (with SEs) and ``fit1`` for the fixed-h2 LMM.

The model at a position j of chromosome c is

    y = G_j a + C b + e,   var(e) = v (h K + (1 - h) I),

with ``G_j`` the n x k genotype probabilities (their rows sum to 1, so they
span the intercept and no separate intercept is fitted), ``C`` the
covariates without their intercept, and K the kinship (by default LOCO: from
the markers of every chromosome but c). As in R/qtl2, h is estimated once,
under the null model ``y = 1 mu + C b + e`` (REML by default), and held fixed
at every position; with ``K = U D U'`` and weights ``w_i = 1 / (h d_i + 1 - h)``
each position is then an ordinary least squares fit of the whitened data
``W^{1/2} U'y`` on ``W^{1/2} U'[G_j, C]``:

    (a, b) = (X'WX)^{-1} X'Wy,        X = U'[G_j, C],
    v      = RSS_w / (n - r),          RSS_w = sum_i w_i (y*_i - x*_i'(a, b))^2,
    SE     = sqrt(diag(v (X'WX)^{-1})),

r the rank of X (R/qtl2's ``scancoefSE_pg_addcovar``). Positions where X is
rank-deficient (a genotype nobody carries) are solved by a QR decomposition
with column pivoting and get NaN for the dropped columns, as R/qtl2 does.
Dosages have one column and an explicit intercept.

Parameterisations (R/qtl2's ``zerosum`` and ``contrasts``)
    ``zerosum=True`` (R/qtl2's default, for genotype probabilities without
    contrasts): the genotype effects are centred, ``a_g - mean(a)``, and
    their mean is reported as ``intercept``. R/qtl2's ``scan1coef`` keeps the
    SE of the *uncentred* effects for the centred ones and gives the
    intercept ``sqrt(mean(SE_g^2))``; :func:`scan1coef` does the same by
    default, and with ``centred_se=True`` reports the exact SEs of the
    centred effects and of their mean, ``sqrt(diag(A V A'))``, which
    R/qtl2's ``fit1`` (and :func:`fit1`) report.
    ``contrasts``: the probabilities are multiplied by a k x k matrix
    ``A`` and the effects are those of ``G A``. ``"additive-dominance"``
    (F2: genotypes AA, AB, BB in the probabilities' order) is R/qtl2's
    ``cbind(mu=c(1,1,1), a=c(-1,0,1), d=c(0,1,0))``: genotype means
    ``mu - a, mu + d, mu + a``.

The kinship's scale does not matter (``c K`` changes h, not the fit); h is
reported on the scale of the kinship used (R/qtl2 reports it for 2K).

The X chromosome (R/qtl2's ``scan1coef(pr[, "X"], y, k[["X"]], nullcovar = Xcovar)``)
    ``G_j`` holds the chromosome's own genotypes (an F2's ``SS, SB, BS, BB,
    SY, BY``; with ``genotypes_by_chr`` every chromosome uses its own set),
    and ``nullcovar`` (the X covariates, :func:`lmmcore.xchr.x_covariates`)
    joins ``C`` in the null model only: in the estimate of h and in
    :func:`fit1`'s ``RSS0``, not beside ``G_j``, whose columns span them.

BLUPs of the QTL effects (``scan1blup``) are in :mod:`lmmcore.effects_blup`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg

from .effects_model import ADDITIVE_DOMINANCE, contrast_matrix, genotype_columns, null_model
from .errors import LMMInputError, reporting

__all__ = [
    "EffectsResult",
    "Fit1Result",
    "ADDITIVE_DOMINANCE",
    "contrast_matrix",
    "fit1",
    "scan1coef",
]

#: R/qtl2's tolerance of the pivoted QR (a column is dropped when its pivot
#: is at most this fraction of the largest).
QR_TOLERANCE = 1e-12
#: A position whose scaled Gram matrix has a smallest eigenvalue below this
#: is solved by pivoted QR instead of Cholesky.
CONDITION_CUTOFF = 1e-8
#: Values of n x positions x columns rotated at once (32 MiB).
_CHUNK_ELEMENTS = 1 << 22

# --------------------------------------------------------------------------- #
# Results
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class EffectsResult:
    """Effects at every position of one chromosome (``scan1coef`` or ``scan1blup``).

    Attributes
    ----------
    table : DataFrame
        One row per position: ``marker, chr, pos``, the genotype (or
        contrast) effects named as in the probabilities, ``se_<name>`` for
        each, then the other coefficients (covariates, ``intercept``) and
        their ``se_<name>``. ``scan1blup`` adds ``h2_qtl``, the share of the
        whitened residual variance given to the random genotype effects.
    effect_names : tuple of str
        The genotype / contrast columns.
    other_names : tuple of str
        The other coefficients, in R/qtl2's order.
    phenotype, chromosome : str
    kind : str
        ``"coef"`` or ``"blup"``.
    h2 : float
        The null-model h2 held fixed (on the scale of the kinship used).
    sigma2 : float
        The null model's total variance v.
    n : int
        Individuals used.
    kinship : str
        ``"loco"``, ``"overall"`` or ``"given"``.
    method : str
        ``"reml"`` or ``"ml"`` (the null fit).
    zerosum : bool
    """

    table: pd.DataFrame
    effect_names: tuple[str, ...]
    other_names: tuple[str, ...]
    phenotype: str
    chromosome: str
    kind: str
    h2: float
    sigma2: float
    n: int
    kinship: str
    method: str
    zerosum: bool

    @property
    def coef_names(self) -> tuple[str, ...]:
        return self.effect_names + self.other_names


@dataclass(frozen=True)
class Fit1Result:
    """One position in full (R/qtl2's ``fit1``), with the polygenic BLUP and the variance explained.

    Attributes
    ----------
    phenotype, marker, chromosome : str
    pos : float
    lod : float
        ``(n / 2) log10(RSS0 / RSS1)`` at the null h2 (as the scan).
    coef, se : Series
        Coefficients and SEs, in R/qtl2's order (genotypes, covariates,
        ``intercept`` with ``zerosum``).
    vcov : DataFrame
        Their covariance ``v (X'WX)^{-1}`` (transformed with ``zerosum``).
    individuals : DataFrame
        Indexed by ID: ``y``, ``fitted`` (X times the coefficients),
        ``residual`` (``y - fitted``, as R/qtl2), ``polygenic`` (the BLUP
        ``h K V^{-1} (y - fitted)`` of the polygenic effect) and
        ``noise`` (``residual - polygenic``).
    h2, sigma2 : float
        The null h2 held fixed and the total variance ``v = RSS_w / (n - r)`` of this fit.
    n : int
    pve_lod : float
        ``1 - 10^(-2 LOD / n) = 1 - RSS1/RSS0``: the share of the null
        model's (generalised) residual sum of squares that the QTL explains.
    variance_qtl, variance_polygenic, variance_noise : float
        The decomposition behind ``variance_explained`` (see Notes of :func:`fit1`).
    variance_explained : float
        ``variance_qtl / (variance_qtl + variance_polygenic + variance_noise)``.
    kinship, method : str
    """

    phenotype: str
    marker: str
    chromosome: str
    pos: float
    lod: float
    coef: pd.Series
    se: pd.Series
    vcov: pd.DataFrame
    individuals: pd.DataFrame
    h2: float
    sigma2: float
    n: int
    pve_lod: float
    variance_qtl: float
    variance_polygenic: float
    variance_noise: float
    variance_explained: float
    kinship: str
    method: str

    def to_row(self) -> dict:
        """The row of ``lmmcore fit1 --out``: ``phenotype, marker, chr, pos, n, h2, lod``, coefficients, SEs, variance."""
        row: dict = {"phenotype": self.phenotype, "marker": self.marker, "chr": self.chromosome, "pos": self.pos,
                     "n": self.n, "h2": self.h2, "lod": self.lod}
        row.update({str(k): float(v) for k, v in self.coef.items()})
        row.update({f"se_{k}": float(v) for k, v in self.se.items()})
        row.update(sigma2=self.sigma2, pve_lod=self.pve_lod, variance_qtl=self.variance_qtl,
                   variance_polygenic=self.variance_polygenic, variance_noise=self.variance_noise,
                   variance_explained=self.variance_explained)
        return row


# --------------------------------------------------------------------------- #
# Least squares at every position
# --------------------------------------------------------------------------- #
def _position_fits(Gw: np.ndarray, Fw: np.ndarray, yw: np.ndarray):
    """OLS of ``yw`` on ``[Gw[:, j], Fw]`` for every position j: coefficients, their covariance, RSS, rank.

    Gw: (n, m, k); Fw: (n, f); yw: (n,). Returns beta (m, p), cov_unscaled (m, p, p)
    (``(X'X)^{-1}``, NaN rows/columns for dropped columns), rss (m,), rank (m,).
    """
    n, m, k = Gw.shape
    f = Fw.shape[1]
    p = k + f
    XtX = np.empty((m, p, p))
    XtX[:, :k, :k] = np.einsum("nmg,nmh->mgh", Gw, Gw)
    XtX[:, :k, k:] = np.einsum("nmg,nf->mgf", Gw, Fw)
    XtX[:, k:, :k] = np.swapaxes(XtX[:, :k, k:], 1, 2)
    XtX[:, k:, k:] = Fw.T @ Fw
    Xty = np.empty((m, p))
    Xty[:, :k] = np.einsum("nmg,n->mg", Gw, yw)
    Xty[:, k:] = Fw.T @ yw
    scale = np.sqrt(np.einsum("mii->mi", XtX))
    scale = np.where(scale > 0, scale, 1.0)
    S = XtX / scale[:, :, None] / scale[:, None, :]
    smallest = np.linalg.eigvalsh(S)[:, 0]
    good = smallest > CONDITION_CUTOFF
    beta = np.full((m, p), np.nan)
    cov = np.full((m, p, p), np.nan)
    rank = np.full(m, p)
    if good.any():
        Sinv = np.linalg.inv(S[good])
        cov[good] = Sinv / scale[good][:, :, None] / scale[good][:, None, :]
        beta[good] = np.einsum("mij,mj->mi", cov[good], Xty[good])
    for j in np.flatnonzero(~good):  # rare: a genotype nobody carries (R/qtl2's pivoted QR)
        X = np.column_stack([Gw[:, j, :], Fw])
        beta[j], cov[j], rank[j] = _pivoted_qr_fit(X, yw)
    fitted = np.einsum("nmg,mg->nm", Gw, np.nan_to_num(beta[:, :k])) + Fw @ np.nan_to_num(beta[:, k:]).T
    resid = yw[:, None] - fitted
    rss = np.einsum("nm,nm->m", resid, resid)
    return beta, cov, rss, rank


def _pivoted_qr_fit(X: np.ndarray, y: np.ndarray):
    """Least squares by QR with column pivoting; dropped columns (pivot <= 1e-12 of the largest) get NaN."""
    p = X.shape[1]
    Q, R, piv = linalg.qr(X, mode="economic", pivoting=True)
    diag = np.abs(np.diag(R))
    r = int(np.sum(diag > QR_TOLERANCE * diag[0])) if diag.size and diag[0] > 0 else 0
    beta = np.full(p, np.nan)
    cov = np.full((p, p), np.nan)
    if r:
        Rinv = linalg.solve_triangular(R[:r, :r], np.eye(r))
        kept = piv[:r]
        beta[kept] = Rinv @ (Q[:, :r].T @ y)
        cov[np.ix_(kept, kept)] = Rinv @ Rinv.T
    return beta, cov, r


def _zerosum(beta: np.ndarray, cov: np.ndarray, k: int, exact_se: bool):
    """Centre the first k coefficients and append their mean (R/qtl2's ``zerosum``)."""
    m, p = beta.shape
    A = np.zeros((p + 1, p))
    A[:p, :p] = np.eye(p)
    A[:k, :k] -= 1.0 / k
    A[p, :k] = 1.0 / k
    out = np.empty((m, p + 1))
    mu = np.nanmean(beta[:, :k], axis=1)
    out[:, :p] = beta
    out[:, :k] = beta[:, :k] - mu[:, None]
    out[:, p] = mu
    var = np.einsum("mii->mi", cov)
    if exact_se:
        full = np.einsum("ij,mjk,lk->mil", A, cov, A)
        se2 = np.einsum("mii->mi", full)
    else:
        se2 = np.empty((m, p + 1))
        se2[:, :p] = var
        se2[:, p] = np.nanmean(var[:, :k], axis=1)
    return out, se2, A


# --------------------------------------------------------------------------- #
# scan1coef
# --------------------------------------------------------------------------- #
def scan1coef(
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
    zerosum: bool = True,
    contrasts=None,
    centred_se: bool = False,
    nullcovar: pd.DataFrame | None = None,
    report=None,
) -> EffectsResult:
    """Genotype effects with standard errors at every position of a chromosome (R/qtl2's ``scan1coef``, ``se=TRUE``).

    Parameters
    ----------
    genotypes : Genotypes
        Genotype probabilities (one effect per genotype) or dosages (the
        dosage's slope and an intercept).
    phenotypes : DataFrame or Series
        Indexed by ID; ``phenotype`` names the column (needed when there are several).
    covariates : DataFrame, optional
        Indexed by ID (see :func:`lmmcore.design.design_matrix`; the
        intercept is implied by the genotype probabilities).
    chromosome : str
    phenotype : str, optional
    kinship : {"loco", "overall"}, matrix, DataFrame, Kinship or mapping
        As for :func:`lmmcore.scan.scan` (default LOCO for ``chromosome``).
    kind : {"standardized", "centered"}
        Dosage kinship, when computed here.
    method : {"reml", "ml"}
        Null-model estimate of h2 (R/qtl2's default is REML).
    h2 : float, optional
        Use this h2 instead of estimating it.
    zerosum : bool
        Centre the genotype effects and add their mean as ``intercept``
        (R/qtl2's default; only for probabilities without contrasts).
    contrasts : "additive-dominance", DataFrame or array, optional
        Effects of ``G A`` instead of ``G`` (R/qtl2's ``contrasts``); turns
        ``zerosum`` off.
    centred_se : bool
        With ``zerosum``: exact SEs of the centred effects (default False:
        R/qtl2's, the uncentred effects' SEs; see the module docstring).
    nullcovar : DataFrame, optional
        Numeric covariates of the null model only (R/qtl2's ``nullcovar``),
        indexed by ID: they enter the estimate of h2 but not the model with
        the genotypes. On the X chromosome pass the X covariates
        (:func:`lmmcore.xchr.x_covariates`, R/qtl2's ``get_x_covar``), as
        R/qtl2's ``scan1coef(pr[, "X"], y, k[["X"]], nullcovar = Xcovar)``;
        the X genotype columns span them.
    report : callable, optional
        Receiver of the messages.

    Returns
    -------
    EffectsResult

    Notes
    -----
    See the module docstring for the model and formulas; every position is
    one weighted least squares fit at the null h2, all positions of a chunk
    in matrix products and batched p x p inverses.
    """
    with reporting(report):
        null = null_model(genotypes, phenotypes, covariates, phenotype=phenotype, chromosome=chromosome,
                          kinship=kinship, kind=kind, method=method, h2=h2, nullcovar=nullcovar)
        markers = np.flatnonzero(np.asarray(genotypes.chromosome) == null.chromosome)
        use_zerosum = bool(zerosum) and contrasts is None and genotypes.kind == "genoprobs"
        yw = null.whiten(null.y)
        if genotypes.kind == "dosage":
            Fw = null.whiten(np.column_stack([null.covariates, np.ones(null.n)]))
            other = null.covariate_names + ("intercept",)
        else:
            Fw = null.whiten(null.covariates)
            other = null.covariate_names
        pieces = []
        k = None
        for chunk in _chunks(markers, null.n, genotypes.data.shape[2] if genotypes.data.ndim == 3 else 1):
            G, names, empty = genotype_columns(genotypes, chunk, null.rows, contrasts, allow_empty=True)
            k = G.shape[2]
            beta, cov, rss, rank = _position_fits(null.whiten(G), Fw, yw)
            sigma2 = rss / (null.n - rank)
            if use_zerosum:
                beta, se2, _ = _zerosum(beta, cov, k, centred_se)
            else:
                se2 = np.einsum("mii->mi", cov)
            se = np.sqrt(se2 * sigma2[:, None])
            beta[empty] = se[empty] = np.nan  # markers without genotypes (flagged all_missing by the scan)
            pieces.append((chunk, beta, se))
        all_names = tuple(names) + tuple(other) + (("intercept",) if use_zerosum else ())
        table = _effects_table(genotypes, pieces, all_names, k)
        return EffectsResult(
            table=table, effect_names=tuple(names), other_names=all_names[k:], phenotype=null.phenotype,
            chromosome=null.chromosome, kind="coef", h2=null.h2, sigma2=null.sigma2, n=null.n,
            kinship=null.kinship_label, method=null.method, zerosum=use_zerosum,
        )


def _chunks(markers: np.ndarray, n: int, k: int):
    size = max(1, _CHUNK_ELEMENTS // max(n * k, 1))
    for start in range(0, markers.size, size):
        yield markers[start:start + size]


def _effects_table(genotypes, pieces, names, k, extra: dict | None = None) -> pd.DataFrame:
    markers = np.concatenate([p[0] for p in pieces])
    beta = np.concatenate([p[1] for p in pieces])
    se = np.concatenate([p[2] for p in pieces])
    cols: dict = {
        "marker": np.asarray(genotypes.markers, dtype=object)[markers],
        "chr": np.asarray(genotypes.chromosome, dtype=object)[markers],
        "pos": genotypes.position[markers],
    }
    for a in range(k):
        cols[names[a]] = beta[:, a]
    for a in range(k):
        cols[f"se_{names[a]}"] = se[:, a]
    for a in range(k, len(names)):
        cols[names[a]] = beta[:, a]
    for a in range(k, len(names)):
        cols[f"se_{names[a]}"] = se[:, a]
    if extra:
        for key, value in extra.items():
            cols[key] = np.concatenate(value)
    return pd.DataFrame(cols)


# --------------------------------------------------------------------------- #
# fit1
# --------------------------------------------------------------------------- #
def fit1(
    genotypes,
    phenotypes,
    covariates: pd.DataFrame | None = None,
    *,
    marker: str,
    phenotype: str | None = None,
    kinship="loco",
    kind: str = "standardized",
    method: str = "reml",
    h2: float | None = None,
    zerosum: bool = True,
    contrasts=None,
    nullcovar: pd.DataFrame | None = None,
    report=None,
) -> Fit1Result:
    """One position in full: LOD, coefficients with SEs, fitted values, residuals, polygenic BLUP, variance explained.

    R/qtl2's ``fit1`` with a kinship (``se=TRUE``): the null h2 of the
    marker's chromosome held fixed, the model and parameterisations of
    :func:`scan1coef` (with ``zerosum`` the SEs are exact, from
    ``A V A'``), ``LOD = (n/2) log10(RSS0/RSS1)`` against the null model
    ``1 mu + C b`` (``+ nullcovar``), ``fitted = X (coefficients)`` and ``residual = y - fitted``.

    Parameters
    ----------
    genotypes, phenotypes, covariates, phenotype, kinship, kind, method, h2, zerosum, contrasts, nullcovar, report
        As for :func:`scan1coef`; ``nullcovar`` is also in the null model of the LOD.
    marker : str
        The position (its chromosome's kinship is used).

    Returns
    -------
    Fit1Result

    Notes
    -----
    Polygenic BLUP: ``g = h K V^{-1} (y - fitted)`` with ``V = h K + (1 - h) I``
    (computed as ``U diag(h d_i w_i) U' (y - fitted)``); ``noise = residual - g``.

    Variance explained by the QTL. With ``P = I - 11'/n`` and ``q = G a`` the
    fitted QTL values (the genotype part of ``fitted``), the phenotypic
    variance splits, in expectation over the model, into

        variance_qtl        = q'Pq / (n - 1)               (the QTL's fitted values),
        variance_polygenic  = h v tr(PKP) / (n - 1)         (the polygenic term),
        variance_noise      = (1 - h) v,

    with ``v`` this fit's total variance; ``variance_explained`` is the
    first over their sum: the "h2 due to the QTL" on the scale of the
    sample, independent of the kinship's scale. ``pve_lod = 1 - RSS1/RSS0``
    is the classical share of the residual sum of squares (here the
    generalised one) that the QTL removes.
    """
    with reporting(report):
        if not hasattr(genotypes, "marker_index"):
            raise LMMInputError("genotypes must be a Genotypes record (see lmmcore.genotypes.read_*)")
        j = genotypes.marker_index(str(marker))
        chromosome = genotypes.chromosome[j]
        null = null_model(genotypes, phenotypes, covariates, phenotype=phenotype, chromosome=chromosome,
                          kinship=kinship, kind=kind, method=method, h2=h2, nullcovar=nullcovar)
        G, names = genotype_columns(genotypes, np.array([j]), null.rows, contrasts)
        G = G[:, 0, :]
        k = G.shape[1]
        if genotypes.kind == "dosage":
            F = np.column_stack([null.covariates, np.ones(null.n)])
            other = null.covariate_names + ("intercept",)
        else:
            F = null.covariates
            other = null.covariate_names
        X = np.column_stack([G, F])
        yw = null.whiten(null.y)
        Xw = null.whiten(X)
        beta, cov, rank = _pivoted_qr_fit(Xw, yw)
        resid_w = yw - Xw @ np.nan_to_num(beta)
        rss1 = float(resid_w @ resid_w)
        X0w = null.whiten(np.column_stack([np.ones(null.n), null.covariates, null.null_covariates]))
        b0, *_ = np.linalg.lstsq(X0w, yw, rcond=None)
        r0 = yw - X0w @ b0
        rss0 = float(r0 @ r0)
        n = null.n
        lod = (n / 2.0) * math.log10(rss0 / rss1)
        sigma2 = rss1 / (n - rank)
        coef_names = tuple(names) + tuple(other)
        use_zerosum = bool(zerosum) and contrasts is None and genotypes.kind == "genoprobs"
        out_beta, out_cov = beta, cov
        if use_zerosum:
            A = np.zeros((len(beta) + 1, len(beta)))
            A[: len(beta), : len(beta)] = np.eye(len(beta))
            A[:k, :k] -= 1.0 / k
            A[len(beta), :k] = 1.0 / k
            out_beta = A @ beta
            out_cov = A @ cov @ A.T
            coef_names = coef_names + ("intercept",)
        vcov = pd.DataFrame(out_cov * sigma2, index=list(coef_names), columns=list(coef_names))
        fitted = X @ np.nan_to_num(beta)
        residual = null.y - fitted
        shrink = null.h2 * null.d * null.weights
        polygenic = null.U @ (shrink * (null.U.T @ residual))
        q = G @ np.nan_to_num(beta[:k])
        qc = q - q.mean()
        var_qtl = float(qc @ qc) / (n - 1)
        Kc = null.kinship - null.kinship.mean(axis=0)[None, :]
        Kc = Kc - Kc.mean(axis=1)[:, None]
        var_poly = null.h2 * sigma2 * float(np.trace(Kc)) / (n - 1)
        var_noise = (1.0 - null.h2) * sigma2
        individuals = pd.DataFrame(
            {"y": null.y, "fitted": fitted, "residual": residual, "polygenic": polygenic,
             "noise": residual - polygenic},
            index=pd.Index(null.ids, name="id"),
        )
        return Fit1Result(
            phenotype=null.phenotype, marker=genotypes.markers[j], chromosome=chromosome,
            pos=float(genotypes.position[j]), lod=lod,
            coef=pd.Series(out_beta, index=list(coef_names)),
            se=pd.Series(np.sqrt(np.diag(out_cov) * sigma2), index=list(coef_names)),
            vcov=vcov, individuals=individuals, h2=null.h2, sigma2=sigma2, n=n,
            pve_lod=1.0 - rss1 / rss0, variance_qtl=var_qtl, variance_polygenic=var_poly,
            variance_noise=var_noise, variance_explained=var_qtl / (var_qtl + var_poly + var_noise),
            kinship=null.kinship_label, method=null.method,
        )

"""The result of a genome scan: :class:`ScanResult` (the long table and what the scan used)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .permute import PermutationResult

__all__ = ["ScanResult"]


@dataclass(frozen=True)
class ScanResult:
    """A genome scan: one row per (phenotype, marker), plus the null fits.

    Attributes
    ----------
    table : DataFrame
        Long format, phenotypes in the requested order and markers in genome
        order. Always: ``phenotype, marker, chr, pos, n, df, h2, lod,
        p_value``, the effects ``beta_<name>`` and standard errors
        ``se_<name>`` at the fixed h2 (``<name>`` is ``dosage`` or a
        genotype), and ``flag`` (empty, or ``monomorphic``,
        ``collinear_with_covariates``, ``all_missing``, ``rank_deficient``).
        With ``refit``: ``h2_ml, loglik_ml, lrt, lod_lrt, p_lrt`` (ML h2
        re-estimated per marker, GEMMA -lmm 2) and ``h2_reml, loglik_reml,
        beta_wald_<name>, se_wald_<name>, wald, p_wald`` (REML h2 per marker,
        GEMMA -lmm 1). Empty (no rows, the same columns) when the scan was
        given a sink that keeps no rows (a Parquet file or a summary, see
        :mod:`lmmcore.scan_sink`).
    null : DataFrame
        The null fit of every phenotype and kinship: ``phenotype, chr``
        (``"all"`` for one kinship, else the chromosome left out), ``n, h2,
        sigma2, loglik, method`` and with ``refit`` ``h2_ml, loglik_ml``.
    method : str
        ``"reml"`` or ``"ml"``: how the null h2 of the fixed-h2 scan was estimated.
    refit : bool
    kinship : str
        ``"overall"`` or ``"loco"``.
    effect_names : tuple of str
        The ``<name>`` of the effect columns.
    n_individuals : int
        Individuals with genotypes, covariates and at least one phenotype.
    ids : tuple of str
        Their IDs, in genotype order (the order of every fit; each
        phenotype's fit uses those of them where it is observed).
    permutations : PermutationResult or None
    timings : dict
        Seconds spent in each stage (``kinship, eigen, null, rotate, scan,
        refit, permute``).
    summary : DataFrame or None
        With a summary sink (:class:`~lmmcore.scan_sink.MaxSink`,
        :class:`~lmmcore.scan_sink.PeaksSink`): its table.
    names : tuple of str
        The scanned phenotypes, in request order.
    refit_exact_profiles : int
        With ``refit``: how many marker profiles (ML and REML counted
        separately) were maximised by Brent's method on the exact likelihood
        because interpolation was not trusted there (see
        :meth:`lmmcore.refit._MarkerProfiles.maximize`); the others were maximised by
        interpolation.
    """

    table: pd.DataFrame
    null: pd.DataFrame
    method: str
    refit: bool
    kinship: str
    effect_names: tuple[str, ...]
    n_individuals: int
    permutations: PermutationResult | None = None
    timings: dict = field(default_factory=dict)
    refit_exact_profiles: int = 0
    ids: tuple[str, ...] = ()
    summary: pd.DataFrame | None = None
    names: tuple[str, ...] = ()

    @property
    def phenotypes(self) -> tuple[str, ...]:
        if self.names:
            return self.names
        return tuple(pd.unique(self.table["phenotype"]))

    def peaks(self, threshold: float = 3.0) -> pd.DataFrame:
        """The highest marker of every chromosome whose LOD reaches ``threshold``, per phenotype."""
        ok = self.table[self.table["lod"] >= threshold]
        if ok.empty:
            return ok.copy()
        best = ok.loc[ok.groupby(["phenotype", "chr"], sort=False)["lod"].idxmax()]
        return best.sort_values(["phenotype", "lod"], ascending=[True, False]).reset_index(drop=True)



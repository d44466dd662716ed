"""The phenotype by genotype at one marker, and the effects the scan fitted there.

Pure statistics on a finished scan (:class:`~app.scan_jobs.ScanEntry`): the
genotype each individual most likely carries (or its rounded dosage), group
means with standard errors, and the scan's own effect estimates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmmcore.genotypes import Genotypes

from .scan_jobs import ScanEntry

__all__ = ["EffectData", "effect_data"]


@dataclass(frozen=True)
class EffectData:
    """The phenotype by genotype at one marker, and the effects the scan fitted there.

    Attributes
    ----------
    phenotype, marker, chromosome : str
    position : float
    kind : str
        ``"genoprobs"`` (genotype = the most likely one) or ``"dosage"``
        (genotype = the dosage rounded to 0, 1 or 2).
    points : DataFrame
        ``id, genotype, value``: one row per individual in the scan.
    groups : DataFrame
        ``genotype, n, mean, sd, se`` for every genotype carried by someone,
        in genotype order (``se = sd / sqrt(n)``).
    effects : DataFrame
        ``effect, estimate, se``: the scan's fixed-h2 estimates (contrasts with
        the reference genotype, or the effect of one allele). Empty on a
        cross's X chromosome (``on_x``): there the scan's model holds the X
        covariates, which the X genotypes span, so its contrasts are not
        identified; the X effects are :func:`lmmcore.fit1`'s (with the X
        covariates as ``nullcovar``), which the view shows.
    reference : str or None
        The genotype the contrasts are against (None for dosages).
    lod, p_value, h2 : float
    n, df : int
    flag : str
    lod_exact, h2_exact : float
        With the exact scan: the likelihood-ratio LOD with h2 re-estimated
        by ML at this marker (GEMMA ``-lmm 2``) and that h2; NaN otherwise.
    on_x : bool
        The marker is on a cross's X chromosome (scanned with the X covariates).
    """

    phenotype: str
    marker: str
    chromosome: str
    position: float
    kind: str
    points: pd.DataFrame
    groups: pd.DataFrame
    effects: pd.DataFrame
    reference: str | None
    lod: float
    p_value: float
    h2: float
    n: int
    df: int
    flag: str
    lod_exact: float = float("nan")
    h2_exact: float = float("nan")
    on_x: bool = False

    @property
    def genotype_order(self) -> tuple[str, ...]:
        return tuple(self.groups["genotype"])



def _called_genotypes(genotypes: Genotypes, rows: np.ndarray, column: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """Each individual's genotype at one marker, and the genotype labels in order.

    Probabilities: the most likely genotype of the marker's chromosome's own
    set (``genotypes_by_chr``: an F2's X has ``SS, SB, BS, BB, SY, BY``, in
    R/qtl2's order). Dosages: the dosage rounded to 0, 1 or 2 (imputed
    dosages are rounded too).
    """
    if genotypes.kind == "genoprobs":
        names = tuple(genotypes.genotype_names)
        by_chr = genotypes.genotypes_by_chr or {}
        own = by_chr.get(str(genotypes.chromosome[column]))
        if own:
            names = tuple(own)
        cols = [genotypes.genotype_names.index(g) for g in names]
        probs = genotypes.probs[rows, column, :][:, cols]
        if np.isnan(probs).all():
            return np.full(rows.size, None, dtype=object), names
        return np.asarray(names, dtype=object)[np.argmax(probs, axis=1)], names
    dosage = genotypes.dosage[rows, column]
    if np.isnan(dosage).all():
        return np.full(rows.size, None, dtype=object), ("0", "1", "2")
    called = np.clip(np.rint(dosage), 0, 2).astype(int).astype(str).astype(object)
    return called, ("0", "1", "2")


def effect_data(entry: ScanEntry, marker: str) -> EffectData | None:
    """Phenotype by genotype at ``marker`` and the scan's fitted effects there (None if unknown)."""
    result, job = entry.result, entry.job
    table = result.table
    row = table[(table["phenotype"] == entry.phenotype) & (table["marker"].astype(str) == str(marker))]
    if row.empty:
        return None
    row = row.iloc[0]
    genotypes = job.genotypes
    column = genotypes.marker_index(str(marker))
    ids = pd.Index(result.ids)  # the individuals the scan used, in genotype order
    rows = pd.Index(genotypes.ids).get_indexer(ids)
    called, order = _called_genotypes(genotypes, rows, column)
    values = job.phenotype.copy()
    values.index = values.index.astype(str)
    points = pd.DataFrame({"id": ids.to_numpy(dtype=object), "genotype": called,
                           "value": values.loc[ids].to_numpy(dtype=float)})
    stats = points.dropna(subset=["genotype"]).groupby("genotype", sort=False)["value"].agg(["count", "mean", "std"])
    stats = stats.reindex([g for g in order if g in stats.index])
    groups = pd.DataFrame({
        "genotype": stats.index.astype(str),
        "n": stats["count"].to_numpy(dtype=int),
        "mean": stats["mean"].to_numpy(dtype=float),
        "sd": stats["std"].to_numpy(dtype=float),
    })
    groups["se"] = groups["sd"] / np.sqrt(groups["n"])
    chromosome = str(row["chr"])
    on_x = chromosome in job.x_chr
    # the scan's effects of this chromosome's genotypes (another chromosome's set is NaN here); none on X
    names = [] if on_x else [e for e in result.effect_names if genotypes.kind != "genoprobs" or e in order]
    effects = pd.DataFrame({
        "effect": names,
        "estimate": [float(row[f"beta_{e}"]) for e in names],
        "se": [float(row[f"se_{e}"]) for e in names],
    }, columns=["effect", "estimate", "se"])
    kind = genotypes.kind
    return EffectData(
        phenotype=entry.phenotype,
        marker=str(marker),
        chromosome=str(row["chr"]),
        position=float(row["pos"]),
        kind=kind,
        points=points,
        groups=groups,
        effects=effects,
        reference=str(order[0]) if kind == "genoprobs" else None,
        lod=float(row["lod"]),
        p_value=float(row["p_value"]),
        h2=float(row["h2"]),
        n=int(row["n"]),
        df=int(row["df"]),
        flag=str(row["flag"]) if isinstance(row["flag"], str) else "",
        lod_exact=float(row["lod_lrt"]) if result.refit else float("nan"),
        h2_exact=float(row["h2_ml"]) if result.refit else float("nan"),
        on_x=on_x,
    )



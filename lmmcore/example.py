"""The example data set in ``assets/``: simulated, written, and described in its README.

An advanced intercross (see :mod:`lmmcore.simulate` for the breeding scheme
and the trait model) of 300 individuals with the traits of
:data:`~lmmcore.simulate.EXAMPLE_TRAITS`, their R/qtl2 kinship, genotype
probabilities, dosages, PLINK files and the true parameters, all from one
seed. ``lmmcore simulate --out-dir assets`` writes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from .errors import LMMInputError
from .io import atomic_output
from .kinship import kinship_from_genoprobs
from .simulate import (
    EXAMPLE_SEED,
    EXAMPLE_TRAITS,
    GENOTYPE_NAMES,
    CrossPopulation,
    TraitSpec,
    _kinship_factor,
    _refuse_overwrite,
    genotype_probabilities,
    make_genetic_map,
    simulate_cross,
    simulate_polygenic,
    write_plink,
)

__all__ = ["EXAMPLE_FILES", "ExampleDataset", "simulate_example", "write_example_dataset"]


def _atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    """Write ``target`` through :func:`lmmcore.io.atomic_output` (``write(tmp)`` fills it)."""
    with atomic_output(target, force=True) as tmp:
        write(tmp)


# --------------------------------------------------------------------------- #
# The example data set
# --------------------------------------------------------------------------- #
@dataclass(frozen=True, eq=False)
class ExampleDataset:
    """The simulated example: population, genotypes, kinship, phenotypes, truth.

    Attributes
    ----------
    population : CrossPopulation
    probs : ndarray, shape (n, n_markers, 3)
        Genotype probabilities (AA, AB, BB).
    kinship : ndarray, shape (n, n)
        :func:`~lmmcore.kinship.kinship_from_genoprobs` of ``probs``.
    pheno : DataFrame
        One column per trait, indexed by ID; missing values are NaN.
    covar : DataFrame
        Column ``sex`` (``"f"``/``"m"``), indexed by ID.
    truth : DataFrame
        One row per trait with the true parameters.
    seed : int
    """

    population: CrossPopulation
    probs: np.ndarray
    kinship: np.ndarray
    pheno: pd.DataFrame
    covar: pd.DataFrame
    truth: pd.DataFrame
    seed: int


def simulate_example(
    seed: int = EXAMPLE_SEED,
    n: int = 300,
    *,
    traits: Sequence[TraitSpec] = EXAMPLE_TRAITS,
    n_generations: int = 3,
    genotype_error: float = 0.002,
) -> ExampleDataset:
    """Simulate the example data set in memory (see :func:`write_example_dataset`).

    Parameters
    ----------
    seed : int
        Master seed; the map, population and phenotypes use streams spawned
        from it.
    n : int
        Number of individuals.
    traits : sequence of TraitSpec
        Traits to simulate (``qtl_marker="chr2"`` picks the chromosome-2
        marker nearest 45% of its length).
    n_generations : int
        Generations after the F2 (3 gives an F5 sample).
    genotype_error : float
        Smoothing of the genotype probabilities (see
        :func:`genotype_probabilities`).

    Returns
    -------
    ExampleDataset
    """
    map_seq, pop_seq, pheno_seq = np.random.SeedSequence(seed).spawn(3)
    gmap = make_genetic_map(seed=map_seq)
    pop = simulate_cross(gmap, n, n_generations=n_generations, seed=pop_seq)
    dosage = pop.dosage
    probs = genotype_probabilities(dosage, genotype_error)
    K = kinship_from_genoprobs(probs, GENOTYPE_NAMES)
    L = _kinship_factor(K)

    male = np.asarray(pop.sex) == "m"
    markers = gmap["marker"].tolist()
    trait_rngs = [np.random.default_rng(s) for s in pheno_seq.spawn(len(traits))]
    columns, rows = {}, []
    for spec, rng in zip(traits, trait_rngs):
        qtl = _resolve_qtl(spec.qtl_marker, gmap)
        y = spec.intercept + spec.sex_effect * male
        y = y + simulate_polygenic(K, spec.sigma2_g, spec.sigma2_e, seed=rng, factor=L)
        if qtl is not None:
            y = y + spec.qtl_effect * (dosage[:, markers.index(qtl)] - 1.0)
        n_missing = int(round(spec.missing_fraction * n))
        if n_missing:
            y[rng.choice(n, size=n_missing, replace=False)] = np.nan
        columns[spec.name] = y
        row = gmap.loc[gmap["marker"] == qtl].iloc[0] if qtl is not None else None
        rows.append({
            "phenotype": spec.name,
            "true_h2": spec.h2,
            "sigma2_g": spec.sigma2_g,
            "sigma2_e": spec.sigma2_e,
            "intercept": spec.intercept,
            "sex_effect_m": spec.sex_effect,
            "qtl_marker": qtl if qtl is not None else "",
            "qtl_chr": row["chr"] if row is not None else "",
            "qtl_pos_cM": float(row["pos"]) if row is not None else np.nan,
            "qtl_effect_per_B": spec.qtl_effect if qtl is not None else 0.0,
            "missing_fraction": n_missing / n,
            "n_observed": n - n_missing,
        })
    index = pd.Index(pop.ids, name="id")
    pheno = pd.DataFrame(columns, index=index)
    covar = pd.DataFrame({"sex": list(pop.sex)}, index=index)
    return ExampleDataset(pop, probs, K, pheno, covar, pd.DataFrame(rows), int(seed))


def _resolve_qtl(marker: str | None, gmap: pd.DataFrame) -> str | None:
    if marker is None:
        return None
    if marker.startswith("chr") and marker[3:] in set(gmap["chr"]):
        on = gmap[gmap["chr"] == marker[3:]]
        target = 0.45 * on["pos"].max()
        return str(on.iloc[int(np.argmin(np.abs(on["pos"].to_numpy() - target)))]["marker"])
    if marker not in set(gmap["marker"]):
        raise LMMInputError(f"The QTL marker {marker!r} is not on the genetic map; name a map marker.")
    return marker


#: Files written by :func:`write_example_dataset`.
EXAMPLE_FILES = (
    "pheno.csv", "covar.csv", "kinship.csv", "genoprobs.csv", "map.csv", "genotypes.csv",
    "example.bed", "example.bim", "example.fam", "truth.csv", "README.md",
)


def write_example_dataset(
    out_dir: str | Path,
    seed: int = EXAMPLE_SEED,
    n: int = 300,
    force: bool = False,
) -> dict[str, Path]:
    """Simulate the example data set and write it to ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        Directory (created if needed).
    seed : int
        Master seed.
    n : int
        Number of individuals.
    force : bool
        Overwrite existing files. Without it, nothing is written if any of
        the files exists.

    Returns
    -------
    dict of str to Path
        File name -> path of every file written: ``pheno.csv`` (IDs and
        traits, ``NA`` for missing), ``covar.csv`` (sex ``f``/``m``),
        ``kinship.csv`` (IDs as row and column labels), ``genoprobs.csv``
        (``MARKER:GENOTYPE`` columns, 4 significant digits), ``map.csv``
        (marker, chr, pos in cM), ``genotypes.csv`` (B-allele dosage
        0/1/2), ``example.bed/.bim/.fam`` (PLINK; A1 = B, bp = cM x 10^6),
        ``truth.csv`` (true parameters) and ``README.md``.

    Raises
    ------
    LMMInputError
        If a file exists and ``force`` is false.

    Notes
    -----
    Each file is written to a temporary file in ``out_dir`` and moved into
    place with ``os.replace``, so a reader never sees a half-written file.
    """
    out = Path(out_dir)
    targets = {name: out / name for name in EXAMPLE_FILES}
    _refuse_overwrite(targets.values(), force)
    ds = simulate_example(seed, n)
    out.mkdir(parents=True, exist_ok=True)
    gmap = ds.population.genetic_map
    ids = list(ds.population.ids)
    dosage = ds.population.dosage

    def csv_writer(df: pd.DataFrame, **kw) -> Callable[[Path], None]:
        return lambda tmp: df.to_csv(tmp, lineterminator="\n", **kw)

    geno_cols = [f"{m}:{g}" for m in gmap["marker"] for g in GENOTYPE_NAMES]
    frames = {
        "pheno.csv": (ds.pheno, dict(na_rep="NA", float_format="%.6g")),
        "covar.csv": (ds.covar, {}),
        "kinship.csv": (pd.DataFrame(ds.kinship, index=pd.Index(ids, name="id"), columns=ids),
                        dict(float_format="%.10g")),
        "genoprobs.csv": (pd.DataFrame(ds.probs.reshape(len(ids), -1), index=pd.Index(ids, name="id"),
                                       columns=geno_cols), dict(float_format="%.4g")),
        "map.csv": (gmap, dict(index=False, float_format="%.2f")),
        "genotypes.csv": (pd.DataFrame(dosage, index=pd.Index(ids, name="id"), columns=gmap["marker"]), {}),
        "truth.csv": (ds.truth, dict(index=False, float_format="%.6g")),
    }
    for name, (df, kw) in frames.items():
        _atomic_write(targets[name], csv_writer(df, **kw))
    write_plink(
        out / "example", dosage, ids, gmap["chr"].tolist(), np.round(gmap["pos"].to_numpy() * 1e6),
        gmap["marker"].tolist(), cm_position=gmap["pos"].to_numpy(), sex=list(ds.population.sex),
        fid=list(ds.population.family), force=True,
    )
    text = _readme_text(ds)
    _atomic_write(targets["README.md"], lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return targets


# --------------------------------------------------------------------------- #
# README of the example
# --------------------------------------------------------------------------- #
def _readme_text(ds: ExampleDataset) -> str:
    """The example's README: files, population, seed and the true values."""
    pop = ds.population
    gmap = pop.genetic_map
    n = pop.n
    per_chr = gmap.groupby("chr", sort=False)["pos"].agg(["size", "max"])
    chr_rows = "\n".join(f"| {c} | {int(r['size'])} | {r['max']:.1f} |" for c, r in per_chr.iterrows())
    fam_sizes = pd.Series(pop.family).value_counts()
    pairs = pd.DataFrame({"sire": pop.sire, "family": pop.family}).drop_duplicates()
    dams_per_sire = pairs.groupby("sire").size()
    freq = np.bincount(pop.dosage.ravel(), minlength=3) / pop.dosage.size
    n_male = int((np.asarray(pop.sex) == "m").sum())
    K = ds.kinship
    off = K[~np.eye(n, dtype=bool)]
    truth = ds.truth
    with_na = truth.loc[truth["n_observed"] < n, "phenotype"].tolist()
    na_note = (
        f"only {', '.join(f'`{t}`' for t in with_na)} {'has' if len(with_na) == 1 else 'have'} any, "
        f"so the data have {len(with_na) + 1} missingness patterns"
        if with_na else "no trait has any"
    )
    rows = []
    for _, t in truth.iterrows():
        qtl = "—"
        if t["qtl_marker"]:
            qtl = (f"{t['qtl_marker']} (chr {t['qtl_chr']}, {t['qtl_pos_cM']:.2f} cM), "
                   f"a = {t['qtl_effect_per_B']:g}")
        rows.append(
            f"| `{t['phenotype']}` | {t['true_h2']:g} | {t['sigma2_g']:g} | {t['sigma2_e']:g} | "
            f"{t['intercept']:g} | {t['sex_effect_m']:g} | {qtl} | {int(t['n_observed'])} |"
        )
    qtl_text = ""
    for _, t in truth[truth["qtl_marker"] != ""].iterrows():
        qtl_text += (
            f"\nThe trait `{t['phenotype']}` adds a QTL at `{t['qtl_marker']}` "
            f"(chromosome {t['qtl_chr']}, {t['qtl_pos_cM']:.1f} cM): the term "
            f"`{t['qtl_effect_per_B']:g} (x - 1)`, with `x` the number of B alleles, is an additive "
            f"effect of {t['qtl_effect_per_B']:g} per B allele without dominance. Its polygenic "
            f"background has h2 = {t['true_h2']:g} of the polygenic plus residual variance. A genome "
            "scan should peak there; a fit without the QTL as a covariate lets K absorb the QTL's "
            "variance and so estimates a larger h2.\n"
        )
    boundary = truth.loc[truth["true_h2"] == 0, "phenotype"].tolist()
    boundary_text = (
        f"{', '.join(f'`{b}`' for b in boundary)} has true h2 exactly 0, on the boundary of the "
        "parameter space; the estimate from one sample is 0 or a little above it.\n"
        if boundary else ""
    )
    return f"""# Example data: a simulated advanced intercross

Everything in this directory is generated by `lmmcore.simulate.write_example_dataset`
with seed **{ds.seed}** and n = **{n}** individuals. Do not edit the files by hand: the true
values below are the ones used to simulate them. Regenerate them, byte for byte, with

```
python -c "from lmmcore.simulate import write_example_dataset; write_example_dataset('assets', seed={ds.seed}, n={n}, force=True)"
```

or `make assets` (which runs `lmmcore simulate --out-dir assets --force`).

## Population

Two inbred founder strains, A and B, are crossed: F1 = A x B, then F2 = F1 x F1.
An F2 colony is kept by random mating without sib mating (each pair leaves one son and one
daughter) up to generation F{pop.generation - 1}.
The sample is the F{pop.generation} generation, bred in {fam_sizes.size} full-sib families
(sizes {fam_sizes.min()} to {fam_sizes.max()}, mean {fam_sizes.mean():.1f}) from {dams_per_sire.size} sires,
{int((dams_per_sire > 1).sum())} of which were mated to two dams.
So the sample has full sibs, paternal half sibs and individuals from unrelated parents.
{n_male} individuals are male and {n - n_male} female (`sex` in `covar.csv`).

Crossovers follow the Haldane map function (no interference): two markers `d` cM apart
recombine with probability `r = (1 - exp(-2 d / 100)) / 2`.
The genome has {per_chr.shape[0]} autosomes with {len(gmap)} markers, 2 to 4 cM apart:

| chromosome | markers | length (cM) |
|---|---|---|
{chr_rows}

Genotype frequencies over all markers: AA {freq[0]:.3f}, AB {freq[1]:.3f}, BB {freq[2]:.3f}.

## Files

| file | content |
|---|---|
| `pheno.csv` | `id` and one column per trait; `NA` marks a missing value ({na_note}). |
| `covar.csv` | `id` and `sex` as text, `f` or `m`. |
| `kinship.csv` | The {n} x {n} kinship with IDs as row and column labels: R/qtl2's default `calc_kinship` (overall, from allele probabilities) of `genoprobs.csv`, computed by `lmmcore.kinship.kinship_from_genoprobs`. Diagonal {np.diag(K).min():.3f} to {np.diag(K).max():.3f}; off-diagonal {off.min():.3f} to {off.max():.3f}, mean {off.mean():.3f}. |
| `genoprobs.csv` | Genotype probabilities, one column per `MARKER:GENOTYPE` (`D1M01:AA`, `D1M01:AB`, `D1M01:BB`, ...), 4 significant digits. The true genotype has probability 0.998 and the two others 0.001 each (smoothing for genotyping errors). |
| `map.csv` | `marker`, `chr`, `pos` (cM). |
| `genotypes.csv` | `id` and the dosage of allele B (0 = AA, 1 = AB, 2 = BB), one column per marker. |
| `example.bed`, `example.bim`, `example.fam` | The same genotypes as PLINK 1 binary files. A1 (the 5th `.bim` column) is B, so the A1 count is the B dosage. The `.bim` holds the position in cM (column 3) and in base pairs = cM x 10^6 (column 4). The `.fam` family ID is the full-sib family; sex 1 = m, 2 = f. |
| `truth.csv` | The true parameters of each trait (the table below, machine-readable). |
| `README.md` | This file. |

## True values

Each trait is `y = intercept + sex_effect_m [sex = m] + a (x - 1) + g + e` with
`g ~ N(0, sigma2_g K)` (K from `kinship.csv`) and `e ~ N(0, sigma2_e I)`, drawn independently
for each trait; `a = 0` except for the QTL trait.
The true heritability is `h2 = sigma2_g / (sigma2_g + sigma2_e)` on the scale of this K.

| phenotype | true h2 | sigma2_g | sigma2_e | intercept | sex effect (m − f) | QTL | n observed |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

{boundary_text}{qtl_text}
Every individual descends from the same two strains, so K's off-diagonal entries are far from 0
(mean {off.mean():.2f}) and part of `sigma2_g K` is a shift shared by everyone.
The realised mean of a trait therefore differs from its intercept by a random amount, and the
intercept is estimated less precisely than the other parameters.
With {n} individuals, h2 estimates are uncertain by roughly ±0.1 to ±0.2 in the middle of the
range and less near 0.9.
"""

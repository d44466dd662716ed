"""Seeded simulation of structured populations, genotypes and phenotypes.

The example data set is an advanced intercross between two inbred founder
strains, ``A`` and ``B``:

1. F1 = A x B, heterozygous everywhere; F2 = F1 x F1.
2. A colony of equal numbers of males and females is carried on by random
   mating for a few generations; each pair leaves one son and one daughter,
   and sons are paired with daughters of another family (no sib mating).
3. The last generation is bred in small families: some sires are mated to
   two dams, so the sample holds full sibs, half sibs (same sire) and
   individuals from unrelated parents.

Meiosis follows the Haldane map function: crossovers form a Poisson process
along each chromosome (no interference), so recombination between adjacent
markers ``d`` cM apart happens independently with probability

    r(d) = (1 - exp(-2 d / 100)) / 2.

Phenotypes are drawn from the model the package fits,

    y = mu + beta_m [sex = m] + a (x_q - 1) + g + e,
    g ~ N(0, sigma2_g K),  e ~ N(0, sigma2_e I),

where ``K`` is the R/qtl2 kinship of the simulated genotype probabilities,
``x_q`` the dosage of allele B at a QTL marker (``a = 0`` for polygenic
traits) and the true heritability is ``h2 = sigma2_g / (sigma2_g +
sigma2_e)`` on the scale of that ``K``.

Every function takes a seed and is reproducible; the stages of the example
(map, population, phenotypes) use independent streams spawned from one seed.
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .errors import LMMInputError
from .io import atomic_output
from .genotypes import Genotypes, sort_chromosomes

__all__ = [
    "EXAMPLE_SEED",
    "EXAMPLE_TRAITS",
    "GENOTYPE_NAMES",
    "CrossPopulation",
    "TraitSpec",
    "genotype_probabilities",
    "haldane_distance",
    "haldane_r",
    "make_genetic_map",
    "simulate_cross",
    "simulate_genotype_dosages",
    "simulate_polygenic",
    "write_plink",
]

#: Seed of the example data set in ``assets/``.
EXAMPLE_SEED = 20261123

#: Genotype names of a two-strain cross, ordered by the dosage of allele B.
GENOTYPE_NAMES = ("AA", "AB", "BB")

SeedLike = int | np.random.SeedSequence | np.random.Generator | None


# --------------------------------------------------------------------------- #
# Map functions
# --------------------------------------------------------------------------- #
def haldane_r(distance_cM: np.ndarray | float) -> np.ndarray:
    """Recombination fraction for a map distance, Haldane's map function.

    Notes
    -----
    ``r = (1 - exp(-2 d / 100)) / 2`` with ``d`` in centiMorgans; ``r`` is 0
    at ``d = 0`` and tends to 1/2 for unlinked loci.
    """
    d = np.asarray(distance_cM, dtype=float)
    return 0.5 * -np.expm1(-2.0 * d / 100.0)


def haldane_distance(r: np.ndarray | float) -> np.ndarray:
    """Map distance in cM for a recombination fraction (inverse of :func:`haldane_r`).

    Notes
    -----
    ``d = -50 log(1 - 2 r)`` for ``0 <= r < 1/2``.
    """
    r = np.asarray(r, dtype=float)
    return -50.0 * np.log1p(-2.0 * r)


def make_genetic_map(
    *,
    n_chr: int = 5,
    length_range: tuple[float, float] = (80.0, 120.0),
    spacing_range: tuple[float, float] = (2.0, 4.0),
    seed: SeedLike = None,
) -> pd.DataFrame:
    """A random genetic map of autosomes named ``1 .. n_chr``.

    Parameters
    ----------
    n_chr : int
        Number of chromosomes.
    length_range : (float, float)
        Chromosome lengths in cM are uniform on this range.
    spacing_range : (float, float)
        Distances between adjacent markers in cM are uniform on this range.
    seed : int, SeedSequence or Generator, optional

    Returns
    -------
    DataFrame
        Columns ``marker`` (``D{chr}M{k}``, e.g. ``D2M07``), ``chr`` and
        ``pos`` (cM, rounded to 0.01), in genome order. The first marker of
        each chromosome is at 0 cM.
    """
    if n_chr < 1:
        raise LMMInputError(f"n_chr is {n_chr}; a genome needs at least one chromosome.")
    lo, hi = spacing_range
    if not 0 < lo <= hi:
        raise LMMInputError(f"spacing_range is {spacing_range}; it must be (low, high) with 0 < low <= high.")
    rng = np.random.default_rng(seed)
    lengths = rng.uniform(*length_range, size=n_chr)
    frames = []
    for c, length in enumerate(lengths, start=1):
        steps = rng.uniform(lo, hi, size=int(length / lo) + 2)
        pos = np.concatenate([[0.0], np.cumsum(steps)])
        pos = np.round(pos[pos <= length], 2)
        width = max(2, len(str(len(pos))))
        frames.append(pd.DataFrame({
            "marker": [f"D{c}M{k:0{width}d}" for k in range(1, len(pos) + 1)],
            "chr": str(c),
            "pos": pos,
        }))
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- #
# Meiosis
# --------------------------------------------------------------------------- #
def _chromosome_blocks(chrom: Sequence[str], pos: np.ndarray) -> list[tuple[slice, np.ndarray]]:
    """Per chromosome: the slice of its (contiguous) markers and the adjacent-interval r."""
    chrom = np.asarray(chrom, dtype=object)
    pos = np.asarray(pos, dtype=float)
    blocks = []
    for name in sort_chromosomes(set(chrom.tolist())):
        idx = np.flatnonzero(chrom == name)
        if idx[-1] - idx[0] != idx.size - 1 or np.any(np.diff(pos[idx]) < 0):
            raise LMMInputError(
                f"The markers of chromosome {name} are not contiguous and sorted by position; put "
                "the map in genome order first."
            )
        blocks.append((slice(idx[0], idx[-1] + 1), haldane_r(np.diff(pos[idx]))))
    return blocks


def _gametes(parents: np.ndarray, blocks, rng: np.random.Generator) -> np.ndarray:
    """One gamete from each parent: ``parents`` (k, 2, M) -> (k, M).

    Each chromosome starts on a random one of the parent's two haplotypes and
    switches haplotype across interval ``j`` with probability ``r_j``,
    independently of the other intervals (Haldane: no interference).
    """
    k, _, M = parents.shape
    out = np.empty((k, M), dtype=parents.dtype)
    rows = np.arange(k)[:, None]
    for sl, r in blocks:
        start = rng.integers(0, 2, size=(k, 1), dtype=np.int8)
        switches = (rng.random((k, r.size)) < r).astype(np.int8)
        # Only the parity of the crossover count matters (int8 wrap-around keeps it).
        strand = np.concatenate([start, start + np.cumsum(switches, axis=1, dtype=np.int8)], axis=1) & 1
        cols = np.arange(sl.start, sl.stop)[None, :]
        out[:, sl] = parents[rows, strand, cols]
    return out


def _offspring(haps: np.ndarray, sire: np.ndarray, dam: np.ndarray, blocks, rng) -> np.ndarray:
    """Children of ``haps[sire[i]] x haps[dam[i]]``: (k, 2, M), paternal haplotype first."""
    child = np.empty((len(sire), 2, haps.shape[2]), dtype=haps.dtype)
    child[:, 0] = _gametes(haps[sire], blocks, rng)
    child[:, 1] = _gametes(haps[dam], blocks, rng)
    return child


# --------------------------------------------------------------------------- #
# The cross
# --------------------------------------------------------------------------- #
@dataclass(frozen=True, eq=False)
class CrossPopulation:
    """Individuals of a two-strain cross with their phased founder haplotypes.

    Attributes
    ----------
    ids : tuple of str
        Individual IDs.
    sex : tuple of str
        ``"f"`` or ``"m"``.
    family : tuple of str
        Full-sib family (the parental pair).
    sire, dam : tuple of str
        Parents' IDs (parents are not part of the sample).
    haplotypes : ndarray of uint8, shape (n, 2, n_markers)
        Founder origin of each allele: 0 = strain A, 1 = strain B; paternal
        haplotype first.
    genetic_map : DataFrame
        ``marker``, ``chr``, ``pos`` (cM) of the columns, in genome order.
    generation : int
        Filial generation of the sample (2 for an F2).
    """

    ids: tuple[str, ...]
    sex: tuple[str, ...]
    family: tuple[str, ...]
    sire: tuple[str, ...]
    dam: tuple[str, ...]
    haplotypes: np.ndarray
    genetic_map: pd.DataFrame
    generation: int

    @property
    def n(self) -> int:
        """Number of individuals."""
        return len(self.ids)

    @property
    def dosage(self) -> np.ndarray:
        """Copies of allele B, shape (n, n_markers), int8 in {0, 1, 2}."""
        return self.haplotypes.sum(axis=1, dtype=np.int8)

    @property
    def markers(self) -> tuple[str, ...]:
        return tuple(self.genetic_map["marker"])


def simulate_cross(
    genetic_map: pd.DataFrame,
    n: int,
    *,
    n_generations: int = 3,
    mean_family_size: float = 4.0,
    colony_size: int | None = None,
    seed: SeedLike = None,
) -> CrossPopulation:
    """Simulate an F2 or an advanced intercross of two inbred strains.

    Parameters
    ----------
    genetic_map : DataFrame
        ``marker``, ``chr``, ``pos`` (cM) in genome order (e.g. from
        :func:`make_genetic_map` or :func:`~lmmcore.genotypes.read_map`).
    n : int
        Number of individuals in the sample.
    n_generations : int
        Generations after the F2. 0 gives an F2 sample of unrelated
        (conditionally independent) F1 x F1 offspring; ``g >= 1`` carries an
        F2 colony through ``g - 1`` generations of random mating and breeds
        the sample, generation ``F(2+g)``, in full-sib families.
    mean_family_size : float
        Average full-sib family size of the sample (every family has at
        least two).
    colony_size : int, optional
        Size of the colony in the generations before the sample (default:
        about 2.4 times the number of sample families).
    seed : int, SeedSequence or Generator, optional

    Returns
    -------
    CrossPopulation

    Notes
    -----
    Colony generations: each generation has equal numbers of sons and
    daughters; after a random shuffle of the families, the son of family
    ``k`` is mated to the daughter of family ``k + 1`` (cyclically), and
    each pair has one son and one daughter, so the colony size is constant
    and no sibs mate. Sample generation: ``P = round(n / mean_family_size)``
    pairs; a third of the sires are mated to two dams (their offspring are
    half sibs), the rest to one; each pair has 2 offspring plus a share of
    the remaining ``n - 2P`` drawn multinomially; offspring sex is a fair
    coin.
    """
    if n < 2:
        raise LMMInputError(f"n is {n}; simulate at least two individuals.")
    if n_generations < 0:
        raise LMMInputError(f"n_generations is {n_generations}; it must be 0 (an F2) or more.")
    rng = np.random.default_rng(seed)
    gmap = genetic_map.reset_index(drop=True)[["marker", "chr", "pos"]].copy()
    gmap["chr"] = gmap["chr"].astype(str)
    blocks = _chromosome_blocks(gmap["chr"].to_numpy(), gmap["pos"].to_numpy())
    M = len(gmap)
    f1 = np.stack([np.zeros(M, np.uint8), np.ones(M, np.uint8)])[None]  # A from the sire, B from the dam
    width = len(str(n))
    ids = tuple(f"ind{k:0{width}d}" for k in range(1, n + 1))

    if n_generations == 0:
        zeros = np.zeros(n, dtype=np.int64)
        haps = _offspring(f1, zeros, zeros, blocks, rng)
        sex = tuple(np.where(rng.random(n) < 0.5, "m", "f").tolist())
        return CrossPopulation(ids, sex, ("F2",) * n, ("F1",) * n, ("F1",) * n, haps, gmap, 2)

    n_pairs = max(1, min(n // 2, int(round(n / mean_family_size))))
    n_double = n_pairs // 3  # sires with two dams
    n_sires = n_pairs - n_double
    if colony_size is None:
        colony_size = 2 * math.ceil(1.2 * n_pairs)
    colony_size = max(2 * n_pairs, 2 * math.ceil(colony_size / 2))

    # F2 colony; sons and daughters alternate, so every "family" index k has
    # son 2k and daughter 2k + 1.
    zeros = np.zeros(colony_size, dtype=np.int64)
    haps = _offspring(f1, zeros, zeros, blocks, rng)
    half = colony_size // 2
    for _ in range(n_generations - 1):
        order = rng.permutation(half)
        sire = 2 * order
        dam = 2 * np.roll(order, -1) + 1
        haps = _offspring(haps, np.repeat(sire, 2), np.repeat(dam, 2), blocks, rng)

    # Sample generation: distinct sires (sons) and dams (daughters) of the colony.
    parent_gen = 1 + n_generations
    sires = 2 * rng.choice(half, size=n_sires, replace=False)
    dams = 2 * rng.choice(half, size=n_pairs, replace=False) + 1
    pair_sire = np.concatenate([sires, sires[:n_double]])
    rng.shuffle(pair_sire)
    sizes = 2 + rng.multinomial(n - 2 * n_pairs, np.full(n_pairs, 1.0 / n_pairs))
    sire_of = np.repeat(pair_sire, sizes)
    dam_of = np.repeat(dams, sizes)
    haps = _offspring(haps, sire_of, dam_of, blocks, rng)
    sex = tuple(np.where(rng.random(n) < 0.5, "m", "f").tolist())
    fam_width = max(2, len(str(n_pairs)))
    family = tuple(np.repeat([f"fam{k:0{fam_width}d}" for k in range(1, n_pairs + 1)], sizes).tolist())
    cw = len(str(colony_size))
    sire_ids = tuple(f"F{parent_gen}_{k + 1:0{cw}d}" for k in sire_of)
    dam_ids = tuple(f"F{parent_gen}_{k + 1:0{cw}d}" for k in dam_of)
    return CrossPopulation(ids, sex, family, sire_ids, dam_ids, haps, gmap, 2 + n_generations)


def genotype_probabilities(dosage: np.ndarray, error: float = 0.002) -> np.ndarray:
    """Genotype probabilities (AA, AB, BB) for known genotypes, smoothed for errors.

    Parameters
    ----------
    dosage : array_like of int, shape (n, n_markers)
        Copies of allele B (0, 1, 2).
    error : float
        Probability mass spread evenly over the two other genotypes.

    Returns
    -------
    ndarray, shape (n, n_markers, 3)
        ``1 - error`` on the true genotype and ``error / 2`` on each other
        one; the probabilities sum to 1.
    """
    if not 0 <= error < 1:
        raise LMMInputError(f"error is {error}; it must be a probability in [0, 1).")
    dosage = np.asarray(dosage)
    probs = np.full(dosage.shape + (3,), error / 2.0)
    np.put_along_axis(probs, dosage[..., None].astype(np.intp), 1.0 - error, axis=2)
    return probs


# --------------------------------------------------------------------------- #
# Phenotypes
# --------------------------------------------------------------------------- #
def _kinship_factor(kinship: np.ndarray) -> np.ndarray:
    """``L`` with ``L L' = K`` from the eigendecomposition (negative rounding clipped)."""
    K = np.asarray(kinship, dtype=float)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise LMMInputError(f"The kinship matrix is {K.shape}; it must be square.")
    if not np.isfinite(K).all():
        raise LMMInputError("The kinship matrix has missing or infinite values.")
    if not np.allclose(K, K.T, rtol=0, atol=1e-10 * max(1.0, np.abs(K).max())):
        raise LMMInputError("The kinship matrix is not symmetric; a covariance matrix must be.")
    d, U = np.linalg.eigh(K)
    if d[0] < -1e-8 * max(d[-1], 1e-300):
        raise LMMInputError(
            f"The kinship matrix has a negative eigenvalue ({d[0]:.3g}); it must be positive semidefinite."
        )
    return U * np.sqrt(np.clip(d, 0.0, None))


def simulate_polygenic(
    kinship: np.ndarray,
    sigma2_g: float,
    sigma2_e: float,
    *,
    size: int | None = None,
    seed: SeedLike = None,
    factor: np.ndarray | None = None,
) -> np.ndarray:
    """Draw ``g + e`` with ``g ~ N(0, sigma2_g K)`` and ``e ~ N(0, sigma2_e I)``.

    Parameters
    ----------
    kinship : array_like, shape (n, n)
        Positive semidefinite kinship ``K``.
    sigma2_g, sigma2_e : float
        Genetic and residual variances (non-negative).
    size : int, optional
        Number of independent draws; None gives one vector.
    seed : int, SeedSequence or Generator, optional
    factor : ndarray, optional
        A precomputed ``L`` with ``L L' = K`` (skips the decomposition).

    Returns
    -------
    ndarray, shape (n,) or (n, size)

    Notes
    -----
    ``g = sqrt(sigma2_g) U D^{1/2} z`` with ``K = U D U'`` and ``z`` standard
    normal, so ``cov(g) = sigma2_g K`` exactly even for a singular ``K``
    (no jitter needed); ``e = sqrt(sigma2_e) z'``. Hence
    ``cov(y) = sigma2_g K + sigma2_e I``.
    """
    if not (np.isfinite(sigma2_g) and np.isfinite(sigma2_e)) or sigma2_g < 0 or sigma2_e < 0:
        raise LMMInputError(
            f"The variances are sigma2_g = {sigma2_g} and sigma2_e = {sigma2_e}; both must be "
            "finite and non-negative."
        )
    L = _kinship_factor(kinship) if factor is None else factor
    rng = np.random.default_rng(seed)
    n = L.shape[0]
    shape = (n,) if size is None else (n, int(size))
    g = L @ rng.standard_normal(shape)
    e = rng.standard_normal(shape)
    return math.sqrt(sigma2_g) * g + math.sqrt(sigma2_e) * e


@dataclass(frozen=True)
class TraitSpec:
    """The true model of one simulated trait.

    ``y = intercept + sex_effect [sex = m] + qtl_effect (x_B - 1) + g + e``
    with ``var(g) = h2 * variance`` times K, ``var(e) = (1 - h2) *
    variance``, ``x_B`` the B-allele dosage at ``qtl_marker`` (if any), and a
    fraction ``missing_fraction`` of the values set to missing at random.
    """

    name: str
    h2: float
    variance: float = 1.0
    intercept: float = 0.0
    sex_effect: float = 0.0
    qtl_marker: str | None = None
    qtl_effect: float = 0.0
    missing_fraction: float = 0.0

    @property
    def sigma2_g(self) -> float:
        return self.h2 * self.variance

    @property
    def sigma2_e(self) -> float:
        return (1.0 - self.h2) * self.variance


#: The traits of the example data set. ``qtl_marker="chr2"`` is replaced by
#: the chromosome-2 marker nearest 45% of its length.
EXAMPLE_TRAITS: tuple[TraitSpec, ...] = (
    TraitSpec("h2_00", 0.0, variance=1.0, intercept=10.0, sex_effect=0.5),
    TraitSpec("h2_20", 0.2, variance=2.0, intercept=20.0, sex_effect=1.0),
    TraitSpec("h2_40", 0.4, variance=1.0, intercept=5.0, sex_effect=-0.5),
    TraitSpec("h2_60", 0.6, variance=4.0, intercept=50.0, sex_effect=2.0),
    TraitSpec("h2_80", 0.8, variance=1.0, intercept=0.0, sex_effect=0.3),
    TraitSpec("h2_90", 0.9, variance=0.25, intercept=3.0, sex_effect=0.0),
    TraitSpec("qtl_chr2", 0.3, variance=1.0, intercept=10.0, sex_effect=0.5,
              qtl_marker="chr2", qtl_effect=0.8),
    TraitSpec("h2_50_na", 0.5, variance=1.0, intercept=7.0, sex_effect=-0.3, missing_fraction=0.05),
)


# --------------------------------------------------------------------------- #
# Benchmark genotypes
# --------------------------------------------------------------------------- #
def simulate_genotype_dosages(
    n: int,
    n_markers: int,
    n_chr: int = 10,
    seed: SeedLike = None,
    *,
    n_subpopulations: int = 4,
    fst: float = 0.1,
    family_size: int = 4,
    chromosome_length: float = 100.0,
) -> Genotypes:
    """Structured allele dosages for benchmarks: subpopulations and families.

    Parameters
    ----------
    n : int
        Number of individuals.
    n_markers : int
        Number of markers, spread evenly over the chromosomes.
    n_chr : int
        Number of chromosomes (named ``1 .. n_chr``).
    seed : int, SeedSequence or Generator, optional
    n_subpopulations : int
        Number of subpopulations.
    fst : float
        Divergence of subpopulation allele frequencies (Balding-Nichols).
    family_size : int
        Full sibs per family.
    chromosome_length : float
        Length of each chromosome in cM (markers evenly spaced).

    Returns
    -------
    Genotypes
        ``dosage`` of shape ``(n, n_markers)`` with values 0, 1, 2 (count of
        allele 1), IDs ``s0001...``, markers ``snp000001...``, positions in
        cM. Monomorphic markers are possible but rare.

    Notes
    -----
    Ancestral frequencies ``p_j ~ U(0.05, 0.95)``; subpopulation
    frequencies ``p_sj ~ Beta(p_j (1 - F) / F, (1 - p_j)(1 - F) / F)``;
    parental haplotypes are Bernoulli(``p_sj``); each family's parents come
    from one subpopulation and have ``family_size`` children by Haldane
    meiosis. The kinship therefore has blocks of full sibs (relatedness
    1/2) inside subpopulation blocks. About 2 n (n_markers) random numbers
    are drawn per generation, so n = 2000, m = 20000 takes a few seconds.
    """
    if n < 2 or n_markers < 1 or n_chr < 1 or n_chr > n_markers:
        raise LMMInputError(
            f"Asked for n = {n}, n_markers = {n_markers}, n_chr = {n_chr}; give n >= 2 and "
            "1 <= n_chr <= n_markers."
        )
    if not 0 < fst < 1:
        raise LMMInputError(f"fst is {fst}; it must be strictly between 0 and 1.")
    rng = np.random.default_rng(seed)
    per_chr = np.full(n_chr, n_markers // n_chr)
    per_chr[: n_markers % n_chr] += 1
    chrom = np.repeat([str(c) for c in range(1, n_chr + 1)], per_chr)
    pos = np.concatenate([np.linspace(0.0, chromosome_length, k) if k > 1 else [0.0] for k in per_chr])
    blocks = _chromosome_blocks(chrom, pos)

    p = rng.uniform(0.05, 0.95, size=n_markers)
    a = p * (1 - fst) / fst
    b = (1 - p) * (1 - fst) / fst
    p_sub = rng.beta(a, b, size=(n_subpopulations, n_markers)).astype(np.float32)
    n_fam = -(-n // family_size)
    fam_sub = rng.integers(0, n_subpopulations, size=n_fam)
    parent_p = np.repeat(p_sub[fam_sub], 2, axis=0)  # (2 n_fam, m): sire, dam of each family
    uniform = rng.random((2 * n_fam, 2, n_markers), dtype=np.float32)
    parents = (uniform < parent_p[:, None, :]).astype(np.uint8)
    del uniform
    family = np.repeat(np.arange(n_fam), family_size)[:n]
    kids = _offspring(parents, 2 * family, 2 * family + 1, blocks, rng)
    dosage = kids.sum(axis=1, dtype=np.int8).astype(np.float64)
    width = len(str(n))
    mwidth = max(6, len(str(n_markers)))
    return Genotypes(
        ids=tuple(f"s{k:0{width}d}" for k in range(1, n + 1)),
        markers=tuple(f"snp{k:0{mwidth}d}" for k in range(1, n_markers + 1)),
        chromosome=tuple(chrom.tolist()),
        position=pos,
        dosage=dosage,
        source="simulate_genotype_dosages",
    )


# --------------------------------------------------------------------------- #
# Writers
# --------------------------------------------------------------------------- #
def write_plink(
    prefix: str | Path,
    dosage: np.ndarray,
    ids: Sequence[str],
    chrom: Sequence[str],
    pos: Sequence[float],
    markers: Sequence[str],
    *,
    cm_position: Sequence[float] | None = None,
    sex: Sequence[str] | None = None,
    fid: Sequence[str] | None = None,
    allele_1: str = "B",
    allele_2: str = "A",
    force: bool = False,
) -> dict[str, Path]:
    """Write hard-called dosages as PLINK 1 binary files (``.bed/.bim/.fam``).

    Parameters
    ----------
    prefix : str or Path
        Output path without extension.
    dosage : array_like, shape (n, n_markers)
        Copies of ``allele_1`` (0, 1 or 2; NaN for missing).
    ids : sequence of str
        Individual IDs (the ``.fam`` IID column).
    chrom : sequence of str
        Chromosome of each marker.
    pos : sequence of float
        Base-pair position of each marker (rounded to integers).
    markers : sequence of str
        Marker names.
    cm_position : sequence of float, optional
        Genetic positions for the ``.bim``'s third column (default 0).
    sex : sequence of str, optional
        ``"m"``/``"f"`` per individual (``.fam`` codes 1/2; default 0 =
        unknown).
    fid : sequence of str, optional
        Family IDs (default: the individual IDs).
    allele_1, allele_2 : str
        Allele names; ``dosage`` counts ``allele_1`` (PLINK's A1).
    force : bool
        Overwrite existing files.

    Returns
    -------
    dict of str to Path
        Extension -> path written.

    Raises
    ------
    LMMInputError
        If shapes disagree, a dosage is not 0, 1, 2 or NaN, or a file exists
        and ``force`` is false.
    """
    from bed_reader import to_bed  # imported here: only this writer needs it

    X = np.asarray(dosage, dtype=np.float64)
    n = len(ids)
    m = len(markers)
    if X.shape != (n, m) or len(chrom) != m or len(pos) != m:
        raise LMMInputError(
            f"The dosage matrix is {X.shape} for {n} IDs and {m} markers (with {len(chrom)} "
            f"chromosomes and {len(pos)} positions); give one row per ID and one column, "
            "chromosome and position per marker."
        )
    called = X[~np.isnan(X)]
    if not np.isin(called, (0.0, 1.0, 2.0)).all():
        raise LMMInputError(
            "A PLINK .bed file holds hard calls: every dosage must be 0, 1, 2 or missing (NaN); "
            "round expected dosages first."
        )
    prefix = Path(prefix)
    targets = {ext: prefix.with_name(prefix.name + ext) for ext in (".bed", ".bim", ".fam")}
    _refuse_overwrite(targets.values(), force)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    sex_code = [0] * n if sex is None else [{"m": 1, "f": 2}.get(str(s).lower(), 0) for s in sex]
    properties = {
        "fid": [str(f) for f in (fid if fid is not None else ids)],
        "iid": [str(i) for i in ids],
        "sex": sex_code,
        "chromosome": [str(c) for c in chrom],
        "sid": [str(s) for s in markers],
        "bp_position": np.round(np.asarray(pos, dtype=float)).astype(np.int64).tolist(),
        "cm_position": list(np.zeros(m) if cm_position is None else np.asarray(cm_position, dtype=float)),
        "allele_1": [allele_1] * m,
        "allele_2": [allele_2] * m,
    }
    with ExitStack() as stack:  # all three files appear together, or none
        temps = {ext: stack.enter_context(atomic_output(path, force=True)) for ext, path in targets.items()}
        to_bed(temps[".bed"], X, properties=properties, count_A1=True,
               fam_filepath=temps[".fam"], bim_filepath=temps[".bim"])
    return targets


def _refuse_overwrite(paths, force: bool) -> None:
    if force:
        return
    existing = [str(p) for p in paths if Path(p).exists()]
    if existing:
        shown = ", ".join(existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise LMMInputError(
            f"{shown} already exist{'s' if len(existing) == 1 else ''}; nothing was written. Pass "
            "force=True (--force on the command line) to overwrite, or choose another directory."
        )

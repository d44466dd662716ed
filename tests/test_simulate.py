"""The simulator: Mendelian segregation, Haldane recombination, the phenotype
covariance, family structure, reproducibility and the example-data writer."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import pytest

from lmmcore.errors import LMMInputError, LMMWarning
from lmmcore.genotypes import read_dosages, read_genoprobs, read_map, read_plink
from lmmcore.kinship import compute_kinship, kinship_from_dosages, kinship_from_genoprobs
from lmmcore.example import EXAMPLE_FILES, simulate_example, write_example_dataset
from lmmcore.simulate import (
    GENOTYPE_NAMES,
    genotype_probabilities,
    haldane_distance,
    haldane_r,
    make_genetic_map,
    simulate_cross,
    simulate_genotype_dosages,
    simulate_polygenic,
    write_plink,
)


@pytest.fixture(scope="module")
def big_f2():
    """20 000 F2 individuals on a fixed map (two chromosomes)."""
    gmap = pd.DataFrame({
        "marker": ["a1", "a2", "a3", "a4", "a5", "b1", "b2"],
        "chr": ["1"] * 5 + ["2"] * 2,
        "pos": [0.0, 1.0, 11.0, 41.0, 141.0, 0.0, 25.0],
    })
    return simulate_cross(gmap, 20_000, n_generations=0, seed=42)


# --------------------------------------------------------------------------- #
# Map function and Mendelian genetics
# --------------------------------------------------------------------------- #
def test_haldane_map_function():
    # r(50 cM) = (1 - e^-1) / 2; r(0) = 0; r -> 1/2 for unlinked loci.
    np.testing.assert_allclose(haldane_r([0.0, 50.0, 1e4]), [0.0, (1 - np.exp(-1)) / 2, 0.5])
    d = np.array([0.5, 10.0, 80.0])
    np.testing.assert_allclose(haldane_distance(haldane_r(d)), d, rtol=1e-12)


def test_f2_genotype_frequencies_are_one_quarter_one_half_one_quarter(big_f2):
    n = big_f2.n
    for j in (2, 6):  # one marker on each chromosome
        freq = np.bincount(big_f2.dosage[:, j], minlength=3) / n
        se = np.sqrt(np.array([0.25, 0.5, 0.25]) * np.array([0.75, 0.5, 0.75]) / n)
        assert np.all(np.abs(freq - [0.25, 0.5, 0.25]) < 4 * se), freq


def test_recombination_fraction_follows_haldane(big_f2):
    # Each F2 haplotype is an F1 gamete; F1 haplotypes are all-A and all-B, so a
    # gamete is recombinant between two markers exactly when its alleles differ.
    gametes = big_f2.haplotypes.reshape(-1, big_f2.haplotypes.shape[2]).astype(int)
    pos = big_f2.genetic_map["pos"].to_numpy()
    k = gametes.shape[0]
    pairs = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 4), (1, 3), (5, 6)]  # adjacent and multi-interval
    for a, b in pairs:
        r_hat = np.mean(gametes[:, a] != gametes[:, b])
        r = haldane_r(abs(pos[b] - pos[a]))
        assert abs(r_hat - r) < 4 * np.sqrt(r * (1 - r) / k) + 1e-12, (a, b, r_hat, r)
    # Different chromosomes are unlinked.
    r_hat = np.mean(gametes[:, 0] != gametes[:, 5])
    assert abs(r_hat - 0.5) < 4 * np.sqrt(0.25 / k)


def test_generated_map_has_requested_shape():
    gmap = make_genetic_map(seed=1)
    assert gmap["chr"].unique().tolist() == ["1", "2", "3", "4", "5"]
    for _, on in gmap.groupby("chr"):
        gaps = np.diff(on["pos"].to_numpy())
        assert on["pos"].iloc[0] == 0 and on["pos"].max() <= 120
        assert gaps.min() >= 2 - 0.01 and gaps.max() <= 4 + 0.01
    assert gmap["marker"].is_unique


# --------------------------------------------------------------------------- #
# Population structure
# --------------------------------------------------------------------------- #
def test_advanced_intercross_has_full_sibs_half_sibs_and_unrelated():
    pop = simulate_cross(make_genetic_map(seed=3), 300, n_generations=3, seed=4)
    assert pop.generation == 5 and pop.n == 300
    fam = pd.DataFrame({"family": pop.family, "sire": pop.sire, "dam": pop.dam})
    sizes = fam["family"].value_counts()
    assert sizes.min() >= 2  # every family has full sibs
    assert (fam.groupby("family")[["sire", "dam"]].nunique() == 1).all().all()
    dams_per_sire = fam.drop_duplicates("family").groupby("sire")["dam"].nunique()
    assert (dams_per_sire == 2).sum() > 0 and (dams_per_sire == 1).sum() > 0  # half sibs
    assert set(np.unique(pop.sex)) == {"f", "m"}
    # Relatives share more alleles: full sibs > half sibs > others (R/qtl2 kinship).
    K = kinship_from_genoprobs(genotype_probabilities(pop.dosage), GENOTYPE_NAMES)
    f = fam["family"].to_numpy()
    s = fam["sire"].to_numpy()
    off = ~np.eye(pop.n, dtype=bool)
    full = (f[:, None] == f[None, :]) & off
    half = (s[:, None] == s[None, :]) & ~(f[:, None] == f[None, :])
    other = off & ~full & ~half
    assert K[full].mean() > K[half].mean() > K[other].mean()


def test_genotype_probabilities_are_smoothed_one_hot():
    probs = genotype_probabilities(np.array([[0, 1, 2]]), error=0.002)
    np.testing.assert_allclose(probs[0], 0.001 + 0.997 * np.eye(3))
    np.testing.assert_allclose(probs.sum(axis=2), 1.0)


# --------------------------------------------------------------------------- #
# Phenotype covariance
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("sigma2_g, sigma2_e", [(1.5, 0.5), (0.0, 2.0), (0.8, 0.0)])
def test_polygenic_draws_have_covariance_sigma2g_K_plus_sigma2e_I(sigma2_g, sigma2_e):
    pop = simulate_cross(make_genetic_map(seed=5), 40, n_generations=2, seed=6)
    K = kinship_from_genoprobs(genotype_probabilities(pop.dosage[:6]), GENOTYPE_NAMES)
    target = sigma2_g * K + sigma2_e * np.eye(6)
    reps = 200_000
    Y = simulate_polygenic(K, sigma2_g, sigma2_e, size=reps, seed=7)
    assert Y.shape == (6, reps)
    empirical = Y @ Y.T / reps  # the mean is zero by construction
    se = np.sqrt((np.outer(np.diag(target), np.diag(target)) + target**2) / reps)
    assert np.all(np.abs(empirical - target) < 5 * se + 1e-12)
    assert np.all(np.abs(Y.mean(axis=1)) < 5 * np.sqrt(np.diag(target) / reps) + 1e-12)


def test_polygenic_rejects_bad_inputs():
    with pytest.raises(LMMInputError, match="non-negative"):
        simulate_polygenic(np.eye(3), -1.0, 1.0)
    with pytest.raises(LMMInputError, match="not symmetric"):
        simulate_polygenic(np.array([[1.0, 0.5], [0.0, 1.0]]), 1.0, 1.0)
    with pytest.raises(LMMInputError, match="negative eigenvalue"):
        simulate_polygenic(np.array([[1.0, 2.0], [2.0, 1.0]]), 1.0, 1.0)


# --------------------------------------------------------------------------- #
# The example data set
# --------------------------------------------------------------------------- #
def test_example_is_reproducible_with_a_seed():
    a = simulate_example(11, n=60)
    b = simulate_example(11, n=60)
    c = simulate_example(12, n=60)
    np.testing.assert_array_equal(a.population.haplotypes, b.population.haplotypes)
    np.testing.assert_array_equal(a.kinship, b.kinship)
    pd.testing.assert_frame_equal(a.pheno, b.pheno)
    pd.testing.assert_frame_equal(a.covar, b.covar)
    assert not np.array_equal(a.population.haplotypes, c.population.haplotypes)


def test_example_truth_and_phenotypes():
    ds = simulate_example(13, n=100)
    truth = ds.truth.set_index("phenotype")
    assert list(truth.index) == list(ds.pheno.columns)
    assert 0.0 in truth["true_h2"].tolist() and truth["true_h2"].max() >= 0.9
    np.testing.assert_allclose(truth["true_h2"], truth["sigma2_g"] / (truth["sigma2_g"] + truth["sigma2_e"]))
    qtl = truth[truth["qtl_marker"] != ""]
    assert len(qtl) == 1 and qtl["qtl_chr"].iloc[0] == "2"
    assert qtl["qtl_marker"].iloc[0] in set(ds.population.genetic_map["marker"])
    n_missing = ds.pheno.isna().sum()
    assert (n_missing > 0).sum() == 1 and n_missing.max() == 5  # 5% of 100
    assert set(ds.covar["sex"]) == {"f", "m"}
    np.testing.assert_allclose(ds.kinship, kinship_from_genoprobs(ds.probs, GENOTYPE_NAMES))


def test_write_example_dataset_round_trip(tmp_path):
    paths = write_example_dataset(tmp_path, seed=14, n=80)
    assert sorted(p.name for p in paths.values()) == sorted(EXAMPLE_FILES)
    assert sorted(os.listdir(tmp_path)) == sorted(EXAMPLE_FILES)  # no temporary files left
    assert sum(p.stat().st_size for p in paths.values()) < 5_000_000

    ds = simulate_example(14, n=80)
    g = read_genoprobs(tmp_path / "genoprobs.csv", tmp_path / "map.csv")
    assert g.ids == ds.population.ids and g.genotype_names == GENOTYPE_NAMES
    assert g.markers == ds.population.markers
    K_file = pd.read_csv(tmp_path / "kinship.csv", index_col=0)
    assert list(K_file.index) == list(g.ids) == list(K_file.columns)
    np.testing.assert_allclose(K_file.to_numpy(), ds.kinship, rtol=1e-9)
    np.testing.assert_allclose(compute_kinship(g).matrix, ds.kinship, rtol=1e-6)

    d = read_dosages(tmp_path / "genotypes.csv", tmp_path / "map.csv")
    np.testing.assert_array_equal(d.dosage, ds.population.dosage)
    p = read_plink(tmp_path / "example")
    np.testing.assert_array_equal(p.dosage, ds.population.dosage)
    assert p.ids == g.ids and p.markers == g.markers
    np.testing.assert_allclose(p.position, np.round(read_map(tmp_path / "map.csv")["pos"] * 1e6))

    pheno = pd.read_csv(tmp_path / "pheno.csv", index_col="id")
    np.testing.assert_allclose(pheno.to_numpy(), ds.pheno.to_numpy(), rtol=1e-5)
    assert "NA" in (tmp_path / "pheno.csv").read_text()
    assert pd.read_csv(tmp_path / "covar.csv")["sex"].isin(["f", "m"]).all()
    truth = pd.read_csv(tmp_path / "truth.csv")
    assert truth["phenotype"].tolist() == list(ds.pheno.columns)
    readme = (tmp_path / "README.md").read_text()
    assert "seed **14**" in readme and "h2_00" in readme


def test_write_example_dataset_does_not_overwrite_without_force(tmp_path):
    (tmp_path / "pheno.csv").write_text("precious\n")
    message = r"pheno.csv already exists; nothing was written\. Pass force=True \(--force"
    with pytest.raises(LMMInputError, match=message):
        write_example_dataset(tmp_path, seed=15, n=40)
    assert (tmp_path / "pheno.csv").read_text() == "precious\n"
    assert os.listdir(tmp_path) == ["pheno.csv"]
    write_example_dataset(tmp_path, seed=15, n=40, force=True)
    assert (tmp_path / "pheno.csv").read_text().startswith("id,")


def test_written_files_are_identical_for_the_same_seed(tmp_path):
    write_example_dataset(tmp_path / "a", seed=16, n=40)
    write_example_dataset(tmp_path / "b", seed=16, n=40)
    for name in EXAMPLE_FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


# --------------------------------------------------------------------------- #
# Benchmark genotypes and the PLINK writer
# --------------------------------------------------------------------------- #
def test_benchmark_dosages_are_structured_and_reproducible():
    g = simulate_genotype_dosages(200, 3000, 5, seed=17, family_size=4)
    assert g.dosage.shape == (200, 3000) and g.chromosomes == ("1", "2", "3", "4", "5")
    assert set(np.unique(g.dosage)) <= {0.0, 1.0, 2.0}
    again = simulate_genotype_dosages(200, 3000, 5, seed=17, family_size=4)
    np.testing.assert_array_equal(g.dosage, again.dosage)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LMMWarning)
        K = kinship_from_dosages(g.dosage)
    fam = np.arange(200) // 4
    sib = (fam[:, None] == fam[None, :]) & ~np.eye(200, dtype=bool)
    assert 0.35 < K[sib].mean() < 0.8  # full sibs: relatedness 1/2 (plus subpopulation sharing)
    assert abs(K[~sib & ~np.eye(200, dtype=bool)].mean()) < 0.05


def test_write_plink_validates(tmp_path):
    with pytest.raises(LMMInputError, match="hard calls"):
        write_plink(tmp_path / "x", np.array([[0.5]]), ["a"], ["1"], [1], ["m"])
    with pytest.raises(LMMInputError, match="one row per ID"):
        write_plink(tmp_path / "x", np.zeros((2, 2)), ["a"], ["1", "1"], [1, 2], ["m", "n"])
    write_plink(tmp_path / "x", np.array([[0.0, 2.0]]), ["a"], ["1", "1"], [1, 2], ["m", "n"])
    with pytest.raises(LMMInputError, match="already exist.*force"):
        write_plink(tmp_path / "x", np.array([[0.0, 2.0]]), ["a"], ["1", "1"], [1, 2], ["m", "n"])

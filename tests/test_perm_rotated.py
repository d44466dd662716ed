"""Rotated-residual permutations (Abney 2015) against a parametric bootstrap from the fitted null model.

On simulated related individuals (families within subpopulations) with a
polygenic phenotype and no QTL, the genome-wide maximum LOD of phenotypes
made by permuting the rotated null residuals must have the distribution of
the maximum LOD of phenotypes drawn from the fitted null model itself,
N(X b, v (h K + (1 - h) I)) (the parametric bootstrap), each scanned the
same way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lmmcore import LMMInputError
from lmmcore.effects_model import null_model
from lmmcore.perm_rotated import rotated_permutations, rotated_phenotypes
from lmmcore.scan import scan
from lmmcore.simulate import simulate_genotype_dosages


@pytest.fixture(scope="module")
def related():
    g = simulate_genotype_dosages(80, 160, n_chr=4, seed=11, family_size=8, fst=0.2)
    from lmmcore.kinship import compute_kinship

    K = compute_kinship(g).matrix
    w, U = np.linalg.eigh(K)
    rng = np.random.default_rng(12)
    y = U @ (np.sqrt(0.7 * np.clip(w, 0, None) + 0.3) * rng.normal(size=g.n)) + 5.0
    return g, pd.DataFrame({"y": y}, index=list(g.ids))


def test_rotated_phenotypes_keep_the_null_models_covariance(related):
    # every permuted phenotype is U W^{-1/2} Q z_pi: in whitened coordinates the permuted
    # vectors are orthogonal to the covariates and have the same length as the observed residual
    g, pheno = related
    null = null_model(g, pheno, phenotype="y", chromosome="1", kinship="overall")
    Y = rotated_phenotypes(null, 20, seed=3)
    Yw = null.whiten(Y.to_numpy())
    ones = null.whiten(np.ones(null.n))
    centred = Yw - np.outer(ones, ones @ Yw) / (ones @ ones)
    yw = null.whiten(null.y)
    r = yw - ones * (ones @ yw) / (ones @ ones)
    np.testing.assert_allclose(np.linalg.norm(centred, axis=0), np.linalg.norm(r), rtol=1e-10)
    assert not np.allclose(Y.iloc[:, 0], Y.iloc[:, 1])


@pytest.mark.slow
def test_rotated_permutations_match_parametric_bootstrap(related):
    g, pheno = related
    n_sim = 120
    perm = rotated_permutations(g, pheno, phenotype="y", n_perm=n_sim, seed=5, kinship="loco", batch=60)
    # parametric bootstrap from the same fitted null model (overall kinship, REML)
    null = null_model(g, pheno, phenotype="y", chromosome="1", kinship="overall")
    rng = np.random.default_rng(6)
    X = np.ones((null.n, 1))
    b = np.linalg.lstsq(null.whiten(X), null.whiten(null.y), rcond=None)[0]
    root = null.U * np.sqrt(null.sigma2 / null.weights)[None, :]  # v^{1/2} U W^{-1/2}
    sims = (X @ b)[:, None] + root @ rng.normal(size=(null.n, n_sim))
    Ysim = pd.DataFrame(sims, index=list(null.ids), columns=[f"b{k}" for k in range(n_sim)])
    boot = scan(g, Ysim, kinship="loco").table.groupby("phenotype", sort=False)["lod"].max().to_numpy()
    rot = perm.max_lod["y"].to_numpy()
    ks = stats.ks_2samp(rot, boot)
    assert ks.pvalue > 0.01, (np.quantile(rot, [0.5, 0.95]), np.quantile(boot, [0.5, 0.95]))
    assert abs(np.median(rot) - np.median(boot)) < 0.35 * np.median(boot)
    assert perm.n_perm == n_sim and "Abney" in perm.scheme
    assert list(perm.thresholds.columns[:3]) == ["phenotype", "alpha", "lod_threshold"]


def test_bad_settings(related):
    g, pheno = related
    with pytest.raises(LMMInputError, match="at least 1"):
        rotated_permutations(g, pheno, phenotype="y", n_perm=0)


def test_several_phenotypes_get_their_own_columns(related):
    g, pheno = related
    two = pheno.assign(z=pheno["y"].to_numpy()[::-1])
    res = rotated_permutations(g, two, n_perm=4, seed=1, kinship="overall")
    assert list(res.max_lod.columns) == ["y", "z"] and res.max_lod.shape == (4, 2)
    alone = rotated_permutations(g, two, phenotype="y", n_perm=4, seed=1, kinship="overall")
    np.testing.assert_allclose(res.max_lod["y"], alone.max_lod["y"], rtol=1e-12)
    assert set(res.thresholds["phenotype"]) == {"y", "z"}

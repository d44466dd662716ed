"""Crosses in the dashboard (no browser): an uploaded R/qtl2 cross zip as the data, as scan genotypes, and the
teaching view of one individual's genotype probabilities.

Every number is checked against an independent path: the kinship against the numpy formula of R/qtl2's
``calc_kinship`` (the mean over markers of P P' of allele probabilities, the allele probabilities written out
here from the genotype names), the fits against :func:`lmmcore.fit_lmm` on the arrays, and the teaching view
against :func:`lmmcore.genoprob`'s rows.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmmcore
from browser_util import example_dir
from dense import loglik as dense_loglik

from app.cross_data import genoprob_profile
from app.state import ExplorerState

CROSS = Path(__file__).parent / "data" / "cross" / "iron_subset.zip"

#: Copies of each founder allele in each genotype of iron's F2 (X: SY, BY hemizygous males), written out by hand.
ALLELES = {"SS": (1, 0), "SB": (0.5, 0.5), "BS": (0.5, 0.5), "BB": (0, 1), "SY": (1, 0), "BY": (0, 1)}


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    return example_dir(tmp_path_factory.mktemp("assets"))


@pytest.fixture(scope="module")
def content() -> bytes:
    return CROSS.read_bytes()


@pytest.fixture(scope="module")
def cross():
    return lmmcore.read_cross(CROSS)


@pytest.fixture(scope="module")
def probs(cross):
    return lmmcore.genoprob(cross)


@pytest.fixture(scope="module")
def loaded(content) -> ExplorerState:
    s = ExplorerState()
    assert s.receive_cross_upload("iron_subset.zip", content), s.notice
    return s


def _numpy_kinship(probs) -> np.ndarray:
    """R/qtl2's calc_kinship: K = (1/m) sum_j P_j P_j' with P_j the n x 2 allele probabilities at marker j."""
    M = np.array([ALLELES[g] for g in probs.genotype_names], dtype=float)  # genotypes x alleles
    P = probs.probs @ M  # n x m x 2
    m = P.shape[1]
    return sum(P[:, j] @ P[:, j].T for j in range(m)) / m


def test_cross_upload_gives_the_cross_phenotypes_and_covariates(loaded, cross):
    data = loaded.dataset
    assert loaded.cross is not None and loaded.source_label.startswith("cross iron_subset.zip")
    assert "omit_x = FALSE" in loaded.source_label
    expected = cross.pheno.loc[list(data.ids)]
    np.testing.assert_array_equal(data.phenotypes.to_numpy(float), expected.to_numpy(float))
    assert list(data.phenotypes.columns) == list(cross.pheno.columns)
    assert list(data.covariates.columns) == ["sex", "cross_direction"]
    assert list(data.covariates["sex"]) == list(cross.covar.loc[list(data.ids), "sex"])


def test_cross_kinship_is_calc_kinship_of_allele_probabilities(loaded, cross, probs):
    data = loaded.dataset
    order = [cross.ids.index(i) for i in data.ids]
    K_numpy = _numpy_kinship(probs)[np.ix_(order, order)]
    np.testing.assert_allclose(data.kinship, K_numpy, rtol=0, atol=1e-12)
    K_engine = lmmcore.compute_kinship(lmmcore.allele_probs(probs))
    np.testing.assert_allclose(K_engine.matrix[np.ix_(order, order)], K_numpy, rtol=0, atol=1e-12)
    assert "X" in probs.chromosomes  # the X chromosome counts in the kinship (omit_x = FALSE)


@pytest.mark.parametrize("use_covariates", [False, True])
def test_cross_fits_equal_fit_lmm(loaded, cross, probs, use_covariates):
    data = loaded.dataset
    order = [cross.ids.index(i) for i in data.ids]
    K = _numpy_kinship(probs)[np.ix_(order, order)]
    covar = cross.covar.loc[list(data.ids)]
    X = np.ones((data.n, 1))
    if use_covariates:  # indicators of the second level of each text column (h2 and loglik do not depend on it)
        X = np.column_stack([X] + [(covar[c] == sorted(set(covar[c]))[1]).to_numpy(float) for c in covar])
    fits = loaded.fits(use_covariates=use_covariates)
    for name in cross.pheno.columns:
        y = cross.pheno.loc[list(data.ids), name].to_numpy(float)
        for method in ("reml", "ml"):
            want = lmmcore.fit_lmm(K, y, X, method=method)
            got = loaded.fits(method=method, use_covariates=use_covariates)[name]
            assert got.p == X.shape[1]
            assert got.h2 == pytest.approx(want.h2, abs=1e-6)
            assert got.loglik == pytest.approx(want.loglik, abs=1e-8)
    assert set(fits) == set(cross.pheno.columns)
    # the optimum of this small subset is h2 = 0, where K does not matter: the profile inside (0, 1) must
    # also agree with the dense likelihood with this K
    loaded.param.update(phenotype=name, use_covariates=use_covariates)
    grid = np.array([0.2, 0.5, 0.8])
    for method in ("reml", "ml"):
        curve = loaded.profile(method, grid)["loglik"].to_numpy()
        want = [dense_loglik(K, y, X, h, method) for h in grid]
        np.testing.assert_allclose(curve, want, rtol=0, atol=1e-8)


def _zip_without_control() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("iron_geno.csv", "id,D1M1\n1,SS\n")
    return buffer.getvalue()


@pytest.mark.parametrize("name,content,words", [
    ("notes.zip", b"these are not the bytes of a zip", "not a readable zip"),
    ("nocontrol.zip", _zip_without_control(), "no control file"),
    ("empty.zip", b"", "empty"),
])
def test_bad_cross_keeps_the_data_and_names_the_file(example, name, content, words):
    s = ExplorerState()
    assert s.load_example(example)
    before, label = s.dataset, s.source_label
    assert not s.receive_cross_upload(name, content)
    assert s.dataset is before and s.source_label == label and s.cross is None
    assert s.notice["level"] == "error"
    assert name in s.notice["text"] and words in s.notice["text"]
    assert "still in use" in s.notice["text"]


def test_teaching_view_data_equal_genoprob_rows(cross, probs):
    ind = cross.ids[3]
    for chrom in ("7", "X"):
        profile = genoprob_profile(cross, ind, chrom, step=0)
        cols = np.flatnonzero(np.asarray(probs.chromosome) == chrom)
        names = probs.genotypes_by_chr[chrom]
        want = probs.probs[3][np.ix_(cols, [probs.genotype_names.index(g) for g in names])]
        np.testing.assert_allclose(profile.probs[list(names)].to_numpy(), want, rtol=0, atol=1e-14)
        np.testing.assert_array_equal(profile.probs["position"], probs.position[cols])
        assert not profile.probs["pseudomarker"].any()
        # observed genotypes: the codes of the file at this individual's typed markers
        codes = cross.geno[chrom][3]
        label = {v: k for k, v in cross.genotype_codes.items()}
        assert list(profile.observed["genotype"]) == [label[int(c)] for c in codes if c > 0]
    fine = genoprob_profile(cross, ind, "7", step=1)
    stepped = lmmcore.genoprob(cross, step=1, chromosomes=["7"])
    names = stepped.genotypes_by_chr["7"]
    np.testing.assert_allclose(fine.probs[list(names)].to_numpy(),
                               stepped.probs[3][:, [stepped.genotype_names.index(g) for g in names]], atol=1e-14)
    assert fine.probs["pseudomarker"].sum() == stepped.n_markers - len(cross.gmap["7"]) > 0


def test_teaching_view_refuses_unknown_individual(cross):
    with pytest.raises(lmmcore.LMMInputError, match="not in the cross"):
        genoprob_profile(cross, "nobody", "7")


def test_cross_as_scan_genotypes_keeps_the_x_with_its_covariates(loaded, content, cross, probs):
    # the X scan's numbers are checked against the CLI and R/qtl2 in test_app_cross_x.py
    from app.scan_state import ScanState

    sc = ScanState(explorer=loaded)
    assert sc.receive_cross_genotypes("iron_subset.zip", content), sc.notice
    assert sc.genotypes.chromosomes == ("1", "7", "X")
    assert sc.genotype_source == "upload" and "iron_subset.zip" in sc.genotype_label
    assert "left out of the scan" not in sc.notice["text"] and "not available" not in sc.notice["text"]
    # a short notice (it covers part of the page): the file and the counts; the Genotypes select says the rest
    n_markers = sum(len(m) for m in cross.gmap.values())
    assert sc.notice == {**sc.notice, "level": "info",
                         "text": f"genotypes loaded from iron_subset.zip: 20 individuals, {n_markers} markers"}
    np.testing.assert_array_equal(sc.genotypes.probs, probs.probs)
    assert sc.genotypes.genotype_names == probs.genotype_names
    job = sc._job(sc.current_key())
    # R/qtl2's get_x_covar of an F2 with both sexes and directions: sex (1 = male) and direction (1 for
    # females of the reverse cross), written out here from the cross's own columns
    female = np.asarray(cross.is_female)
    reverse = np.asarray(cross.cross_info)[:, 0] == 1
    assert job.x_chr == ("X",)
    np.testing.assert_array_equal(job.xcovar["sex"], (~female).astype(float))
    np.testing.assert_array_equal(job.xcovar["direction"], (reverse & female).astype(float))
    assert sc.refresh() is not None


def test_teaching_view_follows_the_cross(content, cross, probs):
    hv = pytest.importorskip("holoviews")
    hv.extension("bokeh", logo=False)
    from app.views.genoprob import GenoprobView

    s = ExplorerState()
    view = GenoprobView(state=s)
    assert not view._layout.visible and view.profile() is None
    assert s.receive_cross_upload("iron_subset.zip", content)
    assert view._layout.visible and view.param.individual.objects == list(cross.ids)
    view.param.update(individual=cross.ids[5], chromosome="1", step=1.0)
    profile = view.profile()
    stepped = lmmcore.genoprob(cross, step=1, chromosomes=["1"])
    cols = [stepped.genotype_names.index(g) for g in profile.genotypes]
    np.testing.assert_allclose(profile.probs[list(profile.genotypes)].to_numpy(), stepped.probs[5][:, cols],
                               atol=1e-14)
    for stacked in (True, False):
        plot = view._draw(view.individual, view.chromosome, view.step, stacked)
        assert len(plot) == len(profile.genotypes) + 2  # genotypes, observed markers, their labels
        hv.render(plot)
    s.load_data(s.dataset, "again")  # data not from a cross: the view hides
    assert not view._layout.visible


def test_scan_the_cross_in_use_without_uploading_again(content):
    from app.scan_state import ScanState

    s = ExplorerState()
    sc = ScanState(explorer=s)
    assert not sc.use_cross_in_use() and sc.notice["level"] == "error"
    assert s.receive_cross_upload("iron_subset.zip", content)
    assert sc.use_cross_in_use(), sc.notice
    assert sc.genotypes.chromosomes == ("1", "7", "X")
    np.testing.assert_array_equal(sc.genotypes.probs, s.cross.genotypes.probs)
    assert sc.genotypes.genotype_names == s.cross.genotypes.genotype_names
    entry = sc.refresh()
    assert entry is not None and entry.job.x_chr == ("X",) and "X" in set(entry.result.table["chr"])


def test_multi_founder_cross_is_scanned_on_founder_probabilities():
    # a DO cross is scanned as R/qtl2 users scan it: genoprob_to_alleleprob first (8 founders, 7 df),
    # not its 36 genotypes (35 df); checked against the genotype probabilities reduced by hand:
    # genotype "XY" gives half a copy of founder X and half of Y, a hemizygous male's "AY" founder A (X chromosome)
    from app.cross_data import ERROR_PROB, cross_data, prepare_cross_genotypes
    from hmm_util import read_fixture_cross

    cross = read_fixture_cross(Path(__file__).parent / "data" / "hmm" / "DOex_sub.zip")
    data = cross_data(cross, "DOex_sub.zip")
    prepared = prepare_cross_genotypes(data)
    g = prepared.genotypes
    assert g.genotype_names == tuple("ABCDEFGH") and "founder" in prepared.label
    full = lmmcore.genoprob(cross, error_prob=ERROR_PROB)  # the 36 (44 on X) genotypes, which the session never holds
    assert data.genotypes.genotype_names == tuple("ABCDEFGH")
    assert g.chromosomes == full.chromosomes == ("3", "X") and prepared.x_chr == ("X",)
    assert list(prepared.xcovar.columns) == ["sex"]  # R/qtl2's get_x_covar of a DO: sex, 1 = male
    for chrom in g.chromosomes:
        keep = np.asarray(full.chromosome) == chrom
        names = full.genotypes_by_chr[chrom]  # 36 genotypes; on X also the 8 hemizygous "AY" ... "HY"
        M = np.zeros((len(names), 8))
        for k, name in enumerate(names):
            letters = name.replace("Y", "")
            for letter in letters:
                M[k, "ABCDEFGH".index(letter)] += 1 / len(letters)
        cols = [full.genotype_names.index(n) for n in names]
        np.testing.assert_allclose(g.probs[:, keep], full.probs[:, keep][:, :, cols] @ M, atol=1e-12)
    # a two-founder cross keeps its genotypes
    iron = cross_data(lmmcore.read_cross(CROSS), "iron_subset.zip")
    assert prepare_cross_genotypes(iron).genotypes.genotype_names == ("SS", "SB", "BB", "BS", "SY", "BY")

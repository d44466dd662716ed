"""The X chromosome of an uploaded cross in the dashboard's scan tab (no browser).

The dashboard scans a cross's X chromosome with the engine's public functions, as ``lmmcore scan --cross``
does (R/qtl2's ``scan1(..., Xcovar = get_x_covar(cross))``), and fits its effects as ``lmmcore effects
--cross --chr X`` and ``lmmcore fit1 --cross`` (R/qtl2's ``scan1coef``/``scan1blup``/``fit1`` with
``nullcovar = Xcovar``). Every number is checked against an independent path:

* the command line, run here on the same cross (``tests/data/cross/iron_subset.zip``: 20 F2 mice, chromosomes
  1, 7 and X) with the same settings: LOD, p-values and h2 to 1e-8, effects and fit1 to 1e-8;
* R/qtl2 0.43-5: ``tests/data/xscan/rqtl2_scan1_x.csv`` (``scan1`` of iron_subset with LOCO kinships and
  Xcovar, made by ``tests/data/xscan/make_rqtl2_xscan.R``) for the scan, and ``tests/data/xeffects``
  (``scan1coef``/``fit1`` on 60 iron mice with ``nullcovar = Xcovar``, made by ``make_rqtl2_xeffects.R``) for
  the dashboard's effect jobs;
* the phenotype by genotype at an X marker against the most likely genotype and group means computed here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmmcore
from lmmcore.cli import main

from app.scan_detail import ScanDetail
from app.scan_jobs import ScanJob, ScanKey, run_effects, run_fit1
from app.scan_state import ScanState
from app.state import ExplorerState

DATA = Path(__file__).parent / "data"
CROSS = DATA / "cross" / "iron_subset.zip"
X_GENOTYPES = ("SS", "SB", "BS", "BB", "SY", "BY")


def cli(tmp_path, *argv) -> pd.DataFrame:
    """Run ``lmmcore`` in this process and read its ``--out`` CSV."""
    out = tmp_path / f"cli_{abs(hash(argv))}.csv"
    code = main([str(a) for a in (*argv, "--out", out, "--quiet", "--force")])
    assert code == 0
    return pd.read_csv(out, dtype={"marker": str, "chr": str})


@pytest.fixture(scope="module")
def content() -> bytes:
    return CROSS.read_bytes()


@pytest.fixture()
def session(content):
    """A session with iron_subset uploaded as the data and as the scan's genotypes."""
    ex = ExplorerState()
    assert ex.receive_cross_upload("iron_subset.zip", content), ex.notice
    sc = ScanState(explorer=ex)
    assert sc.receive_cross_genotypes("iron_subset.zip", content), sc.notice
    return ex, sc, ScanDetail(scan=sc)


def _cli_options(loco: bool, covariates: bool) -> list:
    return ["--cross", CROSS, "--kinship", "loco" if loco else "overall"] + (
        ["--covar-columns", "sex,cross_direction"] if covariates else [])


def test_the_cross_is_scanned_with_its_x(session, content):
    ex, sc, _ = session
    g = sc.genotypes
    assert g.chromosomes == ("1", "7", "X")
    assert g.genotypes_by_chr["X"] == X_GENOTYPES and g.genotypes_by_chr["1"] == ("SS", "SB", "BB")
    # the HMM's probabilities of every chromosome, unchanged
    probs = lmmcore.genoprob(lmmcore.read_cross(CROSS), error_prob=1e-4)
    np.testing.assert_array_equal(g.probs, probs.probs)
    assert "X covariates (sex, direction)" in sc.genotype_label
    # "Fit with the genotypes' kinship": R/qtl2's calc_kinship of the allele probabilities, X included, which is
    # the kinship the cross upload computed (checked against the numpy formula in test_app_cross.py)
    from app.scan_state import genotype_kinship

    table, _ = genotype_kinship(g)
    np.testing.assert_allclose(table.to_numpy(), ex.cross.kinship.loc[table.index, table.columns].to_numpy(),
                               rtol=0, atol=1e-14)
    assert "not available" not in sc.notice["text"] and "left out" not in sc.notice["text"]
    entry = sc.refresh()
    assert entry.job.x_chr == ("X",) and list(entry.job.xcovar.columns) == ["sex", "direction"]
    frame = sc.lod_frame()
    assert set(frame.loc[frame["chr"] == "X", "marker"]) == {"DXMit16", "DXMit186"}
    assert np.isfinite(frame["lod"]).all()
    assert sc.layout().chromosomes[-1] == "X"
    # a bad zip leaves the cross's genotypes (X included) in use and names the file
    assert not sc.receive_cross_genotypes("broken.zip", b"PK not really")
    assert "broken.zip" in sc.notice["text"] and sc.genotypes.chromosomes == ("1", "7", "X")
    assert sc.entry is entry


@pytest.mark.parametrize("loco, covariates", [(True, False), (False, True), (True, True)])
def test_x_scan_equals_lmmcore_scan_cross(session, tmp_path, loco, covariates):
    ex, sc, _ = session
    ex.use_covariates = covariates
    sc.loco = loco
    entry = sc.refresh()
    assert entry.key.loco == loco and entry.key.use_covariates == covariates
    want = cli(tmp_path, "scan", *_cli_options(loco, covariates), "--phenotypes", ex.phenotype)
    got = entry.result.table
    assert list(got["marker"]) == list(want["marker"]) and list(got["chr"].astype(str)) == list(want["chr"])
    for column in ("lod", "p_value", "h2"):
        np.testing.assert_allclose(got[column].to_numpy(float), want[column].to_numpy(float), rtol=0, atol=1e-8,
                                   err_msg=column)
    assert list(got["df"]) == list(want["df"]) and (got["chr"] == "X").sum() == 2
    # the top peaks (one per chromosome) include X with the CLI's LOD
    peaks = sc.top_peaks()
    x = peaks[peaks["chr"] == "X"].iloc[0]
    assert x["lod"] == pytest.approx(want.loc[want["chr"] == "X", "lod"].max(), abs=1e-8)


def test_x_scan_matches_rqtl2_scan1_with_xcovar(session):
    # R: scan1(pr, cross$pheno, kinship = calc_kinship(pr, "loco"), Xcovar = get_x_covar(cross))
    ex, sc, _ = session
    ex.use_covariates = False
    ref = pd.read_csv(DATA / "xscan" / "rqtl2_scan1_x.csv", dtype={"chr": str, "marker": str})
    ref = ref[ref["addcovar"] == "none"].set_index("marker")
    hsq = pd.read_csv(DATA / "xscan" / "rqtl2_hsq_none.csv", dtype={"chr": str}).set_index("chr")
    for phenotype in ("liver", "spleen"):
        ex.phenotype = phenotype
        entry = sc.refresh()
        assert entry.phenotype == phenotype
        lod = entry.result.table.set_index("marker")["lod"]
        np.testing.assert_allclose(lod.loc[ref.index], ref[phenotype], rtol=0, atol=1e-4)
        null = entry.result.null.set_index("chr")["h2"]  # R/qtl2's hsq is on the scale of 2K
        np.testing.assert_allclose(null.loc[hsq.index], 2 * hsq[phenotype] / (1 + hsq[phenotype]), atol=1e-4)


@pytest.mark.parametrize("covariates", [False, True])
def test_x_effects_and_fit1_equal_lmmcore_effects_and_fit1(session, tmp_path, covariates):
    ex, sc, detail = session
    ex.use_covariates = covariates
    entry = sc.refresh()
    options = [*_cli_options(True, covariates), "--phenotypes", entry.phenotype]
    assert detail.zoom("X")
    for kind, flags in (("coef", []), ("blup", ["--blup"])):
        detail.effects_kind = kind
        got = detail.load_effects()
        assert got.chromosome == "X" and got.effect_names == X_GENOTYPES
        want = cli(tmp_path, "effects", *options, "--chr", "X", *flags)
        table = got.table
        assert list(table.columns) == list(want.columns) and list(table["marker"]) == list(want["marker"])
        numbers = want.columns[3:]
        # equal to 1e-8 (the same kinship matrices as the CLI's: with the covariates, sex is spanned by the X
        # genotypes and the column left out is the CLI's, NaN in the same place)
        np.testing.assert_allclose(table[numbers].to_numpy(float), want[numbers].to_numpy(float), rtol=1e-8,
                                   atol=1e-8, equal_nan=True, err_msg=kind)
        assert np.isfinite(table[list(X_GENOTYPES[:4])].to_numpy(float)).all()
    # an autosome of the same cross: its own three genotypes, no X covariates, as the CLI
    assert detail.zoom("7")
    detail.effects_kind = "coef"
    want = cli(tmp_path, "effects", *options, "--chr", "7")
    table = detail.load_effects().table
    np.testing.assert_allclose(table[want.columns[3:]].to_numpy(float), want[want.columns[3:]].to_numpy(float),
                               rtol=1e-8, atol=1e-8)
    for marker in ("DXMit16", "D7mit30"):
        assert sc.select_marker(marker)
        fit = detail.load_fit()
        row = cli(tmp_path, "fit1", *options, "--marker", marker).iloc[0]
        assert fit.marker == marker and fit.lod == pytest.approx(row["lod"], abs=1e-8)
        assert fit.lod == pytest.approx(sc.lod_frame().set_index("marker").loc[marker, "lod"], abs=1e-8)
        for name in fit.coef.index:
            np.testing.assert_allclose(fit.coef[name], row[name], rtol=1e-8, atol=1e-8, equal_nan=True)
            np.testing.assert_allclose(fit.se[name], row[f"se_{name}"], rtol=1e-8, atol=1e-8, equal_nan=True)
        assert fit.variance_explained == pytest.approx(row["variance_explained"], abs=1e-8)


def test_phenotype_by_genotype_at_an_x_marker(session):
    ex, sc, _ = session
    ex.use_covariates = False
    entry = sc.refresh()
    assert sc.select_marker("DXMit16")
    e = sc.effect_data()
    assert e.chromosome == "X" and e.on_x and e.reference == "SS" and e.effects.empty
    # by hand: each individual's most likely genotype among X's own six, and the raw group means
    g = entry.job.genotypes
    cols = [g.genotype_names.index(name) for name in X_GENOTYPES]
    probs = g.probs[:, g.marker_index("DXMit16"), :][:, cols]
    called = np.asarray(X_GENOTYPES, dtype=object)[probs.argmax(axis=1)]
    y = ex.model_data().phenotypes[ex.phenotype].loc[list(g.ids)].to_numpy(float)
    assert list(e.points["genotype"]) == list(called)
    want = [(name, int((called == name).sum()), float(y[called == name].mean())) for name in X_GENOTYPES
            if (called == name).any()]
    assert [(r.genotype, r.n, pytest.approx(r.mean, abs=1e-12)) for r in e.groups.itertuples()] == want
    male = ~np.asarray(lmmcore.read_cross(CROSS).is_female)
    assert set(called[male]) <= {"SY", "BY"} and set(called[~male]) <= {"SS", "SB", "BS", "BB"}
    # an autosome marker keeps the scan's contrasts of its own three genotypes
    assert sc.select_marker("D7mit30")
    a = sc.effect_data()
    assert not a.on_x and a.reference == "SS" and list(a.effects["effect"]) == ["SB", "BB"]
    assert set(a.genotype_order) <= {"SS", "SB", "BB"}
    row = entry.result.table.set_index("marker").loc["D7mit30"]
    np.testing.assert_allclose(a.effects["estimate"], row[["beta_SB", "beta_BB"]].to_numpy(float), rtol=1e-14)


def test_the_dashboards_x_effect_jobs_match_rqtl2():
    # R (tests/data/xeffects/make_rqtl2_xeffects.R): pr = calc_genoprob(cross, insert_pseudomarkers(gmap, step = 5),
    # error_prob = 0.002); K = calc_kinship(pr, "loco"); scan1coef(pr[, "X"], liver, K[["X"]], nullcovar =
    # get_x_covar(cross), se = TRUE) and fit1(pr[["X"]][, , "DXMit186"], ...): here the dashboard's jobs on
    # lmmcore's HMM and kinship of the same cross
    xdata = DATA / "xeffects"
    cross = lmmcore.read_cross(xdata / "iron_x.zip")
    genotypes = lmmcore.genoprob(cross, step=5, error_prob=0.002)
    pheno = cross.pheno["liver"].copy()
    pheno.index = pheno.index.astype(str)
    key = ScanKey(phenotype="liver", method="reml", loco=True, use_covariates=False, n_perm=0, data_token=0,
                  genotypes_token=0)
    job = ScanJob(key, genotypes, pheno, None, x_chr=("X",), xcovar=lmmcore.x_covariates(cross))
    effects, _ = run_effects(job, "X")
    ref = pd.read_csv(xdata / "rqtl2_scan1coef_X.csv", dtype={"call": str, "marker": str, "coef": str})
    ref = ref[ref["call"] == "zerosum"]
    value = ref.pivot(index="marker", columns="coef", values="value")
    se = ref.pivot(index="marker", columns="coef", values="se")
    table = effects.table.set_index("marker").loc[value.index]
    for name in (*X_GENOTYPES, "intercept"):
        scale = float(np.abs(value[name]).max())
        np.testing.assert_allclose(table[name], value[name], rtol=1e-6, atol=1e-6 * scale, err_msg=name)
        np.testing.assert_allclose(table[f"se_{name}"], se[name], rtol=1e-6, err_msg=f"se_{name}")
    fit, _ = run_fit1(job, "DXMit186")
    want = pd.read_csv(xdata / "rqtl2_fit1_DXMit186.csv").set_index("name")["value"]
    assert fit.lod == pytest.approx(want["lod"], abs=1e-6)
    for name in (*X_GENOTYPES, "intercept"):
        assert fit.coef[name] == pytest.approx(want[name], rel=1e-6, abs=1e-6 * abs(want["intercept"]))
        assert fit.se[name] == pytest.approx(want[f"se_{name}"], rel=1e-6)
    # without the X covariates in the null model the X effects are another model's (the reason for nullcovar)
    plain, _ = run_effects(ScanJob(key, genotypes, pheno, None), "X")
    assert abs(plain.h2 - effects.h2) > 1e-3


def test_diversity_outbred_x_is_scanned_on_founder_probabilities_as_the_cli(tmp_path):
    # tests/data/cross/doex_x.zip: 60 DO mice (both sexes), chromosomes 3 and X (make_doex_x.py). The dashboard
    # scans a DO on its founder probabilities: `lmmcore scan --cross doex_x.zip --alleles`, X with the X
    # covariates (a DO's get_x_covar: sex) and its effects per founder, as `lmmcore effects --alleles --chr X`
    do = DATA / "cross" / "doex_x.zip"
    content = do.read_bytes()
    ex = ExplorerState()
    assert ex.receive_cross_upload("doex_x.zip", content), ex.notice
    ex.use_covariates = False
    sc = ScanState(explorer=ex)
    assert sc.receive_cross_genotypes("doex_x.zip", content), sc.notice
    assert sc.genotypes.genotype_names == tuple("ABCDEFGH") and sc.genotypes.chromosomes == ("3", "X")
    entry = sc.refresh()
    assert entry.job.x_chr == ("X",) and list(entry.job.xcovar.columns) == ["sex"]
    options = ["--cross", do, "--alleles", "--kinship", "loco", "--phenotypes", entry.phenotype]
    want = cli(tmp_path, "scan", *options)
    got = entry.result.table
    assert list(got["marker"]) == list(want["marker"]) and (got["chr"] == "X").sum() == 93
    for column in ("lod", "p_value", "h2"):
        np.testing.assert_allclose(got[column].to_numpy(float), want[column].to_numpy(float), rtol=0, atol=1e-8,
                                   err_msg=column)
    detail = ScanDetail(scan=sc)
    assert detail.zoom("X")
    effects = detail.load_effects()
    assert effects.effect_names == tuple("ABCDEFGH")
    want = cli(tmp_path, "effects", *options, "--chr", "X")
    np.testing.assert_allclose(effects.table[want.columns[3:]].to_numpy(float),
                               want[want.columns[3:]].to_numpy(float), rtol=1e-8, atol=1e-8)
    marker = str(sc.top_peaks().query("chr == 'X'")["marker"].iloc[0])
    assert sc.select_marker(marker)
    fit = detail.load_fit()
    row = cli(tmp_path, "fit1", *options, "--marker", marker).iloc[0]
    assert fit.lod == pytest.approx(row["lod"], abs=1e-8)
    np.testing.assert_allclose(fit.coef[list("ABCDEFGH")].to_numpy(float), row[list("ABCDEFGH")].to_numpy(float),
                               rtol=1e-8, atol=1e-8)
    e = sc.effect_data()
    assert e.on_x and e.effects.empty and set(e.groups["genotype"]) <= set("ABCDEFGH")


def test_the_effects_table_at_an_x_marker_shows_fit1(session):
    # the view (no browser): at an X marker the scan's contrasts are not identified, so the table shows
    # fit1's X genotype effects (the numbers checked against the CLI above), and says so
    pytest.importorskip("panel")
    pytest.importorskip("holoviews").extension("bokeh", logo=False)
    from app.views.scan import ScanView

    ex, sc, detail = session
    ex.use_covariates = False
    view = ScanView(scan=sc, detail=detail)
    entry = sc.refresh()
    assert sc.select_marker("DXMit186")
    fit = detail.load_fit()
    detail.fit = None  # before fit1 arrives
    assert "computing (fit1)" in view._effects_html(entry, "DXMit186")
    detail.fit = fit
    html = view._effects_html(entry, "DXMit186")
    for name in X_GENOTYPES:
        assert f"<th>{name} (fit1)</th><td class='num'>{fit.coef[name]:.4g} ± {fit.se[name]:.2g}</td>" in html
    assert "− SS" not in html and "R/qtl2's fit1 with nullcovar" in html
    # the variance explained is left out on an F2's X (its genotypes carry the sex difference); RSS share kept
    assert "<th>variance explained</th>" not in html and f"{100 * fit.pve_lod:.1f}%" in html
    info = view._info_text(entry, False, sc.genotype_label)
    assert "X covariates (sex, direction)" in info and "own genotypes SS, SB, BS, BB, SY, BY" in info
    # with the covariates, sex is spanned by X's genotypes: fit1 has no sum-to-zero effects, and the table says so
    ex.use_covariates = True
    entry = sc.refresh()
    assert sc.select_marker("DXMit186") and detail.load_fit() is not None
    html = view._effects_html(entry, "DXMit186")
    assert "not identified ¹" in html and "spanned by the X genotypes" in html
    assert sc.select_marker("D7mit30") and detail.load_fit() is not None  # an autosome: as before
    html = view._effects_html(entry, "D7mit30")
    assert "<th>variance explained</th>" in html and "fit1" not in html.split("<table")[1].split("</table>")[0]


def test_the_heat_map_message_follows_the_data_uploaded_after_the_view(content):
    # regression: the heat map's message was drawn once for the data in use when the tab was built ("The data
    # have one phenotype") and stayed after a cross with two phenotypes was uploaded
    pytest.importorskip("panel")
    hv = pytest.importorskip("holoviews")
    hv.extension("bokeh", logo=False)
    from app.views.scan import ScanView

    ex = ExplorerState()
    sc = ScanState(explorer=ex)
    view = ScanView(scan=sc)

    def message() -> str:
        return " ".join(el.text for el in view.after.heat.object.traverse(lambda x: x, [hv.Text]))

    assert "one phenotype" in message()
    assert ex.receive_cross_upload("iron_subset.zip", content)
    assert sc.receive_cross_genotypes("iron_subset.zip", content) and sc.refresh() is not None
    assert "Scan all 2 phenotypes" in message() and not view.after.heat_button.disabled

"""The genome-scan tab after the scan (zoom, peaks, effects, variance explained, heat map, QQ) without a browser.

What the tab shows is compared with independent computations: the peaks and
their intervals with :func:`lmmcore.find_peaks` on a scan run here from the
example files, the effects along a chromosome with :func:`lmmcore.scan1coef`
/ :func:`lmmcore.scan1blup` called here and, at the QTL, with dense
generalised least squares on R/qtl2's LOCO kinship computed here from the
genotype file (h2 by scipy's bounded Brent on the dense REML likelihood), the
variance explained with its definition evaluated densely, the QQ plot's
quantiles with ``(i - 0.5)/m``, the heat map with a scan of every phenotype
run here; every CSV download is read back.
"""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from browser_util import example_dir
from dense import gls
from lmmcore import LMMWarning, find_peaks, scan1blup, scan1coef
from lmmcore.genotypes import read_genoprobs
from lmmcore.scan import scan
from test_app_scan import dense_reml_h2, design, marker_probs, qtl2_kinship

hv = pytest.importorskip("holoviews")
pn = pytest.importorskip("panel")

PHENOTYPE = "qtl_chr2"


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    folder = example_dir(tmp_path_factory.mktemp("assets"))
    if not (folder / "genoprobs.csv").is_file():
        pytest.skip("the example genotype files are not available")
    return folder


@pytest.fixture(scope="module")
def files(example) -> dict[str, pd.DataFrame]:
    return {
        "pheno": pd.read_csv(example / "pheno.csv", index_col=0),
        "covar": pd.read_csv(example / "covar.csv", index_col=0),
        "probs": pd.read_csv(example / "genoprobs.csv", index_col=0),
        "map": pd.read_csv(example / "map.csv"),
    }


@pytest.fixture(scope="module")
def genotypes(example):
    return read_genoprobs(example / "genoprobs.csv", example / "map.csv")


@pytest.fixture(scope="module")
def engine(genotypes, files):
    """lmmcore's LOCO REML scan of the example's QTL phenotype with the sex covariate (the tab's defaults)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LMMWarning)
        return scan(genotypes, files["pheno"][[PHENOTYPE]], files["covar"], kinship="loco")


@pytest.fixture(scope="module")
def app(example):
    from app.explorer import PANEL_EXTENSIONS, TAB_NAMES, ExplorerApp

    pn.extension(*PANEL_EXTENSIONS, notifications=True)
    hv.extension("bokeh", logo=False)
    application = ExplorerApp.with_example(example)
    pn.panel(application).get_root()
    application.state.phenotype = PHENOTYPE
    application.tabs.active = TAB_NAMES.index("Genome scan")
    assert application.scan_state.entry is not None
    return application


@pytest.fixture
def detail(app):
    d = app.scan.detail
    d.param.update(threshold=3.0, peakdrop=math.inf, interval="lod", drop=1.5, prob=0.95, effects_kind="coef")
    d.zoom(None)
    app.state.phenotype = PHENOTYPE
    app.scan_state.refresh()
    return d


def layers(overlay, kind: str, label: str | None = None) -> list:
    return [el for el in overlay if type(el).__name__ == kind and (label is None or el.label == label)]


def read_back(buffer: io.BytesIO) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(buffer.getvalue()))


# ---------------------------------------------------------------- peaks and intervals


@pytest.mark.parametrize("options", [
    dict(threshold=1.0, peakdrop=math.inf, interval="lod", drop=1.5),
    dict(threshold=0.8, peakdrop=1.0, interval="lod", drop=1.0),
    dict(threshold=1.0, peakdrop=math.inf, interval="bayes", prob=0.95),
])
def test_peaks_table_is_find_peaks_on_the_same_scan_and_the_shaded_intervals_are_its_ends(app, detail, engine,
                                                                                            options):
    detail.param.update(**options)
    theirs = find_peaks(engine, threshold=options["threshold"], peakdrop=options["peakdrop"],
                        drop=options.get("drop") if options["interval"] == "lod" else None,
                        prob=options.get("prob") if options["interval"] == "bayes" else None)
    shown = detail.peaks()
    assert len(shown) >= 2
    pd.testing.assert_frame_equal(shown.reset_index(drop=True), theirs.reset_index(drop=True), check_dtype=False)
    # the table in the view (without the phenotype column) and its download
    pd.testing.assert_frame_equal(app.scan.after.peaks.value.reset_index(drop=True),
                                  theirs.drop(columns="phenotype").astype({"chr": str}), check_dtype=False)
    back = read_back(app.scan.after._peaks_csv())
    np.testing.assert_allclose(back[["pos", "lod", "ci_lo", "ci_hi"]], theirs[["pos", "lod", "ci_lo", "ci_hi"]])
    assert back["marker"].tolist() == theirs["marker"].tolist()
    # shaded on the whole-genome plot at the genome-axis coordinates of ci_lo and ci_hi
    layout = app.scan_state.layout()
    overlay = app.scan._lod_plot(app.scan_state.entry, app.scan_state.selected_marker)
    (spans,) = layers(overlay, "VSpans", "support intervals")
    drawn = spans.dframe()
    offset = {c: layout.start[k] - layout.first[k] for k, c in enumerate(layout.chromosomes)}
    shift = theirs["chr"].astype(str).map(offset).to_numpy()
    np.testing.assert_allclose(drawn.iloc[:, 0], theirs["ci_lo"] + shift)
    np.testing.assert_allclose(drawn.iloc[:, 1], theirs["ci_hi"] + shift)
    # zoomed: the chromosome's own intervals, in its positions
    chrom = str(theirs["chr"].iloc[-1])
    detail.zoom(chrom)
    overlay = app.scan._lod_plot(app.scan_state.entry, app.scan_state.selected_marker)
    drawn = layers(overlay, "VSpans", "support intervals")[0].dframe()
    mine = theirs[theirs["chr"].astype(str) == chrom]
    np.testing.assert_allclose(drawn.iloc[:, 0], mine["ci_lo"])
    np.testing.assert_allclose(drawn.iloc[:, 1], mine["ci_hi"])
    detail.zoom(None)


def test_a_drop_above_the_peak_drop_is_explained_not_raised(detail):
    detail.param.update(peakdrop=1.0, drop=1.5)
    assert detail.peaks().empty
    assert "larger than the peak drop" in detail.peaks_problem()


def test_clicking_a_peak_zooms_to_its_chromosome_and_selects_it(app, detail):
    detail.threshold = 1.0
    peaks = detail.peaks()
    row = int(np.flatnonzero(peaks["chr"].astype(str) == "4")[0])
    app.scan.after._pick_peak(type("Click", (), {"row": row})())
    assert detail.chromosome == "4" and app.scan_state.selected_marker == peaks["marker"].iloc[row]
    assert app.scan.after.zoom_select.value == "4" and app.scan.after.coef_box.visible


# ---------------------------------------------------------------- zoom


def test_a_click_on_a_chromosome_name_zooms_and_a_click_on_the_band_goes_back(app, detail):
    layout = app.scan_state.layout()
    view = app.scan
    for x, name in layout.ticks()[1::3]:  # two chromosomes: each zoom computes its effects
        view._tapped(x=x, y=-0.05)
        assert detail.chromosome == name
        view._tapped(x=x, y=-0.05)
        assert detail.chromosome is None
    # zoomed, a click on the curve picks the nearest marker of that chromosome
    detail.zoom("4")
    frame = detail.chromosome_frame()
    target = frame[frame["marker"] == "D4M08"].iloc[0]
    view._tapped(x=float(target["pos"]), y=float(target["lod"]))
    assert app.scan_state.selected_marker == "D4M08"
    overlay = view._lod_plot(app.scan_state.entry, app.scan_state.selected_marker)
    (curve,) = layers(overlay, "Curve", "LOD")
    np.testing.assert_allclose(curve.dframe()["x"], frame["pos"])  # the axis is the chromosome's positions
    assert app.scan.after.zoom_select.value == "4"
    app.scan.after.zoom_select.value = "whole genome"
    assert detail.chromosome is None


# ---------------------------------------------------------------- effects along the chromosome


def test_coefficient_plot_is_scan1coef_and_equals_dense_gls_at_the_qtl(app, detail, genotypes, files):
    detail.zoom("2")
    result = detail.load_effects()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LMMWarning)
        theirs = scan1coef(genotypes, files["pheno"][[PHENOTYPE]], files["covar"], chromosome="2",
                           phenotype=PHENOTYPE, kinship="loco", method="reml")
    pd.testing.assert_frame_equal(result.table, theirs.table)
    app.scan.after._draw_coef()
    overlay = app.scan.after.coef.object
    for name in theirs.effect_names:
        (curve,) = layers(overlay, "Curve", name)
        drawn = curve.dframe()
        np.testing.assert_allclose(drawn["pos"], theirs.table["pos"])
        np.testing.assert_allclose(drawn["effect"], theirs.table[name], rtol=1e-12)
    back = read_back(app.scan.after._coef_csv())
    np.testing.assert_allclose(back[list(theirs.effect_names)], theirs.table[list(theirs.effect_names)], rtol=1e-12)
    # at the QTL: GLS with V = h K + (1 - h) I, K R/qtl2's kinship without chromosome 2, effects centred
    y = files["pheno"][PHENOTYPE].to_numpy(dtype=float)
    X0 = design(files)
    K = qtl2_kinship(files, leave_out="2")
    h = dense_reml_h2(K, y, X0)
    X1 = np.column_stack([marker_probs(files, "D2M18"), X0[:, 1]])
    b, rss, _, XtViX = gls(K, y, X1, h)
    row = result.table.set_index("marker").loc["D2M18"]
    np.testing.assert_allclose(row[["AA", "AB", "BB"]].to_numpy(dtype=float), b[:3] - b[:3].mean(), rtol=2e-5)
    se = np.sqrt(np.diag(np.linalg.inv(XtViX))[:3] * rss / (len(y) - 4))
    np.testing.assert_allclose(row[["se_AA", "se_AB", "se_BB"]].to_numpy(dtype=float), se, rtol=2e-5)


def test_blup_plot_is_scan1blup_and_effects_are_memoised_per_scan_chromosome_and_kind(app, detail, genotypes,
                                                                                       files, monkeypatch):
    import app.scan_detail as detail_module

    detail.zoom("2")
    detail.effects_kind = "blup"
    result = detail.load_effects()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LMMWarning)
        theirs = scan1blup(genotypes, files["pheno"][[PHENOTYPE]], files["covar"], chromosome="2",
                           phenotype=PHENOTYPE, kinship="loco", method="reml")
    pd.testing.assert_frame_equal(result.table, theirs.table)
    app.scan.after._draw_coef()
    (curve,) = layers(app.scan.after.coef.object, "Curve", "AB")
    np.testing.assert_allclose(curve.dframe()["effect"], theirs.table["AB"], rtol=1e-12)
    calls = []
    monkeypatch.setattr(detail_module, "run_effects", lambda *a: calls.append(a) or (_ for _ in ()).throw(
        AssertionError("memoised effects must not be computed again")))
    for kind, chrom in (("coef", "2"), ("blup", "2"), ("coef", "2")):
        detail.zoom(chrom)
        detail.effects_kind = kind
        assert detail.load_effects() is not None and detail.effects.kind == kind
    assert calls == []


def test_effects_run_in_a_worker_thread(detail):
    import threading

    import app.scan_detail as detail_module

    seen = []
    real = detail_module.run_effects

    def spy(*args):
        seen.append(threading.current_thread() is threading.main_thread())
        return real(*args)

    detail.zoom("5")
    detail.effects_kind = "coef"
    detail._effects.clear()
    detail_module.run_effects, saved = spy, real
    try:
        result = __import__("asyncio").run(detail.aload_effects())
    finally:
        detail_module.run_effects = saved
    assert seen == [False] and result is not None and result.chromosome == "5"


def test_cc_colours_for_the_eight_founders():
    from app.scan_frames import effect_colours

    assert effect_colours(list("ABCDEFGH")) == {
        "A": "#FFDC00", "B": "#888888", "C": "#F08080", "D": "#0064C9",
        "E": "#7FDBFF", "F": "#2ECC40", "G": "#FF4136", "H": "#B10DC9",
    }
    assert len(set(effect_colours(["AA", "AB", "BB"]).values())) == 3
    # founders named by strain, as crosses with alleles: [AJ, B6, ...] name them: the same strain, the same colour
    strains = ["WSB", "B6", "AJ", "129", "NOD", "NZO", "CAST", "PWK"]
    assert effect_colours(strains) == {"WSB": "#B10DC9", "B6": "#888888", "AJ": "#FFDC00", "129": "#F08080",
                                       "NOD": "#0064C9", "NZO": "#7FDBFF", "CAST": "#2ECC40", "PWK": "#FF4136"}
    assert effect_colours(["C57BL/6J", "CAST/EiJ"]) == {"C57BL/6J": "#888888", "CAST/EiJ": "#2ECC40"}


# ---------------------------------------------------------------- variance explained


def test_variance_explained_at_the_clicked_marker_is_its_definition_evaluated_densely(app, detail, files):
    app.scan_state.select_marker("D2M18")
    fit = detail.load_fit()
    y = files["pheno"][PHENOTYPE].to_numpy(dtype=float)
    n = len(y)
    X0 = design(files)
    K = qtl2_kinship(files, leave_out="2")
    h = dense_reml_h2(K, y, X0)
    G = marker_probs(files, "D2M18")
    X1 = np.column_stack([G, X0[:, 1]])
    b, rss, _, _ = gls(K, y, X1, h)
    v = rss / (n - X1.shape[1])
    P = np.eye(n) - 1.0 / n
    var_qtl = np.var(G @ b[:3], ddof=1)
    var_poly = h * v * np.trace(P @ K @ P) / (n - 1)
    expected = var_qtl / (var_qtl + var_poly + (1 - h) * v)
    assert fit.variance_explained == pytest.approx(expected, rel=1e-4)
    html = app.scan._effects_html(app.scan_state.entry, "D2M18")
    assert f"{100 * fit.variance_explained:.1f}%" in html and "variance explained" in html


# ---------------------------------------------------------------- QQ plot and heat map


def test_qq_plot_draws_the_scans_p_values_against_uniform_quantiles(app, detail, engine):
    p = np.sort(engine.table["p_value"].to_numpy(dtype=float))
    m = p.size
    qq = detail.qq()
    np.testing.assert_allclose(qq["q"], (np.arange(1, m + 1) - 0.5) / m)
    np.testing.assert_allclose(qq["expected"], -np.log10((np.arange(1, m + 1) - 0.5) / m))
    np.testing.assert_allclose(qq["observed"], -np.log10(p), rtol=1e-9)
    app.scan.after._draw_qq()
    (points,) = layers(app.scan.after.qq.object, "Scatter")
    np.testing.assert_allclose(points.dframe()["expected"], qq["expected"])
    (diagonal,) = layers(app.scan.after.qq.object, "Curve")
    d = diagonal.dframe().to_numpy()
    np.testing.assert_allclose(d[:, 0], d[:, 1])
    back = read_back(app.scan.after._qq_csv())
    np.testing.assert_allclose(back[["q", "expected", "observed"]], qq[["q", "expected", "observed"]])


def test_heat_map_values_are_the_scan_tables_lod_of_every_phenotype(app, detail, genotypes, files):
    result = detail.load_all_phenotypes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LMMWarning)
        theirs = scan(genotypes, files["pheno"], files["covar"], kinship="loco").table
    heat = detail.heat()
    merged = heat.merge(theirs[["phenotype", "marker", "lod"]].astype({"marker": str}), on=["phenotype", "marker"],
                        suffixes=("", "_theirs"))
    assert len(merged) == len(theirs) == len(heat) and set(heat["phenotype"]) == set(files["pheno"].columns)
    np.testing.assert_allclose(merged["lod"], merged["lod_theirs"], rtol=1e-10, equal_nan=True)
    assert result is detail.all_scan
    app.scan.after._draw_heat()
    (mesh,) = layers(app.scan.after.heat.object, "QuadMesh")
    grid = mesh.data[2] if isinstance(mesh.data, tuple) else mesh.dimension_values(2, flat=False)
    order = [PHENOTYPE] + [p for p in pd.unique(heat["phenotype"]) if p != PHENOTYPE]  # the one shown on top
    wide = heat.pivot(index="phenotype", columns="x", values="lod").reindex(order[::-1])  # rows from the bottom
    np.testing.assert_allclose(np.asarray(grid, dtype=float), wide.to_numpy(), equal_nan=True)
    back = read_back(app.scan.after._heat_csv())
    pd.testing.assert_frame_equal(back.astype({"chr": str, "marker": str}),
                                  heat.drop(columns="x").reset_index(drop=True), check_dtype=False)


def test_presentation_mode_enlarges_the_new_plots(app, detail):
    import holoviews as hv

    after = app.scan.after
    detail.zoom("2")
    detail.load_effects()
    try:
        app.scan.look.presentation = True
        for pane in (after.coef, after.qq, after.heat):
            opts = hv.Store.lookup_options("bokeh", pane.object, "plot").kwargs
            assert opts.get("fontscale") == pytest.approx(1.75), pane
    finally:
        app.scan.look.presentation = False

"""The dashboard's genome-scan state (and its view) without a browser.

Every number shown is compared with an independent computation: the LOD
curve with :func:`lmmcore.scan.scan` run directly on the example files, one
marker's LOD, effects and standard errors with dense generalised least squares
(``tests/dense.py``) on a kinship computed here from the genotype file with
R/qtl2's formula, the null h2 with scipy's bounded Brent on the dense REML
likelihood, and the effect plot's group means with a pandas ``groupby`` of the
phenotype file by genotypes called here from the genotype file.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

import app.scan_jobs as scan_jobs_module
from browser_util import example_dir
from dense import gls, ml_loglik, reml_loglik
from lmmcore import LMMWarning
from lmmcore.genotypes import read_dosages, read_genoprobs, read_plink
from lmmcore.scan import scan

from app.scan_state import PERMUTATION_SEED, UPLOADED, ScanState, genome_layout
from app.state import ExplorerState

GENOTYPE_NAMES = ("AA", "AB", "BB")


# ---------------------------------------------------------------- fixtures and independent helpers


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    folder = example_dir(tmp_path_factory.mktemp("assets"))
    if not (folder / "genoprobs.csv").is_file():
        pytest.skip("the example genotype files are not available")
    return folder


@pytest.fixture
def explorer(example) -> ExplorerState:
    ex = ExplorerState()
    assert ex.load_example(example), ex.notice
    return ex


@pytest.fixture
def state(explorer, example) -> ScanState:
    return ScanState(explorer=explorer, example_dir=example)


@pytest.fixture(scope="module")
def files(example) -> dict[str, pd.DataFrame]:
    """The example files read with pandas only."""
    return {
        "pheno": pd.read_csv(example / "pheno.csv", index_col=0),
        "covar": pd.read_csv(example / "covar.csv", index_col=0),
        "probs": pd.read_csv(example / "genoprobs.csv", index_col=0),
        "dosages": pd.read_csv(example / "genotypes.csv", index_col=0),
        "map": pd.read_csv(example / "map.csv"),
    }


def engine_scan(example: Path, files, phenotype: str, source: str = "genoprobs", **kwargs):
    """lmmcore's scan of the example files, run independently of the dashboard."""
    reader = read_genoprobs if source == "genoprobs" else read_dosages
    genotypes = reader(example / ("genoprobs.csv" if source == "genoprobs" else "genotypes.csv"), example / "map.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LMMWarning)
        return scan(genotypes, files["pheno"][[phenotype]], files["covar"], **kwargs)


def marker_probs(files, marker: str) -> np.ndarray:
    """(n, 3) genotype probabilities of one marker, in the file's row order."""
    return files["probs"][[f"{marker}:{g}" for g in GENOTYPE_NAMES]].to_numpy(dtype=float)


def qtl2_kinship(files, leave_out: str | None = None) -> np.ndarray:
    """R/qtl2's calc_kinship from the genotype file: mean over markers of sum_a p_ia p_ja (allele probabilities).

    Allele probabilities of an intercross: A = p(AA) + p(AB)/2, B = p(BB) + p(AB)/2.
    """
    gmap = files["map"]
    markers = gmap.loc[gmap["chr"].astype(str) != str(leave_out), "marker"] if leave_out else gmap["marker"]
    P = np.stack([marker_probs(files, m) for m in markers], axis=1)  # (n, m, 3)
    alleles = np.stack([P[..., 0] + 0.5 * P[..., 1], P[..., 2] + 0.5 * P[..., 1]], axis=2)
    return np.einsum("ima,jma->ij", alleles, alleles) / len(markers)


def design(files) -> np.ndarray:
    sex = files["covar"]["sex"].reindex(files["pheno"].index)
    return np.column_stack([np.ones(len(sex)), (sex == "m").to_numpy(dtype=float)])


def dense_reml_h2(K, y, X) -> float:
    """The null REML h2 by scipy's bounded Brent on the dense likelihood (no eigendecomposition)."""
    res = optimize.minimize_scalar(lambda h: -reml_loglik(K, y, X, h), bounds=(0.0, 1.0), method="bounded",
                                   options={"xatol": 1e-9})
    return float(res.x)


def called_genotypes(files, marker: str, source: str) -> pd.Series:
    """Each individual's genotype at a marker, called from the file with pandas."""
    if source == "genoprobs":
        cols = [f"{marker}:{g}" for g in GENOTYPE_NAMES]
        return files["probs"][cols].idxmax(axis=1).str.split(":").str[1]
    return files["dosages"][marker].round().clip(0, 2).astype(int).astype(str)


def bytes_of(df: pd.DataFrame, index: bool = True) -> bytes:
    return df.to_csv(index=index).encode()


# ---------------------------------------------------------------- the LOD curve


@pytest.mark.parametrize("source", ["genoprobs", "dosages"])
@pytest.mark.parametrize("loco", [True, False])
def test_lod_curve_equals_lmmcore_scan(state, explorer, example, files, source, loco):
    explorer.phenotype = "qtl_chr2"
    state.genotype_source = source
    state.loco = loco
    assert state.refresh() is not None, state.notice
    shown = state.lod_frame()
    theirs = engine_scan(example, files, "qtl_chr2", source, kinship="loco" if loco else "overall").table
    assert shown["marker"].tolist() == theirs["marker"].astype(str).tolist()
    np.testing.assert_allclose(shown["lod"], theirs["lod"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(shown["pos"], theirs["pos"])
    # the simulated QTL is the highest peak and is selected
    assert state.selected_marker == "D2M18" == state.top_peaks()["marker"].iloc[0]


@pytest.mark.parametrize("loco", [False, True])
def test_one_marker_equals_dense_generalised_least_squares(state, explorer, files, loco):
    """LOD, effects and SEs at two markers from V = h2 K + (1 - h2) I, K from R/qtl2's formula."""
    explorer.phenotype = "qtl_chr2"
    state.loco = loco
    state.refresh()
    y = files["pheno"]["qtl_chr2"].to_numpy(dtype=float)
    X0 = design(files)
    n = len(y)
    table = state.result.table.set_index("marker")
    shown = state.lod_frame().set_index("marker")
    for marker, chrom in (("D2M18", "2"), ("D4M08", "4")):
        K = qtl2_kinship(files, leave_out=chrom if loco else None)
        h2 = dense_reml_h2(K, y, X0)
        assert table.loc[marker, "h2"] == pytest.approx(h2, abs=2e-6)  # the null h2 the scan held fixed
        h = float(table.loc[marker, "h2"])
        _, rss0, _, _ = gls(K, y, X0, h)
        X1 = np.column_stack([X0, marker_probs(files, marker)[:, 1:]])  # AB and BB against AA
        b1, rss1, _, XtViX1 = gls(K, y, X1, h)
        lod = n / 2 * np.log10(rss0 / rss1)
        assert shown.loc[marker, "lod"] == pytest.approx(lod, rel=1e-8)
        se = np.sqrt(np.diag(np.linalg.inv(XtViX1))[2:] * rss1 / (n - X1.shape[1]))
        effect = state.effect_data(marker).effects.set_index("effect")
        np.testing.assert_allclose(effect["estimate"], b1[2:], rtol=1e-7)
        np.testing.assert_allclose(effect["se"], se, rtol=1e-7)


def test_loco_toggle_changes_the_kinship_and_comes_back_from_the_cache(state, explorer, example, files,
                                                                      monkeypatch):
    explorer.phenotype = "qtl_chr2"
    state.refresh()
    loco = state.lod_frame()["lod"].to_numpy()
    assert state.result.kinship == "loco" and set(state.result.null["chr"]) == {"1", "2", "3", "4", "5"}
    state.loco = False
    state.refresh()
    overall = state.lod_frame()["lod"].to_numpy()
    assert state.result.kinship == "overall" and state.result.null["chr"].tolist() == ["all"]
    np.testing.assert_allclose(overall, engine_scan(example, files, "qtl_chr2", kinship="overall").table["lod"],
                               rtol=1e-10)
    # the kinship of chromosome 2 absorbs the QTL without LOCO: its peak is much lower
    assert np.nanmax(loco) > np.nanmax(overall) + 5
    calls = []
    monkeypatch.setattr(scan_jobs_module, "scan", lambda *a, **k: calls.append(1) or scan(*a, **k))
    for value in (True, False, True):
        state.loco = value
        state.refresh()
    assert calls == [], "toggling LOCO back and forth must not scan again"
    np.testing.assert_array_equal(state.lod_frame()["lod"].to_numpy(), loco)


def test_phenotype_method_and_covariates_follow_the_sidebar(state, explorer, example, files):
    explorer.phenotype = "h2_50_na"
    explorer.method = "ml"
    explorer.use_covariates = False
    state.refresh()
    key = state.entry.key
    assert (key.phenotype, key.method, key.use_covariates) == ("h2_50_na", "ml", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LMMWarning)
        genotypes = read_genoprobs(example / "genoprobs.csv", example / "map.csv")
        theirs = scan(genotypes, files["pheno"][["h2_50_na"]], None, kinship="loco", method="ml")
    np.testing.assert_allclose(state.lod_frame()["lod"], theirs.table["lod"], rtol=1e-10)
    assert state.result.n_individuals == int(files["pheno"]["h2_50_na"].notna().sum()) == 285


def test_permutation_threshold_is_the_quantile_of_lmmcores_maxima(state, explorer, example, files):
    explorer.phenotype = "qtl_chr2"
    state.n_perm = 20
    state.refresh()
    theirs = engine_scan(example, files, "qtl_chr2", kinship="loco", n_perm=20, seed=PERMUTATION_SEED)
    maxima = theirs.permutations.max_lod["qtl_chr2"].to_numpy()
    assert state.threshold() == pytest.approx(np.quantile(maxima, 0.95), rel=1e-10)
    peaks = state.top_peaks()
    expected = [(maxima >= lod).mean() for lod in peaks["lod"]]
    np.testing.assert_allclose(peaks["genome_p"], expected)


def test_top_peaks_are_the_highest_marker_of_each_chromosome(state, explorer):
    explorer.phenotype = "qtl_chr2"
    state.refresh()
    frame = state.lod_frame()
    best = frame.loc[frame.groupby("chr")["lod"].idxmax()].sort_values("lod", ascending=False)
    peaks = state.top_peaks()
    assert peaks["marker"].tolist() == best["marker"].tolist()[:5]
    np.testing.assert_allclose(peaks["lod"], best["lod"].to_numpy()[:5])


# ---------------------------------------------------------------- the genome axis and clicks


def test_genome_axis_lays_chromosomes_end_to_end_in_natural_order():
    layout = genome_layout(["10", "2", "X", "2", "10"], [5.0, 1.0, 0.0, 11.0, 25.0])
    assert layout.chromosomes == ("2", "10", "X")
    width = np.array([10.0, 20.0, 0.3])  # X has one marker: 1% of the summed spans
    gap = 0.02 * width.sum()
    np.testing.assert_allclose(layout.start, [0.0, 10.0 + gap, 30.0 + 2 * gap])
    np.testing.assert_allclose(layout.x(["2", "10", "X"], [1.0, 25.0, 0.0]), [0.0, 30.0 + gap, 30.0 + 2 * gap])
    assert [label for _, label in layout.ticks()] == ["2", "10", "X"]
    lo, hi = layout.shaded()
    np.testing.assert_allclose([lo[0], hi[0]], [10.0 + gap / 2, 30.0 + 1.5 * gap])


def test_click_selects_the_nearest_marker(state, explorer):
    explorer.phenotype = "qtl_chr2"
    state.refresh()
    frame = state.lod_frame()
    row = frame.iloc[100]
    assert state.select_nearest(row["x"] + 0.1, row["lod"] + 0.05)
    assert state.selected_marker == row["marker"]
    # a click high above the peak's chromosome picks the peak, not a marker at the same x
    peak = frame.loc[frame["lod"].idxmax()]
    assert state.nearest_marker(peak["x"] + 4.0, peak["lod"]) == peak["marker"]
    assert not state.select_marker("no_such_marker") and state.selected_marker == row["marker"]


def test_selected_marker_stays_when_only_loco_changes(state, explorer):
    explorer.phenotype = "qtl_chr2"
    state.refresh()
    state.select_marker("D4M08")
    state.loco = False
    state.refresh()
    assert state.selected_marker == "D4M08"
    explorer.phenotype = "h2_80"
    state.refresh()
    frame = state.lod_frame()
    assert state.selected_marker == frame.loc[frame["lod"].idxmax(), "marker"]


@pytest.mark.parametrize("source", ["genoprobs", "dosages"])
@pytest.mark.parametrize("phenotype", ["qtl_chr2", "h2_50_na"])
def test_effect_plot_data_are_the_phenotype_grouped_by_the_called_genotype(state, explorer, files, source, phenotype):
    explorer.phenotype = phenotype
    state.genotype_source = source
    state.refresh()
    state.select_marker("D2M18")
    effect = state.effect_data()
    called = called_genotypes(files, "D2M18", source)
    y = files["pheno"][phenotype]
    expected = y.groupby(called).agg(["count", "mean", "std"])  # NaN phenotypes are left out by pandas
    groups = effect.groups.set_index("genotype")
    assert sorted(groups.index) == sorted(expected.index)
    np.testing.assert_array_equal(groups["n"], expected.loc[groups.index, "count"])
    np.testing.assert_allclose(groups["mean"], expected.loc[groups.index, "mean"], rtol=1e-12)
    np.testing.assert_allclose(groups["se"], expected.loc[groups.index, "std"] / np.sqrt(groups["n"]), rtol=1e-12)
    assert len(effect.points) == effect.n == int(y.notna().sum())
    # the individuals are the scan's own (ScanResult.ids): genotyped, phenotype observed, covariates complete
    complete = files["covar"].index[files["covar"].notna().all(axis=1)]
    used = [i for i in state.genotypes.ids if i in set(y.index[y.notna()]) and i in set(complete)]
    assert list(effect.points["id"]) == used == list(state.result.ids)
    row = state.result.table.set_index("marker").loc["D2M18"]
    for name, estimate, se in effect.effects.itertuples(index=False):
        assert estimate == row[f"beta_{name}"] and se == row[f"se_{name}"]
    assert effect.lod == row["lod"] and effect.h2 == row["h2"]
    assert effect.reference == ("AA" if source == "genoprobs" else None)


# ---------------------------------------------------------------- uploads


def _snapshot(state: ScanState):
    return state.entry, state.genotypes, state.selected_marker, state.genotype_source, state.genotype_label


@pytest.fixture
def clean_tmp(tmp_path, monkeypatch) -> Path:
    """Temporary files of the uploads go here, so that the test can see that they are removed."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _bad_uploads(example, files):
    probs, dosages, gmap = files["probs"], files["dosages"], files["map"]
    foreign = probs.copy()
    foreign.index = [f"mouse{i}" for i in range(len(foreign))]
    bad_dose = dosages.astype(object)
    bad_dose.iloc[4, 7] = "oops"
    return {
        "binary": ([("map", "m.csv", bytes_of(gmap, False)), ("genoprobs", "g.csv", b"\x89PNG\x00\x01\x02binary")],
                   ["g.csv", "not a text file"]),
        "no shared IDs": ([("genoprobs", "g.csv", bytes_of(foreign)), ("map", "m.csv", bytes_of(gmap, False))],
                          ["g.csv", "0 of them", "mouse0", "ind001"]),
        "map lacks markers": ([("map", "m.csv", bytes_of(gmap.iloc[1:], False)),
                               ("genoprobs", "g.csv", bytes_of(probs))],
                              ["m.csv", "D1M01", "not in the map file"]),
        "non-numeric dosage": ([("dosages", "d.csv", bytes_of(bad_dose)), ("map", "m.csv", bytes_of(gmap, False))],
                               ["d.csv", "oops", "not a number", dosages.columns[7]]),
        "empty genotype file": ([("map", "m.csv", bytes_of(gmap, False)), ("dosages", "d.csv", b"")],
                                ["d.csv", "empty"]),
        "empty map": ([("dosages", "d.csv", bytes_of(dosages)), ("map", "m.csv", b"")], ["m.csv", "empty"]),
        "map without pos": ([("dosages", "d.csv", bytes_of(dosages)),
                             ("map", "m.csv", bytes_of(gmap.drop(columns="pos"), False))], ["m.csv", "pos"]),
    }


@pytest.mark.parametrize("case", ["binary", "no shared IDs", "map lacks markers", "non-numeric dosage",
                                  "empty genotype file", "empty map", "map without pos"])
def test_bad_genotype_upload_keeps_the_previous_scan(state, explorer, example, files, clean_tmp, case):
    explorer.phenotype = "qtl_chr2"
    state.refresh()
    before = _snapshot(state)
    lods = state.lod_frame()["lod"].to_numpy().copy()
    uploads, words = _bad_uploads(example, files)[case]
    results = [state.receive_genotype_upload(kind, name, content) for kind, name, content in uploads]
    assert results[-1] is False
    assert state.notice["level"] == "error"
    text = state.notice["text"]
    for word in words:
        assert word in text, text
    assert "have not changed" in text
    assert "lmm-genotypes-" not in text and str(clean_tmp) not in text  # never the temporary names
    assert _snapshot(state) == before
    assert list(clean_tmp.iterdir()) == []  # the temporary directory is gone
    # and the scan still works, from the cache and anew
    assert state.refresh() is before[0]
    np.testing.assert_array_equal(state.lod_frame()["lod"], lods)
    state.loco = False
    assert state.refresh() is not None and state.genotypes is before[1]


def test_upload_above_the_limit_is_refused_with_the_limit(state, monkeypatch):
    state.refresh()
    before = _snapshot(state)
    monkeypatch.setenv("LMM_EXPLORER_MAX_UPLOAD_MB", "1")
    assert not state.receive_genotype_upload("dosages", "big.csv", b"x" * (2**20 + 1))
    assert "big.csv" in state.notice["text"] and "1 MB" in state.notice["text"]
    assert _snapshot(state) == before and state.pending == {}


def test_uploaded_dosages_give_lmmcores_scan(state, explorer, example, files, clean_tmp):
    explorer.phenotype = "qtl_chr2"
    state.refresh()
    example_entry = state.entry
    assert not state.receive_genotype_upload("map", "my_map.csv", (example / "map.csv").read_bytes())
    assert state.notice["level"] == "info" and "genotype probabilities or dosage" in state.notice["text"]
    assert state.pending == {"map": "my_map.csv"}
    assert state.receive_genotype_upload("dosages", "my_dosages.csv", (example / "genotypes.csv").read_bytes())
    assert state.genotype_source == UPLOADED and state.genotypes.kind == "dosage"
    assert "my_dosages.csv" in state.genotype_label and "my_map.csv" in state.genotype_label
    assert state.entry is not example_entry and state.entry.key.phenotype == "qtl_chr2"
    theirs = engine_scan(example, files, "qtl_chr2", "dosages", kinship="loco").table
    np.testing.assert_allclose(state.lod_frame()["lod"], theirs["lod"], rtol=1e-10)
    assert list(clean_tmp.iterdir()) == []
    # the example is still one click away, from the cache
    state.genotype_source = "genoprobs"
    assert state.refresh() is example_entry


def test_uploaded_plink_files_give_lmmcores_scan(state, explorer, example, files, clean_tmp):
    explorer.phenotype = "qtl_chr2"
    for ext in ("bim", "fam"):
        assert not state.receive_genotype_upload(ext, f"cross.{ext}", (example / f"example.{ext}").read_bytes())
    assert state.receive_genotype_upload("bed", "cross.bed", (example / "example.bed").read_bytes()), state.notice
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LMMWarning)
        theirs = scan(read_plink(example / "example"), files["pheno"][["qtl_chr2"]], files["covar"], kinship="loco")
    np.testing.assert_allclose(state.lod_frame()["lod"], theirs.table["lod"], rtol=1e-10)
    assert list(clean_tmp.iterdir()) == []


def test_async_upload_and_scan_run_off_the_loop_and_clear_busy(state, explorer, example):
    seen = []
    state.param.watch(lambda e: seen.append(e.new), "busy")
    explorer.phenotype = "qtl_chr2"

    async def go():
        first = await state.arefresh()
        again = await asyncio.gather(state.arefresh(), state.arefresh())
        await state.areceive_genotype_upload("map", "m.csv", (example / "map.csv").read_bytes())
        ok = await state.areceive_genotype_upload("dosages", "d.csv", (example / "genotypes.csv").read_bytes())
        return first, again, ok

    first, again, ok = asyncio.run(go())
    assert again == [first, first] and ok
    assert seen == [True, False, True, False] and state.busy is False
    assert state.genotype_source == UPLOADED and state.entry.job.genotypes is state.genotypes


def test_sessions_do_not_share_results_or_uploads(example):
    a, b = (ScanState(explorer=ExplorerState.with_example(example), example_dir=example) for _ in range(2))
    a.loco = False
    a.explorer.phenotype = "qtl_chr2"
    a.refresh()
    b.refresh()
    assert a.entry.key.loco is False and b.entry.key.loco is True
    assert b.entry.key.phenotype == b.explorer.phenotype != "qtl_chr2"
    assert b.cached(a.entry.key) is None
    assert a.receive_genotype_upload("map", "m.csv", (example / "map.csv").read_bytes()) is False
    assert a.receive_genotype_upload("dosages", "d.csv", (example / "genotypes.csv").read_bytes())
    assert a.genotype_source == UPLOADED and b.genotype_source == "genoprobs" and b.pending == {}
    assert UPLOADED not in b.param.genotype_source.objects


def test_no_data_or_no_example_genotypes_gives_no_scan_and_says_why(tmp_path, example):
    empty = ScanState()
    assert empty.refresh() is None and empty.entry is None and empty.effect_data() is None
    assert empty.top_peaks().empty and empty.lod_frame().empty
    for name in ("pheno.csv", "kinship.csv", "covar.csv"):
        (tmp_path / name).write_bytes((example / name).read_bytes())
    ex = ExplorerState.with_example(tmp_path)
    s = ScanState(explorer=ex, example_dir=tmp_path)
    assert s.refresh() is None
    assert s.notice["level"] == "warning" and "upload" in s.notice["text"]
    serial = s.notice["serial"]
    s.refresh()
    assert s.notice["serial"] == serial  # said once


def test_new_phenotype_data_invalidate_earlier_scans(state, explorer, example):
    state.refresh()
    old = state.entry
    pheno = pd.read_csv(example / "pheno.csv", index_col=0)
    kin = (example / "kinship.csv").read_bytes()
    table = pheno.iloc[:200, [6]].rename(columns=lambda c: "trait")
    assert not explorer.receive_upload("kinship", "k.csv", kin)
    assert explorer.receive_upload("phenotypes", "p.csv", table.to_csv().encode()), explorer.notice
    assert state.cached(old.key) is None
    entry = state.refresh()
    assert entry.key.phenotype == "trait" and entry.result.n_individuals == 200


# ---------------------------------------------------------------- the view


@pytest.fixture
def app(example):
    pn = pytest.importorskip("panel")
    import holoviews as hv

    from app.explorer import PANEL_EXTENSIONS, TAB_NAMES, ExplorerApp

    pn.extension(*PANEL_EXTENSIONS, notifications=True)
    hv.extension("bokeh", logo=False)
    application = ExplorerApp.with_example(example)
    application.scan_tab = TAB_NAMES.index("Genome scan")
    return application


def test_scan_tab_scans_only_when_opened_and_follows_the_sidebar(app, monkeypatch):
    import panel as pn

    pn.panel(app).get_root()
    app.state.phenotype = "qtl_chr2"
    assert app.scan_state.entry is None, "no scan before the tab is opened"
    app.tabs.active = app.scan_tab
    assert app.scan_state.entry is not None and app.scan_state.entry.key.phenotype == "qtl_chr2"
    app.state.phenotype = "h2_80"
    assert app.scan_state.entry.key.phenotype == "h2_80"
    app.tabs.active = 0
    app.state.phenotype = "h2_20"
    assert app.scan_state.entry.key.phenotype == "h2_80"
    app.tabs.active = app.scan_tab
    assert app.scan_state.entry.key.phenotype == "h2_20"


def test_scan_view_renders_before_any_scan(app):
    """Regression: an empty genome axis (no scan yet) gave HoloViews an empty tick list and the first render failed."""
    import holoviews as hv
    import panel as pn

    view = app.scan
    for entry in (None, app.scan_state.refresh()):  # empty, then the first scan updates it in place
        assert hv.renderer("bokeh").get_plot(view._lod_plot(entry)) is not None
        assert hv.renderer("bokeh").get_plot(view._effect_plot(entry, None)) is not None
    app.scan_state.param.update(entry=None, selected_marker=None)
    assert pn.panel(view).get_root() is not None
    app.scan_state.refresh()
    figure = list(view._lod._plots.values())[0][0].state
    assert figure.xaxis[0].major_label_overrides == {x: name for x, name in app.scan_state.layout().ticks()}


def test_scan_view_shows_peaks_click_effects_and_downloads(app):
    import panel as pn

    pn.panel(app).get_root()
    app.state.phenotype = "qtl_chr2"
    app.tabs.active = app.scan_tab
    view, s = app.scan, app.scan_state
    assert view._peaks.value["marker"].iloc[0] == "D2M18"
    frame = s.lod_frame()
    target = frame[frame["marker"] == "D4M08"].iloc[0]
    view._tapped(x=float(target["x"]), y=float(target["lod"]))
    assert s.selected_marker == "D4M08"
    html = view._effects_html(s.entry, s.selected_marker)
    assert "D4M08" in html and f"{s.effect_data().lod:.3f}" in html and "AB − AA" in html
    download = pd.read_csv(io.BytesIO(view._scan_csv().getvalue()))
    np.testing.assert_allclose(download["lod"], s.result.table["lod"])
    assert view._download.filename == "lmm_scan_qtl_chr2_loco_reml.csv"
    s.n_perm = 20
    assert "threshold" in view._info_text(s.entry, False, s.genotype_label)
    assert s.threshold() is not None and view._peaks_frame(s.entry)["p"].iloc[0] == "< 0.05"
    s.param.update(entry=None, selected_marker=None)
    # regression: the empty table shown before the first scan made "p" a number column, so "< 0.05" showed as NaN
    assert view._peaks_frame(None).empty and view._peaks_frame(None)["p"].dtype == object


def test_scan_widgets_and_state_are_per_session(example):
    import panel as pn

    from app.explorer import ExplorerApp
    from app.views import ScanView

    assert not any(isinstance(v, pn.viewable.Viewable) for v in vars(ScanView).values())
    a, b = ExplorerApp.with_example(example), ExplorerApp.with_example(example)
    assert a.scan_state is not b.scan_state and a.scan_state.explorer is a.state
    assert a.scan.file_input("map") is not b.scan.file_input("map")
    a.scan_state.loco = False
    assert b.scan_state.loco is True


def test_a_marker_without_genotypes_is_flagged_and_its_effect_plot_says_so(state, explorer, files):
    import holoviews as hv

    from app.views.scan_plots import effect_plot

    dosages = files["dosages"].copy()
    dosages["D3M07"] = np.nan
    explorer.phenotype = "qtl_chr2"
    assert not state.receive_genotype_upload("map", "m.csv", bytes_of(files["map"], False))
    assert state.receive_genotype_upload("dosages", "d.csv", bytes_of(dosages)), state.notice
    assert any("D3M07" in text for text in state.genotype_messages)  # the reader's warning, with the user's file name
    assert all("d.csv" in text for text in state.genotype_messages)
    row = state.result.table.set_index("marker").loc["D3M07"]
    assert row["flag"] == "all_missing" and np.isnan(row["lod"])
    assert "D3M07" not in set(state.top_peaks()["marker"])
    assert state.select_marker("D3M07")
    effect = state.effect_data()
    assert effect.groups.empty and effect.flag == "all_missing"
    hv.extension("bokeh", logo=False)
    plot = effect_plot(effect)
    assert "all_missing" in plot.get(3).text  # the message layer
    assert hv.renderer("bokeh").get_plot(plot) is not None


# ---------------------------------------------------------------- the exact scan beside the fixed-h2 one


def dense_max_ml(K, y, X) -> tuple[float, float]:
    """max over h of the dense ML log-likelihood (scipy's bounded Brent on [0, 0.999], and h = 0): (h, L)."""
    res = optimize.minimize_scalar(lambda h: -ml_loglik(K, y, X, h), bounds=(0.0, 0.999), method="bounded",
                                   options={"xatol": 1e-10})
    return max([(float(res.x), -float(res.fun)), (0.0, ml_loglik(K, y, X, 0.0))], key=lambda c: c[1])


def test_exact_scan_overlay_equals_lmmcore_and_a_dense_likelihood_ratio(state, explorer, example, files):
    explorer.phenotype = "qtl_chr2"
    state.loco = False
    state.refresh()
    assert np.isnan(state.lod_frame()["lod_exact"]).all()  # fixed h2 only: nothing to overlay
    state.exact = True
    assert state.refresh() is not None and state.entry.key.refit
    shown = state.lod_frame().set_index("marker")
    theirs = engine_scan(example, files, "qtl_chr2", kinship="overall", refit=True).table.set_index("marker")
    np.testing.assert_allclose(shown["lod_exact"], theirs["lod_lrt"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(shown["lod"], theirs["lod"], rtol=1e-10, atol=1e-12)  # the fixed-h2 curve stays
    y = files["pheno"]["qtl_chr2"].to_numpy(dtype=float)
    X0 = design(files)
    K = qtl2_kinship(files)
    _, L0 = dense_max_ml(K, y, X0)
    for marker in ("D2M18", "D4M08"):
        X1 = np.column_stack([X0, marker_probs(files, marker)[:, 1:]])
        h1, L1 = dense_max_ml(K, y, X1)
        assert shown.loc[marker, "lod_exact"] == pytest.approx((L1 - L0) / np.log(10.0), abs=1e-6)
        assert shown.loc[marker, "h2_exact"] == pytest.approx(h1, abs=1e-4)
        e = state.effect_data(marker)
        assert e.lod_exact == pytest.approx(shown.loc[marker, "lod_exact"]) and e.h2_exact == shown.loc[marker, "h2_exact"]
    state.exact = False  # back to the fixed-h2 scan: from the cache
    assert state.refresh() is not None and not state.entry.key.refit


def test_exact_scan_is_drawn_and_tabled_in_the_view(app):
    import panel as pn

    pn.panel(app).get_root()
    app.state.phenotype = "qtl_chr2"
    app.tabs.active = app.scan_tab
    view, s = app.scan, app.scan_state
    s.exact = True
    s.refresh()
    assert s.entry.key.refit
    overlay = view._lod_plot(s.entry, s.selected_marker)
    curves = [layer for layer in overlay if type(layer).__name__ == "Curve"]
    drawn = {c.label: c.dframe().dropna() for c in curves}
    frame = s.lod_frame()
    np.testing.assert_allclose(np.sort(drawn["LOD, h² re-estimated"]["lod"].to_numpy()),
                               np.sort(frame["lod_exact"].dropna().to_numpy()))
    html = view._effects_html(s.entry, s.selected_marker)
    assert "LOD, exact" in html and f"{s.effect_data().lod_exact:.3f}" in html


# ---------------------------------------------------------------- issue 14: a scan that cannot run says why, in the tab


def _foreign_data(example) -> tuple[bytes, bytes]:
    """The example's phenotypes and kinship with other IDs (as recla's files are to the example genotypes)."""
    pheno = pd.read_csv(example / "pheno.csv", index_col=0)
    kin = pd.read_csv(example / "kinship.csv", index_col=0)
    rename = {i: f"Mouse{k}" for k, i in enumerate(pheno.index)}
    return (pheno.rename(index=rename).to_csv().encode(),
            kin.rename(index=rename, columns=rename).to_csv().encode())


def test_scan_that_cannot_run_says_why_and_what_to_do_not_scanning_forever(state, explorer, example):
    """Regression: phenotypes whose IDs are not the genotypes' left the tab on "Scanning …" with only a toast."""
    pheno, kin = _foreign_data(example)
    assert not explorer.receive_upload("kinship", "recla_kinship.csv", kin)
    assert explorer.receive_upload("phenotypes", "recla_pheno.csv", pheno), explorer.notice
    assert state.refresh() is None
    assert state.entry is None and state.busy is False
    problem = state.problem
    for words in ("cannot run", "0 individuals in common", "Mouse0", "ind001", "recla_pheno.csv",
                  "Your own genotypes", "map CSV", "PLINK"):
        assert words in problem, (words, problem)
    # new data: the old problem no longer applies, at once (before any scan)
    assert explorer.load_example(example)
    assert state.problem == ""
    assert state.refresh() is not None and state.problem == ""


def test_an_engine_refusal_is_the_tabs_problem_with_what_to_do(state, explorer, monkeypatch):
    import app.scan_state as scan_state_module
    from lmmcore import LMMInputError

    def refuse(job):
        raise LMMInputError("phenotype 'x' has too few individuals with genotypes")

    monkeypatch.setattr(scan_state_module, "run_scan", refuse)
    assert state.refresh() is None
    assert "too few individuals with genotypes" in state.problem and "Your own genotypes" in state.problem
    monkeypatch.undo()
    assert state.refresh() is not None and state.problem == ""


def test_scan_tab_shows_the_problem_and_disables_the_download_until_there_is_a_scan(app, example):
    import panel as pn

    pn.panel(app).get_root()
    view, s = app.scan, app.scan_state
    assert view._download.disabled, "no scan yet: nothing to download"
    pheno, kin = _foreign_data(example)
    app.state.receive_upload("kinship", "k.csv", kin)
    app.state.receive_upload("phenotypes", "p.csv", pheno)
    app.tabs.active = app.scan_tab
    assert s.entry is None and s.problem
    assert view._problem.visible and view._problem.object == s.problem
    assert view._download.disabled
    overlay = view._lod_plot(None, None, s.problem)
    texts = [layer.text for layer in overlay if type(layer).__name__ == "Text"]
    assert any("cannot run" in t for t in texts), texts
    assert "see the note above" in view._info_text(None, False, s.genotype_label, s.problem)
    app.state.load_example(example)
    assert not view._problem.visible
    app.tabs.active = 0
    app.tabs.active = app.scan_tab
    assert s.entry is not None and not view._download.disabled


# ---------------------------------------------------------------- issue 14: the genotypes' kinship for the fits; transforms


def test_kinship_computed_from_the_genotypes_becomes_the_fits_kinship(state, explorer, files):
    assert state.use_genotype_kinship(), explorer.notice
    data = explorer.dataset
    assert "kinship of" in explorer.source_label
    ids = list(data.ids)
    by_hand = qtl2_kinship(files)  # R/qtl2's calc_kinship, computed here from the genotype file
    order = files["probs"].index.astype(str).get_indexer(ids)
    np.testing.assert_allclose(data.kinship, by_hand[np.ix_(order, order)], rtol=1e-10, atol=1e-12)
    # and the fit is the dense REML optimum with that kinship
    explorer.phenotype = "h2_60"
    y = files["pheno"].loc[ids, "h2_60"].to_numpy(dtype=float)
    sex = files["covar"].loc[ids, "sex"]
    X = np.column_stack([np.ones(len(ids)), (sex == "m").to_numpy(dtype=float)])
    assert explorer.fit.h2 == pytest.approx(dense_reml_h2(data.kinship, y, X), abs=1e-4)


def test_scan_uses_the_transformed_phenotype(state, explorer, example, files):
    from scipy.stats import norm, rankdata

    explorer.phenotype = "qtl_chr2"
    explorer.transform = "rint"
    state.loco = False
    entry = state.refresh()
    assert entry.key.transform == "rint"
    v = files["pheno"]["qtl_chr2"]
    z = pd.DataFrame({"qtl_chr2": norm.ppf((rankdata(v) - 0.375) / (len(v) + 0.25))}, index=v.index)
    genotypes = read_genoprobs(example / "genoprobs.csv", example / "map.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LMMWarning)
        theirs = scan(genotypes, z, files["covar"], kinship="overall")
    np.testing.assert_allclose(state.lod_frame()["lod"], theirs.table["lod"], rtol=1e-10)

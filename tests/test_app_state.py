"""The dashboard's state and views without a browser.

Results are compared with direct calls of :mod:`lmmcore` on the same files, so
the dashboard cannot drift from the engine.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmmcore
import lmmcore.batch
from browser_util import example_dir

from app.data import display_name, parse_upload
from app.state import ExplorerState

pn = pytest.importorskip("panel")


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    return example_dir(tmp_path_factory.mktemp("assets"))


@pytest.fixture
def state(example) -> ExplorerState:
    s = ExplorerState()
    assert s.load_example(example), s.notice
    return s


@pytest.fixture(scope="module")
def files(example) -> dict[str, bytes]:
    return {
        "phenotypes": (example / "pheno.csv").read_bytes(),
        "kinship": (example / "kinship.csv").read_bytes(),
        "covariates": (example / "covar.csv").read_bytes(),
    }


def engine_fits(example: Path, method: str, covariates: bool = True) -> dict[str, lmmcore.FitResult]:
    data = lmmcore.load_data(example / "kinship.csv", example / "pheno.csv",
                             example / "covar.csv" if covariates else None)
    return {f.phenotype: f for f in lmmcore.fit_phenotypes(data, method=method)}


# ---------------------------------------------------------------- loading


def test_example_loads_with_what_was_loaded(state, example):
    info = state.data_summary()
    expected = pd.read_csv(example / "pheno.csv", index_col=0)
    assert info["n"] == state.dataset.n == expected.shape[0]
    assert list(info["phenotypes"]) == list(expected.columns)
    assert info["phenotypes"] == {c: int(expected[c].notna().sum()) for c in expected.columns}
    assert info["covariates"] == ["sex"]
    assert info["n_dropped"] == 0
    assert state.phenotype == expected.columns[0]
    assert state.use_covariates is True
    assert state.fit is not None and state.fit.phenotype == state.phenotype


def test_missing_example_leaves_an_empty_state_and_says_so(tmp_path):
    s = ExplorerState()
    assert not s.load_example(tmp_path)
    assert s.dataset is None
    assert s.notice["level"] == "warning"
    assert "upload" in s.notice["text"]
    assert s.fit is None and s.brent_frame() is None and s.probe() is None


# ---------------------------------------------------------------- results equal lmmcore's


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_results_equal_lmmcore(state, example, method):
    state.method = method
    ours = state.fits()
    theirs = engine_fits(example, method)
    assert list(ours) == list(theirs)
    for name, fit in theirs.items():
        assert ours[name].h2 == pytest.approx(fit.h2, abs=1e-9)
        assert ours[name].loglik == pytest.approx(fit.loglik, rel=1e-12)
        assert ours[name].h2_ci_low == pytest.approx(fit.h2_ci_low, abs=1e-9)
        np.testing.assert_allclose(ours[name].beta, fit.beta, rtol=1e-9)


def test_without_covariates_equals_lmmcore_without_covariate_file(state, example):
    state.use_covariates = False
    theirs = engine_fits(example, "reml", covariates=False)
    for name, fit in state.fits().items():
        assert fit.coef_names == ("intercept",)
        assert fit.h2 == pytest.approx(theirs[name].h2, abs=1e-9)
        assert fit.loglik == pytest.approx(theirs[name].loglik, rel=1e-12)


def test_profile_curve_is_lmmcore_profile_table(state, example):
    data = lmmcore.load_data(example / "kinship.csv", example / "pheno.csv", example / "covar.csv")
    h2 = np.linspace(0, 1, 201)
    table = lmmcore.profile_table(data, [state.phenotype], h2, method="reml")
    np.testing.assert_allclose(state.profile()["loglik"], table["loglik"], rtol=1e-12)
    # and the fitted maximum sits on top of the curve
    finite = state.profile()["loglik"].replace(-np.inf, np.nan).max()
    assert state.fit.loglik >= finite - 1e-9


# ---------------------------------------------------------------- switching


def test_switching_method_and_phenotype_reuses_the_eigendecomposition(state, monkeypatch):
    calls = []
    original = lmmcore.batch.decompose_kinship

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(lmmcore.batch, "decompose_kinship", counting)
    reml = state.fit
    state.method = "ml"
    assert state.fit.method == "ml" and state.fit.phenotype == reml.phenotype
    for name in state.phenotypes:
        state.phenotype = name
        state.profile()
        state.rotation()
        state.probe(0.3)
    state.method = "reml"
    state.use_covariates = False
    state.fits()
    assert calls == [], "switching must not decompose the kinship again"


def test_switching_resets_the_brent_player(state):
    state.step = 3
    state.method = "ml"
    assert state.step == 0
    state.step = 2
    state.phenotype = state.phenotypes[1]
    assert state.step == 0


# ---------------------------------------------------------------- uploads


def _snapshot(s: ExplorerState):
    return (s.dataset, s.source_label, s.phenotype, s.method, s.fit.h2, list(s.phenotypes))


@pytest.mark.parametrize(
    "kind, content, words",
    [
        ("kinship", b"id,a,b\nx,1,0\n", ["kinship", "bad.csv", "square"]),
        ("kinship", b"", ["empty"]),
        ("phenotypes", b"id,t1\nind001,1.5\nind002,oops\n", ["bad.csv", "t1", "ind002", "oops"]),
        ("phenotypes", b"\x00\x01\x02binary", ["not a text file"]),
        ("covariates", b"id,sex\nind001,f\nind001,m\n", ["ind001", "more than once"]),
    ],
)
def test_bad_upload_keeps_the_previous_state(state, kind, content, words):
    before = _snapshot(state)
    assert state.receive_upload(kind, "bad.csv", content) is False
    assert _snapshot(state) == before
    assert state.notice["level"] == "error"
    for word in words:
        assert word in state.notice["text"]
    assert "lmm-upload-" not in state.notice["text"]  # never the temporary file's name
    # and the data still work
    assert state.fits()[state.phenotype].h2 == before[4]


def test_upload_set_that_does_not_align_keeps_the_previous_state(state, files):
    before = _snapshot(state)
    foreign = b"id,t\n" + b"".join(f"other{i},{i * 0.5}\n".encode() for i in range(10))
    assert state.receive_upload("phenotypes", "foreign.csv", foreign) is False
    assert state.notice["level"] == "info" and "kinship" in state.notice["text"]
    assert state.receive_upload("kinship", "kin.csv", files["kinship"]) is False
    assert state.notice["level"] == "error"
    assert "no individual ID appears in every file" in state.notice["text"]
    assert _snapshot(state) == before


def test_uploading_the_example_files_gives_lmmcore_results(example, files):
    s = ExplorerState()
    assert s.receive_upload("covariates", "my_covar.csv", files["covariates"]) is False
    assert s.pending == {"covariates": "my_covar.csv"}
    assert s.receive_upload("kinship", "my_kinship.csv", files["kinship"]) is False
    assert s.receive_upload("phenotypes", "my_pheno.csv", files["phenotypes"]) is True
    assert "my_pheno.csv" in s.source_label
    assert s.dataset.sources["phenotypes"] == "my_pheno.csv"
    theirs = engine_fits(example, "reml")
    for name, fit in s.fits().items():
        assert fit.h2 == pytest.approx(theirs[name].h2, abs=1e-9)
        assert fit.loglik == pytest.approx(theirs[name].loglik, rel=1e-12)


def test_async_upload_runs_off_the_loop_and_clears_busy(files):
    s = ExplorerState()
    seen = []
    s.param.watch(lambda e: seen.append(e.new), "busy")

    async def go():
        assert not await s.areceive_upload("kinship", "k.csv", files["kinship"])
        assert await s.areceive_upload("phenotypes", "p.csv", files["phenotypes"])
        assert not await s.areceive_upload("covariates", "c.csv", b"id,sex\n")

    asyncio.run(go())
    assert seen == [True, False, True, False, True, False]
    assert s.dataset is not None and s.busy is False
    assert s.notice["level"] == "error"


def test_files_arriving_together_install_the_complete_set(files):
    """Regression: kinship and covariates uploaded at once must not leave the set without covariates."""
    s = ExplorerState()

    async def go():
        await s.areceive_upload("phenotypes", "p.csv", files["phenotypes"])
        await asyncio.gather(
            s.areceive_upload("kinship", "k.csv", files["kinship"]),
            s.areceive_upload("covariates", "c.csv", files["covariates"]),
        )

    asyncio.run(go())
    assert s.dataset is not None and s.dataset.covariates is not None
    assert "c.csv" in s.source_label and s.busy is False


def test_file_names_from_the_browser_are_made_harmless():
    assert display_name("../../etc/passwd") == "passwd"
    assert display_name("C:\\Users\\me\\pheno.csv") == "pheno.csv"
    assert display_name("a\x00b\nc.csv") == "abc.csv"
    assert len(display_name("x" * 500 + ".csv")) <= 80
    table, _ = parse_upload("phenotypes", "../../evil.csv", b"id,t\na,1\nb,2\nc,3\n")
    assert list(table.columns) == ["t"]


def test_semicolon_file_warns_with_the_users_file_name():
    table, messages = parse_upload("phenotypes", "semi.csv", b"id;t\na;1\nb;2\nc;4\n")
    assert table["t"].tolist() == [1.0, 2.0, 4.0]
    assert messages and "semi.csv" in messages[0]


# ---------------------------------------------------------------- Brent frames and the walkthrough


def test_brent_frames_replay_the_engine_trace_in_order(state):
    fit = state.fit
    trace = fit.trace
    brent = [i for i, s in enumerate(trace.step) if s != "grid"]
    assert state.n_frames == 1 + len(brent)
    first = state.brent_frame(0)
    assert first.current is None and first.table.empty
    np.testing.assert_array_equal(first.grid_h2, trace.h2[: len(trace) - len(brent)])
    for k in range(1, state.n_frames):
        frame = state.brent_frame(k)
        assert len(frame.table) == k
        assert frame.current["h2"] == trace.h2[brent[k - 1]]
        assert frame.current["step"] == trace.step[brent[k - 1]]
        assert frame.table.iloc[0]["#"] == k  # newest first
        lo, hi = frame.current["bracket_low"], frame.current["bracket_high"]
        assert lo <= frame.current["h2"] <= hi or frame.current["step"] != "start"
    last = state.brent_frame(state.n_frames - 1)
    assert last.is_last and last.final_h2 == fit.h2


def test_probe_uses_lmmcore_weights_wls_and_likelihood(state):
    rotation = state.rotation()
    h = 0.37
    probe = state.probe(h)
    d = rotation.rot.d
    np.testing.assert_allclose(probe.weights, 1.0 / (h * d + 1.0 - h), rtol=1e-12)
    sol = lmmcore.solve_wls(rotation.rot, [h], "reml")
    np.testing.assert_allclose(probe.beta, sol.beta[0, 0], rtol=1e-12)
    curve = state.profile(h2=[h])
    assert probe.loglik == pytest.approx(float(curve["loglik"].iloc[0]), rel=1e-12)
    # the rotation is y* = U'y with the eigenvectors of the kinship
    np.testing.assert_allclose(rotation.rot.y[:, 0], rotation.eig.vectors.T @ rotation.y, rtol=1e-10, atol=1e-10)


def test_probe_at_a_singular_h2_is_minus_infinity_not_an_error(state):
    if state.rotation().eig.n_zero == 0:
        pytest.skip("the example kinship is full rank")
    probe = state.probe(1.0)
    assert probe.singular and probe.loglik == -np.inf


# ---------------------------------------------------------------- views


@pytest.fixture
def app(example):
    import holoviews as hv

    from app.explorer import PANEL_EXTENSIONS, ExplorerApp

    pn.extension(*PANEL_EXTENSIONS, notifications=True)
    hv.extension("bokeh", logo=False)
    return ExplorerApp.with_example(example)


def test_every_view_renders_and_follows_the_state(app):
    root = pn.panel(app).get_root()
    assert root is not None
    for index in range(len(app.tabs)):
        app.tabs.active = index
    app.state.method = "ml"
    app.state.overlay = True
    app.state.phenotype = app.state.phenotypes[-1]
    app.state.h2_probe = 1.0
    app.tabs.active = 1
    app.state.step = app.state.n_frames - 1
    assert app.brent.player.end == app.state.n_frames - 1
    assert app.template() is not None


def test_new_data_with_other_phenotype_names_under_a_bound_select(app, files):
    """Regression: the phenotype Select reset the phenotype to a new name while the old data were in place."""
    pn.panel(app).get_root()
    table = pd.read_csv(io.BytesIO(files["phenotypes"]), index_col=0).iloc[:, [2]].rename(columns=lambda c: "trait")
    assert app.state.receive_upload("kinship", "k.csv", files["kinship"]) is False
    assert app.state.receive_upload("phenotypes", "p.csv", table.to_csv().encode()) is True, app.state.notice
    assert app.state.phenotypes == ["trait"] and app.state.phenotype == "trait"
    assert app.state.fit.phenotype == "trait"


def test_widgets_are_per_instance(example):
    from app import views
    from app.explorer import ExplorerApp

    for cls in (views.DataPanel, views.ModelControls, views.BrentView, views.WalkthroughView, views.ResultsView):
        assert not any(isinstance(v, pn.viewable.Viewable) for v in vars(cls).values()), cls
    a, b = ExplorerApp.with_example(example), ExplorerApp.with_example(example)
    assert a.brent.player is not b.brent.player
    assert a.data_panel.file_input("kinship") is not b.data_panel.file_input("kinship")
    a.state.method = "ml"
    assert b.state.method == "reml"


def test_downloads_neutralise_spreadsheet_formulas(app):
    from app.views.results import csv_bytes

    text = csv_bytes(pd.DataFrame({"phenotype": ["=HYPERLINK(\"x\")", "+1", "ok"], "h2": [0.1, 0.2, 0.3]}))
    rows = pd.read_csv(io.BytesIO(text.getvalue()))
    assert rows["phenotype"].tolist() == ["'=HYPERLINK(\"x\")", "'+1", "ok"]
    all_results = pd.read_csv(app.all_phenotypes._all_csv())
    assert all_results["phenotype"].tolist() == app.state.phenotypes
    np.testing.assert_allclose(all_results["h2"], [app.state.fits()[p].h2 for p in app.state.phenotypes])


def test_results_table_shows_h2_and_the_test_of_h2_zero(app):
    html = app.results._html(app.state.dataset, app.state.phenotype, app.state.method, True)
    fit = app.state.fit
    assert f"{fit.h2:.4f}" in html and f"{fit.lrt_h2_zero:.4f}" in html
    assert "sigma2_g" in html and "beta: sex[m]" in html


# --------------------------------------------------------------------------- #
# Messages of jobs running at the same time in different threads
# --------------------------------------------------------------------------- #
def test_messages_of_concurrent_jobs_reach_only_their_own_session():
    """Each thread collects only the messages the engine reported in it, even when many jobs overlap.

    The channel is :func:`lmmcore.errors.reporting` (a ContextVar), so no
    module-wide state is swapped: each of 8 threads reports its own numbered
    messages while the others do the same, all inside their blocks at once.
    """
    import threading

    from app.messages import collect_messages
    from lmmcore import LMMWarning
    from lmmcore.errors import report

    n_threads, per_thread = 8, 200
    barrier = threading.Barrier(n_threads)
    results: dict[int, list[str]] = {}

    def job(k: int) -> None:
        with collect_messages() as received:
            barrier.wait()
            for i in range(per_thread):
                report(f"session {k} message {i}")
            barrier.wait()
        results[k] = list(received)

    threads = [threading.Thread(target=job, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(n_threads):
        assert results[k] == [f"session {k} message {i}" for i in range(per_thread)]
    # outside any collecting block the message is an LMMWarning, as it always was
    with pytest.warns(LMMWarning, match="outside"):
        report("outside")


def test_engine_warnings_not_yet_converted_reach_only_their_own_session():
    """The transitional bridge (engine modules still issuing LMMWarning) keeps each job's messages to itself."""
    import threading
    import warnings as _warnings

    from app.messages import engine_messages
    from lmmcore import LMMWarning
    from lmmcore.errors import report

    n_threads, per_thread = 8, 50
    results: dict[int, list[str]] = {}
    start = threading.Barrier(n_threads)

    def job(k: int) -> None:
        start.wait()
        with engine_messages({f"/tmp/secret{k}": f"file{k}.csv"}) as received:
            for i in range(per_thread):
                _warnings.warn(f"/tmp/secret{k}: warned {i}", LMMWarning)
                report(f"session {k} reported {i}")
        results[k] = list(received)

    threads = [threading.Thread(target=job, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(n_threads):
        assert sorted(results[k]) == sorted([f"file{k}.csv: warned {i}" for i in range(per_thread)]
                                            + [f"session {k} reported {i}" for i in range(per_thread)])

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


def _no_temporary_files(monkeypatch) -> None:
    """Make every way of creating a temporary file fail the test."""
    import tempfile

    def refuse(*_args, **_kwargs):
        raise AssertionError("an upload wrote a temporary file")

    for name in ("mkstemp", "mkdtemp", "NamedTemporaryFile", "TemporaryFile", "TemporaryDirectory"):
        monkeypatch.setattr(tempfile, name, refuse)


def test_csv_uploads_are_read_from_memory_with_the_users_file_name(example, files, monkeypatch):
    """Regression: uploads went through a temporary file whose name the messages then had to hide."""
    _no_temporary_files(monkeypatch)
    s = ExplorerState()
    assert s.receive_upload("covariates", "my_covar.csv", files["covariates"]) is False
    assert s.receive_upload("kinship", "my_kinship.csv", files["kinship"]) is False
    assert s.receive_upload("phenotypes", "my_pheno.csv", files["phenotypes"]) is True, s.notice
    theirs = engine_fits(example, "reml")
    assert {n: f.h2 for n, f in s.fits().items()} == {n: theirs[n].h2 for n in s.fits()}
    bad = files["phenotypes"].replace(b"\n", b"\nind_x,oops\n", 1)  # a short row with a word in it
    assert s.receive_upload("phenotypes", "../folder/bad pheno.csv", bad) is False
    assert "'bad pheno.csv'" in s.notice["text"], s.notice


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


def test_walkthrough_and_profile_share_the_engines_per_pattern_rotation(state):
    """The walkthrough's rotation is :func:`lmmcore.prepare_pattern`'s, kept in the session's PatternCache,
    and the profile curve rotates nothing again."""
    for kinship_scale in ("as-is", "diag"):
        state.kinship_scale = kinship_scale
        rotation = state.rotation()
        data = state.model_data()
        fresh = lmmcore.prepare_pattern(data, state.phenotype, kinship_scale=kinship_scale)  # no cache
        np.testing.assert_array_equal(rotation.rot.y, fresh.rot.y)
        np.testing.assert_array_equal(rotation.rot.X, fresh.rot.X)
        np.testing.assert_array_equal(rotation.rot.d, fresh.rot.d)
        np.testing.assert_array_equal(rotation.eig.values, fresh.rot.d)  # the eigenvalues of the scaled kinship
        observed = data.phenotypes[state.phenotype].notna().to_numpy()
        assert rotation.ids == tuple(np.asarray(data.ids)[observed])
        np.testing.assert_array_equal(rotation.y, data.phenotypes[state.phenotype].to_numpy()[observed])
        n_rotations = len(state._cache.rotations)
        state.profile()
        assert len(state._cache.rotations) == n_rotations
        again = lmmcore.prepare_pattern(data, state.phenotype, kinship_scale=kinship_scale, cache=state._cache)
        assert again.rot is rotation.rot


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


# --------------------------------------------------------------------------- #
# Issue 14: the model description is the fitted design
# --------------------------------------------------------------------------- #
def _upload_with_covariates(files, covariates: pd.DataFrame) -> ExplorerState:
    s = ExplorerState()
    assert not s.receive_upload("kinship", "k.csv", files["kinship"])
    assert not s.receive_upload("covariates", "c.csv", covariates.to_csv().encode())
    assert s.receive_upload("phenotypes", "p.csv", files["phenotypes"]), s.notice
    return s


def test_model_description_with_the_files_own_intercept_column_names_it_once(files):
    """Regression: a covariate file with its own intercept column (R/qtl2, lmmlite) showed "intercept + intercept, sex"."""
    from app.views.controls import ModelControls

    covar = pd.read_csv(io.BytesIO(files["covariates"]), index_col=0)
    covar.insert(0, "intercept", 1.0)
    s = _upload_with_covariates(files, covar)
    model = s.model_description()
    # by hand: the file's column of ones is the intercept, sex (f, m) is one indicator for m
    assert model.terms == ("intercept", "sex[m]") == s.fit.coef_names
    assert model.formula == "X = intercept + sex[m]"
    assert "intercept + intercept" not in model.text and not model.dropped
    text = ModelControls(state=s)._covariate_text(s.dataset, True, s.phenotype)
    assert "X = intercept + sex[m]." in text and "intercept + intercept" not in text
    s.use_covariates = False
    assert s.model_description().formula == "X = intercept only (covariates not used)"


def test_model_description_lists_indicators_fitted_and_columns_dropped_with_the_reason(files):
    covar = pd.read_csv(io.BytesIO(files["covariates"]), index_col=0)
    rng = np.random.default_rng(3)
    batch = rng.choice(["A", "B", "C"], size=len(covar))
    covar["batch"] = batch
    covar["dose"] = rng.normal(size=len(covar))
    covar["dose2"] = 2.0 * covar["dose"] + (batch == "B")  # a linear combination of dose and batch[B]
    covar["site"] = "lab1"  # one level only
    s = _upload_with_covariates(files, covar)
    model = s.model_description()
    assert model.terms == ("intercept", "sex[m]", "batch[B]", "batch[C]", "dose") == s.fit.coef_names
    dropped = dict(model.dropped)
    assert set(dropped) == {"dose2", "site"}
    assert "batch[B]" in dropped["dose2"] and "dose" in dropped["dose2"] and "collinear" in dropped["dose2"]
    assert "lab1" in dropped["site"]
    assert model.formula == "X = intercept + sex[m] + batch[B] + batch[C] + dose"
    # the fit is the one of the design described: its coefficients are those of GLS on these columns, built here
    from dense import gls

    fit = s.fit
    X = np.column_stack([np.ones(len(covar)), covar["sex"].eq("m"), batch == "B", batch == "C", covar["dose"]])
    y = pd.read_csv(io.BytesIO(files["phenotypes"]), index_col=0)[fit.phenotype].to_numpy()
    K = s.dataset.kinship
    np.testing.assert_allclose(fit.beta, gls(K, y, X.astype(float), fit.h2)[0], rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------- #
# Issue 14: notifications
# --------------------------------------------------------------------------- #
def test_dropped_by_alignment_warning_is_said_once_not_on_every_later_upload(files):
    s = ExplorerState()
    notices = []
    s.param.watch(lambda e: notices.append(e.new), "notice")
    pheno = pd.read_csv(io.BytesIO(files["phenotypes"]), index_col=0).iloc[:200]
    assert not s.receive_upload("kinship", "k.csv", files["kinship"])
    assert s.receive_upload("phenotypes", "p.csv", pheno.to_csv().encode())
    dropped = [n for n in notices if n["level"] == "warning" and "dropped by ID alignment" in n["text"]]
    assert len(dropped) == 1 and "100 in the kinship file 'k.csv' but not in" in dropped[0]["text"]
    assert dropped[0]["clear"], "new data clear the earlier notifications"
    assert any("dropped by ID alignment" in m for m in s.messages)  # listed under Data
    notices.clear()
    assert s.receive_upload("covariates", "c.csv", files["covariates"])  # the set is aligned again
    assert s.dataset.covariates is not None
    assert not any("dropped by ID alignment" in (n["text"] or "") for n in notices), notices
    assert any("dropped by ID alignment" in m for m in s.messages)  # still listed


def test_several_messages_of_one_action_make_one_notice(files):
    """Regression: every message of an upload was its own toast, and the stack covered the summary."""
    s = ExplorerState()
    notices = []
    pheno = pd.read_csv(io.BytesIO(files["phenotypes"]), index_col=0).iloc[:200].copy()
    pheno["flat"] = 1.0  # a constant phenotype: a second message
    assert not s.receive_upload("kinship", "k.csv", files["kinship"])
    s.param.watch(lambda e: notices.append(e.new), "notice")
    assert s.receive_upload("phenotypes", "p.csv", pheno.to_csv().encode())
    warnings_sent = [n for n in notices if n["level"] == "warning"]
    assert len(warnings_sent) == 1
    assert "dropped by ID alignment" in warnings_sent[0]["text"] and "'flat' is constant" in warnings_sent[0]["text"]


def test_new_data_clear_the_old_toasts(app, monkeypatch):
    """Regression: an old (scan) error stayed on screen after new data were loaded."""
    shown: list[tuple[str, str]] = []

    class Toasts:  # stands in for the page's NotificationArea (there is none outside a server session)
        def clear(self):
            shown.append(("clear", ""))

        def __getattr__(self, level):
            return lambda text, duration=0: shown.append((level, text))

    monkeypatch.setattr(type(pn.state), "notifications", property(lambda self: Toasts()))
    app.scan_state.notify("error", "the genome scan of 'x' failed")
    assert shown == [("error", "the genome scan of &#x27;x&#x27; failed")]
    assert app.state.load_example(app.scan_state.example_dir)
    assert shown[-1] == ("clear", ""), shown  # cleared, and no empty toast
    assert app.state.notice["clear"] is True


def test_errors_stay_until_closed_and_information_goes(app, monkeypatch):
    """Regression: every notification went after a while (an error after 15 s, maybe unread) and lay over the
    controls on the right; now errors stay until closed (Panel's duration 0) and information goes in 3 s."""
    from app.explorer import NOTIFICATION_MS

    shown: list[tuple[str, int]] = []

    class Toasts:  # stands in for the page's NotificationArea (there is none outside a server session)
        def clear(self):
            pass

        def __getattr__(self, level):
            return lambda text, duration=None: shown.append((level, duration))

    monkeypatch.setattr(type(pn.state), "notifications", property(lambda self: Toasts()))
    app.scan_state.notify("error", "the genotype file 'g.csv' could not be used")
    app.state.notify("warning", "2 notes about the data")
    app.state.notify("info", "example data loaded")
    assert shown == [("error", 0), ("warning", NOTIFICATION_MS["warning"]), ("info", NOTIFICATION_MS["info"])]
    assert 0 < NOTIFICATION_MS["info"] <= 3000 and NOTIFICATION_MS["warning"] > NOTIFICATION_MS["info"]


# --------------------------------------------------------------------------- #
# Issue 14: what a geneticist expects
# --------------------------------------------------------------------------- #
def test_kinship_scale_changes_h2_as_the_rescaling_formula_says_and_not_the_likelihood(state):
    """With K' = c K the same model has h2' = h2 / (h2 + c (1 - h2)); the maximum of the likelihood is the same."""
    as_is = {p: f for p, f in state.fits().items()}
    state.kinship_scale = "2"
    scaled = state.fits()
    for name, fit in as_is.items():
        c = 2.0
        expected = fit.h2 / (fit.h2 + c * (1.0 - fit.h2))
        assert scaled[name].h2 == pytest.approx(expected, abs=2e-4), name
        assert scaled[name].loglik == pytest.approx(fit.loglik, abs=1e-5)
        assert scaled[name].kinship_scale == 2.0
    # diag and Gower: the factor computed here from K, by hand
    K = state.dataset.kinship
    n = K.shape[0]
    P = np.eye(n) - 1.0 / n
    for key, factor in (("diag", n / np.trace(K)), ("gower", (n - 1) / np.trace(P @ K @ P))):
        state.kinship_scale = key
        assert state.fit.kinship_scale == pytest.approx(factor, rel=1e-12)
    assert state.rotation().rot.d.max() == pytest.approx(factor * np.linalg.eigvalsh(K).max(), rel=1e-8)


def test_boundary_note_speaks_when_many_traits_sit_at_h2_one():
    from app.transforms import boundary_note

    recla_like = [1.0] * 11 + [0.4] * 15  # recla with its kinship as given: 11 of 26 at h2 = 1
    note = boundary_note(recla_like, "as-is", "none")
    assert "11 of 26" in note and "kinship's scale" in note and "transform" in note
    assert boundary_note([1.0] + [0.4] * 25, "as-is", "none") == ""
    assert "Gower" in boundary_note(recla_like, "gower", "none")


def test_rank_inverse_normal_is_blom_with_average_ranks():
    from scipy.stats import norm

    from app.transforms import rank_inverse_normal

    x = np.array([3.0, np.nan, 1.0, 2.0, 2.0, 10.0])
    ranks = np.array([4.0, np.nan, 1.0, 2.5, 2.5, 5.0])  # by hand, ties averaged
    expected = norm.ppf((ranks - 0.375) / (5 + 0.25))
    np.testing.assert_allclose(rank_inverse_normal(x), expected, rtol=1e-12)
    assert np.isnan(rank_inverse_normal(x)[1])


@pytest.mark.parametrize("transform", ["log", "rint"])
def test_transform_is_applied_before_fitting_and_named_in_every_output(state, example, transform):
    from scipy.stats import norm, rankdata

    raw = pd.read_csv(example / "pheno.csv", index_col=0)
    state.transform = transform
    by_hand = raw.copy()
    for c in raw.columns:
        v = raw[c]
        if transform == "log":
            by_hand[c] = np.log(v) if v.min() > 0 else v
        else:
            obs = v.notna()
            by_hand.loc[obs, c] = norm.ppf((rankdata(v[obs]) - 0.375) / (obs.sum() + 0.25))
    data = lmmcore.load_data(example / "kinship.csv", example / "pheno.csv", example / "covar.csv")
    from dataclasses import replace

    theirs = {f.phenotype: f for f in lmmcore.fit_phenotypes(replace(data, phenotypes=by_hand.loc[list(data.ids)]))}
    for name, fit in state.fits().items():
        assert fit.h2 == pytest.approx(theirs[name].h2, abs=1e-9), name
        assert fit.loglik == pytest.approx(theirs[name].loglik, rel=1e-10)
    table = state.results_frame()
    label = "log" if transform == "log" else "rank-based inverse normal"
    assert dict(zip(table["phenotype"], table["transform"])) == {
        c: ("none" if transform == "log" and raw[c].min() <= 0 else label) for c in raw.columns}
    if transform == "log":
        assert "h2_80" in state.notice["text"] and "<= 0" in state.notice["text"]  # said why it is not logged
    state.phenotype = "h2_40"
    assert state.fit_row()["transform"] == label
    assert ("transform", label, "applied to the phenotype before fitting") in state.fit_rows()
    assert (state.results_side_by_side()["transform"] == table["transform"]).all()


def test_ml_and_reml_side_by_side_equal_lmmcore(state, example):
    both = state.results_side_by_side()
    reml, ml = engine_fits(example, "reml"), engine_fits(example, "ml")
    assert list(both["phenotype"]) == list(reml)
    np.testing.assert_allclose(both["h2_reml"], [reml[p].h2 for p in both["phenotype"]], atol=1e-9)
    np.testing.assert_allclose(both["h2_ml"], [ml[p].h2 for p in both["phenotype"]], atol=1e-9)
    np.testing.assert_allclose(both["loglik_ml"], [ml[p].loglik for p in both["phenotype"]], rtol=1e-12)
    assert list(both.columns[:5]) == ["phenotype", "n", "transform", "h2_reml", "h2_ml"]


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_residual_diagnostics_equal_dense_generalised_least_squares(state, method):
    """Standardised rotated residuals: their squares sum to r'V^{-1}r / v (dense GLS), i.e. n - p (REML) or n (ML)."""
    from dense import gls
    from scipy.stats import norm

    state.method = method
    state.phenotype = "h2_50_na"
    fit, d = state.fit, state.diagnostics()
    data = state.dataset
    obs = data.phenotypes[fit.phenotype].notna().to_numpy()
    K = data.kinship[np.ix_(obs, obs)]
    y = data.phenotypes[fit.phenotype].to_numpy()[obs]
    X = np.column_stack([np.ones(obs.sum()), data.covariates["sex"].to_numpy()[obs] == "m"])
    b, rss, _, _ = gls(K, y, X.astype(float), fit.h2)  # rss = r' V^{-1} r with V = h K + (1 - h) I
    quad = rss / fit.sigma2
    assert (d.residuals ** 2).sum() == pytest.approx(quad, rel=1e-8)
    assert (d.residuals ** 2).sum() == pytest.approx(fit.n - fit.p if method == "reml" else fit.n, rel=1e-6)
    assert np.linalg.norm(d.fitted) == pytest.approx(np.linalg.norm(X @ b), rel=1e-8)  # U is orthogonal
    m = d.n
    np.testing.assert_allclose(d.theoretical, norm.ppf((np.arange(1, m + 1) - 0.375) / (m + 0.25)))
    np.testing.assert_array_equal(d.ordered, np.sort(d.residuals))


def test_the_url_holds_the_view_and_reset_view_restores_the_defaults(app):
    from panel.io.location import Location

    from app.url import sync_url

    location = Location(search="?phenotype=h2_80&method=ml&tab=2&transform=rint&kinship_scale=gower")
    sync_url(location, app.state, app.scan_state, app.tabs)
    s = app.state
    assert (s.phenotype, s.method, s.transform, s.kinship_scale, app.tabs.active) == ("h2_80", "ml", "rint", "gower", 2)
    s.phenotype = "h2_20"
    app.scan_state.loco = False
    assert "phenotype=h2_20" in location.search and "loco=false" in location.search.lower()
    s.overlay = True
    resets = []
    s.param.watch(lambda e: resets.append(e.name), "view_reset")
    s.reset_view()
    assert resets == ["view_reset"]
    assert (s.method, s.transform, s.kinship_scale, s.overlay, s.phenotype) == ("reml", "none", "as-is", False, "h2_20")
    assert "method=reml" in location.search and "transform=none" in location.search


def test_options_view_and_diagnostics_view_render_and_follow_the_state(app):
    import holoviews as hv

    pn.panel(app).get_root()
    app.tabs.active = app.tabs.objects.index(app.diagnostics) if app.diagnostics in app.tabs.objects else 6
    app.state.transform = "rint"
    scatter = app.diagnostics._scatter_plot()
    assert hv.renderer("bokeh").get_plot(scatter) is not None
    assert "rank-based inverse normal" in app.diagnostics._note_html()
    assert app.options._note_text() == ""  # the example has no pile-up at h2 = 1
    assert app.compare._frame(collapsed=True).empty  # nothing fitted by ML until the card is opened
    table = app.compare._frame(collapsed=False)
    assert table["transform"].eq("rank-based inverse normal").all()
    np.testing.assert_allclose(table["h2_ml"], [app.state.fits("ml")[p].h2 for p in table["phenotype"]])

"""Traits with different missing values share one decomposition and rotation (indicator covariates).

:mod:`lmmcore.pattern_dummies` fits a trait missing on M with one indicator
covariate per missing individual, on all individuals. Checked against:

* a dense computation on the observed individuals only (``tests/dense.py``:
  ``V_OO`` formed and solved with ``np.linalg``; the REML optimum as the root
  of the dense profile's slope, bracketed on a grid of the dense restricted
  likelihood, by scipy's ``brentq``): null h2, log-likelihood, LOD, effects
  and standard errors;
* the per-pattern path (each pattern's own decomposition, forced with
  ``pattern_dummies.MODE = "never"``) on many configurations;
* which path ran, seen by the executor seam (:data:`lmmcore.scan.Executor`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

import lmmcore
from lmmcore import pattern_dummies
from lmmcore.genotypes import Genotypes
from lmmcore.kinship import compute_kinship
from lmmcore.pattern_dummies import SharedContext, shared_patterns
from lmmcore.scan import scan
from lmmcore.scan_sink import MaxSink, PeaksSink
from lmmcore.scan_tasks import serial_executor, thread_executor
from lmmcore.simulate import genotype_probabilities, simulate_genotype_dosages

from dense import gls, reml_loglik

DATA = Path(__file__).parent / "data"


# --------------------------------------------------------------------------- #
# Data and helpers
# --------------------------------------------------------------------------- #
def _probs(n: int, m: int, seed: int, n_chr: int = 3) -> Genotypes:
    g = simulate_genotype_dosages(n, m, n_chr=n_chr, seed=seed)
    probs = genotype_probabilities(np.rint(g.dosage).astype(int), error=0.05)
    return Genotypes(ids=g.ids, markers=g.markers, chromosome=g.chromosome, position=g.position, probs=probs,
                     genotype_names=("AA", "AB", "BB"))


def _traits(ids, n_traits: int, seed: int, missing=(0, 1, 2, 3, 5, 2)) -> pd.DataFrame:
    """Traits with a sporadic missing value or a few (eQTL-like): most traits their own pattern."""
    rng = np.random.default_rng(seed)
    n = len(ids)
    Y = pd.DataFrame(rng.normal(size=(n, n_traits)), index=list(ids), columns=[f"t{j}" for j in range(n_traits)])
    for j in range(n_traits):
        r = missing[j % len(missing)]
        if r:
            Y.iloc[rng.choice(n, r, replace=False), j] = np.nan
    return Y


class Recorder:
    """An executor (the scan's seam) that notes which kind of context each group had."""

    def __init__(self, inner=serial_executor):
        self.kinds: list[str] = []
        self.inner = inner

    def __call__(self, fn, context, genotypes, tasks):
        self.kinds.append("shared" if isinstance(context, SharedContext) else "own")
        return self.inner(fn, context, genotypes, tasks)


def _scan(monkeypatch, mode: str, *args, executor=None, **kw):
    monkeypatch.setattr(pattern_dummies, "MODE", mode)
    rec = executor or Recorder()
    res = scan(*args, executor=rec, report=lambda _m: None, **kw)
    return res, rec.kinds


def _same_scan(a, b, tol: float = 1e-10, effects_tol: float = 1e-8) -> None:
    """Two scans have the same rows, columns, counts and flags, and the same numbers to ``tol``."""
    ta, tb = a.table, b.table
    assert list(ta.columns) == list(tb.columns)
    assert len(ta) == len(tb)
    for col in ("phenotype", "marker", "chr", "n", "df", "flag"):
        assert ta[col].tolist() == tb[col].tolist(), col
    np.testing.assert_allclose(tb["lod"], ta["lod"], rtol=0, atol=tol)
    np.testing.assert_allclose(tb["h2"], ta["h2"], rtol=0, atol=tol)
    for col in [c for c in ta.columns if c.startswith(("beta_", "se_"))]:
        np.testing.assert_allclose(tb[col], ta[col], rtol=effects_tol, atol=effects_tol)
    na, nb = a.null, b.null
    assert list(na.columns) == list(nb.columns)
    for col in ("phenotype", "chr", "n", "method"):
        assert na[col].tolist() == nb[col].tolist(), col
    np.testing.assert_allclose(nb["h2"], na["h2"], rtol=0, atol=tol)
    np.testing.assert_allclose(nb["loglik"], na["loglik"], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(nb["sigma2"], na["sigma2"], rtol=1e-9)


def _dense_reml_h2(K, y, X) -> float:
    """REML h2 on dense matrices: a grid of the restricted likelihood, then the root of its slope (brentq).

    The slope of the profile (sigma2 maximised) is
    ``-1/2 [tr(P (K - I)) - (n - p) y'P(K - I)Py / y'Py]`` with
    ``P = V^-1 - V^-1 X (X'V^-1 X)^-1 X'V^-1``.
    """
    n, p = X.shape

    def slope(h):
        V = h * K + (1 - h) * np.eye(n)
        Vi = np.linalg.inv(V)
        ViX = Vi @ X
        P = Vi - ViX @ np.linalg.solve(X.T @ ViX, ViX.T)
        Py = P @ y
        D = K - np.eye(n)
        return -0.5 * (np.trace(P @ D) - (n - p) * (Py @ D @ Py) / (y @ Py))

    grid = np.linspace(0.0, 1.0, 101)[:-1]
    vals = [reml_loglik(K, y, X, h) for h in grid]
    k = int(np.argmax(vals))
    assert 0 < k < grid.size - 1, "the test wants an interior optimum"
    return optimize.brentq(slope, grid[k - 1], grid[k + 1], xtol=1e-14, rtol=1e-14)


# --------------------------------------------------------------------------- #
# 1. Against a dense computation on the observed individuals
# --------------------------------------------------------------------------- #
def test_indicator_fit_equals_dense_observed_data_fit(monkeypatch):
    n = 48
    g = _probs(n, 40, seed=11, n_chr=2)
    ids = list(g.ids)
    K = compute_kinship(g).matrix
    rng = np.random.default_rng(5)
    sex = rng.integers(0, 2, n).astype(float)
    Lk = np.linalg.cholesky(K + 1e-9 * np.eye(n))
    y = 0.7 * g.probs[:, 7, 2] + 0.5 * sex + Lk @ rng.normal(size=n) + 0.8 * rng.normal(size=n)
    missing = np.array([3, 17, 30, 41])
    yo = y.copy()
    yo[missing] = np.nan
    Y = pd.DataFrame({"full": y, "miss": yo}, index=ids)
    cov = pd.DataFrame({"sex": sex}, index=ids)
    res, kinds = _scan(monkeypatch, "always", g, Y, cov, kinship=pd.DataFrame(K, index=ids, columns=ids))
    assert kinds == ["shared"]

    for name, obs in (("full", np.ones(n, bool)), ("miss", ~np.isin(np.arange(n), missing))):
        KO, yO = K[np.ix_(obs, obs)], y[obs]
        XO = np.column_stack([np.ones(obs.sum()), sex[obs]])
        null = res.null.set_index("phenotype").loc[name]
        assert null["n"] == obs.sum()
        h_dense = _dense_reml_h2(KO, yO, XO)
        assert abs(null["h2"] - h_dense) < 1e-8
        assert abs(null["loglik"] - reml_loglik(KO, yO, XO, h_dense)) < 1e-8
        _, rss_dense, _, _ = gls(KO, yO, XO, h_dense)
        assert null["sigma2"] == pytest.approx(rss_dense / (obs.sum() - 2), rel=1e-7)

        rows = res.table[res.table["phenotype"] == name].reset_index(drop=True)
        assert (rows["n"] == obs.sum()).all()
        h = float(rows["h2"].iloc[0])
        _, rss0, _, _ = gls(KO, yO, XO, h)
        checked = 0
        for j in range(len(g.markers)):
            Gj = g.probs[obs, j, 1:]
            Z = np.column_stack([XO, Gj])
            if np.linalg.matrix_rank(Z) < Z.shape[1]:
                continue
            b, rss1, V, ZtViZ = gls(KO, yO, Z, h)
            lod = 0.5 * obs.sum() * np.log10(rss0 / rss1)
            row = rows.iloc[j]
            assert row["df"] == 2 and row["flag"] == ""
            assert abs(row["lod"] - lod) < 1e-8
            s2 = rss1 / (obs.sum() - Z.shape[1])
            se = np.sqrt(np.diag(np.linalg.inv(ZtViZ)) * s2)[-2:]
            np.testing.assert_allclose(row[["beta_AB", "beta_BB"]].to_numpy(float), b[-2:], rtol=1e-7, atol=1e-9)
            np.testing.assert_allclose(row[["se_AB", "se_BB"]].to_numpy(float), se, rtol=1e-7)
            checked += 1
        assert checked > 20


# --------------------------------------------------------------------------- #
# 2. Against the per-pattern path
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def dosage_data():
    """Dosages on 3 chromosomes (their standardised kinship is singular), text covariates, 9 traits."""
    n = 70
    g = simulate_genotype_dosages(n, 240, n_chr=3, seed=2)
    ids = list(g.ids)
    rng = np.random.default_rng(3)
    Y = _traits(ids, 9, seed=4)
    Y["t0"] += 0.9 * g.dosage[:, 30]
    batch = rng.choice(["a", "b", "c"], n)
    batch[:3] = "d"  # level d only on individuals 0..2
    cov = pd.DataFrame({"batch": batch, "age": rng.uniform(0, 2, size=n)}, index=ids)
    Y.iloc[:3, 4] = np.nan  # trait t4 misses every 'd': its column is zero on its individuals and dropped
    dosage = g.dosage.copy()
    dosage[:, 50] = np.where(np.isnan(Y["t5"]), 2.0, 1.0)  # constant on t5's individuals: monomorphic there
    dosage[:, 51] = np.where(np.isnan(Y["t5"]), 0.0, cov["age"].to_numpy())  # the covariate on t5's individuals
    g = Genotypes(ids=g.ids, markers=g.markers, chromosome=g.chromosome, position=g.position, dosage=dosage)
    return g, Y, cov


@pytest.mark.parametrize("kinship", ["loco", "overall"])
def test_shared_path_matches_per_pattern_path_dosages(monkeypatch, dosage_data, kinship):
    g, Y, cov = dosage_data
    own, kinds_own = _scan(monkeypatch, "never", g, Y, cov, kinship=kinship)
    shared, kinds = _scan(monkeypatch, "always", g, Y, cov, kinship=kinship)
    assert set(kinds_own) == {"own"} and "shared" in kinds
    _same_scan(own, shared)
    flags = shared.table.set_index(["phenotype", "marker"])["flag"]
    assert flags[("t5", g.markers[50])] == "monomorphic"
    assert flags[("t5", g.markers[51])] == "collinear_with_covariates"
    assert flags[("t4", g.markers[50])] == ""


def test_shared_path_matches_per_pattern_path_probabilities_and_summaries(monkeypatch):
    n = 60
    g = _probs(n, 150, seed=7)
    Y = _traits(g.ids, 12, seed=8, missing=(0, 1, 1, 2, 4))
    Y["t3"] += 2.0 * g.probs[:, 40, 2]
    cov = pd.DataFrame({"sex": np.random.default_rng(9).choice(["f", "m"], n)}, index=list(g.ids))
    own, _ = _scan(monkeypatch, "never", g, Y, cov, kinship="loco")
    shared, kinds = _scan(monkeypatch, "always", g, Y, cov, kinship="loco")
    assert set(kinds) == {"shared"}
    _same_scan(own, shared)
    # the summaries (no effects computed) and the automatic choice
    own_max, _ = _scan(monkeypatch, "never", g, Y, cov, kinship="loco", sink=MaxSink())
    auto_max, kinds = _scan(monkeypatch, "auto", g, Y, cov, kinship="loco", sink=MaxSink())
    assert "shared" in kinds
    a, b = own_max.summary, auto_max.summary
    assert a[["phenotype", "chr", "marker"]].values.tolist() == b[["phenotype", "chr", "marker"]].values.tolist()
    np.testing.assert_allclose(b["lod"], a["lod"], rtol=0, atol=1e-10)
    own_pk, _ = _scan(monkeypatch, "never", g, Y, cov, kinship="loco", sink=PeaksSink(threshold=1.0))
    auto_pk, _ = _scan(monkeypatch, "always", g, Y, cov, kinship="loco", sink=PeaksSink(threshold=1.0))
    a, b = own_pk.summary, auto_pk.summary
    assert len(a) == len(b) > 0
    assert a[["phenotype", "chr"]].values.tolist() == b[["phenotype", "chr"]].values.tolist()
    np.testing.assert_allclose(b["lod"], a["lod"], rtol=0, atol=1e-10)


def test_shared_path_small_memory_budget_and_threads(monkeypatch):
    """Trait blocks that cut patterns, chunks, a thread executor: the same tests."""
    n = 50
    g = _probs(n, 90, seed=12, n_chr=2)
    Y = _traits(g.ids, 10, seed=13)
    own, _ = _scan(monkeypatch, "never", g, Y, kinship="overall")
    small, kinds = _scan(monkeypatch, "always", g, Y, kinship="overall", memory=60_000, chunk=7)
    assert kinds == ["shared"]
    _same_scan(own, small)
    threaded, _ = _scan(monkeypatch, "always", g, Y, kinship="overall", chunk=20,
                        executor=Recorder(thread_executor(2)))
    _same_scan(own, threaded)


def test_x_chromosome_with_x_chr(monkeypatch):
    cross = lmmcore.read_cross(DATA / "cross" / "iron_subset.zip")
    pr = lmmcore.genoprob(cross)
    from lmmcore.xchr import x_covariates

    pheno = cross.pheno.copy()
    rng = np.random.default_rng(1)
    for j, col in enumerate(pheno.columns):
        pheno.iloc[rng.choice(len(pheno), j + 1, replace=False), j] = np.nan
    sex = pd.DataFrame({"sex": (cross.covar["sex"] == "m").astype(float).to_numpy()},
                       index=cross.covar.index.astype(str))
    kw = dict(kinship="loco", x_chr=["X"], xcovar=x_covariates(cross))
    own, _ = _scan(monkeypatch, "never", pr, pheno, sex, **kw)
    shared, kinds = _scan(monkeypatch, "always", pr, pheno, sex, **kw)
    assert "shared" in kinds
    _same_scan(own, shared)


def test_trait_at_h2_one_is_scanned_on_its_own(monkeypatch):
    """A trait whose REML h2 is 1 leaves the shared group (the limit at h = 1 is the pattern's own)."""
    n = 40
    g = simulate_genotype_dosages(n, 120, n_chr=2, seed=21)
    ids = list(g.ids)
    K = compute_kinship(g, report=lambda _m: None).matrix
    d, U = np.linalg.eigh(K)  # K is singular (standardised dosages)
    assert d[0] < 1e-10 * d[-1]
    rng = np.random.default_rng(0)
    y_genetic = U[:, -3:] @ (np.sqrt(d[-3:]) * rng.normal(size=3))  # along K's top eigenvectors: h2 = 1
    Y = pd.DataFrame({"g": y_genetic, "e": rng.normal(size=n)}, index=ids)
    Y.iloc[[2, 9], 0] = np.nan
    Y.iloc[[2, 9], 1] = np.nan  # both traits share a pattern
    Y["c"] = rng.normal(size=n)
    kin = pd.DataFrame(K, index=ids, columns=ids)
    own, _ = _scan(monkeypatch, "never", g, Y, kinship=kin)
    assert own.null.set_index("phenotype").loc["g", "h2"] == 1.0
    shared, kinds = _scan(monkeypatch, "always", g, Y, kinship=kin)
    assert kinds == ["shared", "own"]
    _same_scan(own, shared)


# --------------------------------------------------------------------------- #
# 3. What falls back to the per-pattern path
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("option", [dict(refit=True), dict(method="ml"), dict(n_perm=3, seed=1), "missing"])
def test_fallbacks_keep_the_per_pattern_path(monkeypatch, option):
    n = 40
    g = simulate_genotype_dosages(n, 60, n_chr=2, seed=31)
    Y = _traits(g.ids, 4, seed=32)
    kw = {} if option == "missing" else option
    if option == "missing":
        dosage = g.dosage.copy()
        dosage[5, 7] = np.nan
        g = Genotypes(ids=g.ids, markers=g.markers, chromosome=g.chromosome, position=g.position, dosage=dosage)
    always, kinds = _scan(monkeypatch, "always", g, Y, kinship="overall", **kw)
    never, _ = _scan(monkeypatch, "never", g, Y, kinship="overall", **kw)
    assert set(kinds) == {"own"}
    pd.testing.assert_frame_equal(always.table, never.table)
    pd.testing.assert_frame_equal(always.null, never.null)


def test_cost_model_choices():
    n, m, q = 261, 500, 7
    # 200 traits, each missing 2 animals: all shared
    assert shared_patterns(n, [n - 2] * 200, [2] * 200, [1] * 200, m, q) == list(range(200))
    # all complete: nothing to share
    assert shared_patterns(n, [n], [2], [200], m, q) == []
    # one incomplete pattern alone: its own decomposition is cheaper than the whole one
    assert shared_patterns(n, [n - 2], [2], [5], m, q) == []
    # a complete pattern and a sporadic one: shared
    assert shared_patterns(n, [n, n - 2], [2, 2], [100, 1], m, q) == [0, 1]
    # many missing, or many traits with several missing: on their own
    assert shared_patterns(n, [n, n - 100, n - 1], [2, 2, 2], [100, 1, 1], m, q) == [0, 2]
    assert shared_patterns(n, [n, n - 8, n - 1], [2, 2, 2], [100, 300, 1], m, q) == [0, 2]
    # the measurements of the module docstring: shared where it was faster, not where it was slower
    assert shared_patterns(n, [n, n - 20], [2, 2], [1, 1], m, q) == [0, 1]
    assert shared_patterns(n, [n, n - 2], [2, 2], [1, 50], m, q) == [0, 1]
    for r, P in ((5, 50), (10, 50), (20, 20), (40, 1)):
        assert shared_patterns(n, [n, n - r], [2, 2], [1, P], m, q) == []
    assert shared_patterns(n, [n, n - 2], [2, 2], [1, 1], m, q, mode="never") == []


# --------------------------------------------------------------------------- #
# 4. The shared context travels to Dask workers (pickled, scattered) and gives the in-process results
# --------------------------------------------------------------------------- #
@pytest.mark.slow
def test_shared_groups_on_a_dask_cluster_equal_the_in_process_scan(monkeypatch):
    pytest.importorskip("distributed")
    from lmmcore.distributed import DaskExecutor, TransferLog, open_cluster

    n = 50
    g = _probs(n, 60, seed=41, n_chr=2)
    Y = _traits(g.ids, 6, seed=42)
    monkeypatch.setattr(pattern_dummies, "MODE", "always")
    ref = scan(g, Y, kinship="loco", chunk=16, report=lambda _m: None)
    log = TransferLog()
    with open_cluster("local:1", timeout=60) as client:
        executor = DaskExecutor(client, log=log, timeout=120)
        rec = Recorder(executor)
        try:
            got = scan(g, Y, kinship="loco", chunk=16, executor=rec, report=lambda _m: None)
        finally:
            executor.close()
    assert set(rec.kinds) == {"shared"} and log.tasks == 4  # 2 chromosomes x 2 chunks, all patterns in each
    assert got.table.to_csv(index=False) == ref.table.to_csv(index=False)
    assert got.null.to_csv() == ref.null.to_csv()


def test_progress_counts_every_marker_scan_once(monkeypatch):
    """``progress(done, total, ...)`` ends at its total, with shared groups and traits left to their own."""
    n = 40
    g = simulate_genotype_dosages(n, 120, n_chr=2, seed=21)
    ids = list(g.ids)
    K = compute_kinship(g, report=lambda _m: None).matrix
    d, U = np.linalg.eigh(K)
    rng = np.random.default_rng(0)
    Y = pd.DataFrame({"g": U[:, -3:] @ (np.sqrt(d[-3:]) * rng.normal(size=3)), "e": rng.normal(size=n),
                      "c": rng.normal(size=n), "f": rng.normal(size=n)}, index=ids)
    Y.iloc[[2, 9], :2] = np.nan  # g (h2 = 1, left to its own) and e share a pattern
    Y.iloc[[4], 3] = np.nan
    calls = []
    monkeypatch.setattr(pattern_dummies, "MODE", "always")
    scan(g, Y, kinship=pd.DataFrame(K, index=ids, columns=ids), report=lambda _m: None, chunk=50,
         progress=lambda done, total, _d: calls.append((done, total)))
    assert calls[-1][0] == calls[-1][1] == 120 * 4  # markers x (3 patterns + g's own scan)


def test_stacked_profiles_answer_as_each_pattern_s_own():
    """Grid, values and slopes of the stacked null search are each pattern's own (different p per pattern)."""
    from lmmcore.eigen import decompose_kinship
    from lmmcore.estimate import standardise
    from lmmcore.profile_stack import StackedProfiles
    from lmmcore.profile_stats import trait_profiles

    rng = np.random.default_rng(3)
    n = 30
    A = rng.normal(size=(n, 60))
    eig = decompose_kinship(A @ A.T / 60)
    parts = []
    for r, T in ((0, 2), (1, 3), (4, 1)):
        obs = np.ones(n, bool)
        obs[rng.choice(n, r, replace=False)] = False
        X = np.column_stack([np.ones(obs.sum()), rng.normal(size=obs.sum())])
        rot = pattern_dummies.dummy_rotated(eig, rng.normal(size=(obs.sum(), T)), X, obs, 0)
        parts.append(trait_profiles(standardise(rot).rot, "reml"))
    stack = StackedProfiles(parts)
    h = np.array([0.0, 0.1, 0.5, 0.93, 1.0])
    own = np.hstack([part.grid(h) for part in parts])
    np.testing.assert_allclose(stack.grid(h), own, rtol=1e-11, atol=1e-11)
    cols = np.arange(stack.n_traits)
    hh = rng.uniform(0.01, 0.99, cols.size)
    owner, local = stack.owner, stack.local
    for what in ("values", "slopes"):
        mine = getattr(stack, what)(hh, cols)
        theirs = [getattr(parts[o], what)(np.array([x]), np.array([j]))[0] for x, o, j in zip(hh, owner, local)]
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-10)

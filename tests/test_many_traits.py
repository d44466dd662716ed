"""Many traits on one machine: memory-sized task blocks, streaming sinks (Parquet, --summary max|peaks).

References, each computed independently of the code under test:
* the blocked many-trait scan against ``scan`` of each trait alone (which
  tests/test_scan.py checks against dense GLS) and, for a few markers, dense
  GLS at the trait's null h2 (scipy's multivariate normal density);
* the Parquet file against the in-memory long table and the CLI's CSV;
* ``--summary max`` against a loop over phenotypes and chromosomes of the
  full table; ``--summary peaks`` against ``find_peaks`` of the full table;
* the block sizes against :func:`task_bytes` of the chosen shape, and the
  bound itself against the bytes numpy allocates (``tracemalloc``).
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from conftest import random_kinship
from dense import ml_loglik
from lmmcore.cli import main
from lmmcore.genotypes import Genotypes
from lmmcore.peaks import find_peaks
from lmmcore.scan import scan
from lmmcore.scan_sink import MaxSink, ParquetSink, PeaksSink, TeeSink, sort_long_table
from lmmcore.scan_tasks import ScanTask, task_bytes, task_shape

N, M, T = 60, 48, 9
QUIET = dict(report=lambda _m: None)


def _probs(seed=11):
    """Genotype probabilities (3 genotypes, 3 chromosomes), 9 traits with different h2 and missingness."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 3, size=(N, M))
    P = np.full((N, M, 3), 0.02)
    P[np.arange(N)[:, None], np.arange(M)[None], codes] = 0.96
    ids = tuple(f"a{k:02d}" for k in range(N))
    chrom = ("1",) * 20 + ("2",) * 16 + ("3",) * 12
    g = Genotypes(ids=ids, markers=tuple(f"m{j:02d}" for j in range(M)), chromosome=chrom,
                  position=np.concatenate([np.arange(20), np.arange(16), np.arange(12)]) * 2.5,
                  probs=P, genotype_names=("AA", "AB", "BB"))
    K = random_kinship(N, 300, seed=12)
    L = np.linalg.cholesky(K + 1e-6 * np.eye(N))
    Y = np.empty((N, T))
    for t, h2 in enumerate(np.linspace(0.0, 0.9, T)):
        Y[:, t] = np.sqrt(h2) * L @ rng.normal(size=N) + np.sqrt(1 - h2) * rng.normal(size=N)
        Y[:, t] += 0.8 * (codes[:, (5 * t) % M] == 2)
    Y[rng.random((N, T)) < np.linspace(0, 0.15, T)] = np.nan  # trait t misses about t * 2 % of the animals
    pheno = pd.DataFrame(Y, index=list(ids), columns=[f"t{t}" for t in range(T)])
    return g, pheno, pd.DataFrame(K, index=list(ids), columns=list(ids))


@pytest.fixture(scope="module")
def data():
    return _probs()


def _blocks(g, pheno, kinship, **kw):
    """The scan with a budget small enough for several trait blocks and chunks; the task shapes it used."""
    shapes = []

    def record(fn, context, genotypes, tasks):
        for task in tasks:
            shapes.append((len(task.markers), task.stop - task.start, context.n, context.p))
            yield fn(context, genotypes, task)

    budget = task_bytes(8, 3, N, 1, 2, kw.get("refit", False))
    return scan(g, pheno, kinship=kinship, executor=record, memory=budget, **QUIET, **kw), shapes, budget


@pytest.mark.slow
def test_blocked_many_trait_scan_equals_each_trait_scanned_alone(data):
    g, pheno, _ = data
    res, shapes, budget = _blocks(g, pheno, "loco", refit=True)
    assert max(s[1] for s in shapes) < T and max(s[0] for s in shapes) < 20  # trait blocks and chunks were cut
    assert all(task_bytes(m, P, n, p, 2, True) <= budget for m, P, n, p in shapes)
    cols = ["lod", "p_value", "beta_AB", "beta_BB", "se_AB", "se_BB", "h2", "lrt", "p_lrt", "h2_reml", "wald"]
    for name in pheno.columns:
        alone = scan(g, pheno[[name]], kinship="loco", refit=True, **QUIET).table
        mine = res.table[res.table["phenotype"] == name].reset_index(drop=True)
        assert list(mine["marker"]) == list(g.markers)
        assert (mine["n"] == pheno[name].notna().sum()).all()
        for c in cols:
            np.testing.assert_allclose(mine[c], alone[c], rtol=1e-9, atol=1e-11, err_msg=f"{name} {c}")


def test_blocked_scan_lod_equals_dense_gls_at_the_null_h2(data):
    g, pheno, K = data
    res, _, _ = _blocks(g, pheno, K)
    for name in ("t1", "t7"):
        obs = pheno[name].notna().to_numpy()
        y = pheno[name].to_numpy()[obs]
        Ko = K.to_numpy()[np.ix_(obs, obs)]
        X = np.ones((obs.sum(), 1))
        rows = res.table[res.table["phenotype"] == name]
        h = float(res.null.loc[res.null["phenotype"] == name, "h2"].iloc[0])
        for j in (0, 25, 47):
            G = g.probs[obs, j, 1:]
            lod = (ml_loglik(Ko, y, np.column_stack([X, G]), h) - ml_loglik(Ko, y, X, h)) / np.log(10)
            assert rows["lod"].iloc[j] == pytest.approx(lod, rel=1e-7, abs=1e-9)


@pytest.mark.slow
def test_parquet_file_round_trips_to_the_long_table(data, tmp_path):
    g, pheno, K = data
    budget = task_bytes(8, 3, N, 1, 2, True)  # several row groups' worth of pieces
    ref = scan(g, pheno, kinship="loco", refit=True, memory=budget, **QUIET).table
    with ParquetSink(tmp_path / "s.parquet") as sink:
        res = scan(g, pheno, kinship="loco", refit=True, sink=sink, memory=budget, **QUIET)
    assert res.table.empty and list(res.table.columns) == list(ref.columns)
    back = sort_long_table(pd.read_parquet(tmp_path / "s.parquet"), pheno.columns, g)
    assert_frame_equal(back, ref, check_exact=True)


def test_summary_max_is_the_largest_lod_of_each_phenotype_and_chromosome(data):
    g, pheno, K = data
    full = _blocks(g, pheno, K)[0].table  # the same blocks: the same rounding
    res, _, _ = _blocks(g, pheno, K, sink=MaxSink())
    expect = []
    for name in pheno.columns:
        for c in ("1", "2", "3"):
            rows = full[(full["phenotype"] == name) & (full["chr"] == c)]
            j = int(np.argmax(rows["lod"].to_numpy()))  # the first of ties, as R's which.max
            expect.append(rows.iloc[j][["phenotype", "chr", "pos", "marker", "lod"]])
    expect = pd.DataFrame(expect).reset_index(drop=True)
    # the summary computes LODs without effects (a Cholesky factor instead of an inverse): equal to rounding
    assert_frame_equal(res.summary, expect.astype({"pos": float, "lod": float}), check_exact=False, rtol=1e-10,
                       check_dtype=False)
    assert res.table.empty


@pytest.mark.parametrize("kinship", ["loco", "overall"])
def test_summary_peaks_equal_find_peaks_of_the_full_table(data, kinship):
    g, pheno, _ = data
    options = dict(threshold=1.0, peakdrop=1.0, drop=0.7)
    full = _blocks(g, pheno, kinship)[0].table
    expect = find_peaks(full, **options)
    assert len(expect) > T  # several peaks per trait: the comparison means something
    res, _, _ = _blocks(g, pheno, kinship, sink=PeaksSink(**options))
    assert_frame_equal(res.summary, expect, check_exact=False, rtol=1e-10)


def test_lod_without_effects_equals_the_lod_with_them_incl_a_rank_deficient_marker(data):
    g, pheno, K = data
    P = g.probs.copy()
    P[:, 3, 2] = 0.0  # genotype BB absent at marker 3: one column dropped (rank 1)
    P[:, 3, :2] /= P[:, 3, :2].sum(axis=1, keepdims=True)
    P[:, 4] = P[0, 4]  # marker 4 the same for everyone: no column left
    g2 = Genotypes(ids=g.ids, markers=g.markers, chromosome=g.chromosome, position=g.position, probs=P,
                   genotype_names=g.genotype_names)
    full = scan(g2, pheno, kinship=K, **QUIET).table
    best = scan(g2, pheno, kinship=K, sink=MaxSink(), **QUIET).summary
    contexts = []

    def keep(fn, context, genotypes, tasks):
        contexts.append((fn, context))  # scan_task, or the shared task of patterns with indicators
        return [fn(context, genotypes, t) for t in tasks]

    scan(g2, pheno, kinship=K, executor=keep, **QUIET)
    for fn, context in contexts:
        task = ScanTask(0, np.arange(M), 0, context.n_traits)
        pieces = fn(context, g2, task).piece.pieces
        pieces_lod = fn(__import__("dataclasses").replace(context, effects=False), g2, task).piece.pieces
        for with_fx, lod_only in zip([p.fixed for p in pieces], [p.fixed for p in pieces_lod]):
            assert lod_only.beta is None and lod_only.se is None
            np.testing.assert_allclose(lod_only.lod, with_fx.lod, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(lod_only.p_value, with_fx.p_value, rtol=1e-9, atol=1e-14)
            assert np.isnan(lod_only.lod[4]).all() and np.isfinite(lod_only.lod[3]).all()
    assert (full["df"].iloc[:M].to_numpy()[3:5] == [1, 0]).all()
    assert len(best) == T * 3


def test_task_shape_stays_within_small_budgets():
    n, p, q = 500, 2, 7
    for budget in (1 << 20, 5 << 20, 50 << 20, 1 << 30):
        for refit in (False, True):
            m, P = task_shape(10_000, 5_000, 2_000, budget, n, p, q, refit)
            assert 1 <= m <= 2_000 and 1 <= P <= 5_000
            if task_bytes(1, 1, n, p, q, refit) <= budget:
                assert task_bytes(m, P, n, p, q, refit) <= budget
                # as large as allowed: one more marker does not fit, or the chunk is at its limit
                assert m == 2_000 or task_bytes(m + 1, P, n, p, q, refit) > budget
    assert task_shape(100, 7, 50, 1 << 40, n, p, q) == (50, 7)  # a large budget changes nothing


@pytest.mark.parametrize("effects", [True, False])
def test_task_bytes_bounds_what_numpy_allocates(data, effects):
    g, pheno, K = data
    contexts = []

    def keep(fn, context, genotypes, tasks):
        contexts.append((fn, context))  # scan_task, or the shared task of patterns with indicators
        return [fn(context, genotypes, t) for t in tasks]

    scan(g, pheno, kinship=K, executor=keep, **QUIET)
    fn, context = max(contexts, key=lambda fc: fc[1].n_traits)
    context = __import__("dataclasses").replace(context, effects=effects)
    task = ScanTask(0, np.arange(M), 0, context.n_traits)
    fn(context, g, task)  # warm up (imports, caches)
    tracemalloc.start()
    try:
        fn(context, g, task)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    bound = task_bytes(M, context.n_traits, context.n, context.p, 2)
    assert peak <= bound, (peak, bound)


def _cli(tmp_path, capsys, data, *extra):
    g, pheno, K = data
    if not (tmp_path / "probs.csv").exists():
        cols = [f"{mk}:{gn}" for mk in g.markers for gn in g.genotype_names]
        pd.DataFrame(g.probs.reshape(N, -1), index=pd.Index(g.ids, name="id"), columns=cols).to_csv(
            tmp_path / "probs.csv")
        pd.DataFrame({"marker": g.markers, "chr": g.chromosome, "pos": g.position}).to_csv(tmp_path / "map.csv",
                                                                                           index=False)
        pheno.rename_axis("id").to_csv(tmp_path / "pheno.csv")
    code = main(["scan", "--genoprobs", str(tmp_path / "probs.csv"), "--map", str(tmp_path / "map.csv"),
                 "--pheno", str(tmp_path / "pheno.csv"), "--kinship", "loco", "--quiet", *map(str, extra)])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


@pytest.mark.slow
def test_cli_parquet_csv_and_summaries_agree(data, tmp_path, capsys):
    g, pheno, _ = data
    _cli(tmp_path, capsys, data, "--out", tmp_path / "s.csv")
    _cli(tmp_path, capsys, data, "--out", tmp_path / "s.parquet", "--memory", "1M",
         "--peaks-out", tmp_path / "p.csv", "--threshold", 1.5)
    csv = pd.read_csv(tmp_path / "s.csv", keep_default_na=False, na_values=[""],
                      dtype={"chr": str, "flag": str}).fillna({"flag": ""})
    pq = sort_long_table(pd.read_parquet(tmp_path / "s.parquet"), pheno.columns, g)
    assert list(pq.columns) == list(csv.columns)
    assert_frame_equal(pq, csv, check_exact=False, rtol=1e-14, check_dtype=False)
    _cli(tmp_path, capsys, data, "--out", tmp_path / "t.csv", "--threads", 2, "--memory", "1M")
    threaded = pd.read_csv(tmp_path / "t.csv", keep_default_na=False, na_values=[""],
                           dtype={"chr": str, "flag": str}).fillna({"flag": ""})
    assert_frame_equal(threaded, csv, check_exact=False, rtol=1e-10)
    _cli(tmp_path, capsys, data, "--out", tmp_path / "max.csv", "--summary", "max")
    mx = pd.read_csv(tmp_path / "max.csv", dtype={"chr": str})
    assert len(mx) == T * 3 and list(mx.columns) == ["phenotype", "chr", "pos", "marker", "lod"]
    np.testing.assert_allclose(mx["lod"], csv.groupby(["phenotype", "chr"])["lod"].max().to_numpy(), rtol=1e-12)
    _cli(tmp_path, capsys, data, "--out", tmp_path / "pk.csv", "--summary", "peaks", "--threshold", 1.5)
    assert_frame_equal(pd.read_csv(tmp_path / "pk.csv"), pd.read_csv(tmp_path / "p.csv"))
    assert_frame_equal(pd.read_csv(tmp_path / "p.csv", dtype={"chr": str}),
                       find_peaks(csv, 1.5, drop=1.5).astype({"chr": str}), check_dtype=False)


def test_cli_rejects_a_bad_memory_size_and_summary_with_peaks_out(data, tmp_path, capsys):
    with pytest.raises(SystemExit) as bad:
        main(["scan", "--genoprobs", "x", "--pheno", "p", "--kinship", "loco", "--out", "o.csv", "--memory", "lots"])
    assert bad.value.code == 2
    assert "memory size" in capsys.readouterr().err
    g, pheno, _ = data
    _cli(tmp_path, capsys, data, "--out", tmp_path / "s.csv")  # writes the input files
    code = main(["scan", "--genoprobs", str(tmp_path / "probs.csv"), "--map", str(tmp_path / "map.csv"),
                 "--pheno", str(tmp_path / "pheno.csv"), "--kinship", "loco", "--quiet", "--out",
                 str(tmp_path / "m.csv"), "--summary", "max", "--peaks-out", str(tmp_path / "p2.csv")])
    assert code == 2 and "--summary" in capsys.readouterr().err


def test_tee_sink_feeds_parquet_and_peaks_the_same_pieces(data, tmp_path):
    g, pheno, _ = data
    peaks = PeaksSink(threshold=1.0)
    with ParquetSink(tmp_path / "t.parquet") as pq:
        scan(g, pheno, kinship="loco", sink=TeeSink(pq, peaks), **QUIET)
    table = pd.read_parquet(tmp_path / "t.parquet")
    assert_frame_equal(peaks.result, find_peaks(sort_long_table(table, pheno.columns, g), threshold=1.0))

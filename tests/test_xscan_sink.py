"""A scan with an X chromosome streams into its sink (:class:`lmmcore.scan_sink.PartSink`).

The autosomes' pieces reach the sink as their tasks finish and the X part's
table follows. What every sink makes of that is compared with what it makes
of the whole long table given after the fact (``sink.add_table``: the
summaries by pandas group-bys, :func:`lmmcore.peaks.find_peaks` on the whole
table, one Parquet write), and the long table itself with the two parts
scanned on their own without ``x_chr`` and merged by
:func:`lmmcore.xchr.merge_part_tables` (the autosomes with their LOCO
kinships, X with the kinship of all autosomes and the X covariates).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

import lmmcore
from lmmcore.hmm import allele_probs
from lmmcore.kinship import compute_loco_kinships
from lmmcore.markers import FLAG_RANK_DEFICIENT, marker_columns
from lmmcore.scan import scan
from lmmcore.scan_sink import MaxSink, ParquetSink, PeaksSink, TableSink, TeeSink, sort_long_table
from lmmcore.xchr import merge_part_tables, select_chromosomes, x_covariates

DATA = Path(__file__).parent / "data"
QUIET = dict(report=lambda _message: None)


def _reorder(g, order):
    """The genotypes with their chromosomes in ``order`` (markers keep their order on a chromosome)."""
    chrom = np.asarray(g.chromosome, dtype=object)
    idx = np.concatenate([np.flatnonzero(chrom == c) for c in order])
    return replace(g, markers=tuple(g.markers[k] for k in idx), chromosome=tuple(g.chromosome[k] for k in idx),
                   position=g.position[idx], probs=g.probs[:, idx])


@pytest.fixture(scope="module")
def iron():
    cross = lmmcore.read_cross(DATA / "cross" / "iron_subset.zip")
    pr = lmmcore.genoprob(cross)
    # genotype BY absent at the second X marker: its df on X is below the full df, so its
    # rank-deficient flag stays while the other X marker's (the X covariates' by design) goes
    probs, names = pr.probs.copy(), pr.genotype_names
    j = [k for k, c in enumerate(pr.chromosome) if c == "X"][1]
    probs[:, j, names.index("SY")] += probs[:, j, names.index("BY")]
    probs[:, j, names.index("BY")] = 0.0
    pr = replace(pr, probs=probs)
    rng = np.random.default_rng(11)
    pheno = cross.pheno.copy()
    for k in range(4):  # more traits, one with a missing value (a second set of individuals)
        pheno[f"t{k}"] = pheno["liver"] * rng.uniform(0.2, 1.0) + rng.normal(size=len(pheno)) * 20
    pheno.iloc[2, 3] = np.nan
    return cross, pr, pheno, x_covariates(cross)


GENOME_ORDERS = {"X last": ("1", "7", "X"), "X between": ("1", "X", "7"), "X first": ("X", "7", "1")}


def _parts_merged(g, pheno, xc, refit):
    """The long table from the autosomes and X scanned apart without ``x_chr`` and merged (today's table)."""
    loco = compute_loco_kinships(allele_probs(g))
    autos = [c for c in g.chromosomes if c != "X"]
    a = scan(select_chromosomes(g, autos), pheno, kinship={c: loco[c] for c in autos}, refit=refit, **QUIET)
    x = scan(select_chromosomes(g, ["X"]), pheno, xc, kinship={"X": loco["X"]}, refit=refit, **QUIET)
    t = x.table
    assert (t["flag"] == FLAG_RANK_DEFICIENT).all()  # every X marker: the genotypes span the X covariates
    full = t.groupby("phenotype", sort=False)["df"].transform("max")  # the X flag rule of the X scan
    t = t.assign(flag=t["flag"].where((t["flag"] != FLAG_RANK_DEFICIENT) | (t["df"] < full), ""))
    effects = tuple(e for e in marker_columns(g) if e in a.effect_names or e in x.effect_names)
    return merge_part_tables([a.table, t], g, list(pheno.columns), effects, refit)


@pytest.mark.parametrize("order", list(GENOME_ORDERS))
@pytest.mark.parametrize("refit", [False, True])
def test_streamed_long_table_equals_the_parts_scanned_apart_and_merged(iron, order, refit):
    cross, pr, pheno, xc = iron
    g = _reorder(pr, GENOME_ORDERS[order])
    ref = _parts_merged(g, pheno, xc, refit)
    res = scan(g, pheno, kinship="loco", x_chr=["X"], xcovar=xc, refit=refit, memory=1 << 20, chunk=2, **QUIET)
    assert_frame_equal(res.table, ref)
    assert list(res.table["chr"].unique()) == list(GENOME_ORDERS[order])
    x = res.table[res.table["chr"] == "X"]
    assert set(x.loc[x["flag"] != "", "marker"]) == {"DXMit186"}  # the marker without BY keeps its flag
    explicit = scan(g, pheno, kinship="loco", x_chr=["X"], xcovar=xc, refit=refit, sink=TableSink(), **QUIET)
    assert_frame_equal(explicit.table, ref)
    assert explicit.effect_names == res.effect_names and explicit.summary is None


SINKS = {
    "max": lambda tmp: MaxSink(),
    "peaks": lambda tmp: PeaksSink(threshold=0.3, drop=1.0),
    "peaks_prob": lambda tmp: PeaksSink(threshold=0.3, peakdrop=0.5, prob=0.9, expand_to_markers=True),
    "parquet": lambda tmp: ParquetSink(tmp, force=True),
    "tee": lambda tmp: TeeSink(ParquetSink(tmp, force=True), PeaksSink(threshold=0.3, drop=1.5)),
}


@pytest.mark.parametrize("order", list(GENOME_ORDERS))
@pytest.mark.parametrize("kind", list(SINKS))
def test_streamed_sink_equals_the_whole_table_given_after_the_fact(iron, tmp_path, kind, order):
    import pyarrow.parquet as pq

    cross, pr, pheno, xc = iron
    g = _reorder(pr, GENOME_ORDERS[order])
    whole = scan(g, pheno, kinship="loco", x_chr=["X"], xcovar=xc, **QUIET)
    streamed_sink = SINKS[kind](tmp_path / "streamed.parquet")
    res = scan(g, pheno, kinship="loco", x_chr=["X"], xcovar=xc, sink=streamed_sink, memory=1 << 20, chunk=2,
               **QUIET)
    ref_sink = SINKS[kind](tmp_path / "whole.parquet")
    ref_sink.start(g, whole.names, whole.effect_names, whole.refit)
    ref_sink.add_table(whole.table)
    ref = ref_sink.finish()
    for s in (streamed_sink, ref_sink):
        for part in getattr(s, "sinks", (s,)):
            if isinstance(part, ParquetSink):
                part.close(True)
    assert res.effect_names == whole.effect_names
    assert_frame_equal(res.null, whole.null)
    if kind in ("parquet", "tee"):
        assert res.summary is None and res.table.empty and list(res.table.columns) == list(whole.table.columns)
        got = pd.read_parquet(tmp_path / "streamed.parquet")
        assert pq.read_schema(tmp_path / "streamed.parquet").equals(pq.read_schema(tmp_path / "whole.parquet"),
                                                                   check_metadata=True)
        assert_frame_equal(pd.read_parquet(tmp_path / "whole.parquet"), whole.table)
        assert_frame_equal(sort_long_table(got, whole.names, g), whole.table)
        # the autosomes' rows first (as computed), then X's
        is_x = (got["chr"] == "X").to_numpy()
        assert not is_x[: np.count_nonzero(~is_x)].any()
        assert_frame_equal(sort_long_table(got[is_x], whole.names, g),
                           whole.table[whole.table["chr"] == "X"].reset_index(drop=True))
        if kind == "tee":
            assert_frame_equal(streamed_sink.sinks[1].result, ref_sink.sinks[1].result)
    else:
        assert res.table.empty and list(res.table.columns) == list(whole.table.columns)
        assert len(res.summary) > 0
        assert_frame_equal(res.summary, ref)
    assert streamed_sink.stats.rows == ref_sink.stats.rows == len(whole.table)
    assert streamed_sink.stats.flagged == ref_sink.stats.flagged
    assert streamed_sink.stats.best_lod == ref_sink.stats.best_lod


def test_streamed_max_of_the_exact_scan_and_permutations_equal_the_whole_table(iron):
    cross, pr, pheno, xc = iron
    common = dict(kinship="loco", x_chr=["X"], xcovar=xc, refit=True, n_perm=6, seed=2, perm_x_separate=True,
                  **QUIET)
    whole = scan(pr, pheno, **common)
    res = scan(pr, pheno, sink=MaxSink("lod_lrt"), memory=1 << 20, chunk=3, **common)
    ref = MaxSink("lod_lrt")
    ref.start(pr, whole.names, whole.effect_names, True)
    ref.add_table(whole.table)
    assert_frame_equal(res.summary, ref.finish())
    for name in ("thresholds", "max_lod", "max_lod_x"):
        assert_frame_equal(getattr(res.permutations, name), getattr(whole.permutations, name))
    assert res.permutations.n_perm_x == whole.permutations.n_perm_x
    assert res.refit_exact_profiles == whole.refit_exact_profiles


class _Recorder(MaxSink):
    """A MaxSink that writes down what it is given, in order."""

    def __init__(self, events):
        super().__init__()
        self.events = events

    def add(self, piece):
        self.events.append(("add", tuple(sorted({self.genotypes.chromosome[k] for k in piece.markers}))))
        super().add(piece)

    def add_table(self, table):
        self.events.append(("table", tuple(sorted(set(table["chr"])))))
        super().add_table(table)


def test_autosome_pieces_reach_the_sink_as_they_are_computed_before_the_x_part_runs(iron):
    """Streaming pinned: every autosome piece arrives through ``add`` while the autosomes are scanned."""
    cross, pr, pheno, xc = iron
    events = []
    sink = _Recorder(events)
    scan(pr, pheno, kinship="loco", x_chr=["X"], xcovar=xc, sink=sink, chunk=2, memory=1 << 20,
         progress=lambda done, total, description: events.append(("progress", description)), **QUIET)
    adds = [k for k, e in enumerate(events) if e[0] == "add" and e[1] != ("X",)]
    x_adds = [k for k, e in enumerate(events) if e == ("add", ("X",))]
    x_progress = [k for k, e in enumerate(events) if e == ("progress", "chr X")]
    chr7_progress = [k for k, e in enumerate(events) if e == ("progress", "chr 7")]
    assert len(adds) >= 4 and x_progress and chr7_progress and x_adds
    assert all(events[k][1] in (("1",), ("7",)) for k in adds)  # pieces of one autosome each
    assert max(adds) < min(x_progress)  # every autosome piece before the X part's first task
    assert min(adds) < min(chr7_progress)  # chromosome 1's pieces before chromosome 7 is scanned
    assert min(x_adds) > max(x_progress)  # X's pieces once X is done (its flags need all of them)
    assert not [e for e in events if e[0] == "table"]  # no long table is built on the way


def test_a_bad_summary_column_stops_the_x_scan_before_any_work(iron):
    cross, pr, pheno, xc = iron
    calls = []
    with pytest.raises(lmmcore.errors.LMMInputError, match="lod_lrt needs the exact scan"):
        scan(pr, pheno, kinship="loco", x_chr=["X"], xcovar=xc, sink=MaxSink("lod_lrt"),
             progress=lambda *a: calls.append(a), **QUIET)
    assert calls == []


@pytest.mark.slow
def test_do_cross_with_x_streams_into_max_and_parquet(tmp_path):
    """The DO example: 36 autosome genotypes, X with 44 (the hemizygous males' 8 added)."""
    cross = lmmcore.read_cross(DATA / "cross" / "doex_x.zip")
    pr = lmmcore.genoprob(cross)
    rng = np.random.default_rng(4)
    pheno = pd.DataFrame({f"t{k}": rng.normal(size=len(pr.ids)) for k in range(3)}, index=list(pr.ids))
    xc = x_covariates(cross)
    whole = scan(pr, pheno, kinship="loco", x_chr=["X"], xcovar=xc, **QUIET)
    auto = whole.table[whole.table["chr"] != "X"]
    assert auto[[c for c in auto.columns if c.startswith("beta_") and c.endswith("Y")]].isna().all().all()
    with ParquetSink(tmp_path / "s.parquet") as sink:
        scan(pr, pheno, kinship="loco", x_chr=["X"], xcovar=xc, sink=sink, **QUIET)
    assert_frame_equal(sort_long_table(pd.read_parquet(tmp_path / "s.parquet"), whole.names, pr), whole.table)
    res = scan(pr, pheno, kinship="loco", x_chr=["X"], xcovar=xc, sink=MaxSink(), **QUIET)
    ref = MaxSink()
    ref.start(pr, whole.names, whole.effect_names, False)
    ref.add_table(whole.table)
    assert_frame_equal(res.summary, ref.finish())


def test_cli_cross_with_x_parquet_and_summaries_agree_with_the_csv(iron, tmp_path, capsys):
    """``lmmcore scan --cross``: the Parquet rows are the CSV's, the summaries those of the CSV's table."""
    from lmmcore.cli import main
    from lmmcore.peaks import find_peaks
    from lmmcore.scan_sink import max_by_chromosome

    cross, pr, pheno, _ = iron
    pheno.rename_axis("id").to_csv(tmp_path / "ph.csv")
    common = ["scan", "--cross", str(DATA / "cross" / "iron_subset.zip"), "--pheno", str(tmp_path / "ph.csv"),
              "--kinship", "loco", "--quiet"]
    for out, extra in (("s.csv", []), ("s.parquet", ["--memory", "1M", "--chunk", "2"]),
                       ("max.csv", ["--summary", "max"]), ("pk.csv", ["--summary", "peaks", "--threshold", "0.3"])):
        assert main([*common, "--out", str(tmp_path / out), *extra]) == 0, capsys.readouterr().err
    csv = pd.read_csv(tmp_path / "s.csv", keep_default_na=False, na_values=[""],
                      dtype={"chr": str, "flag": str}).fillna({"flag": ""})
    assert list(csv["chr"].unique()) == ["1", "7", "X"]
    parquet = sort_long_table(pd.read_parquet(tmp_path / "s.parquet"), list(pheno.columns), pr)
    assert list(parquet.columns) == list(csv.columns)
    assert_frame_equal(parquet, csv, check_exact=False, rtol=1e-14, check_dtype=False)
    mx = pd.read_csv(tmp_path / "max.csv", dtype={"chr": str})
    assert_frame_equal(mx, max_by_chromosome(csv), check_exact=False, rtol=1e-14, check_dtype=False)
    pk = pd.read_csv(tmp_path / "pk.csv", dtype={"chr": str})
    assert len(pk) > 0
    assert_frame_equal(pk, find_peaks(csv, 0.3, drop=1.5).astype({"chr": str}), check_exact=False, rtol=1e-14,
                       check_dtype=False)

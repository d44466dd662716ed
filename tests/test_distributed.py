"""Scans and fits on a Dask cluster: real scheduler and worker processes on localhost.

Every result is checked against the in-process run of the same call, byte
for byte (the CSV text), or, for fits in blocks, against the in-process fit
of the same blocks (byte for byte) and the whole fit (to the optimiser's
tolerance). The cluster tests start a ``LocalCluster`` of two worker
processes once for the module (``open_cluster("local:2")``), bound every
run with a timeout, and close it at the end; the worker-loss tests start
their own.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

from lmmcore.errors import LMMInputError, reporting
from lmmcore.genotypes import Genotypes, read_plink
from lmmcore.simulate import genotype_probabilities, simulate_genotype_dosages, write_plink

distributed = pytest.importorskip("distributed")

from lmmcore.batch import fit_phenotypes, results_table  # noqa: E402
from lmmcore.distributed import (  # noqa: E402
    ClusterError,
    DaskExecutor,
    TransferLog,
    open_cluster,
    parse_scheduler,
    run_tasks,
    scatter_context,
)
from lmmcore.distributed_fit import fit_phenotypes_distributed  # noqa: E402
from lmmcore.genochunks import FileChunks, MemoryChunks, chunk_digest, chunk_source  # noqa: E402
from lmmcore.io import LMMData  # noqa: E402
from lmmcore.scan import scan  # noqa: E402

TIMEOUT = 120  # seconds: no cluster run in these tests may take longer


def quiet(_message):
    return None


# --------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """80 individuals, 150 markers on 3 chromosomes (PLINK files with missing calls), 3 traits, 2 patterns."""
    folder = tmp_path_factory.mktemp("dask")
    g = simulate_genotype_dosages(80, 150, n_chr=3, seed=11)
    dosage = np.round(g.dosage)
    rng = np.random.default_rng(12)
    dosage[rng.random(dosage.shape) < 0.02] = np.nan
    prefix = folder / "geno"
    write_plink(prefix, dosage, g.ids, g.chromosome, g.position, g.markers)
    with reporting(quiet):
        bed = read_plink(prefix)
    ids = list(bed.ids)
    x = rng.normal(size=80)
    y = pd.DataFrame({"a": 0.5 * np.nan_to_num(bed.dosage[:, 10]) + rng.normal(size=80),
                      "b": x + rng.normal(size=80), "c": rng.normal(size=80)}, index=ids)
    y.loc[ids[:7], "c"] = np.nan  # a second missingness pattern
    covar = pd.DataFrame({"x": x}, index=ids)
    probs = genotype_probabilities(np.nan_to_num(bed.dosage, nan=1.0))
    memory = Genotypes(ids=bed.ids, markers=bed.markers, chromosome=bed.chromosome, position=bed.position,
                       probs=probs, genotype_names=("AA", "AB", "BB"), source="in memory")
    return dict(folder=folder, prefix=prefix, bed=bed, probs=memory, pheno=y, covar=covar)


@pytest.fixture(scope="module")
def client():
    lines = []
    with open_cluster("local:2", say=lines.append, timeout=TIMEOUT) as c:
        c.wait_for_workers(2, timeout=TIMEOUT)
        c.lines = lines
        yield c


def csv(result) -> str:
    return result.table.to_csv(index=False)


def run_both(client, genotypes, data, **kw):
    """The in-process scan and the cluster scan of the same call, and the transfer log."""
    ref = scan(genotypes, data["pheno"], data["covar"], report=quiet, **kw)
    log = TransferLog()
    executor = DaskExecutor(client, log=log, timeout=TIMEOUT)
    try:
        got = scan(genotypes, data["pheno"], data["covar"], report=quiet, executor=executor, **kw)
    finally:
        executor.close()
    return ref, got, log


# --------------------------------------------------------------------------- no cluster needed
def test_scheduler_forms():
    assert parse_scheduler("local:3") == ("local", 3)
    assert parse_scheduler("tcp://10.0.0.1:8786") == ("address", "tcp://10.0.0.1:8786")
    assert parse_scheduler("node7:8786") == ("address", "tcp://node7:8786")
    assert parse_scheduler("/scratch/me/sched.json") == ("file", "/scratch/me/sched.json")
    for bad in ("local:0", "local:x", "http://a b", ""):
        with pytest.raises(LMMInputError, match="scheduler"):
            parse_scheduler(bad)


def test_a_scheduler_that_is_not_there_is_a_clear_error(tmp_path):
    with pytest.raises(LMMInputError, match="does not exist; start the scheduler"):
        with open_cluster(str(tmp_path / "sched.json")):
            pass
    with pytest.raises(LMMInputError, match="could not connect to the Dask scheduler"):
        with open_cluster("tcp://127.0.0.1:9", timeout=2):  # nothing listens on the discard port
            pass


def test_without_distributed_the_cli_says_how_to_install(data, monkeypatch, capsys, tmp_path):
    from lmmcore.cli import main

    data["pheno"].to_csv(tmp_path / "p.csv")
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    status = main(["scan", "--bed", str(data["prefix"]), "--pheno", str(tmp_path / "p.csv"), "--kinship", "loco",
                   "--out", str(tmp_path / "s.csv"), "--scheduler", "local:1", "--quiet"])
    assert status == 2
    err = capsys.readouterr().err
    assert "pip install 'lmm-explorer[dask]'" in err and "Traceback" not in err
    assert not (tmp_path / "s.csv").exists()


def test_workers_read_plink_chunks_as_the_client_holds_them(data):
    bed = data["bed"]
    source = chunk_source(bed)
    assert isinstance(source, FileChunks) and source.format == "plink"
    assert np.any(bed.dosage != np.round(bed.dosage))  # missing calls, imputed by read_plink: so must the workers
    for mk in (np.arange(0, 7), np.array([3, 40, 41, 149]), np.arange(100, 150)):
        values = source.read(mk)
        np.testing.assert_array_equal(values, bed.dosage[:, mk])  # bit for bit, imputed means included
        assert chunk_digest(values) == chunk_digest(bed.dosage[:, mk])
    # a record of some individuals, in another order: rows mapped through the .fam
    sub = bed.select_ids(list(bed.ids[::-3]))
    np.testing.assert_array_equal(chunk_source(sub).read(np.arange(20, 30)), sub.dosage[:, 20:30])


def test_workers_read_h5_chunks_and_memory_genotypes_travel(data, tmp_path):
    from lmmcore.genostore import read_genotypes_h5, write_genotypes_h5

    path = tmp_path / "g.h5"
    write_genotypes_h5(data["probs"], path, dtype="float32")
    stored = read_genotypes_h5(path)
    source = chunk_source(stored)
    assert isinstance(source, FileChunks) and source.format == "h5"
    for mk in (np.arange(45, 60), np.array([0, 51, 52, 149])):  # within and across chromosomes
        np.testing.assert_array_equal(source.read(mk), stored.probs[:, mk])
    assert isinstance(chunk_source(data["probs"]), MemoryChunks)


def test_a_changed_record_is_caught_by_its_digest(data):
    bed = data["bed"]
    edited = Genotypes(ids=bed.ids, markers=bed.markers, chromosome=bed.chromosome, position=bed.position,
                       dosage=bed.dosage.copy(), source=bed.source)
    edited.dosage[5, 12] = 2.0 - edited.dosage[5, 12] if edited.dosage[5, 12] != 1.0 else 0.0
    source = chunk_source(edited)
    assert chunk_digest(source.read(np.arange(10, 20))) != chunk_digest(edited.dosage[:, 10:20])
    assert chunk_digest(source.read(np.arange(20, 30))) == chunk_digest(edited.dosage[:, 20:30])


# --------------------------------------------------------------------------- on a cluster
@pytest.mark.slow
def test_loco_scan_on_the_cluster_is_the_in_process_scan(client, data):
    assert any("dashboard at http" in line for line in client.lines)
    ref, got, log = run_both(client, data["bed"], data, kinship="loco", chunk=8)
    assert csv(got) == csv(ref)
    assert got.null.to_csv() == ref.null.to_csv()
    assert len(log.workers) == 2 and all(n > 0 for n in log.workers.values())  # every worker had tasks
    assert log.tasks == sum(-(-k // 8) for k in pd.Series(data["bed"].chromosome).value_counts()) * 2
    assert log.chunks_sent == 0  # the workers read the PLINK file themselves
    assert log.task_bytes < 5_000 * log.tasks  # indices and digests, not genotypes


@pytest.mark.slow
def test_exact_scan_and_permutations_on_the_cluster(client, data):
    ref, got, log = run_both(client, data["bed"], data, kinship="overall", refit=True, chunk=25)
    assert csv(got) == csv(ref)
    assert {"p_lrt", "p_wald"} <= set(got.table.columns)
    ref, got, _ = run_both(client, data["bed"], data, kinship="overall", n_perm=6, seed=3, chunk=40)
    assert csv(got) == csv(ref)
    np.testing.assert_array_equal(got.permutations.max_lod, ref.permutations.max_lod)
    assert got.permutations.thresholds.to_csv() == ref.permutations.thresholds.to_csv()


@pytest.mark.slow
def test_genotypes_in_memory_travel_with_their_tasks_and_h5_files_do_not(client, data, tmp_path):
    from lmmcore.genostore import read_genotypes_h5, write_genotypes_h5

    ref, got, log = run_both(client, data["probs"], data, kinship="loco", chunk=30)
    assert csv(got) == csv(ref)
    assert log.chunks_sent == log.tasks > 0
    assert log.task_bytes > 80 * 30 * 3 * 8  # at least one chunk of probabilities went over
    write_genotypes_h5(data["probs"], tmp_path / "g.h5")
    stored = read_genotypes_h5(tmp_path / "g.h5")
    ref, got, log = run_both(client, stored, data, kinship="overall", chunk=30)
    assert csv(got) == csv(ref)
    assert log.chunks_sent == 0 and log.tasks > 0  # the workers read the HDF5 file themselves


@pytest.mark.slow
def test_a_chunk_that_differs_from_the_file_is_sent_by_the_client(client, data):
    bed = data["bed"]
    edited = Genotypes(ids=bed.ids, markers=bed.markers, chromosome=bed.chromosome, position=bed.position,
                       dosage=bed.dosage.copy(), source=bed.source)
    edited.dosage[:, 12] = edited.dosage[::-1, 12]  # no longer the file's column
    messages = []
    ref = scan(edited, data["pheno"], data["covar"], kinship="overall", chunk=50, report=quiet)
    log = TransferLog()
    executor = DaskExecutor(client, log=log, timeout=TIMEOUT)
    try:
        got = scan(edited, data["pheno"], data["covar"], kinship="overall", chunk=50, report=messages.append,
                   executor=executor)
    finally:
        executor.close()
    assert csv(got) == csv(ref)
    assert log.chunks_sent == 2  # the chunk of marker 12, for each of the two patterns
    assert any("the client sent those chunks itself" in m for m in messages)


@pytest.mark.slow
def test_fit_of_several_traits_on_the_cluster(client, data):
    pheno = data["pheno"].assign(d=data["pheno"]["b"] * 2 + 1, e=data["pheno"]["a"] ** 2)
    from lmmcore.kinship import compute_kinship

    K = compute_kinship(data["bed"]).matrix
    lmm = LMMData(ids=data["bed"].ids, kinship=K, phenotypes=pheno, covariates=data["covar"])
    whole = fit_phenotypes(lmm, report=quiet)
    # a whole pattern per task: the in-process fit itself
    got = fit_phenotypes_distributed(client, lmm, block=100, report=quiet)
    assert results_table(got).to_csv(index=False) == results_table(whole).to_csv(index=False)
    # blocks of 2: the in-process fit in blocks of 2 byte for byte, whichever task fitted which block;
    # and each block is the fit of its phenotypes alone
    log = TransferLog()
    got = fit_phenotypes_distributed(client, lmm, block=2, log=log, report=quiet)
    expected = fit_phenotypes(lmm, block=2, report=quiet)
    assert results_table(got).to_csv(index=False) == results_table(expected).to_csv(index=False)
    same_blocks = {}
    for cols in (["a", "b"], ["d", "e"], ["c"]):  # patterns: (a, b, d, e) and (c)
        same_blocks.update({f.phenotype: f for f in fit_phenotypes(lmm, cols, report=quiet)})
    alone = [same_blocks[name] for name in pheno.columns]
    assert results_table(got).to_csv(index=False) == results_table(alone).to_csv(index=False)
    np.testing.assert_allclose([f.h2 for f in got], [f.h2 for f in whole], rtol=0, atol=1e-7)
    assert log.tasks == 3  # (a, b), (d, e) and (c); which worker ran which is the scheduler's choice


@pytest.mark.slow
def test_cli_scan_and_fit_with_a_scheduler_address(client, data, tmp_path, capsys):
    from lmmcore.cli import main

    address = client.scheduler.address
    data["pheno"].to_csv(tmp_path / "p.csv")
    data["covar"].to_csv(tmp_path / "c.csv")
    base = ["scan", "--bed", str(data["prefix"]), "--pheno", str(tmp_path / "p.csv"), "--covar",
            str(tmp_path / "c.csv"), "--kinship", "loco", "--chunk", "20"]
    assert main(base + ["--out", str(tmp_path / "in.csv"), "--quiet"]) == 0
    assert main(base + ["--out", str(tmp_path / "dk.csv"), "--scheduler", address]) == 0
    assert (tmp_path / "in.csv").read_bytes() == (tmp_path / "dk.csv").read_bytes()
    err = capsys.readouterr().err
    assert "dashboard at http" in err and "task(s) on 2 worker(s)" in err
    from lmmcore.kinship import compute_kinship
    from lmmcore.io import write_kinship_file

    write_kinship_file(compute_kinship(data["bed"]).matrix, data["bed"].ids, tmp_path / "K.csv")
    fit = ["fit", "--kinship", str(tmp_path / "K.csv"), "--pheno", str(tmp_path / "p.csv"), "--covar",
           str(tmp_path / "c.csv"), "--quiet"]
    assert main(fit + ["--out", str(tmp_path / "f_in.csv")]) == 0
    assert main(fit + ["--out", str(tmp_path / "f_dk.csv"), "--scheduler", address]) == 0
    a, b = pd.read_csv(tmp_path / "f_in.csv"), pd.read_csv(tmp_path / "f_dk.csv")
    assert list(a["phenotype"]) == list(b["phenotype"])
    np.testing.assert_allclose(a["h2"], b["h2"], rtol=0, atol=1e-7)


# --------------------------------------------------------------------------- workers that die
# (last in the module: they kill a worker of the shared cluster, whose nanny starts a new one)
class _Killer:
    """In a thread: SIGKILL the process of the first worker seen running a task (its pid in ``killed``)."""

    def __init__(self, client):
        self.client = client
        self.pids = client.run(os.getpid)
        self.killed: list[int] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            busy = [w for w, keys in self.client.processing().items() if keys and w in self.pids]
            if busy:
                os.kill(self.pids[busy[0]], signal.SIGKILL)
                self.killed.append(self.pids[busy[0]])
                return
            time.sleep(0.002)

    def join(self):
        self.thread.join(TIMEOUT)


def _slow_square(shared, i):
    time.sleep(0.3)
    return shared * i * i


@pytest.mark.slow
def test_a_worker_killed_mid_scan_is_replaced_and_the_table_is_complete(client, data):
    ref = scan(data["bed"], data["pheno"], data["covar"], kinship="overall", chunk=6, report=quiet)
    executor = DaskExecutor(client, timeout=TIMEOUT)
    killer = _Killer(client)
    try:
        got = scan(data["bed"], data["pheno"], data["covar"], kinship="overall", chunk=6, report=quiet,
                   executor=executor)
    finally:
        killer.join()
        executor.close()
    assert killer.killed  # a worker died with tasks on it ...
    assert csv(got) == csv(ref)  # ... which the scheduler ran elsewhere: every row, each as in-process


@pytest.mark.slow
def test_a_task_whose_workers_keep_dying_stops_the_run_with_a_clear_error(client):
    import cloudpickle

    client.wait_for_workers(1, timeout=TIMEOUT)
    scheduler = client.cluster.scheduler
    allowed = scheduler.allowed_failures
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    try:
        scheduler.allowed_failures = 0  # give up on a task after the first death of a worker running it
        shared = scatter_context(client, 2)
        killer = _Killer(client)
        seen = []
        with pytest.raises(ClusterError, match="could not finish: the workers that ran it died"):
            for value in run_tasks(client, _slow_square, shared, lambda i, _resend: (i,), 8, timeout=TIMEOUT):
                seen.append(value)
        killer.join()
        assert killer.killed
        assert len(seen) < 8  # stopped: not every task came back, and nothing is assembled
        assert seen == [2 * i * i for i in range(len(seen))]  # what came back came in order
    finally:
        scheduler.allowed_failures = allowed
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])

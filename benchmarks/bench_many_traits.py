"""Many traits on one machine: lmmcore's blocked fixed-h2 scan against R/qtl2, and an eQTL-sized run.

(a) recla: the fixed-h2 LOCO scan of Diversity Outbred allele probabilities
    (8 founders, 7 effect columns per marker) on the 261 recla mice
    (/work/shared/data/recla) for 520 traits (the 26 real behavioural traits
    and 19 noisy copies of each, with the real traits' missing values, 4
    missingness patterns) with sex as covariate, against R/qtl2's
    ``calc_kinship(type = "loco", cores = 2)`` + ``scan1(..., kinship = K,
    addcovar = sex, cores = 2)`` of the 26 real traits, both timed in one run
    after reading the data (R after ``library(qtl2)``). The figure of merit is
    trait x marker tests per second; the ratio is lmmcore's over R/qtl2's
    (target >= 50). The LODs of the 26 real traits are compared as a check.

    The shared data holds the recla phenotypes, covariates and kinship but
    not its genotype probabilities; unless ``--probs P.h5|P.csv --map M.csv``
    gives them (lmmcore's genotype formats), the probabilities are simulated
    for the 261 mice: ~6,000 markers on 19 autosomes, each mouse two mosaics
    of the 8 founders (a founder switch per marker interval with probability
    0.01), probabilities ``0.5 (e_h1 + e_h2)`` blurred by 2 % towards uniform.
    Both tools get exactly the same probabilities.

(b) eQTL-sized: 500 animals, 5,000 traits, 10,000 biallelic markers
    (dosages, 10 chromosomes), overall kinship, ``--summary max`` (no 5 x 10^7
    row table), run as one ``lmmcore scan`` command: wall and CPU seconds
    and peak memory (``resource.getrusage``). ``--missing K``: each trait
    misses K animals of its own (sporadic missing values, a pattern per trait).

lmmcore runs its tasks on ``--threads 2`` (two tasks at a time, one BLAS
thread each; ``--threads 0`` for one task at a time with OpenBLAS's threads).

Every part reports wall and CPU seconds (the machine may be shared), the BLAS
in use (threadpoolctl), and skips with a message what it cannot run (no
recla folder, no Rscript or R/qtl2). Run with the OpenBLAS overrides unset,
as for R::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_many_traits.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RECLA = Path("/work/shared/data/recla")
FOUNDERS = tuple("ABCDEFGH")

_R_SCAN = r"""
suppressPackageStartupMessages(library(qtl2))
dir <- commandArgs(TRUE)[1]
meta <- read.csv(file.path(dir, "chroms.csv"), colClasses = c("character", "integer"))
ids <- readLines(file.path(dir, "ids.txt")); markers <- readLines(file.path(dir, "markers.txt"))
n <- length(ids); pr <- list(); off <- 0
for (k in seq_len(nrow(meta))) {
  m <- meta$m[k]
  a <- array(readBin(file.path(dir, paste0("probs_", meta$chr[k], ".bin")), "double", n = n * 8 * m), dim = c(n, 8, m))
  dimnames(a) <- list(ids, LETTERS[1:8], markers[off + seq_len(m)]); off <- off + m
  pr[[meta$chr[k]]] <- a
}
attr(pr, "crosstype") <- "do"; attr(pr, "is_x_chr") <- setNames(rep(FALSE, nrow(meta)), meta$chr)
attr(pr, "alleles") <- LETTERS[1:8]; attr(pr, "alleleprobs") <- TRUE; class(pr) <- c("calc_genoprob", "list")
pheno <- as.matrix(read.csv(file.path(dir, "pheno_r.csv"), row.names = 1, check.names = FALSE))
sex <- as.matrix(read.csv(file.path(dir, "covar.csv"), row.names = 1))
t0 <- proc.time()
K <- calc_kinship(pr, type = "loco", cores = 2)
out <- scan1(pr, pheno, kinship = K, addcovar = sex, cores = 2)
t <- proc.time() - t0
writeBin(as.vector(out), file.path(dir, "r_lod.bin"))
cat(sprintf("%.4f %.4f %.4f\n", t[["elapsed"]], t[[1]] + t[[2]] + t[[4]] + t[[5]], nrow(out) * ncol(out)))
"""

#: lmmcore's side of (a), in a fresh process: read the prepared data, then time kinship + scan.
_OURS_A = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
import numpy as np, pandas as pd
from threadpoolctl import threadpool_info
from lmmcore.genotypes import Genotypes
from lmmcore.scan import scan
from lmmcore.scan_sink import {sink}
from lmmcore.scan_tasks import thread_executor
d = np.load(sys.argv[1], allow_pickle=True)
g = Genotypes(ids=tuple(d["ids"]), markers=tuple(d["markers"]), chromosome=tuple(d["chr"]),
              position=d["pos"], probs=d["probs"], genotype_names={founders!r})
pheno = pd.read_pickle(sys.argv[2]); covar = pd.read_pickle(sys.argv[3])
t, c = time.perf_counter(), time.process_time()
from threadpoolctl import threadpool_limits
import contextlib
with threadpool_limits(1) if {threads} else contextlib.nullcontext():  # as lmmcore scan --threads
    res = scan(g, pheno, covar, kinship="loco", sink={sink}(), report=lambda m: None,
               executor=thread_executor({threads}) if {threads} else None)
wall, cpu = time.perf_counter() - t, time.process_time() - c
out = dict(wall=wall, cpu=cpu, maxrss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           tests=len(g.markers) * pheno.shape[1], timings=res.timings,
           blas=[(i.get("internal_api"), i.get("architecture"), i.get("num_threads")) for i in threadpool_info()])
if {sink!r} == "TableSink":
    t = res.table
    real = [c for c in pheno.columns if not c.startswith("sim")]
    lod = t[t["phenotype"].isin(real)].pivot(index="marker", columns="phenotype", values="lod")
    np.save(sys.argv[4], lod.loc[list(g.markers), real].to_numpy())
print("RESULT " + json.dumps(out))
"""


def blas_info() -> str:
    from threadpoolctl import threadpool_info

    return "; ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
                     f"threads={i.get('num_threads')}" for i in threadpool_info())


def simulate_do_probs(n: int, n_markers: int, n_chr: int, seed: int) -> tuple:
    """Founder-mosaic allele probabilities (n, m, 8), marker names, chromosomes and cM positions."""
    rng = np.random.default_rng(seed)
    per = np.full(n_chr, n_markers // n_chr)
    per[: n_markers - per.sum()] += 1
    probs = np.empty((n, n_markers, 8))
    chrom, pos, start = [], [], 0
    rows = np.arange(n)
    for c, m in enumerate(per):
        haps = rng.integers(0, 8, size=(2, n))
        for j in range(m):  # data generation only: a Markov chain along the chromosome
            switch = rng.random((2, n)) < 0.01
            haps = np.where(switch, rng.integers(0, 8, size=(2, n)), haps)
            p = np.zeros((n, 8))
            np.add.at(p, (rows, haps[0]), 0.5)
            np.add.at(p, (rows, haps[1]), 0.5)
            probs[:, start + j] = 0.98 * p + 0.02 / 8
        chrom += [str(c + 1)] * m
        pos += list(np.linspace(0.0, 95.0, m))
        start += m
    markers = [f"c{ch}_m{j}" for j, ch in enumerate(chrom)]
    return probs, markers, chrom, np.asarray(pos)


def recla_traits(n_total: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """The 26 real recla traits and noisy copies (same missing values) up to ``n_total``; the sex covariate."""
    pheno = pd.read_csv(RECLA / "recla_pheno.csv", index_col=0)
    pheno.index = pheno.index.astype(str)
    covar = pd.read_csv(RECLA / "recla_covar.csv", index_col=0)[["sex"]]
    covar.index = covar.index.astype(str)
    rng = np.random.default_rng(seed)
    real = list(pheno.columns)
    cols = {c: pheno[c] for c in real}
    k = 0
    while len(cols) < n_total:
        base = pheno[real[k % len(real)]]
        cols[f"sim{k:03d}_{real[k % len(real)]}"] = base + 0.3 * base.std() * rng.normal(size=len(base))
        k += 1
    return pd.DataFrame(cols), covar, real


def _run_child(code: str, args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def part_a(args, tmp: Path) -> dict | None:
    if not (RECLA / "recla_pheno.csv").exists():
        print(f"(a) skipped: {RECLA} is absent (the recla phenotypes and covariates)")
        return None
    pheno, covar, real = recla_traits(args.traits, seed=3)
    ids = list(pheno.index)
    if args.probs:
        from lmmcore.genotypes import read_genoprobs

        g = read_genoprobs(args.probs, args.map)
        keep = [i for i in g.ids if i in set(ids)]
        probs = g.probs[pd.Index(g.ids).get_indexer(keep)]
        markers, chrom, pos = list(g.markers), list(g.chromosome), np.asarray(g.position)
        ids = keep
        source = f"probabilities from {args.probs}"
    else:
        probs, markers, chrom, pos = simulate_do_probs(len(ids), args.markers, 19, seed=7)
        source = f"simulated DO allele probabilities ({args.markers} markers, 19 autosomes)"
    pheno, covar = pheno.loc[ids], covar.loc[ids]
    np.savez(tmp / "geno.npz", ids=np.asarray(ids, dtype=object), markers=np.asarray(markers, dtype=object),
             chr=np.asarray(chrom, dtype=object), pos=pos, probs=probs)
    pheno.to_pickle(tmp / "pheno.pkl")
    covar.to_pickle(tmp / "covar.pkl")
    pheno[real].to_pickle(tmp / "pheno_real.pkl")
    print(f"(a) recla: {len(ids)} mice, {len(markers)} markers x 8 founders ({source}); "
          f"{pheno.shape[1]} traits (lmmcore), {len(real)} real traits (R/qtl2)")
    runs = {}
    if not args.no_table:
        runs["table"] = _run_child(
            _OURS_A.format(root=str(ROOT), founders=FOUNDERS, sink="TableSink", threads=args.threads),
            [str(tmp / "geno.npz"), str(tmp / "pheno.pkl"), str(tmp / "covar.pkl"), str(tmp / "lod.npy")])
    runs["summary max"] = _run_child(
        _OURS_A.format(root=str(ROOT), founders=FOUNDERS, sink="MaxSink", threads=args.threads),
        [str(tmp / "geno.npz"), str(tmp / "pheno.pkl"), str(tmp / "covar.pkl"), "-"])
    out = dict(n=len(ids), markers=len(markers), traits=pheno.shape[1], source=source,
               ours=runs.get("table"), ours_max=runs["summary max"])
    for key, res in runs.items():
        print(f"    lmmcore ({key}): {res['tests']:,} tests in {res['wall']:.2f} s wall, {res['cpu']:.2f} s CPU "
              f"-> {res['tests'] / res['wall']:,.0f} tests/s wall, {res['tests'] / res['cpu']:,.0f} per CPU s; "
              f"peak {res['maxrss_mib']:.0f} MiB")
    if args.no_r or shutil.which("Rscript") is None:
        print("    R/qtl2 skipped: " + ("--no-r" if args.no_r else "no Rscript"))
        return out
    check = subprocess.run(["Rscript", "-e", "library(qtl2)"], capture_output=True, text=True)
    if check.returncode != 0:
        print("    R/qtl2 skipped: library(qtl2) fails in Rscript")
        return out
    start = 0
    with open(tmp / "chroms.csv", "w") as fh:
        fh.write("chr,m\n")
        for c in pd.unique(pd.Series(chrom)):
            m = chrom.count(c)
            fh.write(f"{c},{m}\n")
            np.transpose(probs[:, start:start + m, :], (0, 2, 1)).ravel(order="F").astype(np.float64).tofile(
                tmp / f"probs_{c}.bin")
            start += m
    (tmp / "ids.txt").write_text("\n".join(ids) + "\n")
    (tmp / "markers.txt").write_text("\n".join(markers) + "\n")
    pheno[real].to_csv(tmp / "pheno_r.csv")
    covar.to_csv(tmp / "covar.csv")
    (tmp / "scan.R").write_text(_R_SCAN)
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    proc = subprocess.run(["Rscript", str(tmp / "scan.R"), str(tmp)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        print("    R/qtl2 failed: " + proc.stderr[-1500:])
        return out
    r_wall, r_cpu, r_tests = (float(x) for x in proc.stdout.split()[-3:])
    r_lod = np.fromfile(tmp / "r_lod.bin").reshape(len(real), len(markers)).T
    diff = float(np.nanmax(np.abs(r_lod - np.load(tmp / "lod.npy")))) if "table" in runs else float("nan")
    out.update(r_wall=r_wall, r_cpu=r_cpu, r_tests=r_tests, lod_max_abs_diff=diff)
    print(f"    R/qtl2: {r_tests:,.0f} tests in {r_wall:.2f} s wall, {r_cpu:.2f} s CPU -> "
          f"{r_tests / r_wall:,.0f} tests/s wall, {r_tests / r_cpu:,.0f} per CPU s")
    for key, res in runs.items():
        ratio_w = (res["tests"] / res["wall"]) / (r_tests / r_wall)
        ratio_c = (res["tests"] / res["cpu"]) / (r_tests / r_cpu)
        out[f"ratio_wall_{key}"], out[f"ratio_cpu_{key}"] = ratio_w, ratio_c
        print(f"    throughput ratio lmmcore/R ({key}): {ratio_w:.1f}x wall, {ratio_c:.1f}x CPU (target >= 50x)")
    if "table" in runs:
        print(f"    LOD of the 26 real traits, largest |lmmcore - R/qtl2|: {diff:.2e}")
    return out


def part_b(args, tmp: Path) -> dict:
    from lmmcore.simulate import simulate_genotype_dosages

    n, T, m = args.eqtl_n, args.eqtl_traits, args.eqtl_markers
    g = simulate_genotype_dosages(n, m, n_chr=10, seed=11)
    ids = list(g.ids)
    pd.DataFrame(g.dosage, index=pd.Index(ids, name="id"), columns=list(g.markers)).to_csv(tmp / "dos.csv")
    pd.DataFrame({"marker": list(g.markers), "chr": list(g.chromosome), "pos": g.position}).to_csv(
        tmp / "map.csv", index=False)
    rng = np.random.default_rng(12)
    Z = (g.dosage - g.dosage.mean(0)) / np.maximum(g.dosage.std(0), 1e-9)
    causal = rng.integers(0, m, size=T)
    Y = 0.3 * Z[:, causal] + Z[:, rng.integers(0, m, size=(50,))] @ rng.normal(0, 0.1, size=(50, T)) \
        + rng.normal(size=(n, T))
    if args.missing:  # sporadic missing values: each trait misses its own K animals (a pattern per trait)
        Y[np.argsort(rng.random((n, T)), axis=0)[:args.missing], np.arange(T)] = np.nan
    pd.DataFrame(Y, index=pd.Index(ids, name="id"), columns=[f"gene{t:05d}" for t in range(T)]).to_csv(
        tmp / "expr.csv")
    cmd = [sys.executable, "-c",
           "import resource, sys, time; sys.path.insert(0, %r); from lmmcore.cli import main; "
           "t = time.perf_counter(); rc = main(sys.argv[1:]); u = resource.getrusage(resource.RUSAGE_SELF); "
           "print('RESULT', time.perf_counter() - t, u.ru_utime + u.ru_stime, u.ru_maxrss / 1024); sys.exit(rc)"
           % str(ROOT),
           "scan", "--genotypes", str(tmp / "dos.csv"), "--map", str(tmp / "map.csv"), "--pheno",
           str(tmp / "expr.csv"), "--kinship", "overall", "--summary", "max", "--out", str(tmp / "max.csv"),
           "--quiet"] + (["--threads", str(args.threads)] if args.threads else [])
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall_outer = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    _, wall, cpu, rss = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")][-1].split()
    wall, cpu, rss = float(wall), float(cpu), float(rss)
    rows = len(pd.read_csv(tmp / "max.csv"))
    print(f"(b) eQTL-sized: {n} animals, {T:,} traits ({args.missing} missing values each), {m:,} markers "
          f"(dosages, overall kinship, --summary max: "
          f"{rows:,} rows): the whole command {wall_outer:.1f} s wall incl. start-up; scan command body "
          f"{wall:.1f} s wall, {cpu:.1f} s CPU, peak memory {rss:.0f} MiB -> {T * m / wall:,.0f} tests/s wall")
    return dict(n=n, traits=T, markers=m, missing=args.missing, wall=wall, wall_process=wall_outer, cpu=cpu,
                maxrss_mib=rss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=["a", "b", "both"], default="both")
    ap.add_argument("--traits", type=int, default=520)
    ap.add_argument("--markers", type=int, default=6000, help="simulated markers of (a)")
    ap.add_argument("--probs", help="(a): the recla allele probabilities (lmmcore genoprobs CSV or .h5)")
    ap.add_argument("--map", help="(a): their map, with --probs")
    ap.add_argument("--no-r", action="store_true", help="(a) without R/qtl2")
    ap.add_argument("--no-table", action="store_true",
                    help="(a) only the --summary max run of lmmcore (no full table, so no LOD check against R)")
    ap.add_argument("--eqtl-n", type=int, default=500)
    ap.add_argument("--eqtl-traits", type=int, default=5000)
    ap.add_argument("--eqtl-markers", type=int, default=10000)
    ap.add_argument("--missing", type=int, default=0,
                    help="(b): each trait misses this many animals of its own (eQTL-like sporadic missing values; "
                         "patterns share one decomposition through indicator covariates, lmmcore.pattern_dummies)")
    ap.add_argument("--threads", type=int, default=2,
                    help="lmmcore's tasks on N threads with one BLAS thread each (scan --threads; 0: one task at a "
                         "time with the BLAS library's threads); R/qtl2 runs with cores = 2")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    print(f"lmmcore tasks: {args.threads or 'one at a time'} thread(s); BLAS: {blas_info()}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, "
          f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '(unset)')}; load average {os.getloadavg()[0]:.1f}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_many_traits_") as tmp:
        if args.part in ("a", "both"):
            results["a"] = part_a(args, Path(tmp))
        if args.part in ("b", "both"):
            results["b"] = part_b(args, Path(tmp))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()

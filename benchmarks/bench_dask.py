"""Benchmark a scan on a local Dask cluster of two worker processes against the same scan in-process.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_dask.py [--n 1000 --m 10000 --traits 10]

1. Simulates structured dosages (:func:`lmmcore.simulate.simulate_genotype_dosages`)
   and ``--traits`` phenotypes, written as PLINK files and a phenotype CSV.
2. Runs the whole ``lmmcore scan --bed ... --kinship loco`` process (with
   ``--refit`` if asked) twice, each timed from the outside: in-process, and
   with ``--scheduler local:2`` (a ``LocalCluster`` of two worker processes
   that read their marker chunks from the ``.bed`` file), both with the same
   ``--chunk`` (by default each chromosome in four tasks per worker: the
   scan runs one kinship group at a time, so a group needs several tasks to
   keep every worker busy). Wall seconds, CPU
   seconds (user + system of the process and every process it started and
   reaped: the nanny and worker processes, through ``os.wait4``) and the peak
   resident memory (the largest of those processes).
3. Prints the bytes sent to the workers (the command's own count: the
   scattered contexts, one per kinship group and missingness pattern, and
   the tasks' marker indices) next to what sending the genotypes would cost
   (8 n m bytes), checks that both outputs are the same bytes, and prints
   the ratios.

Each task runs with the client's number of BLAS threads (so that the results
are identical), so two workers on a two-core machine share the cores with
twice as many BLAS threads: on one machine the cluster is about overhead,
not speed; the point of a cluster is more machines.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def make_data(workdir: Path, n: int, m: int, n_chr: int, traits: int, seed: int) -> dict:
    """PLINK files of simulated dosages and a phenotype CSV with ``traits`` columns."""
    from lmmcore.simulate import simulate_genotype_dosages, write_plink

    g = simulate_genotype_dosages(n, m, n_chr=n_chr, seed=seed)
    rng = np.random.default_rng(seed + 1)
    D = g.dosage
    sd = D.std(axis=0)
    poly = np.flatnonzero(sd > 0)
    Z = (D[:, poly] - D[:, poly].mean(axis=0)) / sd[poly]
    y = {}
    for t in range(traits):
        beta = rng.normal(scale=np.sqrt(0.4 / poly.size), size=poly.size)
        y[f"trait{t + 1}"] = 10.0 + Z @ beta + rng.normal(scale=np.sqrt(0.6), size=n)
    prefix = workdir / "bench"
    write_plink(prefix, D, g.ids, g.chromosome, np.round(g.position * 1e6) + 1, g.markers, force=True)
    pheno = workdir / "pheno.csv"
    pd.DataFrame(y, index=pd.Index(g.ids, name="id")).to_csv(pheno)
    return {"prefix": prefix, "pheno": pheno}


def run(cmd: list[str], log: Path) -> dict:
    """Run ``cmd``: wall seconds; CPU seconds and peak RSS of it and the descendants it reaped (``os.wait4``)."""
    with open(log, "w") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall": wall, "stderr": log.read_text(), "status": proc.returncode,
            "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024}


def blas_kernel() -> str:
    from threadpoolctl import threadpool_info

    return ", ".join(f"{i['internal_api']} {i.get('version')} {i.get('architecture')} x{i['num_threads']}"
                     for i in threadpool_info() if i.get("user_api") == "blas") or "no BLAS found"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--m", type=int, default=10000)
    parser.add_argument("--chr", type=int, default=10)
    parser.add_argument("--traits", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=None,
                        help="markers per task (default: each chromosome in 4 tasks per worker)")
    parser.add_argument("--refit", action="store_true", help="the exact scan (h2 re-estimated at every marker)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if name in os.environ:
            print(f"note: {name} is set; run with env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE", file=sys.stderr)
    import numpy  # noqa: F401 - loads the BLAS for threadpoolctl

    print(f"BLAS: {blas_kernel()}; cores: {os.cpu_count()}")
    lmmcore = [sys.executable, "-m", "lmmcore.cli"]
    chunk = args.chunk or max(1, -(-args.m // (args.chr * 4 * args.workers)))
    with tempfile.TemporaryDirectory(prefix="bench_dask_") as tmp:
        work = Path(tmp)
        files = make_data(work, args.n, args.m, args.chr, args.traits, args.seed)
        base = lmmcore + ["scan", "--bed", str(files["prefix"]), "--pheno", str(files["pheno"]),
                          "--kinship", "loco", "--force", "--chunk", str(chunk)] + (["--refit"] if args.refit else [])
        results = {}
        for label, extra in (("in-process", []), (f"local:{args.workers}", ["--scheduler", f"local:{args.workers}"])):
            r = run(base + ["--out", str(work / f"{label}.csv")] + extra, work / f"{label}.log")
            if r["status"] != 0:
                print(r["stderr"], file=sys.stderr)
                raise SystemExit(f"{label} failed with status {r['status']}")
            results[label] = r
        same = (work / "in-process.csv").read_bytes() == (work / f"local:{args.workers}.csv").read_bytes()
    local = results[f"local:{args.workers}"]
    sent = re.search(r"(\d+) task\(s\) on (\d+) worker\(s\); sent ([\d.e+-]+) MB \(contexts ([\d.e+-]+) MB, tasks "
                     r"([\d.e+-]+) MB\), received ([\d.e+-]+) MB", local["stderr"])
    print(f"scan --kinship loco{' --refit' if args.refit else ''} --chunk {chunk}: n = {args.n}, m = {args.m}, "
          f"{args.chr} chromosomes, {args.traits} traits")
    print(f"{'run':<12} {'wall s':>8} {'CPU s':>8} {'peak MB':>8}")
    for label, r in results.items():
        print(f"{label:<12} {r['wall']:8.2f} {r['cpu']:8.2f} {r['rss_mb']:8.0f}")
    ref = results["in-process"]
    print(f"ratio local:{args.workers} / in-process: wall {local['wall'] / ref['wall']:.2f}, "
          f"CPU {local['cpu'] / ref['cpu']:.2f}")
    if sent:
        tasks, workers, total, contexts, task_mb, received = sent.groups()
        genotypes_mb = 8 * args.n * args.m / 1e6
        print(f"sent to the workers: {total} MB (scattered contexts {contexts} MB, {tasks} tasks {task_mb} MB) on "
              f"{workers} worker(s); received {received} MB. Sending the genotypes instead: {genotypes_mb:.0f} MB "
              f"(ratio sent / genotypes {float(total) / genotypes_mb:.3f})")
    else:
        print("(no transfer summary in the output)\n" + local["stderr"])
    print(f"outputs identical: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())

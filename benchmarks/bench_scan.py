"""Benchmark the genome scans against GEMMA (and FaST-LMM when installed).

    python benchmarks/bench_scan.py [--n 2000 --m 20000]

1. Simulates structured dosages (subpopulations and families,
   :func:`lmmcore.simulate.simulate_genotype_dosages`), writes them as PLINK
   files (:func:`lmmcore.simulate.write_plink`) with a phenotype in the
   ``.fam`` (polygenic background plus a few QTLs), and computes the centred
   kinship (GEMMA's ``-gk 1``), saved for every tool.
2. Runs every measurement in its own process, timed from the outside, with
   its peak resident memory from ``os.wait4`` (``ru_maxrss``):

   * ``rotation``: the product ``U'G`` that the fixed-h2 scan needs (in the
     scan's chunks), after the eigendecomposition;
   * ``ours fixed``: ``lmmcore.scan.scan`` with the fixed null h2 (R/qtl2 scan1);
   * ``ours exact``: ``scan(refit=True)``: ML h2 per marker (LRT, GEMMA
     ``-lmm 2``) and REML h2 per marker (Wald, ``-lmm 1``);
   * ``gemma -lmm 2`` and ``gemma -lmm 1`` with the same PLINK files and
     kinship (``-k``), if ``gemma`` is on the PATH (Debian: ``apt-get
     install gemma``);
   * FaST-LMM ``single_snp`` with the same kinship (``K0``), if a separate
     virtualenv with ``fastlmm`` exists (``--fastlmm-python``, default
     ``/tmp/fastlmm-venv/bin/python``).

3. Prints a table of wall times and memory peaks, the fixed-h2 scan's time
   over the rotation's, and the agreement of p-values in ``-log10``.

Every process runs with the BLAS threads it finds (set ``OMP_NUM_THREADS``
to change that); GEMMA 0.98 uses its own threads for the eigendecomposition
only. Every tool runs with ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE``
unset (old OpenBLAS builds need them; numpy's bundled OpenBLAS does not), and
the BLAS kernel that numpy loads is printed (threadpoolctl). Wall and CPU
seconds (user + system, from ``os.wait4``) are both reported: on a shared
machine the CPU seconds are the steadier figure. lmmcore's bytecode is
compiled first (``compileall``), as ``pip install`` does, so that no run
pays for compiling the package's sources.

The whole-process comparison alone, at several sizes, in one command::

    python benchmarks/bench_scan.py --cli-vs-gemma --sizes 1000x10000,2000x20000 --repeat 3

runs ``lmmcore scan --bed ... --kinship K.csv --refit`` (CSV output of every
column) and ``gemma -lmm 2`` alternately on the same files and prints
``gemma / ours`` for wall and CPU seconds (target >= 5 at both sizes); a row
with one BLAS thread for lmmcore shows the figure independent of the other
core's load.
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
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

DEFAULT_FASTLMM_PYTHON = "/tmp/fastlmm-venv/bin/python"


# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #
def make_data(workdir: Path, n: int, m: int, n_chr: int, seed: int) -> dict:
    """Simulate genotypes and a phenotype; write PLINK files, kinship (.npy and GEMMA text)."""
    from lmmcore.kinship import kinship_from_dosages
    from lmmcore.simulate import simulate_genotype_dosages, write_plink

    t0 = time.perf_counter()
    g = simulate_genotype_dosages(n, m, n_chr=n_chr, seed=seed)
    D = g.dosage
    rng = np.random.default_rng(seed + 1)
    mean = D.mean(axis=0)
    sd = D.std(axis=0)
    poly = np.flatnonzero(sd > 0)
    beta = rng.normal(scale=np.sqrt(0.5 / poly.size), size=poly.size)
    background = ((D[:, poly] - mean[poly]) / sd[poly]) @ beta
    qtl = rng.choice(poly, size=5, replace=False)
    effects = np.array([0.25, 0.2, 0.15, 0.12, 0.1])
    signal = ((D[:, qtl] - mean[qtl]) / sd[qtl]) @ effects
    y = 10.0 + background + signal + rng.normal(scale=np.sqrt(0.5), size=n)
    prefix = workdir / "bench"
    write_plink(prefix, D, g.ids, g.chromosome, np.round(g.position * 1e6) + 1, g.markers, force=True)
    fam = pd.read_csv(f"{prefix}.fam", sep=r"\s+", header=None, dtype=str)
    fam[5] = [f"{v:.10g}" for v in y]
    fam.to_csv(f"{prefix}.fam", sep=" ", header=False, index=False)
    t_sim = time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        K = kinship_from_dosages(D, "centered")
    np.save(workdir / "K.npy", K)
    np.savetxt(workdir / "K.txt", K, fmt="%.17g", delimiter="\t")
    # the same kinship and phenotype as CSV files with IDs, for the `lmmcore scan` command line
    pd.DataFrame(K, index=list(g.ids), columns=list(g.ids)).to_csv(workdir / "K.csv", float_format="%.17g")
    pd.DataFrame({"y": fam[5].to_numpy(dtype=float)}, index=pd.Index(fam[1].astype(str), name="id")).to_csv(
        workdir / "P.csv", float_format="%.17g")  # the .fam's values (10 digits), as GEMMA reads them
    return {"simulate_s": t_sim, "qtl": [g.markers[j] for j in qtl]}


# --------------------------------------------------------------------------- #
# Workers (each in its own process)
# --------------------------------------------------------------------------- #
_READ_S = {}


def _load(workdir: Path):
    from lmmcore.genotypes import read_plink

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = read_plink(workdir / "bench")
    _READ_S["read_s"] = time.perf_counter() - t0
    K = np.load(workdir / "K.npy")
    fam = pd.read_csv(workdir / "bench.fam", sep=r"\s+", header=None, dtype={1: str})
    pheno = pd.DataFrame({"y": fam[5].to_numpy(float)}, index=fam[1].astype(str))
    return g, K, pheno


def worker_rotation(workdir: Path, chunk: int | None) -> dict:
    """Time the eigendecomposition and the chunked product U'G alone."""
    from lmmcore.eigen import decompose_kinship
    from lmmcore.scan import CHUNK_ELEMENTS

    g, K, _ = _load(workdir)
    t0 = time.perf_counter()
    eig = decompose_kinship(K, check=False)
    t_eig = time.perf_counter() - t0
    n, m = g.dosage.shape
    step = chunk or max(1, CHUNK_ELEMENTS // n)
    Ut = eig.vectors.T
    t0 = time.perf_counter()
    for start in range(0, m, step):
        Ut @ g.dosage[:, start:start + step]
    return {"eigen_s": t_eig, "rotate_s": time.perf_counter() - t0}


def worker_scan(workdir: Path, refit: bool, chunk: int | None, n_perm: int = 0) -> dict:
    from lmmcore.scan import scan

    g, K, pheno = _load(workdir)
    frame = pd.DataFrame(K, index=list(g.ids), columns=list(g.ids))
    tracemalloc.start()  # numpy reports its buffers to tracemalloc: the scan's own peak
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = scan(g, pheno, kinship=frame, refit=refit, chunk=chunk, n_perm=n_perm, seed=1)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if n_perm:
        return {"scan_s": elapsed, "timings": res.timings, "scan_alloc_mb": peak / 2**20,
                "threshold_05": res.permutations.threshold("y", 0.05)}
    cols = ["marker", "n", "lod", "p_value", "beta_dosage", "se_dosage"]
    cols += ["p_lrt", "p_wald", "h2_ml", "h2_reml"] if refit else []
    res.table[cols].to_csv(workdir / ("ours_exact.csv" if refit else "ours_fixed.csv"), index=False)
    return {"scan_s": elapsed, "timings": res.timings, "h2_null": float(res.null["h2"].iloc[0]),
            "scan_alloc_mb": peak / 2**20, **_READ_S}


FASTLMM_SCRIPT = r"""
import json, sys, time, numpy as np, pandas as pd
from fastlmm.association import single_snp
from pysnptools.snpreader import Bed
from pysnptools.kernelreader import KernelData
work = sys.argv[1]
bed = Bed(work + "/bench", count_A1=True)
K = np.load(work + "/K.npy")
iid = bed.iid
fam = pd.read_csv(work + "/bench.fam", sep=r"\s+", header=None, dtype=str)
pheno = {"iid": iid, "vals": fam[5].astype(float).to_numpy()[:, None], "header": ["y"]}
t0 = time.perf_counter()
res = single_snp(bed, pheno, K0=KernelData(iid=iid, val=K), count_A1=True, leave_out_one_chrom=False)
elapsed = time.perf_counter() - t0
res[["SNP", "PValue"]].to_csv(work + "/fastlmm.csv", index=False)
print(json.dumps({"scan_s": elapsed}))
"""


def _own_peak_mb() -> float | None:
    """This process's peak resident memory (VmHWM, reset at exec), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


# --------------------------------------------------------------------------- #
# Running and measuring processes
# --------------------------------------------------------------------------- #
#: Environment of the single-threaded runs (GEMMA's association loop is single-threaded).
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


#: Overrides for old OpenBLAS builds, unset for every tool compared.
_BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def tool_env(extra: dict | None = None) -> dict:
    """The environment of every measured process: this one without the OpenBLAS overrides, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _BLAS_OVERRIDES}
    return {**env, **(extra or {})}


def blas_kernel(env: dict | None = None) -> str:
    """The BLAS that numpy loads in a child process with ``env``, as threadpoolctl describes it."""
    code = ("import json, numpy, threadpoolctl; print(json.dumps([(d.get('internal_api'), d.get('version'), "
            "d.get('architecture'), d.get('num_threads')) for d in threadpoolctl.threadpool_info()]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=tool_env(env))
    if done.returncode != 0:
        return "unknown (threadpoolctl failed)"
    return "; ".join(f"{api} {ver} kernel {arch}, {threads} thread(s)" for api, ver, arch, threads
                     in json.loads(done.stdout))


def compile_bytecode() -> None:
    """Compile lmmcore's bytecode, as ``pip install`` does (an editable install with
    ``PYTHONDONTWRITEBYTECODE`` would otherwise compile every module in every run)."""
    import compileall

    compileall.compile_dir(str(HERE.parent / "lmmcore"), quiet=1)


def measure(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> dict:
    """Run a command; return its wall and CPU (user + system) seconds, peak RSS (MB), exit status, stdout, stderr.

    The OpenBLAS overrides are unset (:func:`tool_env`).
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=tool_env(env))
    out_chunks, err_chunks = [], []
    # read pipes before waiting so that a chatty tool cannot block on a full pipe
    out, err = proc.stdout.read(), proc.stderr.read()
    out_chunks.append(out)
    err_chunks.append(err)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "wall_s": time.perf_counter() - t0,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_mb": usage.ru_maxrss / 1024.0,
        "status": proc.returncode,
        "stdout": "".join(out_chunks),
        "stderr": "".join(err_chunks),
    }


def best_of(runs: list[dict], key: str = "wall_s") -> dict:
    """The run with the smallest ``key`` (timings on a shared machine only err upwards)."""
    return min(runs, key=lambda r: r[key])


def run_worker(kind: str, workdir: Path, chunk: int | None, n_perm: int = 0, repeat: int = 1,
               env: dict | None = None) -> dict:
    return best_of([_run_worker_once(kind, workdir, chunk, n_perm, env) for _ in range(repeat)], "scan_s"
                   if kind != "rotation" else "rotate_s")


def _run_worker_once(kind: str, workdir: Path, chunk: int | None, n_perm: int = 0, env: dict | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--workdir", str(workdir)]
    if chunk:
        cmd += ["--chunk", str(chunk)]
    if n_perm:
        cmd += ["--perm", str(n_perm)]
    res = measure(cmd, env=env)
    if res["status"] != 0:
        raise RuntimeError(f"worker {kind} failed:\n{res['stderr']}")
    res.update(json.loads(res["stdout"].strip().splitlines()[-1]))
    return res


def run_cli(workdir: Path, repeat: int = 1, env: dict | None = None) -> dict:
    """``lmmcore scan --refit`` as a user runs it: PLINK files, kinship and phenotype CSVs, full output CSV."""
    cmd = [sys.executable, "-m", "lmmcore.cli", "scan", "--bed", "bench", "--pheno", "P.csv", "--kinship", "K.csv",
           "--refit", "--out", "cli.csv", "--force", "--quiet"]
    runs = []
    for _ in range(max(1, repeat)):
        res = measure(cmd, cwd=workdir, env=env)
        if res["status"] != 0:
            raise RuntimeError(f"lmmcore scan failed:\n{res['stderr'][-2000:]}")
        runs.append(res)
    return best_of(runs)


def _parse_sizes(text: str) -> list[tuple[int, int]]:
    try:
        return [(int(a), int(b)) for a, b in (part.lower().split("x") for part in text.split(",") if part.strip())]
    except ValueError:
        raise SystemExit(f"--sizes {text!r}: give sizes as NxM, comma-separated, e.g. 1000x10000,2000x20000")


def simulate_into(workdir: Path, n: int, m: int, n_chr: int, seed: int) -> dict:
    """Simulate the benchmark files into ``workdir`` in a child process (kept files are reused)."""
    info_file = workdir / "simulated.json"
    wanted = {"n": n, "m": m, "n_chr": n_chr, "seed": seed}
    if info_file.is_file() and json.loads(info_file.read_text()).get("args") == wanted:
        return json.loads(info_file.read_text())
    workdir.mkdir(parents=True, exist_ok=True)
    sim = measure([sys.executable, str(Path(__file__).resolve()), "--worker", "simulate", "--workdir", str(workdir),
                   "--n", str(n), "--m", str(m), "--n-chr", str(n_chr), "--seed", str(seed)])
    if sim["status"] != 0:
        raise RuntimeError(f"simulation failed:\n{sim['stderr']}")
    info = {**json.loads(sim["stdout"].strip().splitlines()[-1]), "args": wanted}
    info_file.write_text(json.dumps(info))
    return info


def cli_vs_gemma(sizes: list[tuple[int, int]], n_chr: int, seed: int, repeat: int, keep: Path | None) -> int:
    """The whole ``lmmcore scan --refit`` process against ``gemma -lmm 2``, alternately, at each size."""
    if shutil.which("gemma") is None:
        raise SystemExit("gemma is not on the PATH (Debian: apt-get install gemma)")
    compile_bytecode()
    print(f"{os.cpu_count()} CPUs; numpy's BLAS: {blas_kernel()}; OpenBLAS overrides unset for every tool; "
          f"best of {repeat} alternated run(s) per tool (wall and CPU minimised separately)", flush=True)
    header = (f"{'n x m':>13s} {'run':44s} {'wall s':>7s} {'CPU s':>7s} {'peak MB':>8s} "
              f"{'gemma/x wall':>12s} {'gemma/x CPU':>11s}")
    summary = []
    for n, m in sizes:
        tmp = None
        if keep is None:
            tmp = tempfile.TemporaryDirectory(prefix="bench_scan_")
            workdir = Path(tmp.name)
        else:
            workdir = keep / f"n{n}_m{m}"
        try:
            simulate_into(workdir, n, m, n_chr, seed)
            runs = {"gemma": [], "ours": [], "ours1": []}
            for _ in range(max(1, repeat)):
                runs["gemma"].append(_run_gemma_once(shutil.which("gemma"), workdir, 2))
                runs["ours"].append(run_cli(workdir))
                runs["ours1"].append(run_cli(workdir, env=ONE_THREAD))
            best = {k: {"wall_s": min(r["wall_s"] for r in v), "cpu_s": min(r["cpu_s"] for r in v),
                        "peak_mb": max(r["peak_mb"] for r in v)} for k, v in runs.items()}
            g = best["gemma"]
            agree = agreement(pd.read_csv(workdir / "cli.csv").set_index("marker")["p_lrt"],
                              runs["gemma"][-1]["table"].set_index("rs")["p_lrt"])
        finally:
            if tmp is not None:
                tmp.cleanup()
        print()
        print(header)
        names = {"gemma": "gemma -lmm 2 (LRT)", "ours": "lmmcore scan --refit (LRT + Wald), BLAS default",
                 "ours1": "lmmcore scan --refit, 1 BLAS thread"}
        for key in ("gemma", "ours", "ours1"):
            b = best[key]
            print(f"{f'{n} x {m}':>13s} {names[key]:44s} {b['wall_s']:7.2f} {b['cpu_s']:7.2f} {b['peak_mb']:8.0f} "
                  f"{g['wall_s'] / b['wall_s']:12.2f} {g['cpu_s'] / b['cpu_s']:11.2f}")
        print(f"{'':13s} p_lrt against gemma on {agree['markers']} markers: max |d -log10 p| = "
              f"{agree['max_abs_diff']:.2e}")
        summary.append((n, m, g["wall_s"] / best["ours"]["wall_s"], g["cpu_s"] / best["ours"]["cpu_s"],
                        g["cpu_s"] / best["ours1"]["cpu_s"]))
    print()
    for n, m, wall, cpu, cpu1 in summary:
        print(f"RATIO n = {n}, m = {m}: gemma -lmm 2 / lmmcore scan --refit = {wall:.2f} x wall, {cpu:.2f} x CPU "
              f"({cpu1:.2f} x CPU with one BLAS thread); target >= 5")
    return 0


def run_gemma(workdir: Path, lmm: int, repeat: int = 1) -> dict | None:
    exe = shutil.which("gemma")
    if exe is None:
        return None
    return best_of([_run_gemma_once(exe, workdir, lmm) for _ in range(repeat)])


def _run_gemma_once(exe: str, workdir: Path, lmm: int) -> dict:
    cmd = [exe, "-bfile", "bench", "-k", "K.txt", "-lmm", str(lmm), "-o", f"gemma_lmm{lmm}", "-outdir", "."]
    res = measure(cmd, cwd=workdir)
    if res["status"] != 0:
        raise RuntimeError(f"gemma failed:\n{res['stdout'][-2000:]}\n{res['stderr'][-2000:]}")
    res["table"] = pd.read_csv(workdir / f"gemma_lmm{lmm}.assoc.txt", sep="\t")
    return res


def run_fastlmm(workdir: Path, python: str, repeat: int = 1) -> dict | None:
    if not Path(python).exists():
        return None
    runs = [_run_fastlmm_once(workdir, python) for _ in range(repeat)]
    ok = [r for r in runs if "error" not in r]
    return best_of(ok, "scan_s") if ok else runs[0]


def _run_fastlmm_once(workdir: Path, python: str) -> dict:
    res = measure([python, "-c", FASTLMM_SCRIPT, str(workdir)])
    if res["status"] != 0:
        return {"error": res["stderr"].strip().splitlines()[-1] if res["stderr"].strip() else "failed"}
    res.update(json.loads(res["stdout"].strip().splitlines()[-1]))
    return res


def agreement(ours: pd.Series, theirs: pd.Series) -> dict:
    """Differences of -log10 p over the markers both tools report."""
    both = pd.concat([ours.rename("a"), theirs.rename("b")], axis=1, join="inner").dropna()
    a = -np.log10(both["a"].clip(lower=1e-300))
    b = -np.log10(both["b"].clip(lower=1e-300))
    diff = (a - b).abs()
    return {
        "markers": int(len(both)),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "share_within_0.01": float((diff <= 0.01).mean()),
        "max_-log10p": float(max(a.max(), b.max())),
        "worst_marker": str(diff.idxmax()),
    }


# --------------------------------------------------------------------------- #
# Main
# --------------------------------------------------------------------------- #
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="individuals (default 2000)")
    parser.add_argument("--m", type=int, default=20000, help="markers (default 20000)")
    parser.add_argument("--n-chr", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=None, help="markers per chunk (default: the scan's)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the files here (default: a temporary folder)")
    parser.add_argument("--perm", type=int, default=0,
                        help="also time the fixed-h2 scan with this many permutations (default 0: no)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run every measurement this many times and keep the fastest (default 1)")
    parser.add_argument("--skip-gemma", action="store_true")
    parser.add_argument("--fastlmm-python", default=DEFAULT_FASTLMM_PYTHON,
                        help=f"python of a virtualenv with fastlmm (default {DEFAULT_FASTLMM_PYTHON}; skipped if absent)")
    parser.add_argument("--cli-vs-gemma", action="store_true",
                        help="only the whole lmmcore scan --refit process against gemma -lmm 2, at --sizes")
    parser.add_argument("--sizes", default=None,
                        help="with --cli-vs-gemma: NxM sizes, comma-separated (default: --n x --m)")
    parser.add_argument("--worker", choices=["simulate", "rotation", "fixed", "exact", "perm"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.cli_vs_gemma:
        sizes = _parse_sizes(args.sizes) if args.sizes else [(args.n, args.m)]
        return cli_vs_gemma(sizes, args.n_chr, args.seed, max(1, args.repeat), args.workdir)

    if args.worker:
        if args.worker == "simulate":
            print(json.dumps(make_data(args.workdir, args.n, args.m, args.n_chr, args.seed)))
            return 0
        if args.worker == "rotation":
            out = worker_rotation(args.workdir, args.chunk)
        elif args.worker == "perm":
            out = worker_scan(args.workdir, False, args.chunk, args.perm)
        else:
            out = worker_scan(args.workdir, args.worker == "exact", args.chunk)
        out["hwm_mb"] = _own_peak_mb()
        print(json.dumps(out))
        return 0

    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench_scan_")
        workdir = Path(tmp.name)
    else:
        workdir = args.workdir
        workdir.mkdir(parents=True, exist_ok=True)
    try:
        threads = os.environ.get("OMP_NUM_THREADS") or os.environ.get("OPENBLAS_NUM_THREADS") or "default"
        compile_bytecode()
        print(f"simulating n = {args.n}, m = {args.m} ({args.n_chr} chromosomes) in {workdir}; "
              f"{os.cpu_count()} CPUs, BLAS threads: {threads} ({blas_kernel()}; OpenBLAS overrides unset); "
              f"best of {max(1, args.repeat)} run(s) ...", flush=True)
        # simulated in a child process: a child's ru_maxrss starts from its parent's RSS at fork,
        # so the parent must stay small for the peaks measured below to be the children's own
        sim = measure([sys.executable, str(Path(__file__).resolve()), "--worker", "simulate", "--workdir",
                       str(workdir), "--n", str(args.n), "--m", str(args.m), "--n-chr", str(args.n_chr),
                       "--seed", str(args.seed)])
        if sim["status"] != 0:
            raise RuntimeError(f"simulation failed:\n{sim['stderr']}")
        info = json.loads(sim["stdout"].strip().splitlines()[-1])
        rows = []
        R = max(1, args.repeat)
        rot = run_worker("rotation", workdir, args.chunk, repeat=R)
        rows.append(("eigendecomposition of K", rot["eigen_s"], None, "inside the rotation worker"))
        rows.append(("rotation U'G (chunked product)", rot["rotate_s"], rot["peak_mb"], "the product the fixed scan needs"))
        fixed = run_worker("fixed", workdir, args.chunk, repeat=R)
        t = fixed["timings"]
        scan_part = fixed["scan_s"] - t["eigen"] - t["null"] - t["kinship"]
        rows.append(("ours fixed h2 (scan1/EMMAX)", fixed["scan_s"], fixed["peak_mb"],
                     f"wall {fixed['wall_s']:.1f} s incl. reading; after eigen+null: {scan_part:.2f} s; "
                     f"scan's own allocations peak {fixed['scan_alloc_mb']:.0f} MB"))
        exact = run_worker("exact", workdir, args.chunk, repeat=R)
        rows.append(("ours exact (LRT + Wald, refit)", exact["scan_s"], exact["peak_mb"],
                     f"wall {exact['wall_s']:.1f} s incl. reading; refit part {exact['timings']['refit']:.2f} s; "
                     f"scan's own allocations peak {exact['scan_alloc_mb']:.0f} MB"))
        cli = run_cli(workdir, R)
        rows.append(("lmmcore scan --refit (command line)", cli["wall_s"], cli["peak_mb"],
                     "wall: reads the PLINK files, K.csv (86 MB at n = 2000) and P.csv, writes every column"))
        exact1 = run_worker("exact", workdir, args.chunk, repeat=R, env=ONE_THREAD)
        rot1 = run_worker("rotation", workdir, args.chunk, repeat=R, env=ONE_THREAD)
        rows.append(("ours exact, 1 BLAS thread", exact1["scan_s"], exact1["peak_mb"],
                     f"wall {exact1['wall_s']:.1f} s; eigen {exact1['timings']['eigen']:.2f}, rotate "
                     f"{exact1['timings']['rotate']:.2f}, refit {exact1['timings']['refit']:.2f} s"))
        if args.perm:
            perm = run_worker("perm", workdir, args.chunk, args.perm, repeat=R)
            each = perm["timings"]["permute"] / args.perm
            rows.append((f"ours fixed h2 + {args.perm} permutations", perm["scan_s"], perm["peak_mb"],
                         f"{each:.2f} s per permutation ({each / rot['rotate_s']:.2f} x the rotation); "
                         f"LOD threshold at 5%: {perm['threshold_05']:.2f}"))
        gemma2 = gemma1 = None
        if args.skip_gemma:
            rows.append(("gemma", None, None, "skipped (--skip-gemma)"))
        else:
            gemma2 = run_gemma(workdir, 2, R)
            if gemma2 is None:
                rows.append(("gemma", None, None, "not installed (apt-get install gemma)"))
            else:
                rows.append(("gemma -lmm 2 (LRT)", gemma2["wall_s"], gemma2["peak_mb"], "wall, incl. reading and eigen"))
                gemma1 = run_gemma(workdir, 1, R)
                rows.append(("gemma -lmm 1 (Wald)", gemma1["wall_s"], gemma1["peak_mb"], "wall, incl. reading and eigen"))
        fl = run_fastlmm(workdir, args.fastlmm_python, R)
        if fl is None:
            rows.append(("fastlmm single_snp", None, None, f"not installed ({args.fastlmm_python} missing)"))
        elif "error" in fl:
            rows.append(("fastlmm single_snp", None, None, f"failed: {fl['error'][:80]}"))
        else:
            rows.append(("fastlmm single_snp (fixed h2)", fl["scan_s"], fl["peak_mb"], f"wall {fl['wall_s']:.1f} s"))

        print()
        print(f"peak RSS: the whole process's, including the genotypes read ({args.n} x {args.m} float64 = "
              f"{args.n * args.m * 8 / 2**20:.0f} MB, copied while reading); the scan's own allocations are in the notes")
        print(f"{'run':36s} {'time (s)':>9s} {'peak RSS (MB)':>14s}  notes")
        for name, secs, mb, note in rows:
            s = f"{secs:9.2f}" if secs is not None else f"{'-':>9s}"
            m = f"{mb:14.0f}" if mb is not None else f"{'-':>14s}"
            print(f"{name:36s} {s} {m}  {note}")
        print()
        print(f"fixed-h2 scan after the eigendecomposition and null fit: {scan_part:.2f} s = "
              f"{scan_part / rot['rotate_s']:.2f} x the rotation alone ({rot['rotate_s']:.2f} s); "
              f"stages: " + ", ".join(f"{k} {v:.2f}" for k, v in t.items()))
        print("exact scan stages: " + ", ".join(f"{k} {v:.2f}" for k, v in exact["timings"].items()))
        ours_fixed = pd.read_csv(workdir / "ours_fixed.csv").set_index("marker")
        ours_exact = pd.read_csv(workdir / "ours_exact.csv").set_index("marker")
        if gemma2 is not None:
            g2 = gemma2["table"].set_index("rs")
            g1 = gemma1["table"].set_index("rs")
            for label, ours, theirs in (("LRT  (ours p_lrt vs gemma -lmm 2)", ours_exact["p_lrt"], g2["p_lrt"]),
                                        ("Wald (ours p_wald vs gemma -lmm 1)", ours_exact["p_wald"], g1["p_wald"])):
                a = agreement(ours, theirs)
                print(f"{label}: {a['markers']} markers, max |d -log10 p| = {a['max_abs_diff']:.2e} "
                      f"(mean {a['mean_abs_diff']:.1e}, {100 * a['share_within_0.01']:.2f}% within 0.01; "
                      f"largest -log10 p {a['max_-log10p']:.1f}; worst {a['worst_marker']})")
            a = agreement(pd.read_csv(workdir / "cli.csv").set_index("marker")["p_lrt"], g2["p_lrt"])
            print(f"LRT  (lmmcore scan command line vs gemma -lmm 2): max |d -log10 p| = {a['max_abs_diff']:.2e}")
            print(f"speed (wall, both including reading the files): ours exact (LRT and Wald together) "
                  f"{exact['wall_s']:.1f} s vs gemma -lmm 2 {gemma2['wall_s']:.1f} s = "
                  f"{gemma2['wall_s'] / exact['wall_s']:.1f} x; ours fixed {fixed['wall_s']:.1f} s; "
                  f"the command line with CSV inputs and full output {cli['wall_s']:.1f} s = "
                  f"{gemma2['wall_s'] / cli['wall_s']:.1f} x")
            print(f"RATIO (whole processes) gemma -lmm 2 / lmmcore scan --refit: {gemma2['wall_s'] / cli['wall_s']:.2f} x "
                  f"wall, {gemma2['cpu_s'] / cli['cpu_s']:.2f} x CPU (gemma {gemma2['cpu_s']:.2f} CPU s, ours "
                  f"{cli['cpu_s']:.2f} CPU s); target >= 5")
        print()
        print("summary (in-process: the scan call after reading; wall: the whole process, from the outside)")
        print(f"{'run':34s} {'threads':>7s} {'in-proc s':>9s} {'wall s':>7s} {'read s':>6s} {'peak MB':>8s} "
              f"{'gemma2/x':>8s}")
        g2 = gemma2["wall_s"] if gemma2 is not None else None

        def line(name, threads, inproc, wall, read, peak):
            ratio = f"{g2 / wall:8.2f}" if g2 and wall else f"{'-':>8s}"
            fmt = lambda v, w, d: f"{v:{w}.{d}f}" if v is not None else f"{'-':>{w}s}"  # noqa: E731
            print(f"{name:34s} {threads:>7s} {fmt(inproc, 9, 2)} {fmt(wall, 7, 2)} {fmt(read, 6, 2)} "
                  f"{fmt(peak, 8, 0)} {ratio}")

        line("rotation U'G alone", "default", rot["rotate_s"], None, None, None)
        line("rotation U'G alone", "1", rot1["rotate_s"], None, None, None)
        line("eigendecomposition alone", "default", rot["eigen_s"], None, None, None)
        line("eigendecomposition alone", "1", rot1["eigen_s"], None, None, None)
        line("ours fixed h2", "default", fixed["scan_s"], fixed["wall_s"], fixed.get("read_s"), fixed["peak_mb"])
        line("ours exact (LRT + Wald)", "default", exact["scan_s"], exact["wall_s"], exact.get("read_s"),
             exact["peak_mb"])
        line("ours exact (LRT + Wald)", "1", exact1["scan_s"], exact1["wall_s"], exact1.get("read_s"),
             exact1["peak_mb"])
        line("lmmcore scan --refit (CLI, CSVs)", "default", None, cli["wall_s"], None, cli["peak_mb"])
        if gemma2 is not None:
            line("gemma -lmm 2 (LRT)", "1*", None, gemma2["wall_s"], None, gemma2["peak_mb"])
            line("gemma -lmm 1 (Wald)", "1*", None, gemma1["wall_s"], None, gemma1["peak_mb"])
        if fl is not None and "error" not in fl:
            line("fastlmm single_snp (fixed h2)", "default", fl["scan_s"], fl["wall_s"], None, fl["peak_mb"])
        print("* GEMMA's per-marker loop is single-threaded (its eigendecomposition may use BLAS threads); "
              "gemma2/x = gemma -lmm 2 wall / this row's wall")
        fixed_part = scan_part / rot["rotate_s"]
        print(f"fixed-h2 scan after eigen + null = {fixed_part:.2f} x the rotation alone (target <= 1.5)")
        if fl is not None and "error" not in fl:
            # FaST-LMM's single_snp tests at the null h2 with the Wald statistic on F(1, n - p - 1);
            # ours gives that statistic as (beta / se)^2 (p = 1 here: the intercept)
            from scipy import stats

            f = pd.read_csv(workdir / "fastlmm.csv").set_index("SNP")
            wald = (ours_fixed["beta_dosage"] / ours_fixed["se_dosage"]) ** 2
            p_f = pd.Series(stats.f.sf(wald, 1, ours_fixed["n"] - 2), index=ours_fixed.index)
            a = agreement(p_f, f["PValue"])
            b = agreement(ours_fixed["p_value"], f["PValue"])
            print(f"fixed h2 vs fastlmm PValue: Wald F from our beta/se max |d -log10 p| = {a['max_abs_diff']:.2e}; "
                  f"our LRT-based p_value (R/qtl2's LOD) max |d| = {b['max_abs_diff']:.2e} (a different test)")
        print(f"simulated QTL markers: {', '.join(info['qtl'])}; top markers by exact LRT: "
              + ", ".join(ours_exact["p_lrt"].nsmallest(5).index))
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

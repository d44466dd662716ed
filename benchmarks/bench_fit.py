"""How close is a whole fit to the eigendecompositions it cannot avoid?

Three measurements, each in one run so that both sides see the same machine:

1. One phenotype, n = 2000: time of the whole fit (decompose, rotate, grid,
   Brent in every bracket, SE, interval, test of h2 = 0) over the time of the
   eigendecomposition alone (``numpy.linalg.eigh``). Target <= 1.15.
2. 200 phenotypes, n = 1500, three missingness patterns, as CSV files: the
   whole ``lmmcore fit`` process over a process that only reads the same CSV
   files with pandas and does the three eigendecompositions. Target <= 1.25.
3. Many traits: 1000 phenotypes, n = 1000, three missingness patterns, the
   same two processes. Target <= 1.25.

Each time is the median of ``--repeats`` runs, the two sides interleaved.
Both wall and CPU seconds are printed (CPU: ``getrusage(RUSAGE_CHILDREN)``
of each process, or the process time of the in-process case), because the
machine may be shared. ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` are
unset for every side (the script re-executes itself without them), and the
BLAS kernel that ran is printed (threadpoolctl).

Usage: ``python benchmarks/bench_fit.py [--repeats 5] [--keep DIR] [--only many]``
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lmmcore import decompose_kinship, fit_rotated, rotate

BASELINE_SCRIPT = """
import sys
import numpy as np, pandas as pd
K = pd.read_csv(sys.argv[1], index_col=0)
P = pd.read_csv(sys.argv[2], index_col=0)
C = pd.read_csv(sys.argv[3], index_col=0)
K.index = K.index.astype(str); P.index = P.index.astype(str)
obs = P.notna().to_numpy()
patterns = np.unique(obs.T, axis=0)
A = K.loc[P.index, P.index].to_numpy()
for pat in patterns:
    np.linalg.eigh(A[np.ix_(pat, pat)])
"""


def structured_kinship(n: int, n_markers: int, seed: int) -> np.ndarray:
    """Kinship from genotypes of a population with family structure."""
    rng = np.random.default_rng(seed)
    n_fam = n // 10
    freq = rng.uniform(0.05, 0.95, n_markers)
    parents = rng.binomial(1, freq, size=(n_fam, 4, n_markers)).astype(np.int8)
    fam = rng.integers(0, n_fam, n)
    pick = rng.integers(0, 2, size=(n, 2, n_markers)).astype(np.int8)
    # each child takes one allele from parent pair (0,1) and one from (2,3)
    a = np.where(pick[:, 0], parents[fam, 1], parents[fam, 0])
    b = np.where(pick[:, 1], parents[fam, 3], parents[fam, 2])
    G = (a + b).astype(float)
    p = G.mean(axis=0) / 2
    ok = (p > 0) & (p < 1)
    Z = (G[:, ok] - 2 * p[ok]) / np.sqrt(2 * p[ok] * (1 - p[ok]))
    return Z @ Z.T / ok.sum()


_UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def clean_env() -> dict:
    """The environment without the OpenBLAS overrides (old builds needed them; numpy's own does not)."""
    return {k: v for k, v in os.environ.items() if k not in _UNSET}


def timed(fn) -> tuple[float, float]:
    """Wall and CPU seconds of ``fn()`` in this process."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def timed_process(cmd) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of a child process."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    w = time.perf_counter()
    subprocess.run(cmd, check=True, env={**clean_env(), "PYTHONWARNINGS": "ignore"})
    wall = time.perf_counter() - w
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def summary(case: str, base: list, fit: list, target: float) -> dict:
    """Medians of interleaved (wall, cpu) pairs and their ratios."""
    bw, bc = (statistics.median(t[i] for t in base) for i in (0, 1))
    fw, fc = (statistics.median(t[i] for t in fit) for i in (0, 1))
    return {"case": case, "base_wall_s": bw, "fit_wall_s": fw, "ratio_wall": fw / bw,
            "base_cpu_s": bc, "fit_cpu_s": fc, "ratio_cpu": fc / bc, "target": target}


def bench_single(n: int, repeats: int) -> dict:
    K = structured_kinship(n, 4000, seed=1)
    rng = np.random.default_rng(2)
    X = np.column_stack([np.ones(n), rng.integers(0, 2, n)])
    d, U = np.linalg.eigh(K)
    y = X @ [1.0, 0.5] + U @ (np.sqrt(0.5 * np.clip(d, 0, None) + 0.5) * rng.normal(size=n))

    def eig_only():
        np.linalg.eigh(K)

    def whole_fit():
        fit_rotated(rotate(decompose_kinship(K), y, X), "reml")

    eig_only(), whole_fit()  # warm up
    t_eig, t_fit = [], []
    for _ in range(repeats):
        t_eig.append(timed(eig_only))
        t_fit.append(timed(whole_fit))
    return summary(f"1 phenotype, n = {n} (in process, vs eigh)", t_eig, t_fit, 1.15)


def write_many(folder: Path, n: int, n_pheno: int) -> tuple[Path, Path, Path]:
    K = structured_kinship(n, 4000, seed=3)
    ids = [f"ind{i}" for i in range(n)]
    rng = np.random.default_rng(4)
    d, U = np.linalg.eigh(K)
    h2 = rng.uniform(0, 0.9, n_pheno)
    Z = rng.normal(size=(n, n_pheno))
    Y = U @ (np.sqrt(np.outer(np.clip(d, 0, None), h2) + (1 - h2)) * Z) + 10.0
    P = pd.DataFrame(Y, index=ids, columns=[f"trait{j}" for j in range(n_pheno)])
    # three missingness patterns: complete, and two with different missing individuals
    third = n_pheno // 3
    P.iloc[:20, third : 2 * third] = np.nan
    P.iloc[20:45, 2 * third :] = np.nan
    sex = rng.choice(["f", "m"], n)
    paths = folder / "K.csv", folder / "P.csv", folder / "C.csv"
    pd.DataFrame(K, index=ids, columns=ids).to_csv(paths[0], index_label="")
    P.to_csv(paths[1], index_label="", na_rep="NA")
    pd.DataFrame({"sex": sex}, index=ids).to_csv(paths[2], index_label="")
    return paths


def compile_bytecode() -> None:
    """Compile lmmcore's bytecode, as ``pip install`` does (an editable install with
    ``PYTHONDONTWRITEBYTECODE`` would otherwise compile every module in every ``lmmcore fit``)."""
    import compileall

    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "lmmcore"), quiet=1)


def bench_many(n: int, n_pheno: int, repeats: int, keep: str | None) -> dict:
    folder = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="lmmbench_"))
    folder.mkdir(parents=True, exist_ok=True)
    kin, phe, cov = write_many(folder, n, n_pheno)
    exe = str(Path(sys.executable).with_name("lmmcore"))
    out = folder / "results.csv"
    base_cmd = [sys.executable, "-c", BASELINE_SCRIPT, str(kin), str(phe), str(cov)]
    fit_cmd = [exe, "fit", "--kinship", str(kin), "--pheno", str(phe), "--covar", str(cov),
               "--out", str(out), "--force", "--quiet"]

    timed_process(base_cmd), timed_process(fit_cmd)  # warm the file cache
    t_base, t_fit = [], []
    for _ in range(repeats):
        t_base.append(timed_process(base_cmd))
        t_fit.append(timed_process(fit_cmd))
    res = pd.read_csv(out)
    assert len(res) == n_pheno and res["h2"].between(0, 1).all()
    return summary(f"{n_pheno} phenotypes, n = {n}, 3 patterns (process vs read + eigh)", t_base, t_fit, 1.25)


def main() -> None:
    if any(k in os.environ for k in _UNSET):  # run as a user's machine would: without the overrides
        os.execve(sys.executable, [sys.executable, *sys.argv], clean_env())
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n-single", type=int, default=2000)
    ap.add_argument("--n-many", type=int, default=1500)
    ap.add_argument("--phenotypes", type=int, default=200)
    ap.add_argument("--n-traits", type=int, default=1000, help="n of the many-traits case")
    ap.add_argument("--traits", type=int, default=1000, help="phenotypes of the many-traits case")
    ap.add_argument("--only", choices=["single", "many", "traits"], help="run one case only")
    ap.add_argument("--keep", help="folder for the CSV files (default: a temporary folder)")
    args = ap.parse_args()
    from threadpoolctl import threadpool_info

    blas = [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} ({i.get('num_threads')} threads)"
            for i in threadpool_info()]
    print(f"machine: {os.cpu_count()} cores; numpy {np.__version__}; BLAS: {'; '.join(blas)}; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    compile_bytecode()
    rows = []
    if args.only in (None, "single"):
        rows.append(bench_single(args.n_single, args.repeats))
    if args.only in (None, "many"):
        rows.append(bench_many(args.n_many, args.phenotypes, args.repeats,
                               None if args.keep is None else str(Path(args.keep) / "many")))
    if args.only in (None, "traits"):
        rows.append(bench_many(args.n_traits, args.traits, args.repeats,
                               None if args.keep is None else str(Path(args.keep) / "traits")))
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"load average at the end {os.getloadavg()[0]:.1f} (wall ratios are unreliable on a loaded machine)")


if __name__ == "__main__":
    main()

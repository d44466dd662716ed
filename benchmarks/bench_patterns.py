"""Traits with different missing values: shared decomposition (indicator covariates) against a decomposition per pattern.

Simulated Diversity Outbred allele probabilities (``--n`` mice, default 261;
``--markers`` markers, default 3,000, on 6 autosomes; 8 founders), ``--traits``
normal traits (default 200) and a sex covariate; LOCO kinships, REML,
``--summary max`` (:class:`lmmcore.scan_sink.MaxSink`). For each number of
missingness patterns in ``--patterns`` (default 1, 10, 50, 200) trait j misses
2 animals chosen by pattern ``j mod K`` (none for pattern 0), and the same scan
runs twice in this process, alternately: with ``lmmcore.pattern_dummies.MODE``
``"never"`` (every pattern its own decomposition, null fit and rotation of
every marker: what lmmcore did before) and ``"auto"`` (the default: patterns
with a few missing animals share one decomposition and rotation). Prints wall
and CPU seconds of each (best of ``--repeat``), the stage timings of the
scan, the ratio, and the largest difference of the per-chromosome maximum LODs
between the two (equal to rounding). The BLAS in use is printed
(threadpoolctl). Run with the OpenBLAS overrides unset::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_patterns.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _scan_once(g, pheno, covar, mode: str) -> tuple[float, float, pd.DataFrame, dict]:
    from lmmcore import pattern_dummies
    from lmmcore.scan import scan
    from lmmcore.scan_sink import MaxSink

    pattern_dummies.MODE = mode
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        res = scan(g, pheno, covar, kinship="loco", sink=MaxSink(), report=lambda _m: None)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        pattern_dummies.MODE = "auto"
    return wall, cpu, res.summary, res.timings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=261)
    ap.add_argument("--markers", type=int, default=3000)
    ap.add_argument("--traits", type=int, default=200)
    ap.add_argument("--patterns", default="1,10,50,200")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()

    from threadpoolctl import threadpool_info

    from bench_many_traits import FOUNDERS, simulate_do_probs
    from lmmcore.genotypes import Genotypes

    print("BLAS: " + "; ".join(f"{i.get('internal_api')} {i.get('version')} kernel {i.get('architecture')}, "
                               f"{i.get('num_threads')} thread(s)" for i in threadpool_info()))
    n, T = args.n, args.traits
    probs, markers, chrom, pos = simulate_do_probs(n, args.markers, 6, 1)
    ids = tuple(f"i{i}" for i in range(n))
    g = Genotypes(ids=ids, markers=tuple(markers), chromosome=tuple(chrom), position=pos, probs=probs,
                  genotype_names=FOUNDERS)
    rng = np.random.default_rng(2)
    Y = pd.DataFrame(rng.normal(size=(n, T)), index=list(ids), columns=[f"t{j}" for j in range(T)])
    covar = pd.DataFrame({"sex": rng.integers(0, 2, n)}, index=list(ids))
    print(f"{n} mice, {args.markers} markers x 8 founders, LOCO, {T} traits, --summary max")
    for k in (int(x) for x in args.patterns.split(",")):
        pheno = Y.copy()
        for j in range(T):
            if k > 1 and j % k:
                pheno.iloc[np.random.default_rng(j % k).choice(n, 2, replace=False), j] = np.nan
        best = {}
        for _ in range(max(1, args.repeat)):
            for mode in ("never", "auto"):
                wall, cpu, summary, timings = _scan_once(g, pheno, covar, mode)
                old = best.get(mode)
                best[mode] = (min(wall, old[0]) if old else wall, min(cpu, old[1]) if old else cpu, summary, timings)
        a, b = best["never"][2], best["auto"][2]
        diff = float(np.max(np.abs(a["lod"].to_numpy() - b["lod"].to_numpy())))
        same_pos = bool((a["marker"].to_numpy() == b["marker"].to_numpy()).all())
        for mode in ("never", "auto"):
            wall, cpu, _, timings = best[mode]
            stages = ", ".join(f"{s} {timings[s]:.2f}" for s in ("eigen", "null", "rotate", "scan"))
            print(f"  {k:4d} patterns, {mode:5s}: {wall:7.2f} s wall {cpu:7.2f} s CPU  ({stages})")
        print(f"RATIO {k} patterns: per-pattern / shared = {best['never'][0] / best['auto'][0]:.1f} x wall, "
              f"{best['never'][1] / best['auto'][1]:.1f} x CPU; max |d LOD| {diff:.1e}, same maximum markers: {same_pos}")


if __name__ == "__main__":
    main()

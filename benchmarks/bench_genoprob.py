"""Speed of the HMM genotype probabilities (lmmcore.genoprob) against R/qtl2's calc_genoprob.

Crosses:

* ``DOex``: R/qtl2's Diversity Outbred example (261 mice, 3 chromosomes,
  322 markers), given as a path to ``DOex.zip``;
* ``sim``: a simulated DO cross (default 500 mice, 10,000 markers on 19
  autosomes and X, both sexes, generations 4..12): founder SNP alleles at
  random frequencies, each mouse's chromosomes mosaics of the 8 founders with
  Poisson crossovers (rate growing with the generation), 1% missing calls and
  0.2% errors; written as an R/qtl2 zip so that R reads the same cross.

For each cross: lmmcore's wall and CPU time with 1 and 2 threads
(``cores``) and peak resident memory (each in a fresh process); R/qtl2's
``calc_genoprob(cross, error_prob = 0.002, cores = 2)`` wall and CPU time
(its own plus its forked workers') via Rscript, when R/qtl2 is installed;
the ratios of the wall times; and the largest absolute difference between
the two sets of probabilities (on chromosomes 1, 2 and X). On a shared
machine compare the CPU times too: wall times include waiting for the cores.

Run (unset OpenBLAS overrides so that the BLAS picks its own kernel)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_genoprob.py \\
        --doex /work/shared/data/qtl2/DOex.zip [--n 500 --markers 10000] [--no-r]
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
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ALLELES = "ABCDEFGH"


def simulate_do(path: Path, n: int, n_markers: int, seed: int = 1) -> None:
    """Write a simulated DO cross as an R/qtl2 zip (JSON control file)."""
    rng = np.random.default_rng(seed)
    chroms = [str(c) for c in range(1, 20)] + ["X"]
    lengths = np.r_[np.linspace(100, 60, 19), 70.0]
    per_chr = np.maximum(2, np.round(n_markers * lengths / lengths.sum())).astype(int)
    per_chr[-1] += n_markers - per_chr.sum()
    ngen = rng.choice(np.arange(4, 13), n)
    female = rng.random(n) < 0.5
    ids = [f"m{i:04d}" for i in range(n)]
    gmap_rows, fg_rows, geno_cols, geno_names = [], [], [], []
    for c, length, m in zip(chroms, lengths, per_chr):
        pos = np.sort(rng.uniform(0, length, m)).round(4)
        names = [f"snp{c}_{k}" for k in range(m)]
        gmap_rows += list(zip(names, [c] * m, pos))
        maf = rng.uniform(0.05, 0.5, m)
        fg = np.where(rng.random((8, m)) < maf, 3, 1)  # founders' alleles (1 or 3)
        fg_rows.append(np.array(["-", "A", "H", "B"])[fg.T])

        def mosaic(rate):
            """Founder index along the chromosome for each mouse: Poisson switches."""
            out = np.empty((n, m), dtype=int)
            out[:, 0] = rng.integers(0, 8, n)
            d = np.diff(pos) / 100
            for k in range(1, m):
                switch = rng.random(n) < (1 - np.exp(-rate * d[k - 1]))
                out[:, k] = np.where(switch, rng.integers(0, 8, n), out[:, k - 1])
            return out

        rate = 1.0 + ngen / 2  # crossovers accumulate over generations
        h1 = mosaic(rate)
        a1 = fg[h1, np.arange(m)]
        if c == "X":
            h2 = mosaic(rate)
            a2 = np.where(female[:, None], fg[h2, np.arange(m)], a1)  # males hemizygous
        else:
            a2 = fg[mosaic(rate), np.arange(m)]
        g = (a1 + a2) // 2  # 1, 2 or 3
        err = rng.random((n, m)) < 0.002
        g = np.where(err, rng.integers(1, 4, (n, m)), g)
        g[rng.random((n, m)) < 0.01] = 0
        geno_cols.append(np.array(["-", "A", "H", "B"])[g])
        geno_names += names
    control = {
        "crosstype": "do", "sep": ",", "na.strings": ["-", "NA"],
        "geno": "geno.csv", "founder_geno": "foundergeno.csv", "gmap": "gmap.csv",
        "pheno": "pheno.csv", "covar": "covar.csv", "alleles": list(ALLELES), "x_chr": "X",
        "genotypes": {"A": 1, "H": 2, "B": 3}, "founder_geno_transposed": True,
        "sex": {"covar": "Sex", "male": "male", "female": "female"}, "cross_info": {"covar": "ngen"},
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("sim.json", json.dumps(control) + "\n")
        z.writestr("geno.csv", pd.DataFrame(np.hstack(geno_cols), index=pd.Index(ids, name="id"),
                                            columns=geno_names).to_csv())
        z.writestr("foundergeno.csv", pd.DataFrame(np.vstack(fg_rows), index=pd.Index(geno_names, name="marker"),
                                                   columns=list(ALLELES)).to_csv())
        z.writestr("gmap.csv", pd.DataFrame(gmap_rows, columns=["marker", "chr", "pos"]).to_csv(index=False))
        z.writestr("pheno.csv", pd.DataFrame({"y": rng.normal(size=n)}, index=pd.Index(ids, name="id")).to_csv())
        z.writestr("covar.csv", pd.DataFrame({"Sex": np.where(female, "female", "male"), "ngen": ngen},
                                             index=pd.Index(ids, name="id")).to_csv())


CHILD = r"""
import json, resource, sys, time
import numpy as np
sys.path.insert(0, {root!r})
sys.path.insert(0, {tests!r})
from threadpoolctl import threadpool_info
import lmmcore
from lmmcore.hmm import genoprob
cross = lmmcore.read_cross({zip!r})
t0, c0 = time.perf_counter(), time.process_time()
g = genoprob(cross, error_prob=0.002, cores={cores})
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
keep = np.isin(np.array(g.chromosome), ["1", "2", "X"])
np.save({npy!r}, g.probs[:, keep])
json.dump({{"wall": wall, "cpu": cpu, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "blas": [(d["internal_api"], d.get("architecture"), d["num_threads"]) for d in threadpool_info()],
            "ids": list(g.ids), "markers": [m for m, k in zip(g.markers, keep) if k],
            "genotypes": list(g.genotype_names)}},
          open({js!r}, "w"))
"""

R_SCRIPT = r"""
suppressMessages(library(qtl2))
cross <- read_cross2("{zip}")
t <- system.time(pr <- calc_genoprob(cross, error_prob=0.002, cores=2))
cpu <- sum(t[c("user.self", "sys.self", "user.child", "sys.child")], na.rm=TRUE)
cat(t[["elapsed"]], cpu, "\n", file="{time}")
ids <- rownames(pr[[1]])
for(chr in intersect(names(pr), c("1", "2", "X"))) {{  # enough to compare; all chromosomes are timed
  a <- pr[[chr]]
  writeBin(as.vector(aperm(a, c(1, 3, 2))), paste0("{out}", "_", chr, ".bin"))
  writeLines(c(dimnames(a)[[2]]), paste0("{out}", "_", chr, ".geno"))
  writeLines(c(dimnames(a)[[3]]), paste0("{out}", "_", chr, ".markers"))
}}
writeLines(ids, "{out}_ids")
"""


def run_ours(zip_path: Path, work: Path, cores: int) -> dict:
    code = CHILD.format(root=str(ROOT), tests=str(ROOT / "tests"), zip=str(zip_path), cores=cores,
                        npy=str(work / "ours.npy"), js=str(work / "ours.json"))
    subprocess.run([sys.executable, "-c", code], check=True)
    info = json.loads((work / "ours.json").read_text())
    info["probs"] = np.load(work / "ours.npy")
    return info


def run_r(zip_path: Path, work: Path) -> dict | None:
    if shutil.which("Rscript") is None or subprocess.run(
        ["Rscript", "-e", "library(qtl2)"], capture_output=True
    ).returncode != 0:
        return None
    script = R_SCRIPT.format(zip=zip_path, time=work / "r_time", out=work / "r")
    subprocess.run(["Rscript", "-e", script], check=True)
    wall, cpu = map(float, (work / "r_time").read_text().split())
    return {"wall": wall, "cpu": cpu}


def max_diff(ours: dict, work: Path) -> float:
    """Largest |ours - R| over every chromosome's own genotypes (R writes ind x pos x geno, column-major)."""
    ids = (work / "r_ids").read_text().split()
    rows = [ours["ids"].index(i) for i in ids]
    mi = {m: k for k, m in enumerate(ours["markers"])}
    gi = {g: k for k, g in enumerate(ours["genotypes"])}
    worst = 0.0
    for f in sorted(work.glob("r_*.bin")):
        stem = str(f)[:-4]
        genos = Path(stem + ".geno").read_text().split()
        markers = Path(stem + ".markers").read_text().split()
        theirs = np.fromfile(f, dtype="<f8").reshape(len(ids), len(markers), len(genos), order="F")
        mine = ours["probs"][rows][:, [mi[m] for m in markers]][:, :, [gi[g] for g in genos]]
        worst = max(worst, float(np.abs(mine - theirs).max()))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--doex", type=Path, default=Path("/work/shared/data/qtl2/DOex.zip"))
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--markers", type=int, default=10_000)
    ap.add_argument("--no-r", action="store_true", help="time lmmcore only")
    ap.add_argument("--skip-doex", action="store_true")
    args = ap.parse_args()
    os.environ.pop("OPENBLAS_CORETYPE", None)
    os.environ.pop("OPENBLAS_L2_SIZE", None)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        crosses = []
        if not args.skip_doex and args.doex.exists():
            crosses.append(("DOex", args.doex))
        sim = tmp / "sim.zip"
        t0 = time.perf_counter()
        simulate_do(sim, args.n, args.markers)
        print(f"simulated DO cross: {args.n} mice x {args.markers} markers ({time.perf_counter() - t0:.1f} s)")
        crosses.append((f"sim {args.n}x{args.markers}", sim))
        print(f"{'cross':<18} {'lmmcore 1 core':>14} {'(cpu)':>8} {'2 cores':>8} {'peak MB':>8} "
              f"{'R/qtl2 2 cores (cpu)':>21} {'ratio 1c':>8} {'ratio 2c':>8} {'max |diff|':>11}", flush=True)
        for name, path in crosses:
            work = tmp / name.replace(" ", "_")
            work.mkdir()
            ours = run_ours(path, work, 1)
            ours2 = run_ours(path, work, 2)
            r = None if args.no_r else run_r(path, work)
            rt = f"{r['wall']:.2f} s ({r['cpu']:.1f})" if r else "n/a"
            ratio1 = f"{r['wall'] / ours['wall']:.1f}x" if r else "n/a"
            ratio2 = f"{r['wall'] / ours2['wall']:.1f}x" if r else "n/a"
            diff = f"{max_diff(ours, work):.1e}" if r else "n/a"
            print(f"{name:<18} {ours['wall']:>12.2f} s {ours['cpu']:>6.2f} s {ours2['wall']:>6.2f} s "
                  f"{max(ours['peak_mb'], ours2['peak_mb']):>8.0f} {rt:>21} {ratio1:>8} {ratio2:>8} {diff:>11}", flush=True)
        print("BLAS:", ours["blas"])


if __name__ == "__main__":
    main()

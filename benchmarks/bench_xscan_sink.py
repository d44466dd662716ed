"""A many-trait scan of a cross with an X chromosome into a sink: peak memory and time, this tree against a base.

A simulated F2 intercross in R/qtl2's union layout (autosomes ``SS, SB, BB``;
X ``SS, SB, BS, BB, SY, BY``; both sexes and both cross directions):
``--n`` individuals (default 300), ``--markers`` markers (default 5,000) on
``--chromosomes`` chromosomes (default 20, the last one X), ``--traits``
normal traits (default 500), LOCO kinships, the X covariates of
:func:`lmmcore.xchr.x_covariates` (sex; direction among females). Each
(code version, sink) runs in its own Python process, which reports its wall
and CPU seconds for ``scan(..., x_chr=("X",), sink=...)`` and its peak
resident memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) before and
after the scan; the growth is what the scan added on top of the inputs.

Sinks: ``max`` (:class:`~lmmcore.scan_sink.MaxSink`, ``--summary max``) and
``parquet`` (:class:`~lmmcore.scan_sink.ParquetSink`, ``--format parquet``).
The base is ``--base-rev`` (default: the commit before the streamed X scan)
exported with ``git archive`` into a temporary folder; the outputs of the two
versions are compared (the summary: the same maxima, LODs to 1e-10, since
the summary skips the autosomes' effects; the Parquet file sorted by
phenotype and marker, exactly). Run as::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_xscan_sink.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE_REV = "5cffd93"

_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np, pandas as pd
import lmmcore
from lmmcore.genotypes import Genotypes
from lmmcore.scan import scan
from lmmcore.scan_sink import MaxSink, ParquetSink

n, m, n_chr, T, seed = (int(a) for a in sys.argv[2:7])
kind, out = sys.argv[7], sys.argv[8]
rng = np.random.default_rng(seed)
female = np.arange(n) % 2 == 0
reverse = (np.arange(n) // 2) % 2 == 1
names = ("SS", "SB", "BB", "BS", "SY", "BY")
per = np.full(n_chr, m // n_chr)
per[: m - per.sum()] += 1
probs = np.zeros((n, m, 6))
chrom, pos, start = [], [], 0
rows = np.arange(n)
for c, mc in enumerate(per):
    is_x = c == n_chr - 1
    label = "X" if is_x else str(c + 1)
    haps = rng.integers(0, 2, size=(2, n))  # 0 = S, 1 = B
    for j in range(mc):  # data generation only: a Markov chain along the chromosome
        haps = np.where(rng.random((2, n)) < 0.02, 1 - haps, haps)
        if not is_x:
            code = haps[0] + haps[1]  # SS, SB, BB
        else:  # females: maternal x paternal (SB vs BS by the parent's allele); males: hemizygous
            fem = np.array([0, 1, 3, 2])[2 * haps[0] + haps[1]]  # SS, SB, BS, BB -> union columns
            fem = np.where(reverse & (fem == 1), 3, np.where(reverse & (fem == 3), 1, fem))
            code = np.where(female, fem, 4 + haps[0])
        p = np.zeros((n, 6))
        p[rows, code] = 1.0
        blur = np.zeros((n, 6))
        if not is_x:
            blur[:, :3] = 1.0 / 3
        else:
            blur[female, :4] = 0.25
            blur[~female, 4:] = 0.5
        probs[:, start + j] = 0.97 * p + 0.03 * blur
    chrom += [label] * mc
    pos += list(np.linspace(0.0, 90.0, mc))
    start += mc
ids = tuple(f"i{i}" for i in range(n))
g = Genotypes(ids=ids, markers=tuple(f"m{j}" for j in range(m)), chromosome=tuple(chrom),
              position=np.asarray(pos), probs=probs, genotype_names=names, source="simulated F2",
              genotypes_by_chr={c: (names[:3] if c != "X" else ("SS", "SB", "BS", "BB", "SY", "BY"))
                                for c in dict.fromkeys(chrom)})
pheno = pd.DataFrame(rng.normal(size=(n, T)), index=list(ids), columns=[f"t{k:04d}" for k in range(T)])
xcovar = pd.DataFrame({"sex": (~female).astype(float), "direction": (reverse & female).astype(float)},
                      index=list(ids))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sink = MaxSink() if kind == "max" else ParquetSink(out, force=True)
t0, c0 = time.perf_counter(), time.process_time()
res = scan(g, pheno, kinship="loco", x_chr=("X",), xcovar=xcovar, sink=sink)
if kind == "parquet":
    sink.close(True)
else:
    res.summary.to_csv(out, index=False)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
from threadpoolctl import threadpool_info
blas = "; ".join(f"{i.get('internal_api')} {i.get('architecture')} threads={i.get('num_threads')}"
                 for i in threadpool_info())
print("RESULT " + json.dumps(dict(wall=wall, cpu=cpu, rss_before=before / 1024, rss_after=after / 1024,
                                  blas=blas)))
"""


def _child(src: Path, args, kind: str, out: Path) -> dict:
    cmd = [sys.executable, "-c", _CHILD, str(src), str(args.n), str(args.markers), str(args.chromosomes),
           str(args.traits), str(args.seed), kind, str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def _same_outputs(kind: str, base: Path, new: Path) -> str:
    import pandas as pd
    from pandas.testing import assert_frame_equal

    if kind == "max":  # since the summary skips the autosomes' effects (LOD-only kernel) its LODs move by ~1e-14
        if base.read_bytes() == new.read_bytes():
            return "identical bytes"
        a, b = pd.read_csv(base), pd.read_csv(new)
        text = [c for c in a.columns if c != "lod"]
        if list(a.columns) != list(b.columns) or not a[text].equals(b[text]):
            return "DIFFERENT (phenotypes, chromosomes, positions or markers)"
        diff = float((a["lod"] - b["lod"]).abs().max())
        return f"same maxima (markers, positions); LOD max |diff| {diff:.1e}" if diff < 1e-10 else \
            f"DIFFERENT: LOD max |diff| {diff:.1e}"
    a, b = pd.read_parquet(base), pd.read_parquet(new)
    key = ["phenotype", "_m"]
    order = {mk: j for j, mk in enumerate(dict.fromkeys(a["marker"]))}
    a, b = (t.assign(_m=t["marker"].map(order)).sort_values(key, kind="stable").drop(columns="_m")
            .reset_index(drop=True) for t in (a, b))
    try:
        assert_frame_equal(a, b, check_exact=True)
    except AssertionError as err:
        return f"DIFFERENT: {str(err)[:200]}"
    return "identical rows (sorted by phenotype and marker)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--markers", type=int, default=5000)
    parser.add_argument("--chromosomes", type=int, default=20)
    parser.add_argument("--traits", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--base-rev", default=BASE_REV, help="git revision to compare with ('' for none)")
    parser.add_argument("--sinks", default="max,parquet")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        versions = {"this tree": ROOT}
        if args.base_rev:
            base = tmp / "base"
            base.mkdir()
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.base_rev, "lmmcore"],
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
            versions = {f"base {args.base_rev}": base, "this tree": ROOT}
        print(f"simulated F2 with X: n = {args.n}, {args.markers} markers on {args.chromosomes} chromosomes, "
              f"{args.traits} traits, LOCO kinships")
        results = {}
        for kind in args.sinks.split(","):
            for label, src in versions.items():
                out = tmp / f"{kind}_{label.split()[0]}.{'csv' if kind == 'max' else 'parquet'}"
                r = _child(src, args, kind, out)
                results[kind, label] = (r, out)
                print(f"{kind:8s} {label:14s} wall {r['wall']:7.2f} s  cpu {r['cpu']:7.2f} s  peak RSS "
                      f"{r['rss_after']:8.1f} MiB  (inputs {r['rss_before']:7.1f} MiB, scan added "
                      f"{r['rss_after'] - r['rss_before']:7.1f} MiB)", flush=True)
        print("BLAS:", next(iter(results.values()))[0]["blas"])
        if len(versions) == 2:
            old, new = versions
            for kind in args.sinks.split(","):
                (a, pa), (b, pb) = results[kind, old], results[kind, new]
                grow_a, grow_b = a["rss_after"] - a["rss_before"], b["rss_after"] - b["rss_before"]
                print(f"{kind}: memory added by the scan {grow_a:.0f} -> {grow_b:.0f} MiB "
                      f"({grow_a / max(grow_b, 1e-9):.1f}x less), peak RSS {a['rss_after']:.0f} -> "
                      f"{b['rss_after']:.0f} MiB, wall {a['wall']:.1f} -> {b['wall']:.1f} s, cpu {a['cpu']:.1f} -> "
                      f"{b['cpu']:.1f} s; outputs: {_same_outputs(kind, pa, pb)}")


if __name__ == "__main__":
    main()

"""The command line from a cross, side by side with R/qtl2: genotype probabilities and the whole scan path.

For each cross given (R/qtl2 zips, e.g. ``iron.zip`` and ``DOex.zip``):

* ``genoprob``: ``lmmcore genoprob --cross Z --error-prob 0.002 --cores 2
  --out P.h5`` (the whole command in a fresh process: start-up, reading the
  cross, the HMM, writing), and inside it the time of
  ``lmmcore.genoprob(cross, error_prob=0.002, cores=2)`` alone; against R/qtl2's
  ``system.time(calc_genoprob(x, error_prob = 0.002, cores = 2))``.
* ``path`` (crosses with phenotypes; DOex): ``lmmcore scan --cross Z --alleles
  --kinship loco --covar-columns Sex --error-prob 0.002 --cores 2`` (the whole
  command) against R/qtl2's ``read_cross2``, ``calc_genoprob``,
  ``genoprob_to_alleleprob``, ``calc_kinship(type = "loco")`` and ``scan1``
  with the kinship and sex as additive covariate (``cores = 2``), in two
  like-for-like pairs: *whole process against whole process* (the lmmcore
  command in a fresh Python against ``Rscript`` from its start, with
  ``library(qtl2)``, reading the cross, the path and writing the LODs to a
  CSV) and *in process against in process* (lmmcore's command run a second
  time in one process, without Python's start-up and imports, against R's
  path timed from ``read_cross2`` to the end of ``scan1`` after
  ``library(qtl2)``); and the largest LOD difference (R/qtl2 0.43-5 and
  lmmcore agree to ~1e-7).

Wall and CPU seconds are both reported (CPU: user + system, R's own and its
forked workers'); on a shared, loaded machine the wall times mostly measure
waiting for a core, and the first call of a Python process pays for imports,
so ``lmmcore_genoprob_s`` is timed after a warm-up call (as R's after
``library(qtl2)``) while the ``*_command_s`` and ``path`` times are whole
commands, start-up included; ``path_inprocess`` is the same scan command run
a second time in one process (R's path is likewise timed after
``library(qtl2)``, without R's start-up), and ``rqtl2_path_process_s`` is
R's whole process (``Rscript`` of the path alone: start-up, ``library(qtl2)``,
reading, the path, writing). lmmcore's commands are run ``--repeat`` times
(best of, wall and CPU separately); R once. Peak resident memory of each lmmcore command is
reported. lmmcore's bytecode is compiled first, as ``pip install`` does; the
BLAS kernel that numpy loads is printed (threadpoolctl); the last lines
(``RATIO``) give R/qtl2 / lmmcore in wall and CPU seconds. Without Rscript
or R/qtl2 the R columns are skipped with a message. Run with the OpenBLAS
overrides unset, as for R::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_cross.py \\
        /work/shared/data/qtl2/iron.zip /work/shared/data/qtl2/DOex.zip
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent

#: Runs a CLI command as the program runs it (main() reads sys.argv) and prints its peak memory (KiB) on stderr.
_CLI = ("import resource, sys; sys.path.insert(0, {root!r}); from lmmcore.cli import main; rc = main(); "
        "u = resource.getrusage(resource.RUSAGE_SELF); "
        "print('maxrss', u.ru_maxrss, u.ru_utime + u.ru_stime, file=sys.stderr); sys.exit(rc)")

#: lmmcore.genoprob alone, after a warm-up call on the first chromosome (imports, thread pools), as R's
#: calc_genoprob is timed after library(qtl2): wall and CPU seconds.
_HMM_ONLY = ("import sys, time, json; sys.path.insert(0, {root!r}); import lmmcore; "
             "x = lmmcore.read_cross(sys.argv[1]); cores = int(sys.argv[2]); "
             "lmmcore.genoprob(x, error_prob=0.002, cores=cores, chromosomes=x.chromosomes[:1]); "
             "t, c = time.perf_counter(), time.process_time(); lmmcore.genoprob(x, error_prob=0.002, cores=cores); "
             "print(json.dumps({{'wall': time.perf_counter() - t, 'cpu': time.process_time() - c}}))")

#: The whole scan command run twice in one process; the second run is timed (wall, CPU): the same work as
#: R/qtl2's timed path (read_cross2 to scan1, after library(qtl2)), without Python's start-up and imports.
_PATH_WARM = ("import sys, time, json; sys.path.insert(0, {root!r}); from lmmcore.cli import main; "
              "argv = json.loads(sys.argv[1]); main(argv); "
              "t, c = time.perf_counter(), time.process_time(); main(argv); "
              "print(json.dumps({{'wall': time.perf_counter() - t, 'cpu': time.process_time() - c}}))")

#: R/qtl2's whole path, from the cross file to the LODs (``zip``: the cross; ends with ``apr`` and ``out1``).
_R_PATH = r"""
x <- read_cross2(zip, quiet = TRUE)
pr <- calc_genoprob(x, error_prob = 0.002, cores = 2)
apr <- genoprob_to_alleleprob(pr, cores = 2)
k <- calc_kinship(apr, type = "loco", cores = 2)
sex <- (x$covar$Sex == "male") * 1
names(sex) <- rownames(x$covar)
out1 <- scan1(apr, x$pheno, kinship = k, addcovar = cbind(Sex = sex), cores = 2)
"""

_R = r"""
suppressPackageStartupMessages(library(qtl2))
args <- commandArgs(trailingOnly = TRUE)
zip <- args[1]; out <- args[2]; path <- args[3] == "path"
t_read <- system.time(x <- read_cross2(zip, quiet = TRUE))[["elapsed"]]
st <- system.time(pr <- calc_genoprob(x, error_prob = 0.002, cores = 2))
cpu <- function(st) sum(st[c(1, 2, 4, 5)], na.rm = TRUE)  # own and forked workers' user + system
res <- c(read = t_read, genoprob = st[["elapsed"]], genoprob_cpu = cpu(st))
if (path) {
  t0 <- proc.time()""" + _R_PATH + r"""  st <- proc.time() - t0
  res <- c(res, path = st[["elapsed"]], path_cpu = cpu(st))
  markers <- unlist(lapply(apr, function(a) dimnames(a)[[3]]))
  write.csv(data.frame(marker = markers, out1, check.names = FALSE), paste0(out, "_lod.csv"), row.names = FALSE)
}
writeLines(paste(names(res), res, sep = "="), paste0(out, "_times.txt"))
"""

#: The whole path alone, for timing R as a whole process (Rscript's start-up and library(qtl2) included).
_R_PROCESS = r"""
suppressPackageStartupMessages(library(qtl2))
args <- commandArgs(trailingOnly = TRUE)
zip <- args[1]""" + _R_PATH + r"""write.csv(out1, args[2])
"""


def _env() -> dict:
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    return env


def _process(cmd: list[str]) -> tuple[float, float, float]:
    """Wall and CPU seconds (user + system, the process's and its waited-for children's) of a whole process,
    and the peak resident memory (MiB) of it or of its largest waited-for child (``wait4``)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err.decode(errors='replace')[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def _best(runs: list[tuple]) -> tuple:
    """The smallest of each field over runs (timings on a shared machine only err upwards)."""
    return tuple(min(values) for values in zip(*runs))


def _cli(argv: list[str], repeat: int = 1) -> tuple[float, float, float]:
    """Wall time (s), peak memory (MiB) and CPU time (s) of one ``lmmcore`` command in a fresh process (best of)."""
    return _best([_cli_once(argv) for _ in range(max(1, repeat))])


def _cli_once(argv: list[str]) -> tuple[float, float, float]:
    """The CPU time is the child's whole (its exit included, as R's), from this process's RUSAGE_CHILDREN."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CLI.format(root=str(ROOT)), *argv], env=_env(),
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"lmmcore {' '.join(argv)} failed:\n{done.stderr}")
    rss = [line for line in done.stderr.splitlines() if line.startswith("maxrss")]
    fields = rss[-1].split()
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, int(fields[1]) / 1024, cpu


def _compile_bytecode() -> None:
    """Compile lmmcore's bytecode, as ``pip install`` does (an editable install with
    ``PYTHONDONTWRITEBYTECODE`` would otherwise compile every module in every command)."""
    import compileall

    compileall.compile_dir(str(ROOT / "lmmcore"), quiet=1)


def _blas_kernel() -> str:
    """The BLAS that numpy loads in a child process (threadpoolctl), with the OpenBLAS overrides unset."""
    code = ("import json, numpy, threadpoolctl; print(json.dumps([(d.get('internal_api'), d.get('version'), "
            "d.get('architecture'), d.get('num_threads')) for d in threadpoolctl.threadpool_info()]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env())
    if done.returncode != 0:
        return "unknown (threadpoolctl failed)"
    return "; ".join(f"{a} {v} kernel {k}, {t} thread(s)" for a, v, k, t in json.loads(done.stdout))


def _r_available() -> str | None:
    if shutil.which("Rscript") is None:
        return "Rscript is not on the PATH"
    check = subprocess.run(["Rscript", "-e", "library(qtl2)"], capture_output=True, text=True, env=_env())
    return None if check.returncode == 0 else "R/qtl2 is not installed (../shared/peers/install-rqtl2.sh)"


def _has_sex_and_pheno(zip_path: Path) -> bool:
    sys.path.insert(0, str(ROOT))
    import lmmcore

    x = lmmcore.read_cross(zip_path)
    return x.pheno.shape[1] > 0 and x.covar is not None and "Sex" in x.covar.columns


def bench_process(zip_path: Path, work: Path, cores: int, with_r: bool, repeat: int = 1) -> dict:
    """The whole path only, whole process against whole process (``--process-only``: R runs once).

    For large crosses, where R/qtl2's path takes tens of minutes and running it
    twice (in process and as a whole process) would double that.
    """
    name = zip_path.stem
    res: dict = {"cross": name}
    _path_process(res, zip_path, work, cores, repeat)
    if with_r:
        _r_path_process(res, zip_path, work, compare=True)
    return res


def _scan_argv(zip_path: Path, cores: int, out: Path) -> list[str]:
    """The whole path as one lmmcore command: cross -> allele probabilities -> LOCO kinships -> scan."""
    return ["scan", "--cross", str(zip_path), "--alleles", "--kinship", "loco", "--covar-columns", "Sex",
            "--error-prob", "0.002", "--cores", str(cores), "--quiet", "--force", "--out", str(out)]


def _path_process(res: dict, zip_path: Path, work: Path, cores: int, repeat: int) -> None:
    """lmmcore's whole path in a fresh process (best of ``repeat``), written to ``<cross>_scan.csv``."""
    out = work / f"{zip_path.stem}_scan.csv"
    wall, rss, cpu = _cli(_scan_argv(zip_path, cores, out), repeat)
    res["lmmcore_path_s"], res["lmmcore_path_cpu_s"], res["lmmcore_path_peak_mib"] = wall, cpu, rss


def _r_path_process(res: dict, zip_path: Path, work: Path, compare: bool) -> None:
    """R/qtl2's whole path as an ``Rscript`` whole process, its ratios to ours, and (``compare``) the LODs."""
    whole = work / "bench_cross_process.R"
    whole.write_text(_R_PROCESS)
    lod = work / f"{zip_path.stem}_process_lod.csv"
    wall, cpu, peak = _process(["Rscript", str(whole), str(zip_path), str(lod)])
    res["rqtl2_path_process_s"], res["rqtl2_path_process_cpu_s"] = wall, cpu
    res["rqtl2_path_process_peak_mib"] = peak
    res["ratio_path_process"] = wall / res["lmmcore_path_s"]
    res["ratio_path_process_cpu"] = cpu / res["lmmcore_path_cpu_s"]
    if compare:
        theirs = pd.read_csv(lod, index_col=0)  # write.csv(out1): markers as row names
        theirs.index = theirs.index.astype(str)
        res.update(_lod_diff(work / f"{zip_path.stem}_scan.csv", theirs.rename_axis("marker").reset_index()))


def _lod_diff(ours_csv: Path, theirs: pd.DataFrame) -> dict:
    """Markers compared and the largest |LOD difference| between our long table and R's wide one (marker column)."""
    ours = pd.read_csv(ours_csv, dtype={"marker": str, "phenotype": str})
    long = theirs.melt(id_vars="marker", var_name="phenotype", value_name="lod_r")
    both = ours.merge(long, on=["marker", "phenotype"])
    return {"lod_markers_compared": int(len(both)), "lod_max_abs_diff": float(np.abs(both["lod"] - both["lod_r"]).max())}


def bench(zip_path: Path, work: Path, cores: int, with_r: bool, repeat: int = 1) -> dict:
    name = zip_path.stem
    res: dict = {"cross": name}
    wall, rss, cpu = _cli(["genoprob", "--cross", str(zip_path), "--error-prob", "0.002", "--cores", str(cores),
                           "--quiet", "--force", "--out", str(work / f"{name}.h5")], repeat)
    res["lmmcore_genoprob_command_s"], res["lmmcore_genoprob_command_cpu_s"] = wall, cpu
    res["lmmcore_genoprob_peak_mib"] = rss
    inner = subprocess.run([sys.executable, "-c", _HMM_ONLY.format(root=str(ROOT)), str(zip_path), str(cores)],
                           env=_env(), capture_output=True, text=True, check=True)
    hmm = json.loads(inner.stdout)
    res["lmmcore_genoprob_s"], res["lmmcore_genoprob_cpu_s"] = hmm["wall"], hmm["cpu"]
    path = _has_sex_and_pheno(zip_path)
    if path:
        _path_process(res, zip_path, work, cores, repeat)
        argv = _scan_argv(zip_path, cores, work / "warm.csv")
        warm = []
        for _ in range(max(1, repeat)):
            done = subprocess.run([sys.executable, "-c", _PATH_WARM.format(root=str(ROOT)), json.dumps(argv)],
                                  env=_env(), capture_output=True, text=True, check=True)
            inproc = json.loads(done.stdout.strip().splitlines()[-1])
            warm.append((inproc["wall"], inproc["cpu"]))
        res["lmmcore_path_inprocess_s"], res["lmmcore_path_inprocess_cpu_s"] = _best(warm)
    if with_r:
        script = work / "bench_cross.R"
        script.write_text(_R)
        subprocess.run(["Rscript", str(script), str(zip_path), str(work / name), "path" if path else "genoprob"],
                       env=_env(), check=True, capture_output=True)
        times = dict(line.split("=") for line in (work / f"{name}_times.txt").read_text().split())
        res["rqtl2_genoprob_s"] = float(times["genoprob"])
        res["rqtl2_genoprob_cpu_s"] = float(times["genoprob_cpu"])
        res["ratio_genoprob_cpu"] = res["rqtl2_genoprob_cpu_s"] / res["lmmcore_genoprob_cpu_s"]
        res["ratio_genoprob"] = res["rqtl2_genoprob_s"] / res["lmmcore_genoprob_s"]
        res["ratio_genoprob_command"] = res["rqtl2_genoprob_s"] / res["lmmcore_genoprob_command_s"]
        if path:
            res["rqtl2_path_s"] = float(times["path"])
            res["ratio_path"] = res["rqtl2_path_s"] / res["lmmcore_path_s"]
            res["rqtl2_path_cpu_s"] = float(times["path_cpu"])
            res["ratio_path_cpu"] = res["rqtl2_path_cpu_s"] / res["lmmcore_path_cpu_s"]
            res["ratio_path_inprocess"] = res["rqtl2_path_s"] / res["lmmcore_path_inprocess_s"]
            res["ratio_path_inprocess_cpu"] = res["rqtl2_path_cpu_s"] / res["lmmcore_path_inprocess_cpu_s"]
            _r_path_process(res, zip_path, work, compare=False)  # LODs compared with the in-process R run's
            res.update(_lod_diff(work / f"{name}_scan.csv",
                                 pd.read_csv(work / f"{name}_lod.csv", dtype={"marker": str})))
    return res


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("crosses", nargs="*", type=Path, help="R/qtl2 cross zips")
    parser.add_argument("--simulate-do", metavar="N,M",
                        help="also a simulated DO cross of N mice at M markers (benchmarks/bench_genoprob.py's)")
    parser.add_argument("--process-only", action="store_true",
                        help="only the whole path, whole process against whole process (R runs once): for large "
                             "crosses")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--no-r", action="store_true", help="lmmcore only")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each lmmcore command this many times and keep the fastest (default 1; R runs once)")
    args = parser.parse_args(argv)
    why = "--no-r" if args.no_r else _r_available()
    if why:
        print(f"R/qtl2 comparison skipped: {why}", file=sys.stderr)
    _compile_bytecode()
    print(f"numpy's BLAS: {_blas_kernel()}; OpenBLAS overrides unset for lmmcore and R", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        crosses = list(args.crosses)
        if args.simulate_do:
            from bench_genoprob import simulate_do

            n, m = (int(v) for v in args.simulate_do.split(","))
            crosses.append(Path(tmp) / f"sim_do_{n}x{m}.zip")
            simulate_do(crosses[-1], n, m)
        if not crosses:
            parser.error("give cross zips or --simulate-do N,M")
        run = bench_process if args.process_only else bench
        for zip_path in crosses:
            rows.append(run(zip_path, Path(tmp), args.cores, with_r=not why, repeat=args.repeat))
            print(json.dumps(rows[-1]), flush=True)
    table = pd.DataFrame(rows).set_index("cross").T
    print(table.to_string(float_format=lambda v: f"{v:.4g}"), file=sys.stderr)
    for row in rows:
        if "ratio_genoprob" in row:
            print(f"RATIO {row['cross']} calc_genoprob: R/qtl2 / lmmcore = {row['ratio_genoprob']:.1f} x wall, "
                  f"{row['ratio_genoprob_cpu']:.1f} x CPU (target >= 10)", file=sys.stderr)
        if "ratio_path_process" in row and "ratio_path" not in row:
            print(f"RATIO {row['cross']} whole path, whole process vs whole process: R/qtl2 / lmmcore = "
                  f"{row['ratio_path_process']:.1f} x wall, {row['ratio_path_process_cpu']:.1f} x CPU (lmmcore "
                  f"{row['lmmcore_path_s']:.2f} s / {row['lmmcore_path_cpu_s']:.2f} s CPU, peak "
                  f"{row['lmmcore_path_peak_mib']:.0f} MiB; R {row['rqtl2_path_process_s']:.1f} s / "
                  f"{row['rqtl2_path_process_cpu_s']:.1f} s CPU, peak {row['rqtl2_path_process_peak_mib']:.0f} MiB); LOD max |diff| {row['lod_max_abs_diff']:.1e} on "
                  f"{row['lod_markers_compared']} markers", file=sys.stderr)
        if "ratio_path" in row:
            print(f"RATIO {row['cross']} whole path, whole process vs whole process (lmmcore scan --cross ... "
                  f"in a fresh Python; Rscript from its start, library(qtl2) and writing included): R/qtl2 / lmmcore "
                  f"= {row['ratio_path_process']:.1f} x wall, {row['ratio_path_process_cpu']:.1f} x CPU (lmmcore "
                  f"{row['lmmcore_path_s']:.2f} s / {row['lmmcore_path_cpu_s']:.2f} s CPU, R "
                  f"{row['rqtl2_path_process_s']:.2f} s / {row['rqtl2_path_process_cpu_s']:.2f} s CPU; target >= 10)"
                  f"; LOD max |diff| {row['lod_max_abs_diff']:.1e}", file=sys.stderr)
            print(f"RATIO {row['cross']} whole path, in process vs in process (lmmcore's command run a second time "
                  f"in one process; R from read_cross2 to scan1 after library(qtl2)): R/qtl2 / lmmcore = "
                  f"{row['ratio_path_inprocess']:.1f} x wall, {row['ratio_path_inprocess_cpu']:.1f} x CPU (lmmcore "
                  f"{row['lmmcore_path_inprocess_s']:.2f} s / {row['lmmcore_path_inprocess_cpu_s']:.2f} s CPU, R "
                  f"{row['rqtl2_path_s']:.2f} s / {row['rqtl2_path_cpu_s']:.2f} s CPU)", file=sys.stderr)
            print(f"      (mixed pair, as reported before: lmmcore's whole process against R's in-process time: "
                  f"{row['ratio_path']:.1f} x wall, {row['ratio_path_cpu']:.1f} x CPU)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

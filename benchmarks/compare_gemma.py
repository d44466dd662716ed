"""Heritability of the example traits: lmmcore against GEMMA's null-model REML fit.

GEMMA (Debian package ``gemma``) fits ``V = vg K + ve I`` by REML before its
association tests and prints the estimates and the REML log-likelihood
(with all constants, the convention lmmcore uses) in its log file. This script
runs both on ``assets/`` and prints the two side by side.

Usage: ``python benchmarks/compare_gemma.py`` (needs ``gemma`` on the PATH).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import lmmcore

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def gemma_null_fit(work: Path, column: int) -> dict:
    subprocess.run(
        ["gemma", "-bfile", "example", "-k", "K.txt", "-c", "cov.txt", "-p", "pheno.txt",
         "-n", str(column), "-lmm", "1", "-o", f"t{column}"],
        cwd=work, check=True, capture_output=True,
    )
    log = (work / "output" / f"t{column}.log.txt").read_text()

    def grab(label):
        return float(re.search(rf"## {re.escape(label)} = (\S+)", log).group(1))

    vg, ve = grab("vg estimate in the null model"), grab("ve estimate in the null model")
    return {"gemma_h2": vg / (vg + ve), "gemma_reml_loglik": grab("REMLE log-likelihood in the null model"),
            "gemma_vg": vg, "gemma_ve": ve}


def main() -> None:
    if shutil.which("gemma") is None:
        sys.exit("gemma is not installed (apt-get install gemma)")
    data = lmmcore.load_data(ASSETS / "kinship.csv", ASSETS / "pheno.csv", ASSETS / "covar.csv")
    fits = lmmcore.fit_phenotypes(data, method="reml")
    fam = pd.read_csv(ASSETS / "example.fam", sep=r"\s+", header=None)
    ids = fam[1].astype(str).tolist()
    order = [data.ids.index(i) for i in ids]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for ext in ("bed", "bim", "fam"):
            shutil.copy(ASSETS / f"example.{ext}", work)
        np.savetxt(work / "K.txt", data.kinship[np.ix_(order, order)], fmt="%.17g")
        data.phenotypes.iloc[order].to_csv(work / "pheno.txt", sep=" ", header=False, index=False, na_rep="NA")
        sex = (data.covariates["sex"].iloc[order] == "m").astype(float).to_numpy()
        np.savetxt(work / "cov.txt", np.column_stack([np.ones(len(ids)), sex]), fmt="%g")
        rows = []
        for j, fit in enumerate(fits, start=1):
            g = gemma_null_fit(work, j)
            rows.append({"phenotype": fit.phenotype, "lmmcore_h2": fit.h2, **{"gemma_h2": g["gemma_h2"]},
                         "h2_diff": fit.h2 - g["gemma_h2"], "lmmcore_reml_loglik": fit.loglik,
                         "gemma_reml_loglik": g["gemma_reml_loglik"],
                         "loglik_diff": fit.loglik - g["gemma_reml_loglik"]})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    print(f"\nlargest |h2 difference| {table['h2_diff'].abs().max():.2g}; "
          f"largest |loglik difference| {table['loglik_diff'].abs().max():.2g} "
          "(GEMMA prints the log-likelihood to 3 decimals)")


if __name__ == "__main__":
    main()

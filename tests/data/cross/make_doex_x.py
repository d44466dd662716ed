"""Make doex_x.zip: 60 mice of R/qtl2's DOex example (Recla et al. 2014), chromosomes 3 and X.

Run from this folder with the DOex zip of R/qtl2's sample data:
    python make_doex_x.py /work/shared/data/qtl2/DOex.zip
Fifteen mice of each sex and generation (ngen 4 and 5; the first fifteen of each in the file), every
marker of chromosomes 3 and X; the control file is DOex's. For the dashboard's X chromosome tests
(tests/test_app_cross_x.py).
"""

import io
import sys
import zipfile

import pandas as pd

src = zipfile.ZipFile(sys.argv[1])
read = lambda n: pd.read_csv(io.BytesIO(src.read(n)), dtype=str, keep_default_na=False)  # noqa: E731
covar = read("DOex_covar.csv")
ids = covar.groupby(["Sex", "ngen"], sort=True).head(15)["ind"]
ids = covar["ind"][covar["ind"].isin(ids)]  # file order
gmap, pmap = read("DOex_gmap.csv"), read("DOex_pmap.csv")
markers = gmap["marker"][gmap["chr"].isin(["3", "X"])]
geno, founders = read("DOex_geno.csv"), read("DOex_foundergeno.csv")
files = {
    "DOex_geno.csv": geno[geno["ind"].isin(ids)][["ind", *markers]],
    "DOex_foundergeno.csv": founders[founders["marker"].isin(markers)],
    "DOex_gmap.csv": gmap[gmap["marker"].isin(markers)],
    "DOex_pmap.csv": pmap[pmap["marker"].isin(markers)],
    "DOex_pheno.csv": read("DOex_pheno.csv").pipe(lambda d: d[d["ind"].isin(ids)]),
    "DOex_covar.csv": covar[covar["ind"].isin(ids)],
}
with zipfile.ZipFile("doex_x.zip", "w", zipfile.ZIP_DEFLATED) as out:
    out.writestr(zipfile.ZipInfo("DOex.json", (2024, 1, 1, 0, 0, 0)), src.read("DOex.json"))
    for name, frame in files.items():
        out.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), frame.to_csv(index=False))
print(len(ids), "mice,", len(markers), "markers")

"""Server-side speed of the dashboard on n = 1000 simulated individuals.

Measures, without a browser:

* building the initial page: constructing :class:`app.explorer.ExplorerApp`,
  loading the data (eigendecomposition and first fit of every phenotype) and
  rendering the Bokeh models (``get_root``), plus the served template's document;
* switching phenotype after the load (the eigendecomposition is cached), with
  the page rendered so that every view redraws as it would in a session;
* switching ML/REML: the first switch (all phenotypes fitted by the other
  method, decomposition re-used) and later switches (memoised).

Targets: switching < 200 ms; initial page < 3 s.

Run: ``.venv/bin/python benchmarks/bench_app.py [--n 1000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import holoviews as hv  # noqa: E402
import panel as pn  # noqa: E402
from bokeh.document import Document  # noqa: E402

from app.explorer import PANEL_EXTENSIONS, ExplorerApp  # noqa: E402
from app.state import ExplorerState  # noqa: E402
from lmmcore import LMMData, align  # noqa: E402


def simulate(n: int, n_markers: int = 2000, seed: int = 1) -> LMMData:
    """Kinship from random genotypes; five traits (one with 5% missing); a sex covariate."""
    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.1, 0.9, n_markers)
    G = rng.binomial(2, freq, size=(n, n_markers)).astype(float)
    Z = (G - 2 * freq) / np.sqrt(2 * freq * (1 - freq))
    K = Z @ Z.T / n_markers
    d, U = np.linalg.eigh(K)
    d = np.clip(d, 0, None)
    ids = [f"ind{i:05d}" for i in range(n)]
    sex = rng.choice(["f", "m"], n)
    traits = {}
    for h2 in (0.1, 0.3, 0.5, 0.7, 0.9):
        g = U @ (np.sqrt(d) * rng.normal(size=n))
        e = rng.normal(size=n)
        traits[f"h2_{int(h2 * 100):02d}"] = 10 + 0.5 * (sex == "m") + np.sqrt(h2) * g + np.sqrt(1 - h2) * e
    pheno = pd.DataFrame(traits, index=ids)
    pheno.loc[rng.random(n) < 0.05, "h2_50"] = np.nan
    kin = pd.DataFrame(K, index=ids, columns=ids)
    covar = pd.DataFrame({"sex": pd.array(sex, dtype="string")}, index=ids)
    return align(kin, pheno, covar, {"kinship": "sim", "phenotypes": "sim", "covariates": "sim"})


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    pn.extension(*PANEL_EXTENSIONS, notifications=True)
    hv.extension("bokeh", logo=False)
    data = simulate(args.n)
    rows: list[tuple[str, float, str]] = []

    # initial page: construct + load (eigendecomposition, first fit) + render
    builds, roots, docs = [], [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        app = ExplorerApp()
        app.state.load_data(data, "simulated")
        mid = time.perf_counter()
        pn.panel(app).get_root(Document())
        end = time.perf_counter()
        builds.append(end - start)
        roots.append(end - mid)
        docs.append(timed(lambda: app.template().server_doc(Document())))
    rows.append(("initial page: construct + load + get_root", min(builds), "< 3 s"))
    rows.append(("  of which get_root (render the models)", min(roots), ""))
    rows.append(("served template document (server_doc)", min(docs), ""))

    state: ExplorerState = app.state
    names = state.phenotypes
    # phenotype switch, page rendered (profile tab shown), decomposition cached
    first = [timed(lambda p=p: setattr(state, "phenotype", p)) for p in names[1:] + names[:1]]
    again = [timed(lambda p=p: setattr(state, "phenotype", p)) for _ in range(args.repeat) for p in names]
    rows.append(("switch phenotype, first visit (median)", statistics.median(first), "< 200 ms"))
    rows.append(("switch phenotype, revisit (median)", statistics.median(again), "< 200 ms"))

    # method switch
    ml_first = timed(lambda: setattr(state, "method", "ml"))
    back = timed(lambda: setattr(state, "method", "reml"))
    toggles = [timed(lambda m=m: setattr(state, "method", m)) for _ in range(args.repeat) for m in ("ml", "reml")]
    rows.append(("switch REML -> ML, first time (all phenotypes refit)", ml_first, "< 200 ms"))
    rows.append(("switch ML -> REML (memoised)", back, "< 200 ms"))
    rows.append(("switch method again (median)", statistics.median(toggles), "< 200 ms"))

    # numerics alone (no drawing): refit every phenotype with the cached decomposition
    bare = ExplorerState()
    bare.load_data(data, "simulated")
    rows.append(("state only: fit all phenotypes by ML (cached eig)", timed(lambda: bare.fits("ml")), ""))
    rows.append(("state only: profile curve of one phenotype", timed(lambda: bare.profile("ml")), ""))

    # Brent player step with the Brent tab shown
    app.tabs.active = 1
    steps = [timed(lambda k=k: setattr(state, "step", k)) for k in range(1, min(state.n_frames, 8))]
    rows.append(("Brent player: one step (median)", statistics.median(steps), ""))

    width = max(len(r[0]) for r in rows)
    print(f"LMM Explorer dashboard, server side, n = {data.n}, {len(names)} phenotypes, best/median of {args.repeat}")
    print(f"{'measure'.ljust(width)}  {'time':>10}  target")
    print(f"{'-' * width}  {'-' * 10}  ------")
    for label, seconds, target in rows:
        value = f"{seconds * 1000:8.1f} ms" if seconds < 1 else f"{seconds:8.2f} s "
        print(f"{label.ljust(width)}  {value:>10}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

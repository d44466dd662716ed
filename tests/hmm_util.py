"""Helpers for the HMM tests: hand-built crosses and brute-force posteriors.

The brute force enumerates every genotype path of a small chromosome (or the
full joint distribution as a tensor), weights it by its prior probability and
by the emission probabilities of the observed codes, and sums the normalised
weights per position. It shares no code with :mod:`lmmcore.hmm`.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from lmmcore.cross import Cross


def make_cross(crosstype, geno, gmap, *, is_x_chr=None, is_female=None, cross_info=None,
               alleles=("A", "B"), founder_geno=None):
    """A Cross from plain arrays: geno and gmap are dicts per chromosome
    (gmap values: lists of cM; markers named ``m<chr>_<k>``)."""
    gmap_s = {
        c: pd.Series(np.asarray(p, float), index=[f"m{c}_{k}" for k in range(len(p))]) for c, p in gmap.items()
    }
    geno = {c: np.asarray(g, dtype=np.int8) for c, g in geno.items()}
    n = next(iter(geno.values())).shape[0]
    return Cross(
        crosstype=crosstype,
        ids=tuple(f"ind{i}" for i in range(n)),
        geno=geno,
        gmap=gmap_s,
        is_x_chr={c: bool((is_x_chr or {}).get(c, False)) for c in gmap},
        is_female=np.ones(n, bool) if is_female is None else np.asarray(is_female, bool),
        cross_info=np.zeros((n, 0), int) if cross_info is None else np.asarray(cross_info, int).reshape(n, -1),
        alleles=tuple(alleles),
        pheno=pd.DataFrame(index=[f"ind{i}" for i in range(n)]),
        founder_geno=founder_geno,
    )


def haldane(d):
    """Haldane's map function with R/qtl2's floor of 1e-12."""
    return np.maximum(0.5 * (1 - np.exp(-2 * np.asarray(d, float) / 100)), 1e-12)


def gamete_paths(rf):
    """Every recombinant gamete of an AB parent over the loci: (alleles tuple, probability)."""
    m = len(rf) + 1
    for path in itertools.product("AB", repeat=m):
        p = 0.5
        for k in range(m - 1):
            p *= rf[k] if path[k] != path[k + 1] else 1 - rf[k]
        yield path, p


# Observed codes as sets of exact genotypes.
F2_CODES = {1: {"AA"}, 2: {"AB"}, 3: {"BB"}, 4: {"AA", "AB"}, 5: {"AB", "BB"}}


def set_emission(code, true, possible, e, codes=F2_CODES, hemizygous=False):
    """P(observed code | true genotype) when the observation is a set of exact
    genotypes and an error turns the true genotype into each other possible
    one equally; a code compatible with none of the possible genotypes (or
    missing) carries no information."""
    if code == 0 or code not in codes:
        return 1.0
    observed = set(codes[code])
    if hemizygous:  # a male's A is typed AA, his B as BB
        observed = {h[0] + "Y" for h in observed if h[0] == h[1]}
    if not observed & set(possible):
        return 1.0
    others = len(possible) - 1
    return sum((1 - e) if h == true else e / others for h in observed if h in possible)


def posterior_from_paths(prior, emit, n_pos, marker_pos, obs):
    """Marginal posteriors from an explicit prior over paths.

    prior : dict path (tuple of state labels) -> probability
    emit : function (code, state) -> probability
    marker_pos : positions (indices) of the observed markers, obs the codes there.
    Returns dict state -> array (n_pos,) of posteriors.
    """
    weights = {}
    for path, p in prior.items():
        w = p
        for k, code in zip(marker_pos, obs):
            w *= emit(int(code), path[k])
        weights[path] = weights.get(path, 0.0) + w
    total = sum(weights.values())
    states = sorted({s for path in prior for s in path})
    out = {s: np.zeros(n_pos) for s in states}
    for path, w in weights.items():
        for k, s in enumerate(path):
            out[s][k] += w / total
    return out


def posterior_from_tensor(init, trans, emits):
    """Marginals from the full joint tensor P(g_1..g_M, O) built by broadcasting.

    init (S,), trans list of (S, S), emits list of (S,) (ones at pseudomarkers).
    """
    M = len(emits)
    joint = init * emits[0]
    for k in range(1, M):
        joint = joint[..., None] * trans[k - 1].reshape((1,) * (k - 1) + trans[k - 1].shape) * emits[k]
    joint = joint / joint.sum()
    return np.stack([joint.sum(axis=tuple(a for a in range(M) if a != k)) for k in range(M)])


def read_fixture_cross(path):
    """Read the small R/qtl2 zips of tests/data/hmm (JSON control file; the
    fields those fixtures use), independently of lmmcore's own reader."""
    import io
    import json
    import zipfile

    with zipfile.ZipFile(path) as z:
        control = json.loads(z.read(next(n for n in z.namelist() if n.endswith(".json"))))

        def table(key):
            return pd.read_csv(io.BytesIO(z.read(control[key])), dtype=str, comment="#",
                               keep_default_na=False)

        codes = control["genotypes"]
        na = set(control.get("na.strings", ["NA"]))

        def encode(frame):
            values = frame.to_numpy()
            out = np.zeros(values.shape, dtype=np.int8)
            for text, code in codes.items():
                out[values == text] = code
            unknown = ~np.isin(values, list(codes) + list(na))
            assert not unknown.any(), "fixture has codes outside its genotypes map"
            return out

        geno = table("geno")
        ids = geno.iloc[:, 0].tolist()
        geno = geno.set_index(geno.columns[0])
        gmap = table("gmap")
        gmap.columns = ["marker", "chr", "pos"]
        covar = None
        if "covar" in control:
            covar = table("covar")
            covar = covar.set_index(covar.columns[0]).loc[ids]
        fg = table("founder_geno") if "founder_geno" in control else None
        if fg is not None:
            fg = fg.set_index(fg.columns[0])
        info_spec = control.get("cross_info")
        info_file = None
        if isinstance(info_spec, dict) and "file" in info_spec:
            info_file = pd.read_csv(io.BytesIO(z.read(info_spec["file"])), dtype=str)
            info_file = info_file.set_index(info_file.columns[0]).loc[ids]
    chroms = list(dict.fromkeys(gmap["chr"]))
    n = len(ids)
    is_female = np.ones(n, bool)
    if "sex" in control:
        sex = control["sex"]
        is_female = (covar[sex["covar"]].map({k: v for k, v in sex.items() if k != "covar"}) == "female").to_numpy()
    if info_file is not None:
        cross_info = info_file.astype(int).to_numpy()
    elif isinstance(info_spec, dict):
        info_raw = covar[info_spec["covar"]]
        mapping = {k: v for k, v in info_spec.items() if k != "covar"}
        cross_info = (info_raw.map(mapping) if mapping else info_raw.astype(int)).to_numpy(int)[:, None]
    else:
        cross_info = np.zeros((n, 0), int)
    G, M, F = {}, {}, {}
    for c in chroms:
        sub = gmap[gmap["chr"] == c]
        M[c] = pd.Series(sub["pos"].astype(float).to_numpy(), index=sub["marker"].to_numpy())
        G[c] = encode(geno[sub["marker"]])
        if fg is not None:
            F[c] = encode(fg.loc[sub["marker"]]).T.copy()
    return Cross(
        crosstype=control["crosstype"], ids=tuple(ids), geno=G, gmap=M,
        is_x_chr={c: c == control.get("x_chr") for c in chroms}, is_female=is_female,
        cross_info=cross_info, alleles=tuple(control["alleles"]),
        pheno=pd.DataFrame(index=ids), founder_geno=F if fg is not None else None, source=str(path),
    )


def read_rqtl2_probs(path):
    """R/qtl2's MARKER:GENOTYPE CSV as a DataFrame indexed by ID (str)."""
    df = pd.read_csv(path, index_col=0)
    df.index = df.index.astype(str)
    return df

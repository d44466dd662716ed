"""find_peaks against a plain transcription of R/qtl2's algorithms and brute-force integration.

The reference functions below follow R/qtl2 0.43-5's C++ (src/find_peaks.cpp,
src/lod_int.cpp, src/bayes_int.cpp) line by line, one position at a time,
with none of lmmcore.peaks' shortcuts (the walk over the positions above the
threshold only, vectorised intervals). Comparisons against
R/qtl2 itself on iron are at the end of this file.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmmcore import LMMInputError, LMMWarning
from lmmcore.peaks import PEAK_COLUMNS, find_peaks, is_pseudomarker


# --------------------------------------------------------------------------- #
# Reference: R/qtl2's loops, transcribed
# --------------------------------------------------------------------------- #
def ref_peaks_valleys(lod, threshold, peakdrop):
    peaks, valleys = [], [0]
    last_peak = min_since = 0.0
    min_loc = 0
    for i, v in enumerate(lod):
        if v < min_since:
            min_since, min_loc = v, i
        if v > threshold:
            if not peaks:
                peaks.append(i)
                last_peak = min_since = v
            elif last_peak > min_since + peakdrop and v > min_since + peakdrop:
                peaks.append(i)
                valleys.append(min_loc)
                min_loc = i
                last_peak = min_since = v
            elif v > last_peak:
                peaks[-1] = i
                last_peak = min_since = v
                min_loc = i
    valleys.append(len(lod) - 1)
    return peaks, valleys


def ref_plain_ties(lod, peak):
    out = [peak]
    for j in range(peak - 1, -1, -1):
        if lod[j] == lod[peak]:
            out.append(j)
        if lod[j] < lod[peak]:
            break
    for j in range(peak + 1, len(lod)):
        if lod[j] == lod[peak]:
            out.append(j)
        if lod[j] < lod[peak]:
            break
    return out


def ref_lod_int(lod, peak, drop, start, end):
    top = lod[peak]
    ties = [peak]
    left = right = peak
    for i in range(peak + 1, end + 1):
        if lod[i] == top:
            ties.append(i)
        if lod[i] > top - drop:
            right = i
    right += 1
    for i in range(peak - 1, start - 1, -1):
        if lod[i] == top:
            ties.append(i)
        if lod[i] > top - drop:
            left = i
    left -= 1
    return max(left, start), min(right, end), ties


def addlog(a, b):
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    hi, lo = max(a, b), min(a, b)
    return hi + math.log1p(math.exp(lo - hi))


def ref_bayes_int(lod, pos, peak, prob, start, end):
    n = len(lod)
    lw = [0.0] * n
    lw[0] = math.log(pos[1] - pos[0]) if pos[1] > pos[0] else -math.inf
    for i in range(1, n - 1):
        w = (pos[i + 1] - pos[i - 1]) / 2
        lw[i] = math.log(w) if w > 0 else -math.inf
    lw[n - 1] = math.log(pos[n - 1] - pos[n - 2]) if pos[n - 1] > pos[n - 2] else -math.inf
    areas = [(lod[i] * math.log(10) + lw[i], lod[i], i) for i in range(start, end + 1)]
    total = -math.inf
    for a, _, _ in areas:
        total = addlog(total, a)
    areas.sort(key=lambda t: (-t[1], t[2]))
    left = right = peak
    cum = 0.0
    for a, _, i in areas:
        cum += math.exp(a - total)
        left, right = min(left, i), max(right, i)
        if cum >= prob:
            break
    return left, right


def ref_expand(left, right, names):
    import re

    pseudo = [bool(re.match(r"^c.+\.loc-*[0-9]+(\.[0-9]+)*$", m)) for m in names]
    markers = [i for i, p in enumerate(pseudo) if not p]
    if pseudo[left]:
        below = [i for i in markers if i <= left]
        left = max(below) if below else 0
    if pseudo[right]:
        above = [i for i in markers if i >= right]
        right = min(above) if above else len(names) - 1
    return left, right


def ref_find_peaks(lod, pos, names, threshold, peakdrop, drop, prob, expand):
    peaks, valleys = ref_peaks_valleys(lod, threshold, peakdrop)
    rows = []
    for k, peak in enumerate(peaks):
        if drop is not None:
            left, right, ties = ref_lod_int(lod, peak, drop, valleys[k], valleys[k + 1])
        elif prob is not None:
            left, right = ref_bayes_int(lod, pos, peak, prob, valleys[k], valleys[k + 1])
            ties = [peak]  # R/qtl2 0.43-5's bayes_int_contained pushes the peak index for each tie
        else:
            left = right = None
            ties = ref_plain_ties(lod, peak)
        row = [sum(pos[t] for t in ties) / len(ties), lod[peak]]
        if left is not None:
            if expand:
                left, right = ref_expand(left, right, names)
            row += [pos[left], pos[right]]
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- #
# Random curves
# --------------------------------------------------------------------------- #
def random_curve(rng, n):
    steps = rng.normal(0, 1.0, n)
    lod = np.abs(np.cumsum(steps)) * rng.uniform(0.5, 2)
    if rng.uniform() < 0.5:
        lod = np.round(lod, 1)  # many exact ties
    steps = rng.choice([0.0, 0.5, 1.0, 2.5], size=n, p=[0.1, 0.3, 0.4, 0.2])
    steps[1] = 1.0  # a first gap that is never zero (R/qtl2 takes log(pos[1] - pos[0]))
    pos = np.cumsum(steps)
    names = [f"c1.loc{k}" if rng.uniform() < 0.4 else f"m{k}" for k in range(n)]
    return lod, pos, names


def curve_table(lod, pos, names, phenotype="y", chrom="1"):
    return pd.DataFrame({"phenotype": phenotype, "marker": names, "chr": chrom, "pos": pos, "lod": lod})


@pytest.mark.parametrize("seed", range(40))
def test_find_peaks_matches_transcribed_rqtl2(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 80))
    lod, pos, names = random_curve(rng, n)
    threshold = float(rng.uniform(0, np.max(lod) + 0.5))
    peakdrop = float(rng.choice([math.inf, 0.5, 1.0, 2.0]))
    table = curve_table(lod, pos, names)
    for kind in ("plain", "drop", "prob"):
        drop = float(rng.uniform(0, min(peakdrop, 3))) if kind == "drop" else None
        prob = float(rng.uniform(0.5, 1)) if kind == "prob" else None
        for expand in (False, True):
            got = find_peaks(table, threshold, peakdrop, drop=drop, prob=prob, expand_to_markers=expand)
            want = ref_find_peaks(lod.tolist(), pos.tolist(), names, threshold, peakdrop, drop, prob, expand)
            assert len(got) == len(want)
            if not want:
                continue
            want = np.array(want)
            np.testing.assert_array_equal(got["pos"].to_numpy(), want[:, 0])
            np.testing.assert_array_equal(got["lod"].to_numpy(), want[:, 1])
            if kind == "plain":
                assert got["ci_lo"].isna().all()
            else:
                np.testing.assert_array_equal(got["ci_lo"].to_numpy(), want[:, 2])
                np.testing.assert_array_equal(got["ci_hi"].to_numpy(), want[:, 3])


def test_walk_shortcut_equals_full_walk_on_long_curves():
    # the walk visits only positions above the threshold and gap minima: same peaks and valleys
    from lmmcore.peaks import _peaks_and_valleys

    rng = np.random.default_rng(99)
    for _ in range(8):
        lod = np.abs(np.cumsum(rng.normal(size=2000))) / 5
        for threshold in (0.0, 1.0, 3.0):
            for peakdrop in (0.0, 0.7, 2.0, math.inf):
                assert _peaks_and_valleys(lod, threshold, peakdrop) == ref_peaks_valleys(lod.tolist(), threshold, peakdrop)


def test_bayes_interval_by_brute_force_integration():
    # The posterior 10^LOD integrated cell by cell (cells between midpoints, the ends extended
    # by half a gap; R/qtl2's rectangle rule); the smallest k such that the k highest-LOD
    # positions hold prob of the mass, found by trying every k; the interval spans them.
    rng = np.random.default_rng(7)
    for _ in range(30):
        n = int(rng.integers(5, 60))
        pos = np.sort(rng.uniform(0, 100, n))
        lod = 6 * np.exp(-((pos - rng.uniform(20, 80)) ** 2) / rng.uniform(20, 200)) + rng.uniform(0, 0.3, n)
        prob = float(rng.uniform(0.5, 0.99))
        got = find_peaks(curve_table(lod, pos, [f"m{i}" for i in range(n)]), 0.0, prob=prob)
        assert len(got) == 1
        edges = np.concatenate(([pos[0] - (pos[1] - pos[0]) / 2], (pos[1:] + pos[:-1]) / 2,
                                [pos[-1] + (pos[-1] - pos[-2]) / 2]))
        mass = 10.0 ** lod * np.diff(edges)
        mass /= mass.sum()
        ranked = np.argsort(-lod, kind="stable")
        k = next(k for k in range(1, n + 1) if mass[ranked[:k]].sum() >= prob)
        chosen = ranked[:k]
        assert got["ci_lo"][0] == pos[chosen.min()] and got["ci_hi"][0] == pos[chosen.max()]
        assert got["pos"][0] == pos[np.argmax(lod)]


def test_lod_interval_by_definition_and_two_peaks():
    pos = np.arange(0.0, 21.0)
    lod = np.array([0, 1, 2, 4, 5, 4.2, 3, 1, 0.5, 0.2, 0.1, 1, 2, 3.5, 6, 7, 6.9, 5, 3, 1, 0.5])
    names = [f"m{i}" for i in range(21)]
    table = curve_table(lod, pos, names)
    one = find_peaks(table, threshold=3, drop=1.5)
    assert one[["pos", "lod", "ci_lo", "ci_hi"]].values.tolist() == [[15.0, 7.0, 13.0, 17.0]]
    two = find_peaks(table, threshold=3, peakdrop=2, drop=1.5)
    # first peak at 4 (LOD 5): positions with LOD > 3.5 are 3..5, one beyond each: 2..6
    assert two[["pos", "lod", "ci_lo", "ci_hi"]].values.tolist() == [[4.0, 5.0, 2.0, 6.0], [15.0, 7.0, 13.0, 17.0]]
    assert two["marker"].tolist() == ["m4", "m15"]
    assert two["ci_lo_marker"].tolist() == ["m2", "m13"]


def test_ties_average_positions_as_rqtl2():
    pos = np.array([0.0, 1, 2, 3, 4, 5])
    lod = np.array([1.0, 4, 4, 2, 4, 1])
    table = curve_table(lod, pos, list("abcdef"))
    plain = find_peaks(table, threshold=3)
    assert plain["pos"].tolist() == [1.5] and plain["marker"].tolist() == ["b"]  # contiguous ties only
    lodint = find_peaks(table, threshold=3, drop=1)
    assert lodint["pos"].tolist() == [(1 + 2 + 4) / 3]  # every tie between the valleys
    bayes = find_peaks(table, threshold=3, prob=0.5)
    assert bayes["pos"].tolist() == [1.0]  # R/qtl2 0.43-5 keeps the peak itself


def test_expand_to_markers_moves_pseudomarker_ends_outwards():
    names = ["m0", "c1.loc1", "c1.loc2", "c1.loc3", "m4", "c1.loc5"]
    pos = np.arange(6.0)
    lod = np.array([0.0, 1, 4, 5, 1, 0])
    table = curve_table(lod, pos, names)
    plain = find_peaks(table, threshold=3, drop=0.5)
    assert plain[["ci_lo", "ci_hi"]].values.tolist() == [[2.0, 4.0]]
    wide = find_peaks(table, threshold=3, drop=0.5, expand_to_markers=True)
    assert wide[["ci_lo", "ci_hi"]].values.tolist() == [[0.0, 4.0]]
    assert wide[["ci_lo_marker", "ci_hi_marker"]].values.tolist() == [["m0", "m4"]]
    np.testing.assert_array_equal(is_pseudomarker(["c1.loc28", "cX.loc-2.5", "D1Mit18", "c1.loc"]),
                                  [True, True, False, False])


def test_table_of_many_phenotypes_and_chromosomes_in_scan_order():
    rng = np.random.default_rng(3)
    frames = []
    for ph in ("b_trait", "a_trait"):
        for chrom in ("2", "10", "X"):
            lod, pos, names = random_curve(rng, 30)
            frames.append(curve_table(lod + 2, pos, [f"{chrom}_{ph}_{m}" for m in names], ph, chrom))
    table = pd.concat(frames, ignore_index=True)
    got = find_peaks(table, threshold=2.5, peakdrop=1.0, drop=1.0)
    assert list(got.columns) == list(PEAK_COLUMNS)
    order = [(p, c) for p in ("b_trait", "a_trait") for c in ("2", "10", "X")]
    keys = list(zip(got["phenotype"], got["chr"]))
    assert keys == sorted(keys, key=order.index)
    for (ph, chrom), part in got.groupby(["phenotype", "chr"], sort=False):
        curve = table[(table.phenotype == ph) & (table.chr == chrom)]
        want = ref_find_peaks(curve.lod.tolist(), curve.pos.tolist(), curve.marker.tolist(), 2.5, 1.0, 1.0, None, False)
        assert part[["pos", "lod", "ci_lo", "ci_hi"]].values.tolist() == want


def test_missing_lod_rows_are_left_out_with_a_message():
    table = curve_table(np.array([0.0, np.nan, 5.0, 1.0]), np.array([0.0, 1, 2, 3]), list("abcd"))
    messages = []
    got = find_peaks(table, threshold=3, drop=1.5, report=messages.append)
    assert got["ci_lo"].tolist() == [0.0] and got["ci_hi"].tolist() == [3.0]
    assert len(messages) == 1 and "1 row" in messages[0]
    with pytest.warns(LMMWarning, match="no LOD"):
        find_peaks(table, threshold=3)


def test_scan_result_input(tmp_path):
    from lmmcore.scan import scan
    from lmmcore.simulate import simulate_genotype_dosages

    g = simulate_genotype_dosages(60, 120, n_chr=2, seed=1)
    rng = np.random.default_rng(2)
    y = pd.DataFrame({"y": g.dosage[:, 30] + rng.normal(scale=0.5, size=60)}, index=list(g.ids))
    res = scan(g, y, kinship="loco")
    assert find_peaks(res, threshold=2).equals(find_peaks(res.table, threshold=2))
    assert len(find_peaks(res, threshold=2)) >= 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"drop": 1.5, "prob": 0.95}, "not both"),
        ({"drop": 3.0, "peakdrop": 2.0}, "larger than the peak drop"),
        ({"prob": 1.5}, r"\(0, 1\]"),
        ({"prob": 0.0}, r"\(0, 1\]"),
        ({"drop": -1.0}, "0 or more"),
        ({"peakdrop": -1.0}, "0 or more"),
        ({"threshold": float("nan")}, "finite"),
        ({"threshold": {"other": 3}}, "no threshold"),
    ],
)
def test_bad_options(kwargs, match):
    table = curve_table(np.array([0.0, 5.0]), np.array([0.0, 1.0]), ["a", "b"])
    with pytest.raises(LMMInputError, match=match):
        find_peaks(table, **kwargs)


def test_bad_tables():
    good = curve_table(np.array([0.0, 5.0]), np.array([0.0, 1.0]), ["a", "b"])
    with pytest.raises(LMMInputError, match="no column 'pos'"):
        find_peaks(good.drop(columns="pos"))
    with pytest.raises(LMMInputError, match="appears twice"):
        find_peaks(pd.concat([good, good]))
    bad = good.astype({"pos": object})
    bad.loc[1, "pos"] = "x"
    with pytest.raises(LMMInputError, match="row 2 .*not a number"):
        find_peaks(bad)
    with pytest.raises(LMMInputError, match="ScanResult"):
        find_peaks([1, 2, 3])


# --------------------------------------------------------------------------- #
# R/qtl2 itself (fixtures from tests/data/qtl/make_rqtl2_fixtures.R)
# --------------------------------------------------------------------------- #
RQTL2 = Path(__file__).parent / "data" / "qtl"


def test_find_peaks_matches_rqtl2_on_iron():
    # R/qtl2 0.43-5: scan1 of liver and spleen on a 2-cM grid with pseudomarkers (LOCO kinship,
    # sex), then find_peaks(out, map, threshold, peakdrop, drop= or prob=, expand2markers=) for
    # six settings, each with and without expand2markers. Same peaks, positions, LODs and
    # interval ends, exactly.
    scan = pd.read_csv(RQTL2 / "rqtl2_scan1_grid.csv", dtype={"phenotype": str, "marker": str, "chr": str})
    ref = pd.read_csv(RQTL2 / "rqtl2_find_peaks.csv", dtype={"phenotype": str, "chr": str, "call": str})
    assert is_pseudomarker(scan["marker"]).sum() > 500
    checked = 0
    for (call, expand), want in ref.groupby(["call", "expand"], sort=False):
        first = want.iloc[0]
        drop = None if pd.isna(first["drop"]) else float(first["drop"])
        prob = None if pd.isna(first["prob"]) else float(first["prob"])
        got = find_peaks(scan, float(first["threshold"]), float(first["peakdrop"]), drop=drop, prob=prob,
                         expand_to_markers=bool(expand))
        assert got["phenotype"].tolist() == want["phenotype"].tolist(), call
        assert got["chr"].tolist() == want["chr"].tolist(), call
        np.testing.assert_array_equal(got["pos"].to_numpy(), want["pos"].to_numpy(), err_msg=call)
        np.testing.assert_array_equal(got["lod"].to_numpy(), want["lod"].to_numpy(), err_msg=call)
        if drop is not None or prob is not None:
            np.testing.assert_array_equal(got["ci_lo"].to_numpy(), want["ci_lo"].to_numpy(), err_msg=call)
            np.testing.assert_array_equal(got["ci_hi"].to_numpy(), want["ci_hi"].to_numpy(), err_msg=call)
        checked += len(want)
    assert checked >= 40
    # expanding moved some interval ends (the test exercises the rule)
    ends = ref.groupby("expand")[["ci_lo", "ci_hi"]].sum()
    assert ends.loc[True].sum() != ends.loc[False].sum()


def test_lod_column_and_table_without_phenotype():
    lod = np.array([0.0, 2.0, 6.0, 2.5, 0.5])
    table = pd.DataFrame({"marker": list("abcde"), "chr": "3", "pos": np.arange(5.0), "lod": lod / 10,
                          "lod_lrt": lod})
    got = find_peaks(table, threshold=3, drop=1, lod_column="lod_lrt")
    assert got[["phenotype", "chr", "pos", "lod", "ci_lo", "ci_hi"]].values.tolist() == [["lod", "3", 2.0, 6.0, 1.0, 3.0]]
    assert find_peaks(table, threshold=3).empty

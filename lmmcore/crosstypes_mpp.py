"""Multi-parent cross types: Diversity Outbred (``do``), heterogeneous stock (``hs``), multi-way RIL.

``do`` and ``hs`` have eight founders and unphased pairs of founder alleles;
``riself4``, ``riself8``, ``riself16``, ``magic19``, ``risib4`` and
``risib8`` are inbred lines with one state per founder (at the end of this
module).

The 36 unphased genotypes of 8 founders are ordered as R/qtl2 orders them,
by the second allele then the first: ``AA, AB, BB, AC, BC, CC, AD, ...``
(genotype ``k`` = 1-based ``j(j-1)/2 + i`` for alleles ``i <= j``). On X,
females have these 36 and males the 8 hemizygous ``AY ... HY`` (44 in all).

Transitions (Broman 2012, Genetics 190:403 and the technical reports cited
in R/qtl2's ``cross_do_util.cpp``): each of the two haplotypes of a mouse at
outbreeding generation ``s`` changes founder between adjacent loci with
probability ``R(r, s)`` (a different function on the autosomes, the female
X and the male X), to each of the 7 other founders equally.
``do`` starts from pre-CC mice at generations 4..12 in R/qtl2's fixed
proportions; ``hs`` is the same model from founders at generation 1.

Emissions compare a SNP call (1 = AA, 2 = AB, 3 = BB, 4 = not BB,
5 = not AA, 0 = missing) with the founders' alleles (1 or 3; 0 or 2 =
unknown) of the genotype's two founders, allowing an error ``e``.
"""

from __future__ import annotations

import numpy as np

from .crosstypes import N_CODES, CrossModel, Group, _of
from .errors import LMMInputError

__all__ = ["DO", "HS", "Magic19", "RISelf4", "RISelf8", "RISelf16", "RISib4", "RISib8", "mpp_pairs"]

N_FOUNDERS = 8
N_GENO = 36


def mpp_pairs(n_alleles: int = N_FOUNDERS) -> np.ndarray:
    """(n_geno, 2) 0-based founder pairs ``(i, j)``, ``i <= j``, in R/qtl2's order."""
    return np.array([(i, j) for j in range(n_alleles) for i in range(j + 1)])


def _ri4way_auto_hapAA(r: np.ndarray, k: int) -> np.ndarray:
    """P(AA haplotype), autosome, 4-way RIL by sib mating at G1F``k``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.sqrt(4 * r * r - 12 * r + 5)
        out = 0.25 * (
            1 / (1 + 6 * r)
            + (6 * r * r - 7 * r + 3 * r * s) / ((1 + 6 * r) * s) * ((1 - 2 * r - s) / 4) ** k
            - (6 * r * r - 7 * r - 3 * r * s) / ((1 + 6 * r) * s) * ((1 - 2 * r + s) / 4) ** k
        )
    return np.where(r == 0.5, 1 / 8 if k == 1 else 1 / 16, out)


def _ri4way_femX_hapAA(r, k):
    t = np.sqrt(r * r - 10 * r + 5)
    return 0.5 * (
        2 / (12 * r + 3)
        + 1 / (3 * r + 3) * (-0.5) ** k
        - (4 * r**3 - t * (4 * r * r + 3 * r) + 3 * r * r - 5 * r) / ((8 * r * r + 10 * r + 2) * t) * ((1 - r + t) / 4) ** k
        + (4 * r**3 + t * (4 * r * r + 3 * r) + 3 * r * r - 5 * r) / ((8 * r * r + 10 * r + 2) * t) * ((1 - r - t) / 4) ** k
    )


def _ri4way_femX_hapCC(r, k):
    t = np.sqrt(r * r - 10 * r + 5)
    return (
        1 / (12 * r + 3)
        - 1 / (3 * r + 3) * (-0.5) ** k
        + (9 * r * r + 5 * r + r * t) / ((8 * r * r + 10 * r + 2) * t) * ((1 - r + t) / 4) ** k
        - (9 * r * r + 5 * r - r * t) / ((8 * r * r + 10 * r + 2) * t) * ((1 - r - t) / 4) ** k
    )


def _ri4way_malX_hapAA(r, k):
    t = np.sqrt(r * r - 10 * r + 5)
    den = 4 * r**4 - 35 * r**3 - 29 * r * r + 15 * r + 5
    return (
        1 / (12 * r + 3)
        - 1 / (3 * r + 3) * (-0.5) ** k
        + (r**3 - t * (8 * r**3 + r * r - 3 * r) - 10 * r * r + 5 * r) / den / 2 * ((1 - r + t) / 4) ** k
        + (r**3 + t * (8 * r**3 + r * r - 3 * r) - 10 * r * r + 5 * r) / den / 2 * ((1 - r - t) / 4) ** k
    )


def _ri4way_malX_hapCC(r, k):
    t = np.sqrt(r * r - 10 * r + 5)
    den = 4 * r**4 - 35 * r**3 - 29 * r * r + 15 * r + 5
    return (
        1 / (12 * r + 3)
        + 2 / (3 * r + 3) * (-0.5) ** k
        + (2 * r**4 + t * (2 * r**3 - r * r + r) - 19 * r**3 + 5 * r) / den * ((1 - r + t) / 4) ** k
        + (2 * r**4 - t * (2 * r**3 - r * r + r) - 19 * r**3 + 5 * r) / den * ((1 - r - t) / 4) ** k
    )


class _EightWay(CrossModel):
    """Shared by ``do`` and ``hs``: 8 founders, outbreeding generation ``s``."""

    needs_founders = True
    n_founders = N_FOUNDERS
    #: (generations of the progenitors, their proportions)
    precc_gen: tuple[int, ...] = ()
    precc_alpha: tuple[float, ...] = ()

    def __init__(self) -> None:
        pairs = mpp_pairs()
        self._pairs = pairs
        a, b = pairs[:, 0], pairs[:, 1]
        hom_l = (a == b)[:, None]
        hom_r = (a == b)[None, :]
        same = (a[:, None] == a[None, :]) & (b[:, None] == b[None, :])
        n_shared = (
            (a[:, None] == a[None, :]) | (a[:, None] == b[None, :]) | (b[:, None] == a[None, :]) | (b[:, None] == b[None, :])
        )
        # 8 classes of (left, right) pairs; see transitions()
        cls = np.empty((N_GENO, N_GENO), dtype=np.int64)
        cls[hom_l & hom_r & same] = 0  # AA -> AA
        cls[hom_l & hom_r & ~same] = 1  # AA -> BB
        cls[hom_l & ~hom_r & n_shared] = 2  # AA -> AB
        cls[hom_l & ~hom_r & ~n_shared] = 3  # AA -> BC
        cls[~hom_l & hom_r & n_shared] = 4  # AB -> AA
        cls[~hom_l & hom_r & ~n_shared] = 1  # AB -> CC
        cls[~hom_l & ~hom_r & same] = 5  # AB -> AB
        cls[~hom_l & ~hom_r & ~same & n_shared] = 6  # AB -> AC
        cls[~hom_l & ~hom_r & ~n_shared] = 3  # AB -> CD
        self._class = cls

    # ---- genotypes -------------------------------------------------------
    def genotype_names(self, alleles, is_x):
        if len(alleles) < N_FOUNDERS:
            alleles = tuple("ABCDEFGH")
        names = tuple(alleles[i] + alleles[j] for i, j in self._pairs)
        return names + tuple(x + "Y" for x in alleles[:N_FOUNDERS]) if is_x else names

    def allele_names(self, alleles, is_x):
        return tuple(alleles[:N_FOUNDERS]) if len(alleles) >= N_FOUNDERS else tuple("ABCDEFGH")

    def geno2allele(self, is_x):
        m = np.zeros((N_GENO, N_FOUNDERS))
        np.add.at(m, (np.arange(N_GENO), self._pairs[:, 0]), 0.5)
        np.add.at(m, (np.arange(N_GENO), self._pairs[:, 1]), 0.5)
        return np.vstack([m, np.eye(N_FOUNDERS)]) if is_x else m

    # ---- grouping --------------------------------------------------------
    def key_columns(self, is_x, n_info):
        return [0, 1] if is_x else [1]

    def check_info(self, cross_info, is_female, any_x, source):
        if cross_info.shape[1] < 1 or (cross_info[:, 0] < 1).any():
            raise LMMInputError(
                f"The {self.name} cross{_of(source)} needs each individual's number of generations of "
                "outbreeding (>= 1) as the first cross_info column; add it to the control file's cross_info."
            )

    def group(self, female, info, is_x):
        if is_x and not female:
            return Group(female, info, np.arange(N_GENO, N_GENO + N_FOUNDERS), np.full(N_FOUNDERS, 1 / 8))
        het = self._pairs[:, 0] != self._pairs[:, 1]
        return Group(female, info, np.arange(N_GENO), np.where(het, 1 / 32, 1 / 64))

    # ---- recombination ---------------------------------------------------
    def _memo(self, name, r, compute):
        """Results that depend on r only, shared by the groups of a chromosome."""
        key = (name, r.tobytes())
        cache = self.__dict__.setdefault("_cache", {})
        value = cache.get(key)
        if value is None:
            if len(cache) > 64:
                cache.clear()
            value = cache[key] = compute(r)
        return value

    def _rec_auto(self, r, s):
        hap = self._memo("auto", r, lambda r: sum(
            al * _ri4way_auto_hapAA(r, g + 1) * (1 - r) / 2 for g, al in zip(self.precc_gen, self.precc_alpha)
        ))
        if s > 1:
            hap = 1 / 64 + (1 - r) ** (s - 1) * (hap - 1 / 64)
        return 1 - 8 * hap

    def _x_s1(self, r):
        f1 = sum(
            al * (_ri4way_femX_hapAA(r, g + 1) * (2 - r) + _ri4way_femX_hapCC(r, g + 1) * (1 - r))
            for g, al in zip(self.precc_gen, self.precc_alpha)
        ) / 8
        m1 = sum(
            al * (_ri4way_malX_hapAA(r, g + 1) * (2 - r) + _ri4way_malX_hapCC(r, g + 1) * (1 - r))
            for g, al in zip(self.precc_gen, self.precc_alpha)
        ) / 8
        return f1, m1

    def _rec_x(self, r, s, female):
        f1, m1 = self._memo("x", r, self._x_s1)
        if s == 1:
            out = f1 if female else m1
        else:
            z = np.sqrt((1 - r) * (9 - r))
            ws = ((1 - r + z) / 4) ** (s - 1)
            ys = ((1 - r - z) / 4) ** (s - 1)
            if female:
                out = (2 + (-64 * f1 * (1 - r) - 128 * m1 + 3 - r) / z * (ys - ws) - (1 - 64 * f1) * (ws + ys)) / 128
            else:
                out = (2 + (64 * m1 - 256 * f1 + 3) * (1 - r) / z * (ys - ws) - (1 - 64 * m1) * (ws + ys)) / 128
        return 1 - 8 * out

    def transitions(self, r, g, is_x):
        """Transition matrices (n_int, S, S).

        Notes
        -----
        With ``R`` the haplotype's probability of changing founder
        (autosome or female X), between unphased genotypes:
        AA->AA ``(1-R)^2``; AA->BB ``R^2/49``; AA->AB ``2R(1-R)/7``;
        AA->BC ``2R^2/49``; AB->AA ``R(1-R)/7``; AB->CC ``R^2/49``;
        AB->AB ``(1-R)^2 + R^2/49``; AB->AC ``R(1-R)/7 + R^2/49``;
        AB->CD ``2R^2/49``. Male X: ``1 - R`` to stay, ``R/7`` to each other founder.
        """
        s = int(g.info[0])
        r = np.asarray(r, dtype=float)
        if is_x and not g.female:
            R = self._rec_x(r, s, female=False)
            T = np.repeat((R / 7)[:, None, None], N_FOUNDERS, axis=1).repeat(N_FOUNDERS, axis=2)
            idx = np.arange(N_FOUNDERS)
            T[:, idx, idx] = (1 - R)[:, None]
            return T
        R = self._rec_x(r, s, female=True) if is_x else self._rec_auto(r, s)
        q = 1 - R
        vals = np.stack(
            [q * q, R * R / 49, 2 * R * q / 7, 2 * R * R / 49, R * q / 7, R * R / 49 + q * q, R * q / 7 + R * R / 49],
            axis=1,
        )  # (n_int, 7 classes)
        return np.take(vals, self._class.ravel(), axis=1).reshape(len(r), N_GENO, N_GENO)

    # ---- emissions -------------------------------------------------------
    def emissions(self, g, is_x, e, founder_geno):
        """(n_markers, N_CODES, S) from the founders' alleles at each marker.

        Notes
        -----
        For a genotype with founders ``f, f'`` whose alleles at the marker are
        ``a, a'`` (1 or 3; 0 or 2 unknown): both unknown, every code has
        probability 1; one known allele ``x``: the call ``xx`` or "not yy"
        has ``1 - e``, ``yy`` or "not xx" has ``e``, a het 1; both known, the
        true SNP genotype ``(a + a')/2`` is called right with ``1 - e``,
        as one of the two others with ``e/2`` each, as "not (true)" with
        ``e`` and as the other "not" with ``1 - e/2``. Males on X: as one
        known allele.
        """
        fg = np.asarray(founder_geno)
        tables = np.ones((6, N_CODES))  # category x code
        # categories: 0 unknown, 1 one allele A, 2 one allele B, 3 AA, 4 AB, 5 BB
        tables[1, [1, 4]] = tables[2, [3, 5]] = 1 - e
        tables[1, [3, 5]] = tables[2, [1, 4]] = e
        tables[3, 1:] = [1 - e, e / 2, e / 2, 1 - e / 2, e]
        tables[4, 1:] = [e / 2, 1 - e, e / 2, 1 - e / 2, 1 - e / 2]
        tables[5, 1:] = [e / 2, e / 2, 1 - e, e, 1 - e / 2]
        if is_x and not g.female:
            cat = np.select([fg == 1, fg == 3], [1, 2], 0).T  # (m, 8)
        else:
            known = np.where(fg == 2, 0, fg)  # founder hets count as unknown
            f1, f2 = known[self._pairs[:, 0]].T, known[self._pairs[:, 1]].T  # (m, 36)
            one = np.maximum(f1, f2)
            cat = np.where(
                (f1 == 0) & (f2 == 0),
                0,
                np.where((f1 == 0) | (f2 == 0), np.where(one == 1, 1, 2), 2 + (f1 + f2) // 2),
            )
        return np.ascontiguousarray(tables[cat].transpose(0, 2, 1))


class DO(_EightWay):
    """Diversity Outbred mice (``do``): pre-CC progenitors at generations 4..12."""

    name = "do"
    precc_gen = (4, 5, 6, 7, 8, 9, 10, 11, 12)
    precc_alpha = (21 / 144, 64 / 144, 24 / 144, 10 / 144, 5 / 144, 9 / 144, 5 / 144, 3 / 144, 3 / 144)


class HS(_EightWay):
    """Heterogeneous stock (``hs``): the DO model with progenitors at generation 1."""

    name = "hs"
    precc_gen = (1,)
    precc_alpha = (1.0,)


class _InbredFunnel(CrossModel):
    """Multi-parent recombinant inbred lines: one state per founder (``AA``, ``BB``, ...).

    Emission: a SNP call (1 or 3) agrees with the founder's allele with
    probability ``1 - e`` and disagrees with ``e``; any other non-missing call
    has ``e`` for every founder whose allele is known; a founder with an
    unknown allele (0 or 2) gives no information. RIL by selfing and MAGIC
    lines treat the X chromosome as an autosome (as R/qtl2 ignores it).
    """

    handles_x = False
    needs_founders = True
    n_founders = 4

    def genotype_names(self, alleles, is_x):
        k = self.n_founders
        if len(alleles) < k:
            alleles = tuple(chr(ord("A") + i) for i in range(k))
        return tuple(a + a for a in alleles[:k])

    def allele_names(self, alleles, is_x):
        k = self.n_founders
        return tuple(alleles[:k]) if len(alleles) >= k else tuple(chr(ord("A") + i) for i in range(k))

    def geno2allele(self, is_x):
        return np.eye(self.n_founders)

    def group(self, female, info, is_x):
        k = self.n_founders
        return Group(female, info, np.arange(k), np.full(k, 1.0 / k))

    def _funnel_position(self, info):
        """Position (0-based) of each founder in the funnel (cross_info lists founders 1..k in order)."""
        pos = np.empty(self.n_founders, dtype=int)
        pos[np.asarray(info, dtype=int) - 1] = np.arange(self.n_founders)
        return pos

    def check_info(self, cross_info, is_female, any_x, source):
        if not self.uses_funnel:
            return
        k = self.n_founders
        ok = cross_info.shape[1] == k and all(sorted(row) == list(range(1, k + 1)) for row in cross_info.tolist())
        if not ok:
            raise LMMInputError(
                f"The {self.name} cross{_of(source)} needs the order of the {k} founders in each line's "
                f"funnel as {k} cross_info columns (a permutation of 1..{k}); add it to the control file."
            )

    uses_funnel = False

    def key_columns(self, is_x, n_info):
        return list(range(1, n_info + 1)) if self.uses_funnel else []

    def emissions(self, g, is_x, e, founder_geno):
        fg = np.asarray(founder_geno)[: self.n_founders].T  # (m, k)
        known = (fg == 1) | (fg == 3)
        tab = np.ones((fg.shape[0], N_CODES, self.n_founders))
        for code in range(1, N_CODES):
            tab[:, code, :] = np.where(known, np.where(fg == code, 1 - e, e), 1.0)
        return tab


class RISelf4(_InbredFunnel):
    """4-way RIL by selfing (``riself4``): stay ``(1-r)/(1+2r)``, each other founder ``r/(1+2r)``."""

    name = "riself4"
    n_founders = 4

    def transitions(self, r, g, is_x):
        k = self.n_founders
        T = np.repeat((r / (1 + 2 * r))[:, None, None], k, axis=1).repeat(k, axis=2)
        T[:, np.arange(k), np.arange(k)] = ((1 - r) / (1 + 2 * r))[:, None]
        return T


class RISelf8(_InbredFunnel):
    """8-way RIL by selfing (``riself8``), with the funnel order from cross_info.

    Stay ``(1-r)^2/(1+2r)``; to the founder paired with it in the funnel
    ``r(1-r)/(1+2r)``; to each of the 6 others ``r/(2(1+2r))``.
    """

    name = "riself8"
    n_founders = 8
    uses_funnel = True
    levels = 2

    def _level_values(self, r):
        d = 1 + 2 * r
        return [(1 - r) ** 2 / d, r * (1 - r) / d, r / (2 * d)]

    def transitions(self, r, g, is_x):
        pos = self._funnel_position(g.info)
        same = pos[:, None] == pos[None, :]
        level = np.where(same, 0, np.where(pos[:, None] // 2 == pos[None, :] // 2, 1, 2))
        if self.levels == 3:
            level = np.where((level == 2) & (pos[:, None] // 4 == pos[None, :] // 4), 2, np.where(level == 2, 3, level))
        vals = np.stack(self._level_values(np.asarray(r, float)), axis=1)  # (n_int, levels + 1)
        return vals[:, level]


class RISelf16(RISelf8):
    """16-way RIL by selfing (``riself16``): stay ``(1-r)^3/(1+2r)``; funnel pair
    ``r(1-r)^2/(1+2r)``; same quartet ``r(1-r)/(2(1+2r))``; others ``r/(4(1+2r))``."""

    name = "riself16"
    n_founders = 16
    levels = 3

    def _level_values(self, r):
        d = 1 + 2 * r
        return [(1 - r) ** 3 / d, r * (1 - r) ** 2 / d, r * (1 - r) / (2 * d), r / (4 * d)]


class Magic19(_InbredFunnel):
    """19-way MAGIC lines (``magic19``): stay ``(19 - 52r + 54r^2 - 18r^3)/(19(1+2r))``,
    each other founder ``r(90 - 54r + 18r^2)/(19 * 18 (1+2r))``."""

    name = "magic19"
    n_founders = 19

    def transitions(self, r, g, is_x):
        k = self.n_founders
        d = 1 + 2 * r
        other = r * (90 - 54 * r + 18 * r * r) / (d * 19 * 18)
        stay = (19 - 52 * r + 54 * r * r - 18 * r**3) / (d * 19)
        T = np.repeat(other[:, None, None], k, axis=1).repeat(k, axis=2)
        T[:, np.arange(k), np.arange(k)] = stay[:, None]
        return T


class RISib4(_InbredFunnel):
    """4-way RIL by sib mating (``risib4``).

    Autosomes: stay ``1/(1+6r)``, each other founder ``2r/(1+6r)``. X: only
    the first three founders of the funnel (cross_info) can be present, each
    with probability 1/3; stay ``1/(1+4r)``, each other ``2r/(1+4r)``. The
    other founders are kept as states with probability 0.
    """

    name = "risib4"
    n_founders = 4
    uses_funnel = True
    handles_x = True

    def key_columns(self, is_x, n_info):
        return list(range(1, n_info + 1)) if is_x else []

    def _x_founders(self, info):
        return [info[0] - 1, info[1] - 1, info[2] - 1]

    def group(self, female, info, is_x):
        k = self.n_founders
        if not is_x:
            return Group(female, info, np.arange(k), np.full(k, 1.0 / k))
        init = np.zeros(k)
        init[self._x_founders(info)] = 1 / 3
        return Group(female, info, np.arange(k), init)

    def _x_matrix(self, r, info):
        k = self.n_founders
        live = self._x_founders(info)
        T = np.zeros((len(r), k, k))
        for a in live:
            for b in live:
                T[:, a, b] = 1 / (1 + 4 * r) if a == b else 2 * r / (1 + 4 * r)
        return T

    def transitions(self, r, g, is_x):
        k = self.n_founders
        if is_x:
            return self._x_matrix(r, g.info)
        T = np.repeat((2 * r / (1 + 6 * r))[:, None, None], k, axis=1).repeat(k, axis=2)
        T[:, np.arange(k), np.arange(k)] = (1 / (1 + 6 * r))[:, None]
        return T


class RISib8(RISib4):
    """8-way RIL by sib mating (``risib8``).

    Autosomes: stay ``(1-r)/(1+6r)``, each other founder ``r/(1+6r)``. X:
    founders 1, 2, 3, 5, 6 of the funnel (cross_info) can be present, the
    third with probability 1/3 and the others 1/6; to the third founder
    ``2r/(1+4r)``, to each other ``r/(1+4r)``; staying ``1/(1+4r)`` at the
    third and ``(1-r)/(1+4r)`` elsewhere.
    """

    name = "risib8"
    n_founders = 8

    def _x_founders(self, info):
        return [info[0] - 1, info[1] - 1, info[2] - 1, info[4] - 1, info[5] - 1]

    def group(self, female, info, is_x):
        g = super().group(female, info, is_x)
        if is_x:
            g.init[self._x_founders(info)] = 1 / 6
            g.init[info[2] - 1] = 1 / 3
        return g

    def _x_matrix(self, r, info):
        k = self.n_founders
        live = self._x_founders(info)
        third = info[2] - 1
        d = 1 + 4 * r
        T = np.zeros((len(r), k, k))
        for a in live:
            for b in live:
                if a == b:
                    T[:, a, b] = 1 / d if a == third else (1 - r) / d
                else:
                    T[:, a, b] = 2 * r / d if b == third else r / d
        return T

    def transitions(self, r, g, is_x):
        k = self.n_founders
        if is_x:
            return self._x_matrix(r, g.info)
        T = np.repeat((r / (1 + 6 * r))[:, None, None], k, axis=1).repeat(k, axis=2)
        T[:, np.arange(k), np.arange(k)] = ((1 - r) / (1 + 6 * r))[:, None]
        return T
